//! The recent window rotates (its own test binary: the window length is process-wide).

use monkit::Registry;
use std::time::Duration;

#[test]
fn recent_window_rotates() {
    // Epochs of 10-20 ms (a power of two of clock ticks): values from two epochs ago fall out of the quantiles but not out of
    // the cumulative fields.
    monkit::stats::set_recent_window(Duration::from_millis(10));
    let w = monkit::stats::recent_window();
    assert!(
        w >= Duration::from_millis(10) && w < Duration::from_millis(21),
        "{w:?}"
    );
    let reg = Registry::new();
    let iv = reg.scope("rot").int_val("v");
    for _ in 0..100 {
        iv.observe(1_000_000);
    }
    std::thread::sleep(Duration::from_millis(60));
    for _ in 0..10 {
        iv.observe(5);
    }
    let s = iv.snapshot();
    assert_eq!(s.count, 110);
    assert_eq!(s.max, 1_000_000.0);
    assert_eq!(s.window_count(), 10);
    assert_eq!(s.quantile(1.0).map(f64::round), Some(5.0));
    std::thread::sleep(Duration::from_millis(60));
    let s = iv.snapshot();
    assert_eq!(s.window_count(), 0);
    assert_eq!(s.quantile(0.5), None);
    monkit::stats::set_recent_window(Duration::from_secs(34));
}
