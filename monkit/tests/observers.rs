//! Span observers: several at once on one registry, beside a watcher, all see the same spans;
//! and two private registries share nothing.

use monkit::{trace::Captured, trace::WatchSpec, FinishedSpan, Registry, SpanObserver, SpanStart};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

#[derive(Default)]
struct Seen {
    started: Mutex<Vec<u64>>,
    finished: Mutex<Vec<FinishedSpan>>,
}

impl SpanObserver for Seen {
    fn start(&self, span: &SpanStart) {
        self.started.lock().push(span.span_id);
    }
    fn finish(&self, span: &FinishedSpan) {
        self.finished.lock().push(span.clone());
    }
}

fn ids(spans: &[FinishedSpan], trace: u128) -> Vec<u64> {
    let mut v: Vec<u64> = spans
        .iter()
        .filter(|s| s.start.trace_id == trace)
        .map(|s| s.start.span_id)
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn two_observers_and_a_watcher_see_the_same_spans() {
    let reg = Registry::new();
    let s = reg.scope("obs");
    let (root, mid, leaf) = (s.func("root"), s.func("mid"), s.func("leaf"));
    let a = Arc::new(Seen::default());
    let b = Arc::new(Seen::default());
    let ha = reg.observe(a.clone());
    let hb = reg.observe(b.clone());
    assert_eq!(reg.observers(), 2);
    let w = reg.watch(WatchSpec::regex("^obs\\.root$")).unwrap();
    std::thread::spawn(move || {
        root.task(|| {
            mid.task(|| {
                leaf.task(|| ());
                leaf.task(|| ());
            })
        })
    })
    .join()
    .unwrap();
    let Some(Captured::Trace(captured)) = w.wait(Duration::from_secs(10)) else {
        panic!("the watcher captured nothing");
    };
    assert_eq!(captured.len(), 4);
    let trace = captured[0].start.trace_id;
    let want = ids(&captured, trace);
    assert_eq!(ids(&a.finished.lock(), trace), want);
    assert_eq!(ids(&b.finished.lock(), trace), want);
    let mut started = a.started.lock().clone();
    started.sort_unstable();
    assert_eq!(started, want, "start hooks saw every span too");
    assert_eq!(
        a.finished
            .lock()
            .iter()
            .map(|s| s.start.full_name())
            .collect::<Vec<_>>(),
        b.finished
            .lock()
            .iter()
            .map(|s| s.start.full_name())
            .collect::<Vec<_>>()
    );

    // Removing one leaves the other in place.
    ha.remove();
    assert_eq!(reg.observers(), 1);
    let ((), collected) = reg.collect_trace(|| leaf.task(|| ()));
    assert_eq!(collected.len(), 1);
    assert_eq!(a.finished.lock().len(), 4);
    assert_eq!(b.finished.lock().len(), 5);
    hb.remove();
    assert_eq!(reg.observers(), 0);
}

/// An observer choosing traces records every span of the traces it picks, unsampled ones
/// included.
#[test]
fn an_observer_can_choose_whole_traces() {
    struct Every(Mutex<Vec<FinishedSpan>>);
    impl SpanObserver for Every {
        fn chooses_traces(&self) -> bool {
            true
        }
        fn new_trace(&self, root: &SpanStart) -> bool {
            root.name() == "chosen"
        }
        fn finish(&self, span: &FinishedSpan) {
            self.0.lock().push(span.clone());
        }
    }
    let reg = Registry::new();
    let s = reg.scope("choose");
    let (chosen, other, child) = (s.func("chosen"), s.func("other"), s.func("child"));
    let every = Arc::new(Every(Mutex::new(Vec::new())));
    let h = reg.observe(every.clone());
    chosen.task(|| child.task(|| ()));
    other.task(|| child.task(|| ()));
    let names: Vec<&str> = every.0.lock().iter().map(|s| s.start.name()).collect();
    assert_eq!(names, ["child", "chosen"]);
    assert!(every.0.lock().iter().all(|s| !s.start.sampled));
    h.remove();
    chosen.task(|| ());
    assert_eq!(every.0.lock().len(), 2);
}

#[test]
fn private_registries_share_nothing() {
    let (r1, r2) = (Registry::new(), Registry::new());
    r1.scope("only_one").meter("m").mark(3);
    r1.scope("shared_name").counter("c").inc(1);
    r2.scope("shared_name").counter("c").inc(5);
    let f1 = r1.scope("shared_name").func("work");
    f1.task(|| ());
    assert_eq!(r1.scopes().len(), 2);
    assert_eq!(r2.scopes().len(), 1);
    assert!(r2.funcs().is_empty());
    let value = |r: &Registry| {
        let mut v = None;
        r.stats(|k, f, x| {
            if k.measurement == "c" && f == "value" {
                v = Some(x);
            }
        });
        v
    };
    assert_eq!((value(&r1), value(&r2)), (Some(1.0), Some(5.0)));

    // Refusals are counted where they happen.
    let s = r1.scope("card");
    for i in 0..(monkit::registry::MAX_TAG_SETS + 3) {
        s.meter_with("m", &[("i", &i.to_string())]).mark(1);
    }
    let refused = |r: &Registry| {
        let mut n = 0.0;
        r.stats(|k, f, x| {
            if k.measurement == "cardinality_refused" && f == "total" {
                n += x;
            }
        });
        n
    };
    assert_eq!((refused(&r1), refused(&r2)), (3.0, 0.0));

    // A watcher of one registry neither matches nor is armed in the other.
    assert!(matches!(
        r2.watch(WatchSpec::regex("shared_name\\.work")),
        Err(monkit::trace::WatchError::MatchesNothing { .. })
    ));
    let w = r1.watch(WatchSpec::regex("shared_name\\.work")).unwrap();
    assert_eq!((r1.armed_watchers(), r2.armed_watchers()), (1, 0));
    let f2 = r2.scope("shared_name").func("work");
    f2.task(|| ());
    assert!(
        w.wait(Duration::from_millis(50)).is_none(),
        "r2's call woke r1's watcher"
    );
    std::thread::spawn(move || f1.task(|| ())).join().unwrap();
    assert!(matches!(w.wait(Duration::from_secs(10)), Some(Captured::Trace(t)) if t.len() == 1));
    assert_eq!(r1.armed_watchers(), 0);
}

/// Panics in every hook.
struct Faulty;

impl SpanObserver for Faulty {
    fn chooses_traces(&self) -> bool {
        true
    }
    fn new_trace(&self, _: &SpanStart) -> bool {
        panic!("observer bug in new_trace")
    }
    fn start(&self, _: &SpanStart) {
        panic!("observer bug in start")
    }
    fn finish(&self, _: &FinishedSpan) {
        panic!("observer bug in finish")
    }
}

#[monkit::task]
fn survives_a_bad_observer(x: u32) -> u32 {
    x + 1
}

/// An observer that panics costs the program nothing but a count: the instrumented call
/// returns its value, is counted as a success, and the other observers still see its span.
#[test]
fn a_panicking_observer_is_caught_and_counted() {
    let reg = monkit::default_registry();
    let before = reg.observer_panics();
    let seen = Arc::new(Seen::default());
    let good = reg.observe(seen.clone());
    let bad = reg.observe(Arc::new(Faulty));
    let (out, spans) = monkit::collect_trace(|| survives_a_bad_observer(1));
    bad.remove();
    good.remove();
    assert_eq!(out, 2);
    assert_eq!(
        spans.len(),
        1,
        "the collector (another observer) still saw it"
    );
    assert!(seen
        .finished
        .lock()
        .iter()
        .any(|s| s.start.name() == "survives_a_bad_observer"));
    // Faulty's start and finish panicked (its new_trace only sees traces begun under no
    // context, and collect_trace's is begun by the collector).
    assert!(
        reg.observer_panics() >= before + 2,
        "{}",
        reg.observer_panics()
    );
    let f = reg
        .func_by_name("observers.survives_a_bad_observer")
        .unwrap()
        .stats();
    assert_eq!((f.successes, f.panics), (1, 0));
}

/// A caller's sampled flag decides only under a parent-based sampler: `Never` and
/// `Fraction` decide a continued trace themselves, by its id, whatever the caller sent.
#[test]
fn a_caller_cannot_force_sampling() {
    use monkit::trace::Sampler;
    let reg = monkit::Registry::new();
    let f = reg.scope("s").func("served");
    let sampled_in = |trace: u128| {
        let parent = monkit::SpanRef::remote(trace, 0x42, true);
        parent.in_scope(|| f.task(|| monkit::current_span().unwrap().is_sampled()))
    };
    // The default keeps the caller's flag (so a sampled trace stays sampled downstream).
    assert!(sampled_in(7));
    reg.set_sampler(Sampler::Never);
    assert!(
        !sampled_in(7),
        "always_off exported a caller's sampled trace"
    );
    reg.set_sampler(Sampler::ParentBased(0.0));
    assert!(sampled_in(7));
    // A ratio decides by the trace id's low half, the same in every process.
    reg.set_sampler(Sampler::Fraction(0.5));
    let low = 1u128 << 64 | 1;
    let high = 1u128 << 64 | u128::from(u64::MAX - 1);
    assert!(sampled_in(low) && !sampled_in(high));
    // And samples a caller's unsampled trace when the id says so.
    let parent = monkit::SpanRef::remote(low, 0x42, false);
    assert!(parent.in_scope(|| f.task(|| monkit::current_span().unwrap().is_sampled())));
}
