//! Exemplars: only recorded calls are noted, the latest per bucket, bounded.

use monkit::trace::Sampler;
use monkit::Registry;
use std::time::Duration;

#[test]
fn recorded_calls_only_the_latest_per_bucket() {
    let reg = Registry::new();
    reg.set_sampler(Sampler::Never);
    let f = reg.scope("ex").func("work");
    for _ in 0..100 {
        f.task(|| ());
    }
    let s = f.stats();
    assert!(
        s.success_exemplars.is_empty(),
        "unrecorded calls note nothing"
    );

    reg.set_sampler(Sampler::Always);
    let mut last = None;
    for _ in 0..3 {
        let g = f.guard();
        last = monkit::current_span();
        std::thread::sleep(Duration::from_millis(5));
        drop(g);
    }
    let failing = f.guard();
    failing.fail("boom");
    let s = f.stats();
    let last = last.unwrap();
    let newest = s
        .success_exemplars
        .iter()
        .max_by_key(|e| e.unix_nanos)
        .unwrap();
    assert_eq!(
        (newest.trace_id, newest.span_id),
        (last.trace_id(), last.span_id())
    );
    assert!(newest.value >= 0.005, "{newest:?}");
    assert_eq!(s.failure_exemplars.len(), 1);
    // One per bucket, and never more than the cap.
    for _ in 0..10_000 {
        f.task(|| ());
    }
    let s = f.stats();
    assert!(s.success_exemplars.len() <= monkit::stats::MAX_EXEMPLARS);
    let mut values: Vec<f64> = s.success_exemplars.iter().map(|e| e.value).collect();
    values.dedup();
    assert_eq!(values.len(), s.success_exemplars.len());
}
