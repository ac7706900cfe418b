//! Every span exported: what the calling thread pays per span when every span of a tree is
//! sampled and handed to a background thread, as an exporter does, in five shapes (chains 3
//! and 8 deep, a wide fan-out of 1 + 16 + 256, a root per call, one root over 1,000 calls),
//! beside its peers doing the same:
//!
//! - monkit: every trace sampled, an observer that clones each finished span onto a bounded
//!   lock-free queue (what `monkit-exporter` does) that a background thread drains;
//! - fastrace: its own background reporter (the default collector thread) with a reporter that
//!   drops; nothing is flushed on the measuring thread;
//! - the OpenTelemetry SDK: `opentelemetry_sdk`'s batch span processor (its own thread, a
//!   queue large enough not to drop) and an exporter that drops, spans nested through
//!   `Tracer::in_span`.
//!
//! Also the OpenTelemetry SDK's metrics (counter + up-down counter + histogram per call)
//! beside a monkit `#[task]`, which keeps the same three and more.

mod common;

use common::{bare, ft_node, mk_node, mk_sync, per_span};
use criterion::{criterion_group, criterion_main, Criterion};
use crossbeam_queue::ArrayQueue;
use monkit::{FinishedSpan, SpanObserver};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Queues each finished span for a background thread, as an exporter does.
struct Queue {
    q: ArrayQueue<FinishedSpan>,
    dropped: AtomicU64,
}

impl SpanObserver for Queue {
    fn observes_starts(&self) -> bool {
        false
    }

    fn finish(&self, span: &FinishedSpan) {
        if self.q.push(span.clone()).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct NullReporter;
impl fastrace::collector::Reporter for NullReporter {
    fn report(&mut self, spans: Vec<fastrace::prelude::SpanRecord>) {
        black_box(spans);
    }
}

#[derive(Debug)]
struct DropExporter;
impl opentelemetry_sdk::trace::SpanExporter for DropExporter {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

fn ot_node<T: opentelemetry::trace::Tracer>(t: &T, depth: u32, fan: u32) -> u64
where
    T::Span: Send + Sync + 'static,
{
    t.in_span("node", |_| {
        let mut n = 1;
        if depth > 1 {
            for _ in 0..fan {
                n += ot_node(t, depth - 1, fan);
            }
        }
        black_box(n)
    })
}

/// (label, depth, fan-out): chains, a wide tree, a root per call (each call its own trace)
/// and one root over 1,000 calls (a batch job's loop).
const SHAPES: [(&str, u32, u32); 5] = [
    ("nested3", 3, 1),
    ("nested8", 8, 1),
    ("wide", 3, 16),
    ("root_per_call", 1, 1),
    ("thousand_under_one_root", 2, 1000),
];

fn exported(c: &mut Criterion) {
    let mut g = c.benchmark_group("exported");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));

    // monkit, every span queued for a draining thread.
    let queue = Arc::new(Queue {
        q: ArrayQueue::new(1 << 16),
        dropped: AtomicU64::new(0),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let drain = {
        let (q, stop) = (queue.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                while let Some(s) = q.q.pop() {
                    black_box(s);
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    let reg = monkit::default_registry();
    let handle = reg.observe(queue.clone());
    reg.set_sampler(monkit::trace::Sampler::Always);
    for (label, depth, fan) in SHAPES {
        g.bench_function(format!("monkit_{label}"), |b| {
            b.iter_custom(|iters| per_span(iters, || mk_node(black_box(depth), black_box(fan))))
        });
    }
    reg.set_sampler(monkit::trace::Sampler::Never);
    handle.remove();
    stop.store(true, Ordering::Relaxed);
    let _ = drain.join();
    let dropped = queue.dropped.load(Ordering::Relaxed);
    eprintln!("monkit spans dropped by a full queue: {dropped}");

    // fastrace with its background reporter; no flush here.
    fastrace::set_reporter(NullReporter, fastrace::collector::Config::default());
    for (label, depth, fan) in SHAPES {
        g.bench_function(format!("fastrace_{label}"), |b| {
            b.iter_custom(|iters| {
                per_span(iters, || {
                    let root =
                        fastrace::Span::root("root", fastrace::prelude::SpanContext::random());
                    let _g = root.set_local_parent();
                    // The root is the tree's top node: the same tree as monkit's.
                    let mut n = 1;
                    if depth > 1 {
                        for _ in 0..fan {
                            n += ft_node(black_box(depth - 1), black_box(fan));
                        }
                    }
                    n
                })
            })
        });
    }

    // The OpenTelemetry SDK: batch span processor, an exporter that drops.
    let processor = opentelemetry_sdk::trace::BatchSpanProcessor::builder(DropExporter)
        .with_batch_config(
            opentelemetry_sdk::trace::BatchConfigBuilder::default()
                .with_max_queue_size(1 << 16)
                .with_max_export_batch_size(512)
                .with_scheduled_delay(Duration::from_millis(20))
                .build(),
        )
        .build();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_span_processor(processor)
        .build();
    let tracer = provider.tracer("bench");
    for (label, depth, fan) in SHAPES {
        g.bench_function(format!("otel_sdk_{label}"), |b| {
            b.iter_custom(|iters| per_span(iters, || ot_node(&tracer, depth, fan)))
        });
    }
    let _ = provider.shutdown();
    g.finish();
}

/// The OpenTelemetry SDK's metrics for one call (a counter, an up-down counter of the running
/// calls, a histogram of seconds) beside a `#[task]`.
fn metrics(c: &mut Criterion) {
    let mut g = c.benchmark_group("metrics_sdk");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_reader(
            opentelemetry_sdk::metrics::PeriodicReader::builder(
                opentelemetry_sdk::metrics::InMemoryMetricExporter::default(),
            )
            .with_interval(Duration::from_secs(3600))
            .build(),
        )
        .build();
    let meter = provider.meter("bench");
    let calls = meter.u64_counter("calls").build();
    let running = meter.i64_up_down_counter("running").build();
    let seconds = meter.f64_histogram("duration").build();
    g.bench_function("otel_sdk", |b| {
        b.iter(|| {
            running.add(1, &[]);
            let t0 = Instant::now();
            let r = bare(black_box(1));
            seconds.record(t0.elapsed().as_secs_f64(), &[]);
            calls.add(1, &[]);
            running.add(-1, &[]);
            r
        })
    });
    g.bench_function("monkit", |b| b.iter(|| mk_sync(black_box(1))));
    g.finish();
}

criterion_group!(benches, exported, metrics);
criterion_main!(benches);
