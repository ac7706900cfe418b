//! The instrumented loop's cost with no exporter, and with the exporter sending to a healthy
//! collector, to one that is down, one answering 500 and one that is slow — at 1% and at 100%
//! sampling. Run with `cargo bench -p monkit-zipkin --bench export`; compare within one run.

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[monkit::task]
#[inline(never)]
fn work(i: u64) -> u64 {
    black_box(i)
}

fn loop_cost(c: &mut Criterion) {
    let mut g = c.benchmark_group("export");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    monkit::default_registry().set_sampler(monkit::export::Sampler::Never);
    g.bench_function("off", |b| b.iter(|| work(black_box(1))));

    let healthy = common::receiver();
    let failing = common::receiver();
    failing.mode.store(common::FAIL_500, Ordering::Relaxed);
    let slow = common::receiver();
    slow.mode.store(common::SLOW, Ordering::Relaxed);
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/api/v2/spans", l.local_addr().unwrap())
    };
    for (rate, tag) in [(0.01, "1pct"), (1.0, "all")] {
        for (name, url) in [
            ("healthy", healthy.url()),
            ("down", down.clone()),
            ("500", failing.url()),
            ("slow", slow.url()),
        ] {
            let exporter = monkit_zipkin::Builder::new(&url)
                .sample_rate(rate)
                .timeout(Duration::from_millis(200))
                .retries(2, Duration::from_millis(10), Duration::from_millis(50))
                .install(monkit::default_registry())
                .unwrap();
            g.bench_function(format!("{name}_{tag}"), |b| b.iter(|| work(black_box(1))));
            exporter.shutdown(Duration::from_millis(100));
        }
    }
    g.finish();
}

criterion_group!(benches, loop_cost);
criterion_main!(benches);
