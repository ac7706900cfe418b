//! Capture by condition: a watcher that waits for the next call that was slow enough or ended
//! a given way gets that call's whole tree, not the next call; what it records while waiting is
//! bounded; and once it has its call, nothing more is recorded.

use monkit::trace::{Captured, OutcomeMatch, WatchSpec};
use monkit::{Outcome, Registry};
use std::time::Duration;

fn capture(w: monkit::trace::TraceWatcher) -> Vec<monkit::FinishedSpan> {
    match w.wait(Duration::from_secs(10)) {
        Some(Captured::Trace(t)) => t,
        other => panic!("no capture: {other:?}"),
    }
}

#[test]
fn the_next_slow_call_not_the_next_call() {
    let reg = Registry::new();
    let scope = reg.scope("cond");
    let (work, step) = (scope.func("work"), scope.func("step"));
    let w = reg
        .watch(WatchSpec::regex("cond.work").min_duration(Duration::from_millis(30)))
        .unwrap();
    let run = |ms: u64, tag: u64| {
        work.task(|| {
            step.task(|| monkit::annotate("tag", tag));
            std::thread::sleep(Duration::from_millis(ms));
        })
    };
    for i in 0..5 {
        run(1, i); // fast: looked at as they end, not taken
    }
    let t = std::thread::spawn(move || capture(w));
    std::thread::sleep(Duration::from_millis(50));
    run(40, 99); // the slow one
    run(40, 100); // another slow one: the watcher has its call already
    let spans = t.join().unwrap();
    assert_eq!(spans[0].start.func.full_name(), "cond.work");
    let lasted = spans[0].finish_unix_ns - spans[0].start.start_unix_ns;
    assert!(lasted >= 30_000_000, "{lasted} ns");
    let step_span = spans
        .iter()
        .find(|s| s.start.func.full_name() == "cond.step")
        .expect("the whole tree");
    assert_eq!(step_span.start.parent_id, Some(spans[0].start.span_id));
    assert_eq!(
        step_span.annotations,
        vec![("tag".to_owned(), "99".to_owned())]
    );
    assert_eq!(spans.len(), 2);
}

#[test]
fn the_next_failure_of_a_kind() {
    let reg = Registry::new();
    let f = reg.scope("cond").func("io");
    let w = reg
        .watch(WatchSpec::regex("cond.io").outcome(OutcomeMatch::Kind("timeout".into())))
        .unwrap();
    let fail = |kind: &'static str| {
        let g = f.guard();
        g.annotate("kind", kind);
        g.fail(kind);
    };
    f.task(|| ());
    fail("refused");
    fail("timeout");
    let spans = capture(w);
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].outcome, Outcome::Error("timeout"));

    // Any failure, by a predicate too.
    let w = reg
        .watch(
            WatchSpec::regex("cond.io")
                .outcome(OutcomeMatch::Failure)
                .matching(|s| {
                    s.annotations
                        .iter()
                        .any(|(k, v)| k == "kind" && v == "late")
                }),
        )
        .unwrap();
    fail("early");
    f.task(|| ());
    fail("late");
    let spans = capture(w);
    assert_eq!(
        spans[0].annotations,
        vec![("kind".to_owned(), "late".to_owned())]
    );
}

/// Counts the spans a registry's observers are given.
struct Count(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl monkit::SpanObserver for Count {
    fn finish(&self, _: &monkit::FinishedSpan) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn a_waiting_watcher_records_nothing_and_looks_back_first() {
    use std::sync::atomic::Ordering::Relaxed;
    let reg = Registry::new();
    reg.set_sampler(monkit::trace::Sampler::Never);
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let _o = reg.observe(std::sync::Arc::new(Count(seen.clone())));
    let outer = reg.scope("look").func("outer");
    let inner = reg.scope("look").func("inner");
    // A watcher for a call slower than any: while it waits, calls are not recorded at all
    // (the flight recorder looks at each as it ends).
    let w = reg
        .watch(WatchSpec::regex("look.outer").min_duration(Duration::from_secs(3600)))
        .unwrap();
    for _ in 0..1000 {
        outer.task(|| inner.task(|| ()));
    }
    assert_eq!(seen.load(Relaxed), 0);
    assert!(w.wait(Duration::from_millis(10)).is_none());
    drop(w);
    // With the recorder on, what already happened is held.
    monkit::flight::set_enabled(true);
    // A slow call that already happened answers a new watcher at once, with its subtree.
    outer.task(|| {
        inner.task(|| monkit::annotate("step", "slow"));
        std::thread::sleep(Duration::from_millis(20));
    });
    let w = reg
        .watch(WatchSpec::regex("look.outer").min_duration(Duration::from_millis(15)))
        .unwrap();
    let spans = match w.wait(Duration::ZERO) {
        Some(Captured::Trace(t)) => t,
        other => panic!("not at once: {other:?}"),
    };
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[1].start.parent_id, Some(spans[0].start.span_id));
    assert_eq!(
        spans[1].annotations,
        vec![("step".to_owned(), "slow".to_owned())]
    );
    assert_eq!(seen.load(Relaxed), 0, "nothing was recorded for it");
}

#[test]
fn a_watcher_armed_before_its_function_exists() {
    let reg = Registry::new();
    let w = reg
        .watch(
            WatchSpec::regex("late\\.born")
                .with_preselect(false)
                .min_duration(Duration::from_millis(5)),
        )
        .unwrap();
    let f = reg.scope("late").func("born");
    f.task(|| ());
    f.task(|| ());
    f.task(|| std::thread::sleep(Duration::from_millis(8)));
    let spans = capture(w);
    assert_eq!(spans[0].start.full_name(), "late.born");
    assert!(spans[0].duration_ns() >= 5_000_000);
}

#[test]
fn the_slow_call_of_one_trace() {
    let reg = Registry::new();
    let scope = reg.scope("trc");
    let (root, op) = (scope.func("root"), scope.func("op"));
    let g = root.guard();
    let trace = monkit::current_span().unwrap().trace_id();
    // No regex: every function is looked at for calls of this trace.
    let w = reg
        .watch(WatchSpec::trace(trace).min_duration(Duration::from_millis(5)))
        .unwrap();
    op.task(|| ());
    op.task(|| std::thread::sleep(Duration::from_millis(8)));
    drop(g);
    let spans = capture(w);
    assert_eq!(spans[0].start.full_name(), "trc.op");
    assert_eq!(spans[0].start.trace_id, trace);
    assert!(spans[0].duration_ns() >= 5_000_000);
}
