//! ServerLayer on a real axum server on a loopback port, driven by a real HTTP client.
#![cfg(feature = "axum")]

mod common;

use common::{errors, func};

use axum::{extract::Path, http::StatusCode, routing::get, Router};
use monkit::{Func, Registry};
use std::time::Duration;

async fn user(Path(id): Path<u32>) -> String {
    format!("user {id}")
}

/// Serves `app` on a free loopback port; its address.
async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn app(reg: &Registry) -> Router {
    Router::new()
        .route("/users/{id}", get(user))
        .route(
            "/boom",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
        )
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route(
            "/upload",
            axum::routing::post(|body: axum::body::Bytes| async move { body.len().to_string() }),
        )
        .layer(monkit_tower::ServerLayer::new(reg))
}

/// A GET from a blocking client on its own thread: status, `traceresponse`, body.
async fn get_with(
    url: String,
    headers: Vec<(&'static str, String)>,
) -> (u16, Option<String>, String) {
    tokio::task::spawn_blocking(move || {
        let mut req = ureq::get(&url);
        for (k, v) in &headers {
            req = req.set(k, v);
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{url}: {e}"),
        };
        let status = resp.status();
        let tr = resp.header("traceresponse").map(str::to_owned);
        (status, tr, resp.into_string().unwrap())
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_are_templates_and_the_trace_continues() {
    let reg = Registry::new();
    let addr = serve(app(&reg)).await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    for id in [1, 2, 3] {
        let (status, tr, body) = get_with(
            format!("http://{addr}/users/{id}"),
            vec![("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))],
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body, format!("user {id}"));
        let tr = tr.expect("traceresponse");
        let parts: Vec<&str> = tr.split('-').collect();
        assert_eq!(parts[1], trace, "{tr}");
        assert_ne!(parts[2], "00f067aa0ba902b7", "the server's own span id");
        assert_eq!(parts[3], "01");
    }
    let f = func(&reg, "http_server", "GET /users/{id}").expect("the route template names it");
    assert_eq!(f.stats().successes, 3);
    assert!(
        reg.funcs().iter().all(|f| !f.name().contains("/users/1")),
        "never the raw path"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_by_status() {
    let reg = Registry::new();
    let addr = serve(app(&reg)).await;
    assert_eq!(get_with(format!("http://{addr}/boom"), vec![]).await.0, 503);
    assert_eq!(
        get_with(format!("http://{addr}/missing"), vec![]).await.0,
        404
    );
    let boom = func(&reg, "http_server", "GET /boom").unwrap();
    assert_eq!((boom.stats().successes, errors(&boom, "http_5xx")), (0, 1));
    let missing = func(&reg, "http_server", "GET /missing").unwrap().stats();
    assert_eq!(missing.successes, 1, "4xx is a success by default");

    // Counted as failures when asked.
    let reg2 = Registry::new();
    let strict = Router::new()
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .layer(monkit_tower::ServerLayer::new(&reg2).client_errors_fail(true));
    let addr2 = serve(strict).await;
    assert_eq!(
        get_with(format!("http://{addr2}/missing"), vec![]).await.0,
        404
    );
    let s = func(&reg2, "http_server", "GET /missing").unwrap();
    assert_eq!(errors(&s, "http_4xx"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_cancels_the_call() {
    let reg = Registry::new();
    let addr = serve(app(&reg)).await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::AsyncWriteExt;
    s.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let f = loop {
        if let Some(f) = func(&reg, "http_server", "GET /slow") {
            if f.stats().current == 1 {
                break f;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    drop(s);
    for _ in 0..500 {
        if errors(&f, "canceled") == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let st = f.stats();
    assert_eq!(
        (errors(&f, "canceled"), st.current, st.successes),
        (1, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_paths_cannot_grow_the_table() {
    let reg = Registry::new();
    let addr = serve(app(&reg)).await;
    tokio::task::spawn_blocking(move || {
        let agent = ureq::AgentBuilder::new().build();
        for i in 0..10_000 {
            match agent.get(&format!("http://{addr}/junk-{i}/x")).call() {
                Err(ureq::Error::Status(404, _)) => {}
                other => panic!("{other:?}"),
            }
        }
    })
    .await
    .unwrap();
    let server: Vec<Func> = reg
        .funcs()
        .into_iter()
        .filter(|f| f.scope() == "http_server")
        .collect();
    assert!(server.len() <= monkit_tower::MAX_NAMES, "{}", server.len());
    let total: u64 = server.iter().map(|f| f.stats().total()).sum();
    assert_eq!(total, 10_000, "every request counted somewhere");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_router_an_unmatched_request_is_one_function_per_method() {
    let reg = Registry::new();
    let app = Router::new().route("/users/{id}", get(user)).layer(
        monkit_tower::ServerLayer::new(&reg)
            .with_scope("routed")
            .routed(true),
    );
    let addr = serve(app).await;
    for path in ["/nope/42", "/other", "/users/7/extra"] {
        let (status, _, _) = get_with(format!("http://{addr}{path}"), vec![]).await;
        assert_eq!(status, 404);
    }
    let (status, _, _) = get_with(format!("http://{addr}/users/7"), vec![]).await;
    assert_eq!(status, 200);
    let mut names: Vec<String> = reg
        .funcs()
        .into_iter()
        .filter(|f| f.scope() == "routed")
        .filter(|f| f.stats().total() > 0)
        .map(|f| f.name().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["GET /users/{id}", "GET unmatched"]);
    let unmatched = func(&reg, "routed", "GET unmatched").unwrap();
    assert_eq!(unmatched.stats().total(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_cut_off_mid_body_ends_its_call() {
    let reg = Registry::new();
    let addr = serve(app(&reg)).await;
    use tokio::io::AsyncWriteExt;
    for _ in 0..20 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            b"POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n0123456789",
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        drop(s);
    }
    let f = loop {
        if let Some(f) = func(&reg, "http_server", "POST /upload") {
            break f;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    for _ in 0..500 {
        if f.stats().total() == 20 && f.stats().current == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let st = f.stats();
    assert_eq!((st.total(), st.current, st.panics), (20, 0, 0), "{st:?}");
    // The server still answers whole requests.
    let (status, _, body) = get_with(format!("http://{addr}/users/5"), vec![]).await;
    assert_eq!((status, body.as_str()), (200, "user 5"));
}
