//! `/ps`: the spans running now, sync and async, as trees, from a real server.

mod common;

use common::{find, get};
use std::sync::mpsc;
use std::time::Duration;

#[monkit::task]
fn outer_blocking(entered: mpsc::Sender<()>, release: mpsc::Receiver<()>) {
    inner_blocking(entered, release);
}

#[monkit::task]
fn inner_blocking(entered: mpsc::Sender<()>, release: mpsc::Receiver<()>) {
    entered.send(()).unwrap();
    release.recv().unwrap();
}

#[monkit::task]
async fn suspended(rx: tokio::sync::oneshot::Receiver<()>) {
    let _ = rx.await;
}

#[monkit::task]
fn panics_inside() {
    panic!("gone")
}

#[test]
fn running_spans_as_trees() {
    let srv = monkit_http::serve(monkit::default_registry().clone(), "127.0.0.1:0").unwrap();
    let base = format!("http://{}", srv.local_addr());

    let _ = std::panic::catch_unwind(panics_inside);

    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let t = std::thread::spawn(move || outer_blocking(entered_tx, release_rx));
    entered.recv().unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (wake, rx) = tokio::sync::oneshot::channel();
    let task = rt.spawn(suspended(rx));
    // Let it start and suspend.
    std::thread::sleep(Duration::from_millis(50));

    let v: Vec<serde_json::Value> = serde_json::from_str(&get(&format!("{base}/ps/json"))).unwrap();
    let outer = find(&v, "outer_blocking").expect("outer listed as a root");
    assert!(v.iter().any(|r| r["id"] == outer["id"]), "outer is a root");
    let inner = &outer["children"][0];
    assert_eq!(inner["func"]["name"], "inner_blocking");
    assert_eq!(inner["parent_id"], outer["id"]);
    assert_eq!(inner["trace_id"], outer["trace_id"]);
    assert!(inner["elapsed_ns"].as_u64().unwrap() > 0);
    let s = find(&v, "suspended").expect("suspended async task listed");
    assert_eq!(s["func"]["scope"], "ps");
    assert!(
        find(&v, "panics_inside").is_none(),
        "a panicked call is not running"
    );

    let text = get(&format!("{base}/ps"));
    let line = text
        .lines()
        .find(|l| l.contains("ps.inner_blocking"))
        .unwrap();
    assert!(line.starts_with("  ["), "children are indented: {text}");
    assert!(line.contains("(elapsed: "));

    release.send(()).unwrap();
    t.join().unwrap();
    wake.send(()).unwrap();
    rt.block_on(task).unwrap();
    let v: Vec<serde_json::Value> = serde_json::from_str(&get(&format!("{base}/ps/json"))).unwrap();
    for name in ["outer_blocking", "inner_blocking", "suspended"] {
        assert!(find(&v, name).is_none(), "{name} finished but listed");
    }
}
