//! Prometheus counters of a function never go backwards, even read while calls finish (a dip
//! reads as a process restart to `rate()`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn calls_total(reg: &monkit::Registry) -> f64 {
    let text = monkit::render::prometheus::render(reg, false);
    text.lines()
        .find_map(|l| l.strip_prefix("monkit_function_calls_total{name=\"f\",scope=\"c\"} "))
        .map_or(0.0, |v| v.parse().unwrap())
}

#[test]
fn calls_total_only_grows() {
    let reg = monkit::Registry::new();
    let f = reg.scope("c").func("f");
    // A running call is current, not yet a finished call.
    let g = f.guard();
    assert_eq!(calls_total(&reg), 0.0);
    drop(g);
    assert_eq!(calls_total(&reg), 1.0);

    let stop = Arc::new(AtomicBool::new(false));
    let caller = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                f.task(|| std::hint::black_box(1));
            }
        })
    };
    let mut last = 0.0;
    for _ in 0..2000 {
        let now = calls_total(&reg);
        assert!(now >= last, "calls_total went from {last} to {now}");
        last = now;
    }
    stop.store(true, Ordering::Relaxed);
    caller.join().unwrap();
}
