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
//! `MONKIT_ZIPKIN_SERVICE_NAME`, `MONKIT_ZIPKIN_SAMPLE_RATE`), sampled traces go to Zipkin.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};

static MON: monkit::Scope = monkit::scope!();

#[derive(Debug)]
enum ProxyError {
    Connect(std::io::Error),
    Upstream(hyper::Error),
    BadTarget,
}

impl monkit::ErrorKind for ProxyError {
    fn error_kind(&self) -> &'static str {
        match self {
            ProxyError::Connect(_) => "connect",
            ProxyError::Upstream(_) => "upstream",
            ProxyError::BadTarget => "bad_target",
        }
    }
}

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxyError::Connect(e) => write!(f, "cannot connect to upstream: {e}"),
            ProxyError::Upstream(e) => write!(f, "upstream failed: {e}"),
            ProxyError::BadTarget => f.write_str("bad target URL"),
        }
    }
}

struct Proxy {
    target: Uri,
    client: monkit_http::TracedClient,
}

impl Proxy {
    /// Handles one client request: forwards it and answers 502 when the upstream fails.
    #[monkit::task]
    async fn handle(&self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        MON.meter("requests").mark(1);
        let route = route_of(req.uri().path());
        let resp = match self.forward(req).await {
            Ok(r) => r,
            Err(e) => {
                let mut r = Response::new(Full::new(Bytes::from(format!("{e}\n"))));
                *r.status_mut() = StatusCode::BAD_GATEWAY;
                r
            }
        };
        let bytes = hyper::body::Body::size_hint(resp.body())
            .exact()
            .unwrap_or(0);
        MON.int_val("response_bytes", &[("route", route)])
            .observe(bytes as i64);
        MON.bool_val("ok", &[]).observe(resp.status().is_success());
        Ok(resp)
    }

    /// The proxy call: one upstream round trip.
    #[monkit::task]
    async fn forward(&self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, ProxyError> {
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
        let (mut parts, body) = req.into_parts();
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
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(ProxyError::Upstream)?
            .to_bytes();
        Ok(Response::from_parts(parts, Full::new(body)))
    }
}

/// A coarse route for tags: the first path segment.
fn route_of(path: &str) -> &'static str {
    match path.split('/').nth(1).unwrap_or("") {
        "" => "/",
        "slow" => "/slow",
        "fail" => "/fail",
        _ => "other",
    }
}

/// The built-in upstream: answers `/` with a greeting, `/slow` after 20 ms, `/fail` with a 500.
#[monkit::task]
async fn upstream(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match req.uri().path() {
        "/slow" => {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            (StatusCode::OK, "slow hello\n".to_owned())
        }
        "/fail" => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed on purpose\n".to_owned(),
        ),
        p => (
            StatusCode::OK,
            format!("hello from the upstream, you asked for {p}\n"),
        ),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    Ok(r)
}

async fn serve_upstream(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let svc = monkit_http::Traced::new(
                monkit::default_registry(),
                hyper::service::service_fn(upstream),
            )
            .with_scope("upstream_server");
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn env_addr(var: &str, default: &str) -> SocketAddr {
    let v = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    v.parse().unwrap_or_else(|e| {
        eprintln!("vlite: {var}={v:?} is not an address: {e}");
        std::process::exit(2)
    })
}

#[tokio::main]
async fn main() {
    // Every `tracing` span (ours, hyper's, a library's) becomes a monkit function.
    {
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = tracing_subscriber::registry().with(monkit::bridge::MonkitLayer::new());
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
    }
    monkit::env::register(monkit::default_registry());
    let _zipkin = match monkit_zipkin::Builder::from_env() {
        None => None,
        Some(Err(e)) => {
            eprintln!("vlite: {e}");
            std::process::exit(2)
        }
        Some(Ok(b)) => match b.install(monkit::default_registry()) {
            Ok(x) => {
                println!("vlite: exporting sampled traces to Zipkin");
                Some(x)
            }
            Err(e) => {
                eprintln!("vlite: {e}");
                std::process::exit(2)
            }
        },
    };

    let listen = env_addr("VLITE_LISTEN", "127.0.0.1:8080");
    let monitor = env_addr("VLITE_MONITOR", "127.0.0.1:9000");

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
            tokio::spawn(serve_upstream(l));
            format!("http://{addr}").parse().expect("upstream URL")
        }
    };

    let server =
        monkit_http::serve(monkit::default_registry().clone(), monitor).unwrap_or_else(|e| {
            eprintln!("vlite: cannot serve monitoring pages on {monitor}: {e}");
            std::process::exit(1)
        });
    let listener = TcpListener::bind(listen).await.unwrap_or_else(|e| {
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
        client: monkit_http::TracedClient::new(monkit::default_registry()),
    });
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("vlite: accept: {e}");
                continue;
            }
        };
        let proxy = proxy.clone();
        tokio::spawn(async move {
            // Each request continues the caller's trace as a SERVER span.
            let svc = monkit_http::Traced::new(
                monkit::default_registry(),
                hyper::service::service_fn(move |req| {
                    let proxy = proxy.clone();
                    async move { proxy.handle(req).await }
                }),
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
