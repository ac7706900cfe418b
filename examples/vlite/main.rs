//! vlite: a small instrumented HTTP reverse proxy.
//!
//! ```text
//! cargo run --release --example vlite [TARGET_URL]
//! ```
//!
//! The proxy listens on 127.0.0.1:8080 (`VLITE_LISTEN`) and forwards every request to
//! `TARGET_URL` (default: a tiny built-in upstream, so it works with no network). The
//! monitoring pages are on http://127.0.0.1:9000/ (`VLITE_MONITOR`).
//!
//! Incoming requests continue the caller's trace (W3C `traceparent` or B3); the proxy call
//! propagates it upstream. With `MONKIT_ZIPKIN_ENDPOINT` set (and optionally
//! `MONKIT_ZIPKIN_SERVICE_NAME`, `MONKIT_ZIPKIN_SAMPLE_RATE`), sampled traces go to Zipkin;
//! with `OTEL_EXPORTER_OTLP_ENDPOINT` (and the other standard `OTEL_*` variables), over OTLP.
//!
//! As a reverse proxy it follows RFC 9110 section 7.6.1: hop-by-hop headers (`Connection`
//! and the headers it names, `Keep-Alive`, `Proxy-*`, `TE`, `Trailer`, `Transfer-Encoding`,
//! `Upgrade`) are not forwarded either way. The caller's trace headers are replaced by the
//! proxy's own (see `monkit::propagation::inject`). `CONNECT` is not supported (501).
//! A request body that is malformed or over 8 MiB is the client's error (400, 413), and an
//! upstream that takes over 30 s is a 504. Both servers (proxy and pages) take their limits
//! from `MONKIT_HTTP_*` and `MONKIT_TRACE_*` (see `monkit_http::ServeOptions::from_env`).

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderMap, HeaderName, CONNECTION};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use monkit_http::RequestBody;
use std::convert::Infallible;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// The largest request body the proxy forwards.
const MAX_BODY: usize = 8 << 20;
/// How long the upstream has to answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

static MON: monkit::Scope = monkit::scope!();

#[derive(Debug)]
enum ProxyError {
    Connect(std::io::Error),
    Upstream(hyper::Error),
    Timeout,
    BadTarget,
    /// The client's request body: malformed framing, or a read error.
    ClientBody(String),
    /// The client stopped sending its request body (`MONKIT_HTTP_BODY_TIMEOUT`).
    ClientBodyTimeout(String),
    ClientBodyTooLarge,
}

impl monkit::ErrorKind for ProxyError {
    fn error_kind(&self) -> &'static str {
        match self {
            ProxyError::Connect(_) => "connect",
            ProxyError::Upstream(_) => "upstream",
            ProxyError::Timeout => "upstream_timeout",
            ProxyError::BadTarget => "bad_target",
            ProxyError::ClientBody(_) => "client_body",
            ProxyError::ClientBodyTimeout(_) => "client_body_timeout",
            ProxyError::ClientBodyTooLarge => "client_body_too_large",
        }
    }
}

impl ProxyError {
    /// The status the client gets: its own mistakes are 4xx, the upstream's 5xx.
    fn status(&self) -> StatusCode {
        match self {
            ProxyError::ClientBody(_) => StatusCode::BAD_REQUEST,
            ProxyError::ClientBodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ProxyError::ClientBodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::BAD_GATEWAY,
        }
    }
}

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxyError::Connect(e) => write!(f, "cannot connect to upstream: {e}"),
            ProxyError::Upstream(e) => write!(f, "upstream failed: {e}"),
            ProxyError::Timeout => write!(f, "upstream gave no answer within {UPSTREAM_TIMEOUT:?}"),
            ProxyError::BadTarget => f.write_str("bad target URL"),
            ProxyError::ClientBody(e) | ProxyError::ClientBodyTimeout(e) => {
                write!(f, "cannot read the request body: {e}")
            }
            ProxyError::ClientBodyTooLarge => {
                write!(f, "request body larger than {MAX_BODY} bytes")
            }
        }
    }
}

/// Headers that describe one connection, not the message (RFC 9110 section 7.6.1), so a
/// proxy must not forward them.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes the hop-by-hop headers: the fixed ones and those `Connection` names.
fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    for n in HOP_BY_HOP {
        h.remove(n);
    }
}

fn plain(status: StatusCode, msg: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(msg)));
    *r.status_mut() = status;
    r
}

struct Proxy {
    target: Uri,
    client: monkit_tower::ClientLayer,
}

impl Proxy {
    /// Handles one client request: forwards it, and answers 4xx for the client's mistakes and
    /// 502/504 when the upstream fails.
    #[monkit::task]
    async fn handle(&self, req: Request<RequestBody>) -> Result<Response<Full<Bytes>>, Infallible> {
        MON.meter("requests").mark(1);
        // Allowed baggage from the caller becomes annotations of this span.
        for (k, v) in monkit::propagation::baggage(req.headers(), &["tenant"]) {
            monkit::annotate(&format!("baggage.{k}"), v);
        }
        if req.method() == Method::CONNECT {
            // A reverse proxy: it forwards requests, it does not open tunnels.
            return Ok(plain(
                StatusCode::NOT_IMPLEMENTED,
                "CONNECT is not supported by this reverse proxy\n".to_owned(),
            ));
        }
        let route = route_of(req.uri().path());
        // A value of the whole trace: every span after this one can read it.
        monkit::trace::trace_set("route", route);
        let resp = match tokio::time::timeout(UPSTREAM_TIMEOUT, self.forward(req)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => plain(e.status(), format!("{e}\n")),
            Err(_) => plain(
                ProxyError::Timeout.status(),
                format!("{}\n", ProxyError::Timeout),
            ),
        };
        let bytes = hyper::body::Body::size_hint(resp.body())
            .exact()
            .unwrap_or(0);
        MON.int_val_with("response_bytes", &[("route", route)])
            .observe(bytes as i64);
        MON.bool_val("ok").observe(resp.status().is_success());
        Ok(resp)
    }

    /// The proxy call: one upstream round trip.
    #[monkit::task]
    async fn forward(
        &self,
        req: Request<RequestBody>,
    ) -> Result<Response<Full<Bytes>>, ProxyError> {
        // The body is read whole first, so a malformed one is the client's error, not the
        // upstream's.
        let (mut parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => Full::new(b.to_bytes()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(ProxyError::ClientBodyTooLarge)
            }
            Err(e) => {
                let timeout = e
                    .downcast_ref::<monkit_http::RequestBodyError>()
                    .is_some_and(monkit_http::RequestBodyError::is_timeout);
                return Err(if timeout {
                    ProxyError::ClientBodyTimeout(e.to_string())
                } else {
                    ProxyError::ClientBody(e.to_string())
                });
            }
        };
        strip_hop_by_hop(&mut parts.headers);
        let host = self.target.host().ok_or(ProxyError::BadTarget)?;
        let port = self.target.port_u16().unwrap_or(80);
        let stream = TcpStream::connect((host, port))
            .await
            .map_err(ProxyError::Connect)?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(ProxyError::Upstream)?;
        tokio::spawn(conn);
        // A plain `tracing` span: the bridge makes it a monkit function too.
        let _rewrite = tracing::info_span!("rewrite_request").entered();
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        parts.uri = path.parse().map_err(|_| ProxyError::BadTarget)?;
        let authority = self.target.authority().map_or(host, |a| a.as_str());
        parts.headers.insert(
            hyper::header::HOST,
            authority.parse().map_err(|_| ProxyError::BadTarget)?,
        );
        drop(_rewrite);
        // A CLIENT span, with the trace context in the upstream request's headers.
        let resp = self
            .client
            .send(Request::from_parts(parts, body), |r| sender.send_request(r))
            .await
            .map_err(ProxyError::Upstream)?;
        let (mut parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(ProxyError::Upstream)?
            .to_bytes();
        strip_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, Full::new(body)))
    }
}

/// A coarse route for tags: the first path segment. Its argument is recorded on its span.
#[monkit::task(args)]
fn route_of(path: &str) -> &'static str {
    match path.split('/').nth(1).unwrap_or("") {
        "" => "/",
        "slow" => "/slow",
        "fail" => "/fail",
        "report" => "/report",
        _ => "other",
    }
}

/// One small lookup, called many times by `/batch`.
#[monkit::task]
fn lookup_item(i: u64) -> Option<u64> {
    (!i.is_multiple_of(7)).then_some(i * 2)
}

/// Builds `/report`'s answer the wrong way, on purpose: a blocking sleep standing in for a sync
/// file read or a long computation inside an `async fn`, holding its worker thread. `/funcs`
/// (`sort=slow_polls`), the console's slow-poll column and `monkit_function_slow_polls_total`
/// find it; its busy time is its whole duration, unlike `/slow`'s timer.
#[monkit::task]
async fn build_report() -> String {
    std::thread::sleep(std::time::Duration::from_millis(15));
    tokio::task::yield_now().await;
    "report built (blocking its worker thread for 15 ms)\n".to_owned()
}

/// The built-in upstream: answers `/` with a greeting, `/slow` after 20 ms, `/fail` with a 500,
/// `/batch` after 60 small lookups, `/report` after blocking for 15 ms.
#[monkit::task]
async fn upstream(req: Request<RequestBody>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match req.uri().path() {
        "/slow" => {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            (StatusCode::OK, "slow hello\n".to_owned())
        }
        "/report" => (StatusCode::OK, build_report().await),
        "/fail" => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed on purpose\n".to_owned(),
        ),
        "/batch" => {
            // Many small calls of one function: a trace draws them as one band.
            let found = (0..60).filter(|&i| lookup_item(i).is_some()).count();
            (StatusCode::OK, format!("found {found} of 60 items\n"))
        }
        p => (
            StatusCode::OK,
            format!("hello from the upstream, you asked for {p}\n"),
        ),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    Ok(r)
}

async fn serve_upstream(listener: TcpListener, options: monkit_http::ServeOptions) {
    // One wrapper for every connection: one name table for the service's spans.
    let svc = monkit_http::Traced::new(
        monkit::default_registry(),
        hyper::service::service_fn(upstream),
    )
    .with_scope("upstream_server");
    monkit_http::serve_connections(listener, options, |_| svc.clone(), std::future::pending())
        .await;
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
    // Every `tracing` span (ours, a library's) becomes a monkit function; libraries' own
    // workings (h2 streams, hyper connections) stay out (`MonkitLayer::skip_targets`).
    {
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = tracing_subscriber::registry().with(monkit::bridge::MonkitLayer::new());
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
    }
    monkit::env::register(monkit::default_registry());
    monkit::env::register_build(monkit::default_registry(), env!("CARGO_PKG_VERSION"));
    // An objective over the requests it serves: `/fail` eats its budget (`/slo/json`, the
    // console's Objectives, `/slo/rules` for Prometheus).
    monkit::default_registry()
        .add_objective(
            monkit::slo::Objective::new("proxy")
                .success_ratio(0.99)
                .latency(std::time::Duration::from_millis(100), 0.95)
                .matching(r"^http_server\."),
        )
        .expect("vlite's objective is well-formed");
    monkit::env::register_tokio(
        monkit::default_registry(),
        tokio::runtime::Handle::current(),
    );
    let registry = monkit::default_registry();
    let _zipkin = monkit_examples::start_from_env(
        "vlite",
        "exporting sampled traces to Zipkin",
        monkit_zipkin::Builder::from_env(),
        |b| b.install(registry),
    );
    // With OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) set, sampled traces go over
    // OTLP too, beside Zipkin (OTLP/HTTP, or gRPC with OTEL_EXPORTER_OTLP_PROTOCOL=grpc): each
    // exporter is one more span observer.
    let _otlp = monkit_examples::start_from_env(
        "vlite",
        "exporting sampled traces over OTLP",
        monkit_otlp::Builder::from_env(),
        |b| b.install(registry),
    );
    // And every stat over OTLP metrics, from the same standard variables.
    let _otlp_metrics = monkit_examples::start_from_env(
        "vlite",
        "exporting metrics over OTLP",
        monkit_otlp::MetricsBuilder::from_env(),
        |b| b.install(registry),
    );
    // And the log records (through the `log` bridge, with their spans' ids) over OTLP logs.
    let _otlp_logs = monkit_examples::start_from_env(
        "vlite",
        "exporting logs over OTLP",
        monkit_otlp::LogsBuilder::from_env(),
        |b| b.install(registry),
    );
    // Every stat pushed to Graphite when MONKIT_GRAPHITE_ADDR is set (host:2003).
    let _graphite = monkit_examples::start_from_env(
        "vlite",
        "pushing stats to Graphite",
        monkit_graphite::Builder::from_env(),
        |b| b.install(registry),
    );
    let listen = monkit_examples::addr_from_env("vlite", "VLITE_LISTEN", "127.0.0.1:8080");
    let options = monkit_http::ServeOptions::from_env().unwrap_or_else(|e| {
        eprintln!("vlite: {e}");
        std::process::exit(2)
    });
    let monitor = monkit_examples::addr_from_env("vlite", "VLITE_MONITOR", "127.0.0.1:9000");

    let target: Uri = match std::env::args().nth(1) {
        Some(t) => t.parse().unwrap_or_else(|e| {
            eprintln!("vlite: target {t:?} is not a URL: {e}");
            std::process::exit(2)
        }),
        None => {
            let l = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind upstream");
            let addr = l.local_addr().expect("upstream address");
            tokio::spawn(serve_upstream(l, options.clone()));
            format!("http://{addr}").parse().expect("upstream URL")
        }
    };

    let server =
        monkit_http::serve_with(monkit::default_registry().clone(), monitor, options.clone())
            .unwrap_or_else(|e| {
                eprintln!("vlite: cannot serve monitoring pages on {monitor}: {e}");
                std::process::exit(1)
            });
    let listener = monkit_http::bind(listen, &options)
        .and_then(TcpListener::from_std)
        .unwrap_or_else(|e| {
            eprintln!("vlite: cannot listen on {listen}: {e}");
            std::process::exit(1)
        });
    println!(
        "vlite: proxy on http://{} -> {target}",
        listener.local_addr().unwrap()
    );
    println!("vlite: monitoring on http://{}/", server.local_addr());

    let proxy = std::sync::Arc::new(Proxy {
        target,
        client: monkit_tower::ClientLayer::new(monkit::default_registry()),
    });
    // Each request continues the caller's trace as a SERVER span.
    let svc = monkit_http::Traced::new(
        monkit::default_registry(),
        hyper::service::service_fn(move |req| {
            let proxy = proxy.clone();
            async move { proxy.handle(req).await }
        }),
    );
    monkit_http::serve_connections(
        listener,
        options,
        |_| svc.clone(),
        monkit_http::until_shutdown(),
    )
    .await;
    // SIGTERM or Ctrl-C: every exporter has sent what it held; the rest stops as main returns.
    println!("vlite: stopped");
}
