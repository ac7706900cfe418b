//! Annotating a span that is not the current one: through its guard, or from another thread
//! through its `SpanRef`; the notes reach the recorded span, and an unrecorded one frees them.

#[test]
fn any_running_span_can_be_annotated() {
    let reg = monkit::default_registry();
    let outer = reg.scope("handle").func("outer");
    let inner = reg.scope("handle").func("inner");
    let ((), spans) = monkit::collect_trace(|| {
        let g = outer.guard();
        inner.task(|| g.annotate("seen_from", "inner"));
        drop(g);
    });
    let o = spans.iter().find(|s| s.start.name() == "outer").unwrap();
    assert_eq!(o.annotations, vec![("seen_from".into(), "inner".into())]);

    // An unrecorded call annotated from another thread gives its notes back when it ends.
    let before = monkit::trace::annotated_spans();
    outer.task(|| {
        let me = monkit::current_span().unwrap();
        let ok = std::thread::spawn(move || monkit::registry::annotate_span(me, "k", 1))
            .join()
            .unwrap();
        assert!(ok);
    });
    assert_eq!(
        monkit::trace::annotated_spans(),
        before,
        "notes left behind"
    );

    // A span that has finished is not annotated.
    let gone = outer.task(|| monkit::current_span().unwrap());
    assert!(!monkit::registry::annotate_span(gone, "late", 1));
    assert_eq!(monkit::trace::annotated_spans(), before);
}
