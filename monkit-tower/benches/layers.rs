//! Per-request cost of instrumenting an axum handler, in one run: no layer; monkit's
//! `ServerLayer`; tower-http's `TraceLayer` with a `tracing-subscriber` Registry as the global
//! subscriber (spans made and closed, nothing printed); and a `metrics` middleware recording
//! count, in-flight and latency per route into `metrics-exporter-prometheus`'s recorder.
//! Requests go through the router in-process (`oneshot`), so what differs is the layer.
//! Run with `cargo bench -p monkit-tower --features axum --bench layers`; with
//! `-- --instructions` it counts instructions per request of each variant under valgrind
//! instead (exact where the timings move +-25% run to run).

use monkit_testsupport::icount;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, Criterion};
use std::hint::black_box;
use tower::ServiceExt;

async fn user() -> &'static str {
    "ann"
}

fn routes() -> Router {
    Router::new().route("/users/{id}", get(user))
}

/// The middleware a team writes for `metrics`: count, in-flight and latency per route.
async fn metrics_mw(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let start = std::time::Instant::now();
    let inflight = metrics::gauge!("http_requests_in_flight", "route" => route.clone());
    inflight.increment(1.0);
    let resp = next.run(req).await;
    inflight.decrement(1.0);
    let status = resp.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    resp
}

/// A layer that does nothing.
#[derive(Clone)]
struct PassThrough<S>(S);

impl<S, R> tower::Service<R> for PassThrough<S>
where
    S: tower::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;
    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }
    fn call(&mut self, req: R) -> S::Future {
        self.0.call(req)
    }
}

/// The peers' globals: a tracing Registry, and the Prometheus recorder.
fn install_peers() {
    tracing::subscriber::set_global_default(tracing_subscriber::registry()).unwrap();
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    std::mem::forget(recorder.handle());
    metrics::set_global_recorder(recorder).unwrap();
}

const VARIANTS: [&str; 5] = [
    "none",
    "pass_through",
    "monkit",
    "tower_http_trace",
    "metrics_middleware",
];

fn variant(name: &str) -> Router {
    match name {
        "none" => routes(),
        // What any layer costs in axum (a clone per request, a boxed future): the floor the
        // others are measured above.
        "pass_through" => routes().layer(tower::layer::layer_fn(PassThrough)),
        "monkit" => routes().layer(monkit_tower::ServerLayer::new(monkit::default_registry())),
        "tower_http_trace" => routes().layer(tower_http::trace::TraceLayer::new_for_http()),
        "metrics_middleware" => routes().layer(axum::middleware::from_fn(metrics_mw)),
        _ => panic!("unknown variant {name}"),
    }
}

fn one(rt: &tokio::runtime::Runtime, app: &Router) -> axum::http::StatusCode {
    let req = Request::get("/users/42").body(Body::empty()).unwrap();
    rt.block_on(app.clone().oneshot(req)).unwrap().status()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    install_peers();
    let mut g = c.benchmark_group("server_layer");
    for name in VARIANTS {
        let app = variant(name);
        g.bench_function(name, |b| b.iter(|| black_box(one(&rt, &app))));
    }
    g.finish();
}

/// The requests counted: callgrind collects only inside this function.
#[inline(never)]
fn measured(rt: &tokio::runtime::Runtime, app: &Router, n: u64) {
    for _ in 0..n {
        black_box(one(rt, app));
    }
}

/// Instructions valgrind counted for `n` requests through `variant`.
fn count(variant: &str, n: u64) -> u64 {
    icount::count("MONKIT_LAYER_LOOP", &format!("{variant}:{n}"))
}

fn instructions() {
    if !icount::have_valgrind() {
        return;
    }
    const N: u64 = 2_000;
    let per: Vec<(&str, f64)> = VARIANTS
        .iter()
        .map(|v| (*v, (count(v, 2 * N) - count(v, N)) as f64 / N as f64))
        .collect();
    let none = per[0].1;
    let floor = per[1].1;
    println!(
        "{:<20} {:>12} {:>12} {:>16}",
        "variant", "instr/req", "over none", "over pass-through"
    );
    for (v, p) in &per {
        println!("{v:<20} {p:>12.0} {:>12.0} {:>16.0}", p - none, p - floor);
    }
}

fn main() {
    if let Ok(spec) = std::env::var("MONKIT_LAYER_LOOP") {
        let (v, n) = spec.split_once(':').unwrap();
        let rt = runtime();
        install_peers();
        let app = variant(v);
        for _ in 0..1000 {
            black_box(one(&rt, &app));
        }
        measured(&rt, &app, n.parse().unwrap());
        return;
    }
    if std::env::args().any(|a| a == "--instructions") {
        instructions();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

criterion_group!(benches, bench);
