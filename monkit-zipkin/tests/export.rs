//! Two services in one process, A calling B over HTTP, both exporting to a recording receiver:
//! one trace id end to end, B's server span a child of A's client span; every body validated
//! by the official schema and decoded by Zipkin's own Go model. One test: the exporter is
//! process-wide.

mod common;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use monkit_http::Traced;
use monkit_tower::ClientLayer;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;

#[monkit::task]
async fn b_lookup(key: String) -> Result<String, std::io::Error> {
    monkit::annotate("key", &key);
    // A blocking first poll: a slow poll, an annotation of the span.
    std::thread::sleep(Duration::from_millis(15));
    tokio::task::yield_now().await;
    Ok(format!("value of {key}"))
}

async fn b_handler(
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let v = b_lookup(req.uri().path().to_owned()).await.unwrap();
    Ok(Response::new(Full::new(Bytes::from(v))))
}

async fn a_handler(
    b: SocketAddr,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let out = Request::get(format!("http://{b}/b/42"))
        .header("host", b.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = ClientLayer::new(monkit::default_registry())
        .with_b3(true)
        .send(out, |r| async move {
            let stream = tokio::net::TcpStream::connect(b).await.unwrap();
            let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            tx.send_request(r).await
        })
        .await
        .unwrap();
    // B's view of the trace, for the test to compare.
    let seen = resp
        .headers()
        .get("traceresponse")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let _ = req;
    Ok(Response::new(Full::new(Bytes::from(seen))))
}

fn serve<S>(rt: &tokio::runtime::Runtime, svc: S) -> SocketAddr
where
    S: hyper::service::Service<
            Request<hyper::body::Incoming>,
            Response = Response<Full<Bytes>>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let l = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = l.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let svc = svc.clone();
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

fn spans_of(bodies: &[String]) -> Vec<Value> {
    bodies
        .iter()
        .flat_map(|b| serde_json::from_str::<Vec<Value>>(b).unwrap())
        .collect()
}

#[test]
fn two_services_one_trace() {
    monkit::polls::set_slow_poll(Duration::from_millis(10));
    let recv = common::receiver();
    let exporter = monkit_zipkin::Builder::new(&recv.url())
        .service_name("Svc-Test")
        .batch(64, Duration::from_millis(50))
        .install(monkit::default_registry())
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let b = serve(
        &rt,
        Traced::new(
            monkit::default_registry(),
            hyper::service::service_fn(b_handler),
        ),
    );
    let a = serve(
        &rt,
        Traced::new(
            monkit::default_registry(),
            hyper::service::service_fn(move |r| a_handler(b, r)),
        ),
    );

    // A fresh trace at A.
    let resp = ureq::get(&format!("http://{a}/a")).call().unwrap();
    let a_response = resp.header("traceresponse").unwrap().to_owned();
    let b_response = resp.into_string().unwrap();
    let a_trace = &a_response[3..35];
    assert_eq!(&b_response[3..35], a_trace, "B continued A's trace");
    // Sampled (01), and random (02): every trace monkit starts has a random id.
    assert!(a_response.ends_with("-03") && b_response.ends_with("-03"));

    assert!(exporter.flush(Duration::from_secs(10)));
    let bodies = recv.bodies.lock().clone();
    assert!(!bodies.is_empty());
    for body in &bodies {
        common::validate_schema(body);
        if let Some(lines) = common::go_decode(body) {
            assert_eq!(
                lines.len(),
                serde_json::from_str::<Vec<Value>>(body).unwrap().len()
            );
        }
    }
    let spans = spans_of(&bodies);
    let find = |name: &str| {
        spans
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} not exported: {spans:#?}"))
    };
    let a_server = find("http_server.GET /a");
    let a_client = find("http_client.GET 127.0.0.1");
    let b_server = find("http_server.GET /b/{id}");
    let lookup = find("export.b_lookup");
    for s in [a_server, a_client, b_server, lookup] {
        assert_eq!(s["traceId"], a_trace, "{s}");
        assert_eq!(s["localEndpoint"]["serviceName"], "svc-test");
        assert!(s["duration"].as_u64().unwrap() >= 1);
    }
    assert!(a_server.get("parentId").is_none());
    assert_eq!(a_server["kind"], "SERVER");
    assert_eq!(a_client["kind"], "CLIENT");
    assert_eq!(b_server["kind"], "SERVER");
    assert!(lookup.get("kind").is_none(), "local spans have no kind");
    assert_eq!(a_client["parentId"], a_server["id"]);
    assert_eq!(
        b_server["parentId"], a_client["id"],
        "B's server span is a child of A's client span"
    );
    assert_eq!(lookup["parentId"], b_server["id"]);
    assert_eq!(a_client["remoteEndpoint"]["ipv4"], "127.0.0.1");
    assert_eq!(b_server["tags"]["http.status_code"], "200");
    assert_eq!(lookup["tags"]["key"], "/b/42");
    // Its polls: two (the yield), the first slow, at the span's start.
    assert_eq!(lookup["tags"]["monkit.polls"], "2", "{lookup}");
    let busy: u64 = lookup["tags"]["monkit.busy_us"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (15_000..=lookup["duration"].as_u64().unwrap()).contains(&busy),
        "{lookup}"
    );
    let slow = lookup["annotations"]
        .as_array()
        .expect("a slow-poll annotation");
    assert_eq!(slow.len(), 1, "{lookup}");
    assert_eq!(slow[0]["timestamp"], lookup["timestamp"]);
    // The event's name, then its attributes as `key=value`.
    let ns: u64 = slow[0]["value"]
        .as_str()
        .unwrap()
        .strip_prefix("slow poll monkit.poll_ns=")
        .unwrap_or_else(|| panic!("{lookup}"))
        .parse()
        .unwrap();
    assert!(ns >= 15_000_000, "{lookup}");
    assert_eq!(&b_response[36..52], b_server["id"].as_str().unwrap());

    // An unsampled incoming trace still propagates its ids, flag off, and is not exported.
    recv.bodies.lock().clear();
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    let resp = ureq::get(&format!("http://{a}/a"))
        .set("traceparent", tp)
        .call()
        .unwrap();
    let a_response = resp.header("traceresponse").unwrap().to_owned();
    let b_response = resp.into_string().unwrap();
    assert_eq!(&a_response[3..35], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(&b_response[3..35], "0af7651916cd43dd8448eb211c80319c");
    assert!(a_response.ends_with("-00") && b_response.ends_with("-00"));
    // A sampled one is exported, A's server span a child of the caller's span.
    let tp = "00-1af7651916cd43dd8448eb211c80319c-c7ad6b7169203331-01";
    ureq::get(&format!("http://{a}/a"))
        .set("traceparent", tp)
        .call()
        .unwrap();
    // Garbage never fails a request: a fresh trace.
    let resp = ureq::get(&format!("http://{a}/a"))
        .set("traceparent", "00-zz-garbage")
        .set("b3", "nonsense")
        .call()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let fresh = resp.header("traceresponse").unwrap().to_owned();
    assert!(!fresh.contains("1af7651916cd43dd8448eb211c80319c"));
    assert!(exporter.flush(Duration::from_secs(10)));
    let spans = spans_of(&recv.bodies.lock());
    assert!(spans
        .iter()
        .all(|s| s["traceId"] != "0af7651916cd43dd8448eb211c80319c"));
    let continued = spans
        .iter()
        .find(|s| {
            s["traceId"] == "1af7651916cd43dd8448eb211c80319c" && s["name"] == "http_server.GET /a"
        })
        .expect("sampled incoming trace exported");
    assert_eq!(continued["parentId"], "c7ad6b7169203331");
    exporter.shutdown(Duration::from_secs(5));
    let stats = monkit::render::text::stats(monkit::default_registry());
    assert!(
        stats.contains("spans_sent,scope=monkit_zipkin total="),
        "{stats}"
    );
}
