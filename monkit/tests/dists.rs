//! Distribution accuracy against a sorted reference, and the recent window.

use monkit::Registry;
use std::time::Duration;

/// Nearest-rank quantile of sorted values.
fn reference(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
    sorted[rank - 1]
}

fn check(values: &mut [f64], snap: &monkit::stats::Snapshot) {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    for q in [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0] {
        let want = reference(values, q);
        let got = snap.quantile(q).unwrap();
        let err = if want == 0.0 {
            got.abs()
        } else {
            ((got - want) / want).abs()
        };
        assert!(err <= 0.01, "q{q}: got {got}, want {want}, error {err}");
    }
    assert_eq!(snap.min, values[0]);
    assert_eq!(snap.max, *values.last().unwrap());
    assert_eq!(snap.count, values.len() as u64);
}

/// xorshift, so the test needs no rand crate and is reproducible.
fn rng(seed: &mut u64) -> f64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    (*seed >> 11) as f64 / (1u64 << 53) as f64
}

#[test]
fn quantiles_within_one_percent() {
    let reg = Registry::new();
    let scope = reg.scope("acc");
    let mut seed = 0x9e3779b97f4a7c15;

    // Log-normal-ish latencies in ns, 1 µs .. 1 s.
    let d = scope.duration_val("lat");
    let mut vals = Vec::new();
    for _ in 0..50_000 {
        let ns = (1e3 * 1e6f64.powf(rng(&mut seed))).round();
        vals.push(ns);
        d.observe(Duration::from_nanos(ns as u64));
    }
    check(&mut vals, &d.snapshot());

    // Integers, negative and positive.
    let iv = scope.int_val("ints");
    let mut vals = Vec::new();
    for _ in 0..50_000 {
        let v = ((rng(&mut seed) - 0.3) * 1e6).round();
        vals.push(v);
        iv.observe(v as i64);
    }
    check(&mut vals, &iv.snapshot());

    // Small floats.
    let fv = scope.float_val("floats");
    let mut vals = Vec::new();
    for _ in 0..50_000 {
        let v = 1e-3 + rng(&mut seed) * 2e-3;
        vals.push(v);
        fv.observe(v);
    }
    let s = fv.snapshot();
    let exact: f64 = vals.iter().sum();
    assert!((s.sum - exact).abs() < 1e-9, "{} vs {exact}", s.sum);
    check(&mut vals, &s);
}

#[test]
fn small_integers_are_exact() {
    let reg = Registry::new();
    let iv = reg.scope("small").int_val("v");
    for v in [1, 2, 3, 4, 5] {
        iv.observe(v);
    }
    let s = iv.snapshot();
    assert_eq!(s.quantile(0.5).map(f64::round), Some(3.0));
    assert_eq!((s.min, s.max, s.sum, s.recent), (1.0, 5.0, 15.0, 5.0));
}
