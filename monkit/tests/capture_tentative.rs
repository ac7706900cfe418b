//! Capture by condition with the flight recorder off: while a watcher waits, every call of
//! the watched functions is recorded tentatively, bounded, and nothing once it has its call.
//! Its own test binary, since the recorder's switch is the process's.

use monkit::trace::{Captured, WatchSpec};
use monkit::Registry;
use std::time::Duration;

fn capture(w: monkit::trace::TraceWatcher) -> Vec<monkit::FinishedSpan> {
    match w.wait(Duration::from_secs(10)) {
        Some(Captured::Trace(t)) => t,
        other => panic!("no capture: {other:?}"),
    }
}

/// Counts the spans a registry's observers are given.
struct Count(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl monkit::SpanObserver for Count {
    fn finish(&self, _: &monkit::FinishedSpan) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn tentative_recording_is_bounded_and_stops() {
    use std::sync::atomic::Ordering::Relaxed;
    monkit::flight::set_enabled(false);
    let reg = Registry::new();
    reg.set_sampler(monkit::trace::Sampler::Never);
    let outer = reg.scope("bound").func("outer");
    let w = reg
        .watch(WatchSpec::regex("bound.outer").min_duration(Duration::from_secs(3600)))
        .unwrap();
    let before = monkit::trace::tentative_skipped();
    // More calls open at once (nested) than one watcher records: the rest are skipped and
    // counted. Guards end innermost first.
    let guards: Vec<_> = (0..monkit::trace::MAX_TENTATIVE + 8)
        .map(|_| outer.guard())
        .collect();
    for g in guards.into_iter().rev() {
        drop(g);
    }
    assert!(monkit::trace::tentative_skipped() >= before + 8);
    assert!(monkit::current_span().is_none());
    drop(w);
    // With the watcher gone, calls are not recorded at all.
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let _o = reg.observe(std::sync::Arc::new(Count(seen.clone())));
    outer.task(|| ());
    assert_eq!(seen.load(Relaxed), 0);
    // And a new conditional watcher records (and delivers) again: nothing was left pending.
    let w = reg
        .watch(WatchSpec::regex("bound.outer").min_duration(Duration::from_millis(1)))
        .unwrap();
    outer.task(|| std::thread::sleep(Duration::from_millis(2)));
    assert_eq!(capture(w).len(), 1);
    assert!(seen.load(Relaxed) >= 1, "the capture was recorded");
}
