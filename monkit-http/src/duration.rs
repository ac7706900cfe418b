//! Durations as people write them in query strings and environment variables.

use std::time::Duration;

/// `250ms`, `10s`, `2m`, `1h`, or plain seconds (`1.5`); positive, and cut to `cap`.
pub(crate) fn parse(v: &str, cap: Duration) -> Option<Duration> {
    let v = v.trim();
    let (num, unit) = match v.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => v.split_at(i),
        None => (v, "s"),
    };
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs.min(cap.as_secs_f64())))
}
