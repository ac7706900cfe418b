//! `#[tracing::instrument]` and `#[monkit::task]` mixed: stats, parents and captured traces.

use monkit::default_registry;

#[tracing::instrument]
fn traced_outer(n: u64) {
    task_middle(n);
}

#[monkit::task]
fn task_middle(n: u64) {
    let _ = traced_inner(n);
}

#[tracing::instrument(err)]
fn traced_inner(n: u64) -> Result<u64, String> {
    if n.is_multiple_of(2) {
        Err(format!("{n} is even"))
    } else {
        Ok(n)
    }
}

fn func(name: &str) -> monkit::Func {
    default_registry()
        .func_by_name(name)
        .unwrap_or_else(|| panic!("{name} missing: {:?}", default_registry().funcs()))
}

#[test]
fn tracing_spans_are_monkit_functions() {
    use tracing_subscriber::layer::SubscriberExt;
    let subscriber = tracing_subscriber::registry().with(monkit::bridge::MonkitLayer::new());
    tracing::subscriber::set_global_default(subscriber).unwrap();

    for n in 0..10 {
        traced_outer(n);
    }
    let outer = func("bridge.traced_outer");
    let middle = func("bridge.task_middle");
    let inner = func("bridge.traced_inner");
    let (o, m, i) = (outer.stats(), middle.stats(), inner.stats());
    assert_eq!((o.successes, o.current, o.entry), (10, 0, true));
    assert_eq!(
        m.parents,
        vec![outer.id()],
        "a task inside a tracing span is its child"
    );
    assert_eq!(
        i.parents,
        vec![middle.id()],
        "a tracing span inside a task is its child"
    );
    assert_eq!((i.successes, i.errors_total), (5, 5));
    assert_eq!(i.errors, vec![("error", 5)]);
    assert!(o.success_times.count == 10 && o.success_times.min > 0.0);
    assert!(outer.location().unwrap().file.ends_with("bridge.rs"));

    let ((), spans) = monkit::collect_trace(|| traced_outer(3));
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let (so, sm, si) = (&spans[0], &spans[1], &spans[2]);
    assert_eq!(
        (so.start.name(), sm.start.name(), si.start.name()),
        ("traced_outer", "task_middle", "traced_inner")
    );
    assert_eq!(sm.start.parent_id, Some(so.start.span_id));
    assert_eq!(si.start.parent_id, Some(sm.start.span_id));
    assert!(spans.iter().all(|s| s.start.trace_id == so.start.trace_id));

    // Across threads: a span entered on another thread keeps its parent.
    let span = tracing::info_span!("handoff");
    std::thread::spawn(move || {
        let _e = span.enter();
        task_middle(1);
    })
    .join()
    .unwrap();
    let handoff = func("bridge.handoff");
    assert!(middle.stats().parents.contains(&handoff.id()));
    assert_eq!(handoff.stats().successes, 1);
}
