//! The name cap of server and client spans holds however the wrappers are built (one per
//! connection, as servers do), and invented methods share one name.

use hyper::service::Service;
use hyper::{Request, Response};
use monkit::Registry;
use monkit_http::Traced;
use monkit_tower::{ClientLayer, MAX_NAMES};
use std::convert::Infallible;

async fn ok(_: Request<String>) -> Result<Response<String>, Infallible> {
    Ok(Response::new(String::new()))
}

#[tokio::test]
async fn one_name_table_per_scope_whatever_the_wrappers() {
    let reg = Registry::new();
    for i in 0..(MAX_NAMES * 4) {
        // A fresh wrapper per request, as a server building one per connection does.
        let svc = Traced::new(&reg, hyper::service::service_fn(ok));
        let req = Request::get(format!("/path-{i}/x"))
            .body(String::new())
            .unwrap();
        svc.call(req).await.unwrap();
    }
    let scope = reg.scope("http_server");
    assert!(
        scope.func_count() <= MAX_NAMES + 1,
        "{} functions",
        scope.func_count()
    );
    // A quarter of the room is kept for names that recur: one-off paths fill the rest only.
    let free = MAX_NAMES - MAX_NAMES / 4;
    let other = scope.find_func("GET other").expect("overflow function");
    assert_eq!(other.stats().successes as usize, MAX_NAMES * 4 - free);
    // A real route arriving after the flood still gets a place once it recurs.
    for _ in 0..8 {
        let svc = Traced::new(&reg, hyper::service::service_fn(ok));
        svc.call(Request::get("/users").body(String::new()).unwrap())
            .await
            .unwrap();
    }
    let users = scope
        .find_func("GET /users")
        .expect("a recurring route got a place");
    assert_eq!(users.stats().successes, 1);
    // Every refusal is counted where the others are.
    let mut refused = None;
    reg.stats(|k, f, v| {
        if k.measurement == "cardinality_refused"
            && k.tags.get("source") == Some("http_server.GET other")
            && f == "total"
        {
            refused = Some(v as usize);
        }
    });
    assert_eq!(refused, Some(MAX_NAMES * 4 - free + 7));
}

#[tokio::test]
async fn invented_methods_are_other() {
    let reg = Registry::new();
    let svc = Traced::new(&reg, hyper::service::service_fn(ok));
    for m in ["FOO", "BAR", "PROPFIND", "get"] {
        let req = Request::builder()
            .method(m)
            .uri("/")
            .body(String::new())
            .unwrap();
        svc.call(req).await.unwrap();
    }
    let names: Vec<String> = reg
        .scope("http_server")
        .funcs()
        .iter()
        .map(|f| f.name().to_owned())
        .collect();
    assert_eq!(names, ["OTHER /"]);

    let client = ClientLayer::new(&reg);
    for m in ["FOO", "BAZ"] {
        let req = Request::builder()
            .method(m)
            .uri("http://example.test/")
            .body(String::new())
            .unwrap();
        client
            .send(req, |_r| async {
                Ok::<_, Infallible>(Response::new(String::new()))
            })
            .await
            .unwrap();
    }
    let names: Vec<String> = reg
        .scope("http_client")
        .funcs()
        .iter()
        .map(|f| f.name().to_owned())
        .collect();
    assert_eq!(names, ["OTHER example.test"]);
}
