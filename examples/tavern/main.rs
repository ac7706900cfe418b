//! tavern: a small in-process workflow service, instrumented the way services built on
//! Cadence or Temporal watch theirs — per-workflow and per-activity rate, failures by error
//! kind, latency and retries.
//!
//! ```text
//! cargo run --release --example tavern
//! curl -s -XPOST localhost:8081/greet -d '{"name": "ann", "age": 34}'
//! curl -s -XPOST localhost:8081/order -d '{"customer": "ann", "item": "ale"}'
//! curl -s localhost:8081/customers/ann
//! ```
//!
//! The API is axum on 127.0.0.1:8081 (`TAVERN_LISTEN`), HTTP/1.1 and HTTP/2, instrumented by
//! one `monkit_tower::ServerLayer`; the monitoring pages are on 127.0.0.1:9001
//! (`TAVERN_MONITOR`). Activities run on workers that take them from the service over gRPC
//! (`tavern.v1.Worker` on 127.0.0.1:50051, `TAVERN_GRPC`; `proto/tavern.proto`), as Cadence
//! and Temporal workers do: `TAVERN_WORKERS` of them (default 2) run inside this process,
//! and any gRPC client may poll too. A greeting's trace runs from the HTTP request through
//! the workflow and over gRPC into the worker's activity and its report back. `examples/tavern/prometheus.yml` scrapes it and
//! `examples/tavern/grafana-dashboard.json` charts it.
//!
//! Every workflow run is also counted as the function `workflow` tagged with its type and
//! domain (the `X-Tavern-Domain` header, `default` without it), so dashboards can split by
//! either. An order is a signal to the long-running `order` workflow: the signal carries the
//! caller's trace context and allowed baggage (`tenant`, `customer_tier`) in its header map,
//! and the child workflow it starts continues the caller's trace, so `/trace/json` of the
//! HTTP request shows the child workflow's activities too. With `OTEL_EXPORTER_OTLP_ENDPOINT`
//! set (and the other standard `OTEL_*` variables), sampled traces are exported over OTLP.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// The customer store, shared by activities.
#[derive(Default)]
struct Store {
    customers: Mutex<HashMap<String, Customer>>,
}

#[derive(Clone, Debug)]
struct Customer {
    age: u32,
    greeted: u32,
    orders: Vec<String>,
}

/// An order signal, with where to send the child workflow's result. `headers` carry the
/// sender's trace context and baggage, as a workflow engine's signal headers would.
struct Order {
    customer: String,
    item: String,
    domain: String,
    headers: HashMap<String, String>,
    reply: oneshot::Sender<Result<String, activities::ActivityError>>,
}

/// Baggage keys the tavern reads from callers and carries along; any other key is ignored.
const BAGGAGE: [&str; 2] = ["tenant", "customer_tier"];

/// Notes allowed baggage on the current span.
fn annotate_baggage(entries: &[(String, String)]) {
    for (k, v) in entries {
        monkit::annotate(&format!("baggage.{k}"), v);
    }
}

mod activities {
    //! Activities: the steps workflows run. Each is a `#[monkit::task]`, so its rate, errors
    //! by kind and latency are in `/stats`, `/funcs` and `/metrics`.
    use super::{Customer, Store};
    use std::sync::atomic::{AtomicU64, Ordering};

    pub static MON: monkit::Scope = monkit::scope!();

    #[derive(Debug, Clone, PartialEq)]
    pub enum ActivityError {
        UnknownCustomer,
        Underage,
        Transient,
        BadInput,
    }

    impl monkit::ErrorKind for ActivityError {
        fn error_kind(&self) -> &'static str {
            match self {
                ActivityError::UnknownCustomer => "unknown_customer",
                ActivityError::Underage => "underage",
                ActivityError::Transient => "transient",
                ActivityError::BadInput => "bad_input",
            }
        }
    }

    impl ActivityError {
        /// The error an error kind names (as a worker reports it back); an unknown kind is
        /// `bad_input`.
        pub fn from_kind(kind: &str) -> ActivityError {
            match kind {
                "unknown_customer" => ActivityError::UnknownCustomer,
                "underage" => ActivityError::Underage,
                "transient" => ActivityError::Transient,
                _ => ActivityError::BadInput,
            }
        }
    }

    impl std::fmt::Display for ActivityError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(monkit::ErrorKind::error_kind(self))
        }
    }

    static GREETINGS: AtomicU64 = AtomicU64::new(0);

    /// Greets a customer. Every third attempt fails transiently (a flaky downstream), which
    /// the workflow retries. Its argument is recorded on each span.
    #[monkit::task(args)]
    pub async fn greet_customer(name: &str) -> Result<String, ActivityError> {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        if GREETINGS.fetch_add(1, Ordering::Relaxed) % 3 == 2 {
            return Err(ActivityError::Transient);
        }
        Ok(format!("Welcome to the tavern, {name}!"))
    }

    /// Records the customer.
    #[monkit::task]
    pub async fn update_customer_store(
        store: &Store,
        name: &str,
        age: u32,
    ) -> Result<(), ActivityError> {
        if name.is_empty() {
            return Err(ActivityError::BadInput);
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        let mut c = store.customers.lock().unwrap();
        let e = c.entry(name.to_owned()).or_insert(Customer {
            age,
            greeted: 0,
            orders: Vec::new(),
        });
        e.age = age;
        e.greeted += 1;
        Ok(())
    }

    /// Looks a customer up.
    #[monkit::task]
    pub async fn find_customer(store: &Store, name: &str) -> Result<Customer, ActivityError> {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        store
            .customers
            .lock()
            .unwrap()
            .get(name)
            .cloned()
            .ok_or(ActivityError::UnknownCustomer)
    }

    /// Refuses customers under 18.
    #[monkit::task]
    pub async fn check_age(c: &Customer) -> Result<(), ActivityError> {
        tokio::time::sleep(std::time::Duration::from_micros(500)).await;
        if c.age < 18 {
            Err(ActivityError::Underage)
        } else {
            Ok(())
        }
    }

    /// Books the order.
    #[monkit::task]
    pub async fn record_order(store: &Store, name: &str, item: &str) -> Result<(), ActivityError> {
        let mut c = store.customers.lock().unwrap();
        let c = c.get_mut(name).ok_or(ActivityError::UnknownCustomer)?;
        c.orders.push(item.to_owned());
        Ok(())
    }

    /// Runs an activity with up to `attempts` tries; each retry marks the meter `retries`
    /// tagged with the activity's name.
    pub async fn with_retries<T, F, Fut>(
        activity: &str,
        attempts: u32,
        mut f: F,
    ) -> Result<T, ActivityError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ActivityError>>,
    {
        let mut n = 0;
        loop {
            match f().await {
                Err(ActivityError::Transient) if n + 1 < attempts => {
                    n += 1;
                    MON.meter_with("retries", &[("activity", activity)]).mark(1);
                    tokio::time::sleep(std::time::Duration::from_millis(2 << n)).await;
                }
                r => return r,
            }
        }
    }
}

mod workflows {
    //! Workflows: each run is a `#[monkit::task]` too.
    use super::activities::{self, ActivityError};
    use super::{Order, Store};
    use std::sync::Arc;
    use tokio::sync::mpsc;

    pub static MON: monkit::Scope = monkit::scope!();

    /// Runs `fut` as one run of a workflow of type `kind` in `domain`: the function
    /// `workflow{domain=..,type=..}`, made at run time and capped like every tag set.
    pub async fn run<T, E: monkit::ErrorKind>(
        kind: &str,
        domain: &str,
        fut: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        MON.func_with("workflow", &[("type", kind), ("domain", domain)])
            .future_classified(fut, |r: &Result<T, E>| match r {
                Ok(_) => monkit::Outcome::Ok,
                Err(e) => monkit::Outcome::Error(e.error_kind()),
            })
            .await
    }

    /// The `order` workflow continues as new after this many signals.
    pub const SIGNALS_PER_RUN: usize = 5;

    /// Greets a customer (the greeting runs on a worker, over gRPC) and records them.
    #[monkit::task]
    pub async fn greet(
        store: Arc<Store>,
        queue: Arc<super::worker::Queue>,
        name: String,
        age: u32,
    ) -> Result<String, ActivityError> {
        let msg = activities::with_retries("greet_customer", 3, || {
            queue.dispatch("greet_customer", &name)
        })
        .await?;
        log::info!(customer = name.as_str(); "greeted {name}");
        activities::update_customer_store(&store, &name, age).await?;
        log::info!(customer = name.as_str(), age; "stored {name}");
        Ok(msg)
    }

    /// The child workflow of one order: find the customer, check their age, book it.
    #[monkit::task]
    pub async fn process_order(
        store: Arc<Store>,
        customer: String,
        item: String,
    ) -> Result<String, ActivityError> {
        // Each step's log line carries the call's trace_id and span_id (the `log` bridge):
        // grep for a trace id and find every line of one order.
        let c = activities::find_customer(&store, &customer).await?;
        log::info!(customer = customer.as_str(); "found {customer}");
        if let Err(e) = activities::check_age(&c).await {
            log::warn!(customer = customer.as_str(), age = c.age; "refused {customer}: {e}");
            return Err(e);
        }
        activities::record_order(&store, &customer, &item).await?;
        log::info!(customer = customer.as_str(), item = item.as_str(); "booked {item} for {customer}");
        Ok(format!("{item} for {customer}"))
    }

    /// One run of the `order` workflow: handles signals until `SIGNALS_PER_RUN`, then returns
    /// so the caller continues as new. Returns false when the signal channel closed. Each
    /// signal's child workflow continues the trace the signal carries.
    #[monkit::task(tags(workflow_type = "order"))]
    pub async fn order_run(store: Arc<Store>, signals: &mut mpsc::Receiver<Order>) -> bool {
        use monkit::trace::InSpanExt;
        for _ in 0..SIGNALS_PER_RUN {
            let Some(o) = signals.recv().await else {
                return false;
            };
            MON.meter("order_signals").mark(1);
            let baggage = monkit::propagation::baggage(&o.headers, &super::BAGGAGE);
            let child = run("process_order", &o.domain, async {
                super::annotate_baggage(&baggage);
                process_order(store.clone(), o.customer, o.item).await
            });
            let r = match monkit::propagation::extract(&o.headers) {
                Some(caller) => child.in_span(caller.parent()).await,
                None => child.await,
            };
            let _ = o.reply.send(r);
        }
        MON.event("continued_as_new");
        true
    }

    /// The long-running `order` workflow: runs, continuing as new, until its channel closes.
    pub async fn order_workflow(store: Arc<Store>, mut signals: mpsc::Receiver<Order>) {
        while order_run(store.clone(), &mut signals).await {}
    }
}

mod worker;

/// What the API's handlers share.
struct App {
    store: Arc<Store>,
    queue: Arc<worker::Queue>,
    orders: mpsc::Sender<Order>,
}

type Reply = (StatusCode, Json<Value>);

fn status_of(e: &activities::ActivityError) -> StatusCode {
    match e {
        activities::ActivityError::UnknownCustomer => StatusCode::NOT_FOUND,
        activities::ActivityError::Underage => StatusCode::FORBIDDEN,
        activities::ActivityError::BadInput => StatusCode::BAD_REQUEST,
        activities::ActivityError::Transient => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn failed(e: &activities::ActivityError) -> Reply {
    (status_of(e), Json(json!({ "error": e.to_string() })))
}

/// The workflow domain of a request: the `X-Tavern-Domain` header, `default` without one.
fn domain_of(headers: &HeaderMap) -> String {
    headers
        .get("x-tavern-domain")
        .and_then(|v| v.to_str().ok())
        .filter(|d| !d.is_empty() && d.len() <= 64)
        .unwrap_or("default")
        .to_owned()
}

/// The body as JSON, or null: a bad body is the workflow's bad input, not a framework error.
fn input_of(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

async fn greet(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Reply {
    let input = input_of(&body);
    let name = input["name"].as_str().unwrap_or("").to_owned();
    let age = input["age"].as_u64().unwrap_or(0) as u32;
    let run = workflows::greet(app.store.clone(), app.queue.clone(), name, age);
    match workflows::run("greet", &domain_of(&headers), run).await {
        Ok(msg) => (StatusCode::OK, Json(json!({ "message": msg }))),
        Err(e) => failed(&e),
    }
}

async fn order(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Reply {
    let input = input_of(&body);
    let (tx, rx) = oneshot::channel();
    // The signal's headers: this request's trace context and its allowed baggage.
    let mut signal = HashMap::new();
    if let Some(here) = monkit::current_span() {
        monkit::propagation::inject(&mut signal, here, false);
    }
    let baggage = monkit::propagation::baggage(&headers, &BAGGAGE);
    let kept: Vec<(&str, &str)> = baggage
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    monkit::propagation::set_baggage(&mut signal, &kept);
    let order = Order {
        customer: input["customer"].as_str().unwrap_or("").to_owned(),
        item: input["item"].as_str().unwrap_or("ale").to_owned(),
        domain: domain_of(&headers),
        headers: signal,
        reply: tx,
    };
    let unavailable = |why: &str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": why })),
        )
    };
    if app.orders.send(order).await.is_err() {
        return unavailable("order workflow stopped");
    }
    match rx.await {
        Ok(Ok(msg)) => (StatusCode::OK, Json(json!({ "order": msg }))),
        Ok(Err(e)) => failed(&e),
        Err(_) => unavailable("dropped"),
    }
}

async fn customer(State(app): State<Arc<App>>, Path(name): Path<String>) -> Reply {
    match app.store.customers.lock().unwrap().get(&name) {
        Some(c) => (
            StatusCode::OK,
            Json(json!({ "name": name, "age": c.age, "greeted": c.greeted, "orders": c.orders })),
        ),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "unknown_customer" })),
        ),
    }
}

async fn no_route(uri: axum::http::Uri) -> Reply {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": format!("no route {}", uri.path()) })),
    )
}

/// The API: axum routes, one layer for monkit (route templates as span names, the caller's
/// trace and allowed baggage continued).
fn api(app: Arc<App>) -> Router {
    Router::new()
        .route("/greet", post(greet))
        .route("/order", post(order))
        .route("/customers/{name}", get(customer))
        .fallback(no_route)
        .with_state(app)
        .layer(
            monkit_tower::ServerLayer::new(monkit::default_registry())
                .routed(true)
                .with_baggage(&BAGGAGE),
        )
}

/// A listener on `addr` with the backlog `options` asks for, or the process ends saying why.
fn listen(what: &str, addr: SocketAddr, options: &monkit_http::ServeOptions) -> TcpListener {
    monkit_http::bind(addr, options)
        .and_then(TcpListener::from_std)
        .unwrap_or_else(|e| {
            eprintln!("tavern: cannot listen for {what} on {addr}: {e}");
            std::process::exit(1)
        })
}

#[tokio::main]
async fn main() {
    monkit_examples::init_logging();
    // The flight recorder is off by default (it costs each call about 56 instructions); the
    // example keeps the slow and failed calls of the last minutes for /trace/recent, unless
    // MONKIT_FLIGHT_RECORDER says otherwise.
    if std::env::var_os("MONKIT_FLIGHT_RECORDER").is_none() {
        monkit::flight::set_enabled(true);
    }
    let listen_addr = monkit_examples::addr_from_env("tavern", "TAVERN_LISTEN", "127.0.0.1:8081");
    let monitor = monkit_examples::addr_from_env("tavern", "TAVERN_MONITOR", "127.0.0.1:9001");
    let grpc_addr = monkit_examples::addr_from_env("tavern", "TAVERN_GRPC", "127.0.0.1:50051");
    // Zero is a count here: every worker then runs in another process.
    let workers: usize = match monkit::settings::Vars::env().string("TAVERN_WORKERS") {
        None => 2,
        Some(v) => v.trim().parse().unwrap_or_else(|_| {
            let e = monkit::settings::ConfigError::new("TAVERN_WORKERS", v, "a whole number");
            eprintln!("tavern: {e}");
            std::process::exit(2)
        }),
    };
    let registry = monkit::default_registry();
    monkit::env::register(registry);
    monkit::env::register_build(registry, env!("CARGO_PKG_VERSION"));
    monkit::env::register_tokio(registry, tokio::runtime::Handle::current());
    // Objectives: orders succeed (underage and unknown customers eat this budget) and the
    // order workflow's steps are quick; greetings succeed. `/slo/json` evaluates them,
    // `/slo/rules` is their Prometheus rule file.
    use monkit::slo::Objective;
    for o in [
        Objective::new("orders")
            .success_ratio(0.99)
            .latency(std::time::Duration::from_millis(250), 0.99)
            .matching(r"^tavern::workflows\.process_order$"),
        Objective::new("activities")
            .success_ratio(0.95)
            .matching(r"^tavern::activities\."),
        Objective::new("greetings")
            .success_ratio(0.999)
            .matching(r"^tavern::workflows\.greet$"),
    ] {
        registry
            .add_objective(o)
            .expect("tavern's objectives are well-formed");
    }
    // Whatever records through the `metrics` facade lands in this registry too.
    if monkit_metrics::Recorder::new(registry).install().is_err() {
        eprintln!("tavern: another metrics recorder is installed; facade metrics go there");
    }
    // Every stat pushed to Graphite when MONKIT_GRAPHITE_ADDR is set (host:2003), and
    // sampled traces to a tracing backend when OTEL_EXPORTER_OTLP_ENDPOINT is.
    let _graphite = monkit_examples::start_from_env(
        "tavern",
        "pushing stats to Graphite",
        monkit_graphite::Builder::from_env(),
        |b| b.install(registry),
    );
    let _otlp = monkit_examples::start_from_env(
        "tavern",
        "exporting sampled traces over OTLP",
        monkit_otlp::Builder::from_env(),
        |b| b.install(registry),
    );
    // And every stat over OTLP metrics, from the same standard variables.
    let _otlp_metrics = monkit_examples::start_from_env(
        "tavern",
        "exporting metrics over OTLP",
        monkit_otlp::MetricsBuilder::from_env(),
        |b| b.install(registry),
    );
    // And the log records (through the `log` bridge, with their spans' ids) over OTLP logs.
    let _otlp_logs = monkit_examples::start_from_env(
        "tavern",
        "exporting logs over OTLP",
        monkit_otlp::LogsBuilder::from_env(),
        |b| b.install(registry),
    );
    let options = monkit_http::ServeOptions::from_env().unwrap_or_else(|e| {
        eprintln!("tavern: {e}");
        std::process::exit(2)
    });
    let server = monkit_http::serve_with(registry.clone(), monitor, options.clone())
        .unwrap_or_else(|e| {
            eprintln!("tavern: cannot serve monitoring pages on {monitor}: {e}");
            std::process::exit(1)
        });
    let store = Arc::new(Store::default());
    let queue = Arc::new(worker::Queue::default());
    let (orders, signals) = mpsc::channel(64);
    tokio::spawn(workflows::order_workflow(store.clone(), signals));

    let api_listener = listen("the API", listen_addr, &options);
    let grpc_listener = listen("gRPC", grpc_addr, &options);
    let grpc_local = grpc_listener.local_addr().unwrap();
    println!(
        "tavern: API on http://{}",
        api_listener.local_addr().unwrap()
    );
    println!("tavern: gRPC (tavern.v1.Worker) on {grpc_local}");
    println!("tavern: monitoring on http://{}/", server.local_addr());
    for i in 0..workers {
        tokio::spawn(worker::run(grpc_local, format!("tavern-worker-{i}")));
    }

    // The gRPC service, served by the same accept loop (HTTP/2, with its limits).
    let grpc = tower_layer::Layer::layer(
        &monkit_tower::GrpcServerLayer::new(registry),
        worker::worker_server::WorkerServer::new(queue.clone()),
    );
    let grpc = hyper_util::service::TowerToHyperService::new(grpc);
    let grpc_options = options.clone();
    tokio::spawn(monkit_http::serve_connections(
        grpc_listener,
        grpc_options,
        move |_| grpc.clone(),
        monkit_http::until_shutdown(),
    ));

    let api = hyper_util::service::TowerToHyperService::new(api(Arc::new(App {
        store,
        queue,
        orders,
    })));
    monkit_http::serve_connections(
        api_listener,
        options,
        |_| api.clone(),
        monkit_http::until_shutdown(),
    )
    .await;
    // SIGTERM or Ctrl-C: every exporter has sent what it held; the rest stops as main returns.
    println!("tavern: stopped");
}
