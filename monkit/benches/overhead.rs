//! Per-call overhead of `#[monkit::task]` against a bare call, the hand-written "floor" (two
//! clock reads and the atomics the stats need), the `metrics` crate doing the same bookkeeping,
//! `tracing` with `tracing-subscriber`'s Registry and a minimal timing layer, and `fastrace`
//! recording a span. Run with `cargo bench -p monkit --bench overhead`; compare within one run.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use monkit::stats::Tick;
use std::hint::black_box;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

mod common;
use common::{
    bare, bare_async3, ft_node, mk_args, mk_async, mk_async3, mk_err, mk_events, mk_node, mk_sync,
    mk_tagged, per_span, poll_once, poll_thrice, true_floor,
};

// ---- the measured functions -------------------------------------------------------------

async fn bare_async(x: u64) -> u64 {
    black_box(x)
}

#[tracing::instrument(skip_all)]
#[inline(never)]
fn tr_sync(x: u64) -> u64 {
    black_box(x)
}

#[fastrace::trace]
#[inline(never)]
fn ft_sync(x: u64) -> u64 {
    black_box(x)
}

// ---- the floor: what the stats need, hand-written --------------------------------------

#[repr(align(128))]
struct FloorShared {
    current: AtomicI64,
    highwater: AtomicI64,
}

#[repr(align(128))]
struct FloorShard {
    count: AtomicU64,
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
    buckets: [AtomicU32; 64],
}

static FLOOR: FloorShared = FloorShared {
    current: AtomicI64::new(0),
    highwater: AtomicI64::new(0),
};
static FLOOR_SHARD: FloorShard = FloorShard {
    count: AtomicU64::new(0),
    sum: AtomicU64::new(0),
    min: AtomicU64::new(u64::MAX),
    max: AtomicU64::new(0),
    buckets: [const { AtomicU32::new(0) }; 64],
};

#[inline(never)]
fn floor(x: u64) -> u64 {
    let now = FLOOR.current.fetch_add(1, Ordering::Relaxed) + 1;
    if now > FLOOR.highwater.load(Ordering::Relaxed) {
        FLOOR.highwater.fetch_max(now, Ordering::Relaxed);
    }
    let t0 = Tick::now();
    let r = bare(x);
    let t1 = Tick::now();
    let ns = t0.nanos_until(t1);
    let s = &FLOOR_SHARD;
    s.count.fetch_add(1, Ordering::Relaxed);
    s.sum.fetch_add(ns, Ordering::Relaxed);
    if ns < s.min.load(Ordering::Relaxed) {
        s.min.fetch_min(ns, Ordering::Relaxed);
    }
    if ns > s.max.load(Ordering::Relaxed) {
        s.max.fetch_max(ns, Ordering::Relaxed);
    }
    s.buckets[(ns as usize) & 63].fetch_add(1, Ordering::Relaxed);
    FLOOR.current.fetch_sub(1, Ordering::Relaxed);
    r
}

// ---- metrics: counter + gauge + histogram handles, stored as the Prometheus exporter does -

struct AtomicRecorder;

impl metrics::Recorder for AtomicRecorder {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::from_arc(Arc::new(AtomicU64::new(0)))
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::from_arc(Arc::new(AtomicU64::new(0)))
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::from_arc(Arc::new(metrics_util::storage::AtomicBucket::<f64>::new()))
    }
}

struct MetricsHandles {
    calls: metrics::Counter,
    running: metrics::Gauge,
    latency: metrics::Histogram,
}

#[inline(never)]
fn with_metrics(h: &MetricsHandles, x: u64) -> u64 {
    h.calls.increment(1);
    h.running.increment(1.0);
    let t0 = Instant::now();
    let r = bare(x);
    h.latency.record(t0.elapsed().as_secs_f64());
    h.running.decrement(1.0);
    r
}

// ---- tracing: Registry + a minimal timing layer -----------------------------------------

mod timing {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Instant;
    use tracing::span::{Attributes, Id};
    use tracing::Subscriber;
    use tracing_subscriber::layer::{Context, Layer};
    use tracing_subscriber::registry::LookupSpan;

    pub static TOTAL_NS: AtomicU64 = AtomicU64::new(0);

    pub struct Timing;

    impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Timing {
        fn on_new_span(&self, _: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
            if let Some(span) = ctx.span(id) {
                span.extensions_mut().insert(Instant::now());
            }
        }
        fn on_close(&self, id: Id, ctx: Context<'_, S>) {
            if let Some(span) = ctx.span(&id) {
                if let Some(t0) = span.extensions().get::<Instant>() {
                    TOTAL_NS.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
                }
            }
        }
    }
}

struct NullReporter;
impl fastrace::collector::Reporter for NullReporter {
    fn report(&mut self, spans: Vec<fastrace::prelude::SpanRecord>) {
        black_box(spans);
    }
}

fn sync_calls(c: &mut Criterion) {
    let _ = metrics::set_global_recorder(AtomicRecorder);
    let handles = MetricsHandles {
        calls: metrics::counter!("calls"),
        running: metrics::gauge!("running"),
        latency: metrics::histogram!("latency"),
    };
    let subscriber = {
        use tracing_subscriber::layer::SubscriberExt;
        tracing_subscriber::registry().with(timing::Timing)
    };
    let dispatch = tracing::Dispatch::new(subscriber);
    fastrace::set_reporter(NullReporter, fastrace::collector::Config::default());

    let mut g = c.benchmark_group("sync_call");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    g.bench_function("bare", |b| b.iter(|| bare(black_box(1))));
    g.bench_function("two_clock_reads", |b| {
        b.iter(|| {
            let t0 = Tick::now();
            bare(black_box(1));
            t0.nanos_until(Tick::now())
        })
    });
    g.bench_function("floor", |b| b.iter(|| floor(black_box(1))));
    g.bench_function("true_floor", |b| b.iter(|| true_floor(black_box(1))));
    g.bench_function("monkit", |b| b.iter(|| mk_sync(black_box(1))));
    g.bench_function("monkit_tagged", |b| b.iter(|| mk_tagged(black_box(1))));
    // Two span events a call, unrecorded: what a call that notes events pays when nobody
    // keeps them.
    g.bench_function("monkit_events", |b| b.iter(|| mk_events(black_box(1))));
    // The flight recorder on (off by default), and 32 conditional watchers waiting on the
    // function (the most the pages allow): what looking costs the program.
    g.bench_function("monkit_flight_recorder", |b| {
        monkit::flight::set_enabled(true);
        b.iter(|| mk_sync(black_box(1)));
        monkit::flight::set_enabled(false);
    });
    g.bench_function("monkit_32_watchers", |b| {
        let watchers: Vec<_> = (0..32)
            .map(|_| {
                monkit::default_registry()
                    .watch(
                        monkit::trace::WatchSpec::regex("mk_sync$")
                            .min_duration(Duration::from_secs(3600)),
                    )
                    .unwrap()
            })
            .collect();
        b.iter(|| mk_sync(black_box(1)));
        drop(watchers);
    });
    {
        // A run-time tagged function whose handle is kept, and one looked up every call.
        static MON: monkit::Scope = monkit::scope!();
        let kept = MON.func_with("run", &[("workflow", "checkout")]);
        g.bench_function("monkit_func_with_kept", |b| {
            b.iter(|| kept.task(|| bare(black_box(1))))
        });
        g.bench_function("monkit_func_with_lookup", |b| {
            b.iter(|| {
                MON.func_with("run", &[("workflow", "checkout")])
                    .task(|| bare(black_box(1)))
            })
        });
    }
    g.bench_function("monkit_args", |b| b.iter(|| mk_args(black_box(1))));
    g.bench_function("metrics", |b| {
        b.iter(|| with_metrics(&handles, black_box(1)))
    });
    g.bench_function("tracing", |b| {
        tracing::dispatcher::with_default(&dispatch, || b.iter(|| tr_sync(black_box(1))))
    });
    g.bench_function("fastrace", |b| {
        b.iter_custom(|iters| {
            // A root per 10k spans, so the local collector's buffer stays bounded.
            let t0 = Instant::now();
            let mut left = iters;
            while left > 0 {
                let n = left.min(10_000);
                let root = fastrace::Span::root("root", fastrace::prelude::SpanContext::random());
                let _g = root.set_local_parent();
                for _ in 0..n {
                    ft_sync(black_box(1));
                }
                left -= n;
            }
            t0.elapsed()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("err_call");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    g.bench_function("floor", |b| b.iter(|| floor(black_box(1))));
    g.bench_function("true_floor", |b| b.iter(|| true_floor(black_box(1))));
    g.bench_function("monkit", |b| b.iter(|| mk_err(black_box(1))));
    g.finish();

    let mut g = c.benchmark_group("async_poll_once");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    g.bench_function("bare", |b| b.iter(|| poll_once(bare_async(black_box(1)))));
    g.bench_function("floor", |b| b.iter(|| floor(black_box(1))));
    g.bench_function("true_floor", |b| b.iter(|| true_floor(black_box(1))));
    g.bench_function("monkit", |b| b.iter(|| poll_once(mk_async(black_box(1)))));
    g.finish();

    // A future that waits twice: the span is made current and left at each of its 3 polls.
    let mut g = c.benchmark_group("async_poll_thrice");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    g.bench_function("bare", |b| {
        b.iter(|| poll_thrice(bare_async3(black_box(1))))
    });
    g.bench_function("monkit", |b| {
        b.iter(|| poll_thrice(mk_async3(black_box(1))))
    });
    g.finish();
}

/// Per-call time of each of `threads` threads calling the same function at once.
fn threaded(threads: usize, iters: u64, f: fn(u64) -> u64) -> Duration {
    let start = Arc::new(Barrier::new(threads));
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                let start = start.clone();
                s.spawn(move || {
                    start.wait();
                    let t0 = Instant::now();
                    for i in 0..iters {
                        f(black_box(i));
                    }
                    t0.elapsed()
                })
            })
            .collect();
        // The slowest thread's time: every thread made `iters` calls in it.
        hs.into_iter().map(|h| h.join().unwrap()).max().unwrap()
    })
}

/// Per-call time of two threads taking strict turns at calling `f`: each call starts on the
/// other thread than the last, as sequential requests do on a multi-threaded runtime. The
/// hand-over itself (a spin on one shared counter) is in every case, `bare` included.
fn taking_turns(iters: u64, f: fn(u64) -> u64) -> Duration {
    use std::sync::atomic::{AtomicU64, Ordering};
    let turn = AtomicU64::new(0);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for me in 0..2u64 {
            let turn = &turn;
            s.spawn(move || loop {
                let t = turn.load(Ordering::Acquire);
                if t >= 2 * iters {
                    return;
                }
                if t % 2 == me {
                    f(black_box(t));
                    turn.store(t + 1, Ordering::Release);
                } else {
                    std::hint::spin_loop();
                }
            });
        }
    });
    t0.elapsed() / 2
}

#[monkit::task]
#[inline(never)]
fn mk_turns(x: u64) -> u64 {
    black_box(x)
}

#[monkit::task]
#[inline(never)]
fn mk_turns_exact(x: u64) -> u64 {
    black_box(x)
}

fn contention(c: &mut Criterion) {
    let mut g = c.benchmark_group("taking_turns");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    g.bench_function("bare", |b| b.iter_custom(|iters| taking_turns(iters, bare)));
    g.bench_function("monkit", |b| {
        b.iter_custom(|iters| taking_turns(iters, mk_turns))
    });
    // One shared count per function instead (`set_exact_highwater(true)`).
    monkit::stats::set_exact_highwater(true);
    g.bench_function("monkit_exact", |b| {
        b.iter_custom(|iters| taking_turns(iters, mk_turns_exact))
    });
    monkit::stats::set_exact_highwater(false);
    g.finish();
    let hw = |name: &str| {
        monkit::default_registry()
            .func_by_name(&format!("overhead.{name}"))
            .map(|f| f.stats().highwater)
    };
    eprintln!(
        "taking turns: highwater {:?} (exact mode {:?})",
        hw("mk_turns"),
        hw("mk_turns_exact")
    );

    let mut g = c.benchmark_group("one_hot_fn");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    for threads in [1usize, 2, 4, 8] {
        g.bench_with_input(BenchmarkId::new("monkit", threads), &threads, |b, &t| {
            b.iter_custom(|iters| threaded(t, iters, mk_sync))
        });
        g.bench_with_input(BenchmarkId::new("bare", threads), &threads, |b, &t| {
            b.iter_custom(|iters| threaded(t, iters, bare))
        });
        if threads <= 2 {
            g.bench_with_input(BenchmarkId::new("floor", threads), &threads, |b, &t| {
                b.iter_custom(|iters| threaded(t, iters, floor))
            });
        }
    }
    // Every trace sampled for export, handed to an observer that drops it: what threads
    // exporting at once share (nothing, but the observer's own queue).
    struct Drop_;
    impl monkit::SpanObserver for Drop_ {
        fn finish(&self, span: &monkit::FinishedSpan) {
            black_box(span);
        }
    }
    let reg = monkit::default_registry();
    let handle = reg.observe(Arc::new(Drop_));
    reg.set_sampler(monkit::trace::Sampler::Always);
    for threads in [1usize, 2] {
        g.bench_with_input(BenchmarkId::new("exported", threads), &threads, |b, &t| {
            b.iter_custom(|iters| threaded(t, iters, mk_sync))
        });
    }
    reg.set_sampler(monkit::trace::Sampler::Never);
    handle.remove();
    g.finish();
}

#[monkit::task]
fn bench_never_called() {}

/// The trace-capture feature's cost: none armed, one armed on another function, and a span
/// that is recorded (per span, batches of 1,000), next to fastrace recording a span.
fn capture(c: &mut Criterion) {
    fastrace::set_reporter(NullReporter, fastrace::collector::Config::default());
    let mut g = c.benchmark_group("capture");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    g.bench_function("no_watcher", |b| b.iter(|| mk_sync(black_box(1))));
    {
        let _w = monkit::default_registry()
            .watch(monkit::trace::WatchSpec::regex("bench_never_called"))
            .unwrap();
        g.bench_function("watcher_on_other_fn", |b| b.iter(|| mk_sync(black_box(1))));
    }
    g.bench_function("recorded_span", |b| {
        b.iter_custom(|iters| {
            let t0 = Instant::now();
            let mut left = iters;
            while left > 0 {
                let n = left.min(1000);
                let (_, spans) = monkit::collect_trace(|| {
                    for _ in 0..n {
                        mk_sync(black_box(1));
                    }
                });
                black_box(spans);
                left -= n;
            }
            t0.elapsed()
        })
    });
    g.bench_function("fastrace_span", |b| {
        b.iter_custom(|iters| {
            let t0 = Instant::now();
            let mut left = iters;
            while left > 0 {
                let n = left.min(1000);
                let root = fastrace::Span::root("root", fastrace::prelude::SpanContext::random());
                {
                    let _g = root.set_local_parent();
                    for _ in 0..n {
                        ft_sync(black_box(1));
                    }
                }
                drop(root);
                left -= n;
            }
            fastrace::flush();
            t0.elapsed()
        })
    });
    g.finish();
}

#[monkit::task]
async fn mk_leaf(x: u64) -> u64 {
    tokio::task::yield_now().await;
    black_box(x)
}

#[monkit::task]
async fn mk_fan_out(fan: u64) -> u64 {
    use monkit::trace::InSpanExt as _;
    let parent = monkit::current_span();
    let tasks: Vec<_> = (0..fan)
        .map(|i| tokio::spawn(mk_leaf(i).in_span_opt(parent)))
        .collect();
    let mut n = 1;
    for t in tasks {
        n += t.await.map_or(0, |_| 1);
    }
    n
}

#[fastrace::trace]
async fn ft_leaf(x: u64) -> u64 {
    tokio::task::yield_now().await;
    black_box(x)
}

#[fastrace::trace]
async fn ft_fan_out(fan: u64) -> u64 {
    let tasks: Vec<_> = (0..fan).map(|i| tokio::spawn(ft_leaf(i))).collect();
    let mut n = 1;
    for t in tasks {
        n += t.await.map_or(0, |_| 1);
    }
    n
}

/// A recorded span's cost in each shape of tree, beside fastrace recording the same tree:
/// chains 3 and 8 deep, a wide fan-out (one root, 2 levels of 16), and async children spawned
/// across a multi-thread tokio runtime. Time per span, in batches of about 1,000 spans.
fn shapes(c: &mut Criterion) {
    fastrace::set_reporter(NullReporter, fastrace::collector::Config::default());
    let mut g = c.benchmark_group("shapes");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    for (label, depth, fan) in [("nested3", 3, 1), ("nested8", 8, 1), ("wide", 3, 16)] {
        g.bench_function(format!("monkit_{label}"), |b| {
            b.iter_custom(|iters| {
                per_span(iters, || {
                    let (n, spans) = monkit::collect_trace(|| {
                        let mut n = 0;
                        while n < 1000 {
                            n += mk_node(black_box(depth), black_box(fan));
                        }
                        n
                    });
                    black_box(spans);
                    n
                })
            })
        });
        g.bench_function(format!("fastrace_{label}"), |b| {
            b.iter_custom(|iters| {
                per_span(iters, || {
                    let root =
                        fastrace::Span::root("root", fastrace::prelude::SpanContext::random());
                    let mut n = 0;
                    {
                        let _g = root.set_local_parent();
                        while n < 1000 {
                            n += ft_node(black_box(depth), black_box(fan));
                        }
                    }
                    drop(root);
                    // The collector's work is part of recording, as `collect_trace`'s is.
                    fastrace::flush();
                    n
                })
            })
        });
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    g.bench_function("monkit_async_fan_out", |b| {
        b.iter_custom(|iters| {
            per_span(iters, || {
                let (n, spans) = rt.block_on(monkit::collect_trace_async(mk_fan_out(64)));
                black_box(spans);
                n
            })
        })
    });
    g.bench_function("fastrace_async_fan_out", |b| {
        b.iter_custom(|iters| {
            per_span(iters, || {
                use fastrace::future::FutureExt as _;
                let root = fastrace::Span::root("root", fastrace::prelude::SpanContext::random());
                let n = rt.block_on(ft_fan_out(64).in_span(root));
                fastrace::flush();
                n
            })
        })
    });
    g.bench_function("bare_async_fan_out", |b| {
        b.iter_custom(|iters| {
            per_span(iters, || {
                rt.block_on(async {
                    let tasks: Vec<_> = (0..64u64)
                        .map(|i| {
                            tokio::spawn(async move {
                                tokio::task::yield_now().await;
                                black_box(i)
                            })
                        })
                        .collect();
                    let mut n = 1;
                    for t in tasks {
                        n += t.await.map_or(0, |_| 1);
                    }
                    n
                })
            })
        })
    });
    g.finish();
}

/// The tracing bridge: a `tracing` span through a plain Registry, and through a Registry with
/// the monkit layer (with the `tracing` feature: `cargo bench -p monkit --features tracing`).
#[cfg(not(feature = "tracing"))]
fn bridge(_: &mut Criterion) {}

#[cfg(feature = "tracing")]
fn bridge(c: &mut Criterion) {
    use tracing_subscriber::layer::SubscriberExt;
    let plain = tracing::Dispatch::new(tracing_subscriber::registry());
    let bridged = tracing::Dispatch::new(
        tracing_subscriber::registry().with(monkit::bridge::MonkitLayer::new()),
    );
    let mut g = c.benchmark_group("tracing_bridge");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    g.bench_function("registry", |b| {
        tracing::dispatcher::with_default(&plain, || b.iter(|| tr_sync(black_box(1))))
    });
    g.bench_function("registry_with_monkit", |b| {
        tracing::dispatcher::with_default(&bridged, || b.iter(|| tr_sync(black_box(1))))
    });
    g.finish();
}

criterion_group!(benches, sync_calls, contention, capture, shapes, bridge);
criterion_main!(benches);
