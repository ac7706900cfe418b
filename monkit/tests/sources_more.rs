//! Meter and counter resets, raw values and registry-wide transformers.

use monkit::{stats::Aggregate, stats::SeriesKey, Registry};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Events marked while another thread resets are counted exactly once: in some reset's
/// return value or in the final total.
#[test]
fn meter_resets_lose_and_double_nothing() {
    let reg = Registry::new();
    let m = reg.scope("r").meter("events");
    let stop = Arc::new(AtomicBool::new(false));
    let per_thread = 300_000u64;
    let taken = std::thread::scope(|s| {
        let markers: Vec<_> = (0..2)
            .map(|_| {
                let m = m.clone();
                s.spawn(move || {
                    for _ in 0..per_thread {
                        m.mark(1);
                    }
                })
            })
            .collect();
        let resetter = {
            let (m, stop) = (m.clone(), stop.clone());
            s.spawn(move || {
                let mut taken = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    taken += m.reset();
                }
                taken
            })
        };
        for t in markers {
            t.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        resetter.join().unwrap()
    });
    assert_eq!(taken + m.total(), 2 * per_thread);
    let before = m.total();
    assert_eq!(m.set_total(7), before);
    assert_eq!(m.total(), 7);
    m.mark(3);
    assert_eq!(m.total(), 10);
    assert!(m.rate() >= 0.0);
}

#[test]
fn counter_reset() {
    let c = Registry::new().scope("r").counter("c");
    c.inc(5);
    c.dec(9);
    assert_eq!(c.reset(), -4);
    assert_eq!((c.value(), c.high(), c.low()), (0, 0, 0));
    c.inc(2);
    assert_eq!(c.high(), 2);
}

fn stats(reg: &Registry) -> Vec<(String, String, f64)> {
    let mut v = Vec::new();
    reg.stats(|k, f, x| v.push((k.to_string(), f.to_owned(), x)));
    v
}

#[test]
fn raw_values_report_what_was_asked() {
    let reg = Registry::new();
    let q = reg.scope("r").raw_val_with(
        "depth",
        &[("queue", "a")],
        &[
            Aggregate::Count,
            Aggregate::Min,
            Aggregate::Average,
            Aggregate::Recent,
        ],
    );
    assert!(stats(&reg).is_empty(), "nothing before the first value");
    for v in [4.0, -2.0, 10.0, f64::NAN] {
        q.observe(v);
    }
    assert_eq!(
        stats(&reg),
        vec![
            ("depth,queue=a,scope=r".to_owned(), "count".to_owned(), 3.0),
            ("depth,queue=a,scope=r".to_owned(), "min".to_owned(), -2.0),
            ("depth,queue=a,scope=r".to_owned(), "avg".to_owned(), 4.0),
            (
                "depth,queue=a,scope=r".to_owned(),
                "recent".to_owned(),
                10.0
            ),
        ]
    );
    let prom = monkit::render::prometheus::render(&reg, false);
    assert!(prom.contains("# TYPE depth_count_total counter"), "{prom}");
    assert!(
        prom.contains("depth_min{queue=\"a\",scope=\"r\"} -2"),
        "{prom}"
    );
    // Same name, same tags: the same value, whatever aggregates a later caller names.
    let again = reg
        .scope("r")
        .raw_val_with("depth", &[("queue", "a")], &[Aggregate::Max]);
    assert_eq!(again.fields().len(), 4);
}

#[test]
fn transformers_apply_in_order_to_the_line_format_only() {
    let reg = Registry::new();
    reg.scope("t").meter("hits").mark(4);
    reg.add_transformer(Arc::new(
        |k: &SeriesKey, f: &str, v: f64, next: &mut dyn FnMut(&SeriesKey, &str, f64)| {
            if f != "rate" {
                next(k, f, v * 10.0)
            }
        },
    ));
    reg.add_transformer(Arc::new(
        |k: &SeriesKey, f: &str, v: f64, next: &mut dyn FnMut(&SeriesKey, &str, f64)| {
            let mut k = k.clone();
            k.tags.set("env", "prod");
            next(&k, f, v);
            next(&k, &format!("{f}_twice"), v * 2.0);
        },
    ));
    assert_eq!(
        stats(&reg),
        vec![
            ("hits,env=prod,scope=t".to_owned(), "total".to_owned(), 40.0),
            (
                "hits,env=prod,scope=t".to_owned(),
                "total_twice".to_owned(),
                80.0
            ),
        ]
    );
    let prom = monkit::render::prometheus::render(&reg, false);
    assert!(prom.contains("hits_total{scope=\"t\"} 4"), "{prom}");
}
