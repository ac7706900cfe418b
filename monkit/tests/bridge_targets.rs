//! The bridge leaves libraries' own spans (h2's streams, hyper's connections) out of the
//! function table by default, and keeps the tree whole around them.

use tracing_subscriber::layer::SubscriberExt;

fn names(reg: &monkit::Registry) -> Vec<String> {
    let mut v: Vec<String> = reg
        .funcs()
        .into_iter()
        .map(|f| f.full_name().to_owned())
        .collect();
    v.sort();
    v
}

fn spans_of_a_request() {
    let request = tracing::info_span!(target: "myapp::http", "handle").entered();
    let stream = tracing::info_span!(target: "h2::proto::streams", "poll_stream").entered();
    let conn = tracing::info_span!(target: "hyper::proto", "conn").entered();
    // Explicitly a child of a skipped span: its call hangs off the nearest bridged ancestor.
    let query = tracing::info_span!(target: "myapp::db", parent: &conn, "query").entered();
    drop((query, conn, stream, request));
}

#[test]
fn dependency_internals_stay_out_unless_asked_for() {
    let reg = monkit::Registry::new();
    let layer = monkit::bridge::MonkitLayer::with_registry(reg.clone());
    tracing::subscriber::with_default(
        tracing_subscriber::registry().with(layer),
        spans_of_a_request,
    );
    assert_eq!(names(&reg), ["myapp::db.query", "myapp::http.handle"]);
    let handle = reg.func_by_name("myapp::http.handle").unwrap();
    let query = reg.func_by_name("myapp::db.query").unwrap();
    assert_eq!(query.stats().parents, vec![handle.id()]);

    let all = monkit::Registry::new();
    let layer = monkit::bridge::MonkitLayer::with_registry(all.clone()).skip_targets(&[]);
    tracing::subscriber::with_default(
        tracing_subscriber::registry().with(layer),
        spans_of_a_request,
    );
    assert_eq!(
        names(&all),
        [
            "h2::proto::streams.poll_stream",
            "hyper::proto.conn",
            "myapp::db.query",
            "myapp::http.handle"
        ]
    );
}
