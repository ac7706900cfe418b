//! A registry's counters as the tests read them: the `total` field of one measurement.
//!

/// The `total` of measurement `name` in `reg` (0 when it has none).
pub fn total(reg: &monkit::Registry, name: &str) -> f64 {
    let mut n = 0.0;
    reg.stats(|k, f, v| {
        if f == "total" && k.measurement == name {
            n = v;
        }
    });
    n
}
