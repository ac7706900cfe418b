//! Numbers print in their shortest exact form, and quantiles stay inside the window's range.

use monkit::Registry;
use proptest::prelude::*;
use std::time::Duration;

#[test]
fn durations_print_as_exact_decimals() {
    let reg = Registry::new();
    let d = reg.scope("num").duration_val("lat");
    for ns in [116_457u64, 720_204, 3_047_330] {
        d.observe(Duration::from_nanos(ns));
    }
    let text = monkit::render::text::stats(&reg);
    for want in [
        "min=0.000116457",
        "max=0.003047330",
        "sum=0.003883991",
        "rmin=0.000116457",
        "rmax=0.00304733",
    ] {
        let want = want.replace("0.003047330", "0.00304733");
        assert!(text.contains(&want), "{want} missing in:\n{text}");
    }
    assert!(!text.contains("0000000"), "float noise in:\n{text}");
    // The recent mean too is a whole number of nanoseconds: at most nine decimals.
    let ravg = text
        .lines()
        .find_map(|l| l.split("ravg=").nth(1))
        .expect("ravg");
    assert!(
        ravg.split('.').nth(1).is_none_or(|d| d.len() <= 9),
        "ravg={ravg} in:\n{text}"
    );

    let json = monkit::render::json::stats(&reg).to_string();
    assert!(json.contains("\"min\",0.000116457]"), "{json}");
    assert!(json.contains("\"sum\",0.003883991]"), "{json}");

    let prom = monkit::render::prometheus::render(&reg, false);
    assert!(
        prom.lines()
            .any(|l| l == "lat_seconds_sum{scope=\"num\"} 0.003883991"),
        "{prom}"
    );
    assert!(!prom.contains("0000000"), "float noise in:\n{prom}");
}

fn fields(reg: &Registry) -> std::collections::HashMap<String, f64> {
    let mut m = std::collections::HashMap::new();
    reg.stats(|_, f, v| {
        m.insert(f.to_owned(), v);
    });
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn quantiles_stay_in_the_window(values in prop::collection::vec(-1_000_000i64..1_000_000, 1..300)) {
        let reg = Registry::new();
        let v = reg.scope("p").int_val("v");
        for &x in &values {
            v.observe(x);
        }
        let f = fields(&reg);
        let (lo, hi) = (*values.iter().min().unwrap() as f64, *values.iter().max().unwrap() as f64);
        prop_assert_eq!(f["rmin"], lo);
        prop_assert_eq!(f["rmax"], hi);
        for q in ["r10", "r50", "r90", "r99", "ravg"] {
            prop_assert!(f[q] >= lo && f[q] <= hi, "{} = {} outside [{}, {}]", q, f[q], lo, hi);
        }
        for q in ["rmin", "r10", "r50", "r90", "r99", "rmax", "ravg"] {
            prop_assert_eq!(f[q].fract(), 0.0, "{} = {} is not an integer", q, f[q]);
        }
    }

    #[test]
    fn float_quantiles_stay_in_the_window(values in prop::collection::vec(-1e6f64..1e6, 1..300)) {
        let reg = Registry::new();
        let v = reg.scope("p").float_val("v");
        for &x in &values {
            v.observe(x);
        }
        let f = fields(&reg);
        let lo = values.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        prop_assert_eq!(f["rmin"], lo);
        prop_assert_eq!(f["rmax"], hi);
        for q in ["r10", "r50", "r90", "r99", "ravg"] {
            prop_assert!(f[q] >= lo && f[q] <= hi, "{} = {} outside [{}, {}]", q, f[q], lo, hi);
        }
    }
}
