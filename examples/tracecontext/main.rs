//! The service the official W3C Trace Context test suite drives, built on monkit the way a
//! user would: a hyper server wrapped in `monkit_http::Traced`, callbacks sent through
//! `monkit_tower::ClientLayer::send`, or with `--reqwest` through a reqwest client with
//! `monkit_tower::ReqwestMiddleware`.
//!
//! The harness POSTs a JSON list of `{"url": ..., "arguments": [...]}` to `/test`; for each,
//! the service POSTs `arguments` as JSON to `url`, while handling the request, so the
//! harness sees the trace context the service sends on. Two shapes:
//!
//!     cargo run --example tracecontext                      # new requests
//!     cargo run --example tracecontext -- --forward-headers # a proxy: the caller's headers go on
//!     cargo run --example tracecontext -- --reqwest         # either, sent by reqwest
//!
//! `TRACECONTEXT_LISTEN` (default `127.0.0.1:5000`) says where it listens; it prints the
//! address once it does.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use monkit_http::RequestBody;
use serde_json::Value;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};

/// Largest instruction body read from the harness.
const MAX_BODY: usize = 1 << 20;

/// Headers a proxy must not pass on (RFC 9110 section 7.6.1), and the ones the new request
/// sets itself.
const NOT_FORWARDED: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "content-type",
];

struct Service {
    client: monkit_tower::ClientLayer,
    /// Set with `--reqwest`: callbacks go through this instead.
    reqwest: Option<reqwest_middleware::ClientWithMiddleware>,
    forward_headers: bool,
}

impl Service {
    /// One callback: `arguments` POSTed as JSON to `url`, inside a CLIENT span.
    async fn callback(
        &self,
        url: &str,
        arguments: &Value,
        incoming: &hyper::HeaderMap,
    ) -> Result<(), String> {
        if let Some(client) = &self.reqwest {
            let mut req = client
                .post(url)
                .header("content-type", "application/json")
                .body(arguments.to_string());
            if self.forward_headers {
                for (k, v) in incoming {
                    if !NOT_FORWARDED.contains(&k.as_str()) {
                        req = req.header(k, v);
                    }
                }
            }
            let resp = req.send().await.map_err(|e| e.to_string())?;
            resp.bytes().await.map_err(|e| e.to_string())?;
            return Ok(());
        }
        let uri: hyper::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
        let host = uri.host().ok_or("no host")?.to_owned();
        let port = uri.port_u16().unwrap_or(80);
        let stream = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let mut req = Request::post(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(hyper::header::HOST, format!("{host}:{port}"))
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(arguments.to_string())))
            .map_err(|e| e.to_string())?;
        if self.forward_headers {
            for (k, v) in incoming {
                if !NOT_FORWARDED.contains(&k.as_str()) {
                    req.headers_mut().append(k, v.clone());
                }
            }
        }
        let resp = self
            .client
            .send(req, |r| sender.send_request(r))
            .await
            .map_err(|e| e.to_string())?;
        resp.into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    async fn handle(&self, req: Request<RequestBody>) -> Result<Response<Full<Bytes>>, Infallible> {
        let (parts, body) = req.into_parts();
        let answer = |status: StatusCode, text: String| {
            let mut r = Response::new(Full::new(Bytes::from(text)));
            *r.status_mut() = status;
            Ok(r)
        };
        if parts.uri.path() != "/test" {
            return answer(StatusCode::NOT_FOUND, "POST /test\n".into());
        }
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return answer(StatusCode::BAD_REQUEST, format!("{e}\n")),
        };
        let steps: Vec<Value> = match serde_json::from_slice(&body) {
            Ok(Value::Array(v)) => v,
            _ => return answer(StatusCode::BAD_REQUEST, "expected a JSON list\n".into()),
        };
        for step in &steps {
            let Some(url) = step["url"].as_str() else {
                return answer(StatusCode::BAD_REQUEST, "a step without url\n".into());
            };
            let args = step
                .get("arguments")
                .cloned()
                .unwrap_or(Value::Array(vec![]));
            if let Err(e) = self.callback(url, &args, &parts.headers).await {
                return answer(StatusCode::BAD_GATEWAY, format!("{url}: {e}\n"));
            }
        }
        answer(StatusCode::OK, "ok\n".into())
    }
}

#[tokio::main]
async fn main() {
    monkit_examples::init_logging();
    let listen =
        monkit_examples::addr_from_env("tracecontext", "TRACECONTEXT_LISTEN", "127.0.0.1:5000");
    let forward_headers = std::env::args().any(|a| a == "--forward-headers");
    let reqwest = std::env::args().any(|a| a == "--reqwest").then(|| {
        reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(monkit_tower::ReqwestMiddleware::new(
                monkit::default_registry(),
            ))
            .build()
    });
    let listener = TcpListener::bind(&listen).await.unwrap_or_else(|e| {
        eprintln!("tracecontext: cannot listen on {listen}: {e}");
        std::process::exit(1)
    });
    println!(
        "tracecontext: listening on http://{}/test{}",
        listener.local_addr().expect("bound"),
        if forward_headers {
            " (forwarding the caller's headers)"
        } else {
            ""
        }
    );
    let service = Arc::new(Service {
        client: monkit_tower::ClientLayer::new(monkit::default_registry()),
        reqwest,
        forward_headers,
    });
    let svc = monkit_http::Traced::new(
        monkit::default_registry(),
        hyper::service::service_fn(move |req| {
            let service = service.clone();
            async move { service.handle(req).await }
        }),
    );
    monkit_http::serve_connections(
        listener,
        monkit_http::ServeOptions::default(),
        |_| svc.clone(),
        std::future::pending(),
    )
    .await;
}
