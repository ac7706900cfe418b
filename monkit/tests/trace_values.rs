//! Trace-level values: set in one span, read in another (another thread too), seen by
//! observers, gone when the trace's root ends.

use monkit::{FinishedSpan, Registry, SpanObserver};
use std::sync::{Arc, Mutex};

/// A span's name and its trace's values when it finished.
type Sighting = (String, Vec<(String, String)>);

/// Records every whole trace, and the trace's values at each span's finish.
#[derive(Default)]
struct Seen(Mutex<Vec<Sighting>>);

impl SpanObserver for Seen {
    fn chooses_traces(&self) -> bool {
        true
    }
    fn new_trace(&self, _root: &monkit::SpanStart) -> bool {
        true
    }
    fn finish(&self, span: &FinishedSpan) {
        self.0.lock().unwrap().push((
            span.start.name().to_owned(),
            monkit::trace::trace_values(span.start.trace_id),
        ));
    }
}

#[test]
fn values_of_the_whole_trace() {
    let reg = Registry::new();
    let seen = Arc::new(Seen::default());
    let _h = reg.observe(seen.clone());
    let scope = reg.scope("tv");
    let (root, child, other) = (scope.func("root"), scope.func("child"), scope.func("other"));
    root.task(|| {
        assert!(monkit::trace::trace_set("tenant", "acme"));
        let here = monkit::current_span().unwrap();
        // Another thread, parented explicitly: the same trace, the same values.
        std::thread::scope(|s| {
            s.spawn(|| {
                here.in_scope(|| {
                    child.task(|| {
                        assert_eq!(monkit::trace::trace_get("tenant").as_deref(), Some("acme"));
                        assert!(monkit::trace::trace_set("step", 2));
                    })
                })
            });
        });
        assert_eq!(monkit::trace::trace_get("step").as_deref(), Some("2"));
        // Bounded: past the limit, new keys are refused and old ones still change.
        for i in 2..monkit::trace::MAX_TRACE_VALUES {
            assert!(monkit::trace::trace_set(&format!("k{i}"), i));
        }
        assert!(!monkit::trace::trace_set("one_too_many", 1));
        assert!(monkit::trace::trace_set("tenant", "acme2"));
    });
    // Another trace sees none of it.
    other.task(|| assert_eq!(monkit::trace::trace_get("tenant"), None));
    assert!(
        !monkit::trace::trace_set("outside", 1),
        "no trace outside a span"
    );

    let seen = seen.0.lock().unwrap();
    let at = |name: &str| seen.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert!(at("child").contains(&("tenant".into(), "acme".into())));
    let root_vals = at("root");
    assert_eq!(root_vals.len(), monkit::trace::MAX_TRACE_VALUES);
    assert!(root_vals.contains(&("tenant".into(), "acme2".into())));
    assert!(at("other").is_empty());
}

#[test]
fn values_go_with_their_root() {
    let reg = Registry::new();
    let f = reg.scope("tv2").func("req");
    let mut id = 0;
    for _ in 0..1000 {
        f.task(|| {
            monkit::trace::trace_set("x", 1);
            id = monkit::current_span().unwrap().trace_id();
        });
        assert!(monkit::trace::trace_values(id).is_empty());
    }
}

/// Values of any type travel with the trace like strings, under the same bound.
#[test]
fn typed_values_share_the_trace_and_its_bound() {
    use monkit::trace::{trace_get_any, trace_set, trace_set_any, MAX_TRACE_VALUES};
    #[derive(Clone, Debug, PartialEq)]
    struct Deadline(std::time::Duration);
    let f = monkit::default_registry().scope("typed").func("root");
    f.task(|| {
        assert!(trace_set_any(
            "deadline",
            Deadline(std::time::Duration::from_millis(250))
        ));
        let here = monkit::current_span().unwrap();
        let seen =
            std::thread::spawn(move || here.in_scope(|| trace_get_any::<Deadline>("deadline")))
                .join()
                .unwrap();
        assert_eq!(seen, Some(Deadline(std::time::Duration::from_millis(250))));
        for i in 1..MAX_TRACE_VALUES {
            assert!(trace_set(&format!("k{i}"), i), "{i}");
        }
        assert!(!trace_set_any("one_too_many", 1u8), "past the bound");
    });
    // Gone with the trace.
    assert_eq!(monkit::trace::trace_get_any::<Deadline>("deadline"), None);
}
