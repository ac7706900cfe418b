//! Capture by condition on a real vlite process: `/trace/json` with `min_duration` answers
//! with a `/slow` request and not one of the fast ones sent first; with `outcome` a failing
//! one; a bad condition is a clear 400.

mod common;

use common::{get, vlite};
use serde_json::Value;
use std::time::Duration;

/// Starts a capture of `query` on a thread, waits for it to be armed, sends `requests`
/// through the proxy; the captured spans.
fn capture_while(v: &common::Vlite, query: &str, requests: &[&str]) -> Vec<Value> {
    let url = format!("{}/trace/json?{query}&timeout=20s", v.mon);
    let watcher = std::thread::spawn(move || get(&url));
    std::thread::sleep(Duration::from_millis(300));
    for path in requests {
        let _ = ureq::get(&format!("http://{}{path}", v.proxy)).call();
    }
    let got = watcher.join().unwrap();
    serde_json::from_str(&got).unwrap_or_else(|e| panic!("{e}: {got}"))
}

#[test]
fn the_next_slow_or_failing_request_with_its_tree() {
    let v = vlite(None, &[], None);
    // Make the route functions exist.
    for p in ["/", "/slow", "/fail"] {
        let _ = ureq::get(&format!("http://{}{p}", v.proxy)).call();
    }
    let spans = capture_while(
        &v,
        "regex=http_server&min_duration=15ms",
        &["/", "/", "/", "/", "/slow", "/"],
    );
    let root = &spans[0];
    assert_eq!(root["func"]["name"], "GET /slow", "{spans:#?}");
    let lasted = root["duration_ns"].as_u64().expect("duration_ns");
    assert!(lasted >= 15_000_000, "{lasted} ns: {root}");
    assert!(spans.len() > 1, "the whole tree: {spans:#?}");

    let spans = capture_while(
        &v,
        "regex=http_server&outcome=http_5xx",
        &["/", "/slow", "/fail"],
    );
    assert_eq!(spans[0]["func"]["name"], "GET /fail", "{spans:#?}");

    let r = ureq::get(&format!(
        "{}/trace/json?regex=http_server&outcome=no%20such!",
        v.mon
    ))
    .call();
    match r {
        Err(ureq::Error::Status(400, resp)) => {
            let text = resp.into_string().unwrap();
            assert!(text.contains("outcome expected"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    let r = ureq::get(&format!(
        "{}/trace/json?regex=http_server&min_duration=soon",
        v.mon
    ))
    .call();
    assert!(matches!(r, Err(ureq::Error::Status(400, _))), "{r:?}");
}
