//! The `metrics` facade's three macros through monkit's recorder and through
//! `metrics-exporter-prometheus`'s, in one run: with the handles kept, and looked up on every
//! call (as `counter!(..).increment(1)` in a hot loop does). Run with
//! `cargo bench -p monkit-metrics --bench recorder`.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

/// One round of the three macros, looked up now.
fn lookup_per_call(i: u64) {
    metrics::counter!("bench.requests", "route" => "/users").increment(1);
    metrics::gauge!("bench.in_flight", "route" => "/users").set(i as f64);
    metrics::histogram!("bench.latency_seconds", "route" => "/users").record(i as f64 * 1e-6);
}

fn bench(c: &mut Criterion) {
    let monkit_reg = monkit::Registry::new();
    let monkit = monkit_metrics::Recorder::new(&monkit_reg);
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let recorders: [(&str, &dyn metrics::Recorder); 2] =
        [("monkit", &monkit), ("prometheus", &prometheus)];
    let mut g = c.benchmark_group("metrics_facade");
    for (name, rec) in recorders {
        metrics::with_local_recorder(rec, || {
            let counter = metrics::counter!("bench.requests", "route" => "/users");
            let gauge = metrics::gauge!("bench.in_flight", "route" => "/users");
            let hist = metrics::histogram!("bench.latency_seconds", "route" => "/users");
            let mut i = 0u64;
            g.bench_function(format!("{name}/handles_kept"), |b| {
                b.iter(|| {
                    i += 1;
                    counter.increment(1);
                    gauge.set(black_box(i) as f64);
                    hist.record(black_box(i) as f64 * 1e-6);
                })
            });
            g.bench_function(format!("{name}/lookup_per_call"), |b| {
                b.iter(|| {
                    i += 1;
                    lookup_per_call(black_box(i));
                })
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
