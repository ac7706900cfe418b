//! The pages over HTTP/2 (prior knowledge) as well as HTTP/1.1, on one port: curl speaks
//! each, and HTTP/2's own limits hold.

use monkit_testsupport::peers;

use std::process::Command;

/// `curl` with `args`: its stdout, after checking it ran.
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl").args(args).output().expect("curl runs");
    assert!(out.status.success(), "curl {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn pages_answer_http2_and_http1_on_one_port() {
    if !peers::have("curl", "curl") {
        return;
    }
    static MON: monkit::Scope = monkit::scope!();
    MON.func("over_h2").task(|| ());
    let server = monkit_http::serve(monkit::default_registry().clone(), "127.0.0.1:0").unwrap();
    let url = format!("http://{}/funcs/json", server.local_addr());
    let h2 = curl(&[
        "-s",
        "--http2-prior-knowledge",
        "-w",
        "\n%{http_version} %{http_code}",
        &url,
    ]);
    let (body, status) = h2.rsplit_once('\n').unwrap();
    assert_eq!(status, "2 200", "{h2}");
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(v.to_string().contains("over_h2"), "{body}");
    let h1 = curl(&[
        "-s",
        "--http1.1",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version} %{http_code}",
        &url,
    ]);
    assert_eq!(h1, "1.1 200");
}

#[test]
fn many_streams_on_few_connections() {
    if !peers::have("h2load", "nghttp2-client") {
        return;
    }
    let server = monkit_http::serve(monkit::default_registry().clone(), "127.0.0.1:0").unwrap();
    let url = format!("http://{}/stats/json", server.local_addr());
    let out = Command::new("h2load")
        .args(["-n", "2000", "-c", "4", "-m", "50", &url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("2000 succeeded, 0 failed, 0 errored, 0 timeout"),
        "{text}"
    );
    assert!(text.contains("status codes: 2000 2xx"), "{text}");
}

#[test]
fn an_oversized_http2_header_list_is_refused() {
    if !peers::have("curl", "curl") {
        return;
    }
    let server = monkit_http::serve(monkit::default_registry().clone(), "127.0.0.1:0").unwrap();
    let url = format!("http://{}/stats/json", server.local_addr());
    let big = format!("x-big: {}", "a".repeat(100 * 1024));
    let out = peers::curl_h2(&["-o", "/dev/null", "-w", "%{http_code}", "-H", &big, &url]);
    let code = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        code != "200",
        "a 100 KiB header list must not be served: {code} {out:?}"
    );
    // The server is still there for the next client.
    let ok = curl(&[
        "-s",
        "--http2-prior-knowledge",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &url,
    ]);
    assert_eq!(ok, "200");
}
