//! Rendering cost with many functions: `/stats` text, `/metrics` and `/funcs/dot` for 1,000 and
//! 10,000 registered functions (each called once), to check that pages render well under a
//! second and grow linearly. Run with `cargo bench -p monkit --bench render`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use monkit::render;
use monkit::Registry;
use std::time::Duration;

fn registry(n: usize) -> Registry {
    let reg = Registry::new();
    for i in 0..n {
        let scope = reg.scope(&format!("svc{}", i % 50));
        let f = scope.func(&format!("handler_{i}"));
        f.task(|| ());
        if i.is_multiple_of(3) {
            f.guard().fail("timeout");
        }
    }
    reg
}

fn pages(c: &mut Criterion) {
    let mut g = c.benchmark_group("render");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    for n in [1_000usize, 10_000] {
        let reg = registry(n);
        eprintln!(
            "{n} functions: /stats {} B, /metrics {} B, /funcs/dot {} B",
            render::text::stats(&reg).len(),
            render::prometheus::render(&reg, false).len(),
            render::dot::dot(&render::funcs::read(&reg)).len()
        );
        g.bench_with_input(BenchmarkId::new("stats_text", n), &reg, |b, r| {
            b.iter(|| render::text::stats(r))
        });
        g.bench_with_input(BenchmarkId::new("metrics", n), &reg, |b, r| {
            b.iter(|| render::prometheus::render(r, false))
        });
        g.bench_with_input(BenchmarkId::new("funcs_dot", n), &reg, |b, r| {
            b.iter(|| render::dot::dot(&render::funcs::read(r)))
        });
    }
    g.finish();
}

criterion_group!(benches, pages);
criterion_main!(benches);
