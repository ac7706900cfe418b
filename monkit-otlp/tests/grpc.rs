//! OTLP over gRPC against a Python grpcio server with the official OTLP service classes
//! (`testsupport/otlp_grpc_sink.py`): traces and metrics arrive decoded, with the headers as
//! metadata, gzip-compressed or not, over plain HTTP/2, TLS and mutual TLS; the collector's
//! push-back (UNAVAILABLE, RESOURCE_EXHAUSTED with and without RetryInfo) is obeyed as the
//! specification says; a wrong CA is refused for good.
#![cfg(feature = "grpc")]

use monkit_testsupport::otlp;
use monkit_testsupport::otlp_grpc;
use monkit_testsupport::peers;
use monkit_testsupport::pki;
use monkit_testsupport::ports;
use monkit_testsupport::py_sink;
use monkit_testsupport::totals;

use monkit_otlp::Protocol;
use otlp_grpc::{have_peers, sink};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use totals::total;

/// Three calls of `grpc.work` through an exporter `configure` makes, flushed; the registry.
fn export(
    url: &str,
    configure: impl FnOnce(monkit_otlp::Builder) -> monkit_otlp::Builder,
) -> monkit::Registry {
    let reg = monkit::Registry::new();
    let exporter = configure(monkit_otlp::Builder::new(url).protocol(Protocol::Grpc))
        .batch(3, Duration::from_millis(20))
        .retries(3, Duration::from_millis(10), Duration::from_millis(20))
        .install(&reg)
        .unwrap();
    let f = reg.scope("grpc").func("work");
    for _ in 0..3 {
        f.task(|| ());
    }
    exporter.shutdown(Duration::from_secs(15));
    reg
}

/// The spans of every call the sink took, read by the official classes.
fn spans(lines: &[Value]) -> Vec<Value> {
    lines
        .iter()
        .filter(|l| l["signal"] == "traces" && l["answer"] == "ok")
        .flat_map(|l| otlp::decode(&[], &py_sink::body(l)))
        .collect()
}

#[test]
fn traces_and_metrics_arrive_with_their_metadata() {
    if !have_peers() {
        return;
    }
    let s = sink::<&str>(&[]);
    let url = format!("http://127.0.0.1:{}", s.port);
    for gzip in [false, true] {
        let reg = export(&url, |b| b.gzip(gzip).header("X-Tenant", "acme"));
        assert_eq!(total(&reg, "spans_sent"), 3.0, "gzip {gzip}");
    }
    let lines = s.wait_for(2, |l| l["signal"] == "traces");
    let got = spans(&lines);
    assert_eq!(got.len(), 6, "{lines:?}");
    assert!(got.iter().all(|s| s["name"] == "grpc.work"), "{got:?}");
    assert!(
        lines.iter().all(|l| l["metadata"]["x-tenant"] == "acme"),
        "{lines:?}"
    );

    // Metrics to the same collector: the function's calls as a monotonic Sum.
    let reg = monkit::Registry::new();
    let f = reg.scope("grpc").func("counted");
    for _ in 0..5 {
        f.task(|| ());
    }
    let m = monkit_otlp::MetricsBuilder::new(&url)
        .protocol(Protocol::Grpc)
        .interval(Duration::from_secs(3600))
        .install(&reg)
        .unwrap();
    drop(m); // pushes once more, now
    assert_eq!(total(&reg, "metrics_sent"), 1.0);
    let lines = s.wait_for(1, |l| l["signal"] == "metrics");
    let body = lines.iter().find(|l| l["signal"] == "metrics").unwrap();
    let metrics = otlp::decode_metrics(&[], &py_sink::body(body));
    let calls: f64 = metrics
        .iter()
        .filter(|m| m["name"] == "monkit.function.calls" && m["monotonic"] == true)
        .flat_map(|m| m["points"].as_array().unwrap())
        .filter(|p| p["attributes"]["name"] == "counted" && p["attributes"]["outcome"] == "success")
        .map(|p| p["value"].as_f64().unwrap())
        .sum();
    assert_eq!(calls, 5.0, "{metrics:?}");
}

#[test]
fn push_back_is_obeyed_as_the_specification_says() {
    if !have_peers() {
        return;
    }
    // UNAVAILABLE twice, then accepted: retried with backoff.
    let s = sink(&["--push-back", "unavailable,unavailable"]);
    let reg = export(&format!("http://127.0.0.1:{}", s.port), |b| b);
    assert_eq!(total(&reg, "spans_sent"), 3.0);
    assert_eq!(total(&reg, "batches_retried"), 2.0);
    assert_eq!(spans(&s.wait_for(1, |l| l["answer"] == "ok")).len(), 3);
    drop(s);

    // Throttled with a RetryInfo of 1 s: the next try waits that long, not our 10 ms.
    let s = sink(&["--push-back", "exhausted:1"]);
    let reg = export(&format!("http://127.0.0.1:{}", s.port), |b| b);
    assert_eq!(total(&reg, "spans_sent"), 3.0);
    let lines = s.wait_for(1, |l| l["answer"] == "ok");
    let t: Vec<f64> = lines.iter().map(|l| l["t"].as_f64().unwrap()).collect();
    assert!(t[1] - t[0] >= 0.95, "waited {} s", t[1] - t[0]);
    drop(s);

    // RESOURCE_EXHAUSTED without RetryInfo, and INVALID_ARGUMENT: permanent, never retried.
    for answer in ["exhausted", "invalid"] {
        let s = sink(&["--push-back", answer]);
        let reg = export(&format!("http://127.0.0.1:{}", s.port), |b| b);
        assert_eq!(
            (
                total(&reg, "spans_failed"),
                total(&reg, "batches_refused"),
                total(&reg, "batches_retried")
            ),
            (3.0, 1.0, 0.0),
            "{answer}"
        );
    }

    // Nobody listening: connection errors are retried, then counted as failed; the program
    // never waited for any of it.
    let port = ports::free_port();
    let t0 = Instant::now();
    let reg = export(&format!("http://127.0.0.1:{port}"), |b| b);
    assert_eq!(total(&reg, "spans_failed"), 3.0);
    assert_eq!(total(&reg, "batches_retried"), 3.0);
    assert!(t0.elapsed() < Duration::from_secs(10));
}

#[test]
fn tls_and_mutual_tls_and_a_wrong_ca() {
    if !have_peers() || !peers::have("openssl", "openssl") {
        return;
    }
    let d = pki::dir("otlp-grpc");
    pki::pki(&d, "ca", "server", "IP:127.0.0.1,DNS:localhost");
    pki::pki(&d, "ca", "client", "DNS:client");
    pki::pki(&d, "other_ca", "stranger", "IP:127.0.0.1");
    let p = |f: &str| -> PathBuf { d.join(f) };
    let s = |client_ca: bool| {
        let (cert, key, ca) = (p("server.pem"), p("server.key"), p("ca.pem"));
        let mut args = vec![
            "--tls".to_owned(),
            cert.display().to_string(),
            key.display().to_string(),
        ];
        if client_ca {
            args.extend(["--client-ca".to_owned(), ca.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        sink(&args)
    };

    let tls = s(false);
    let url = format!("https://127.0.0.1:{}", tls.port);
    let reg = export(&url, |b| b.tls_ca(p("ca.pem")).gzip(true));
    assert_eq!(total(&reg, "spans_sent"), 3.0, "over TLS");
    assert_eq!(spans(&tls.wait_for(1, |l| l["answer"] == "ok")).len(), 3);
    // Trusting another CA: refused for good, never retried.
    let reg = export(&url, |b| b.tls_ca(p("other_ca.pem")));
    assert_eq!(
        (
            total(&reg, "spans_sent"),
            total(&reg, "spans_failed"),
            total(&reg, "batches_retried")
        ),
        (0.0, 3.0, 0.0)
    );
    assert_eq!(total(&reg, "batches_refused"), 1.0);
    drop(tls);

    let mtls = s(true);
    let url = format!("https://127.0.0.1:{}", mtls.port);
    let reg = export(&url, |b| {
        b.tls_ca(p("ca.pem"))
            .tls_client_cert(p("client.pem"), p("client.key"))
    });
    assert_eq!(total(&reg, "spans_sent"), 3.0, "over mutual TLS");
    assert_eq!(spans(&mtls.wait_for(1, |l| l["answer"] == "ok")).len(), 3);
    let reg = export(&url, |b| b.tls_ca(p("ca.pem")));
    assert_eq!(
        total(&reg, "spans_sent"),
        0.0,
        "no client certificate, no entry"
    );
    assert_eq!(total(&reg, "spans_failed"), 3.0);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn the_standard_variables_choose_grpc() {
    // A bad endpoint and a bad header are named when building, before anything is sent.
    let e = monkit_otlp::Builder::new("localhost:4317")
        .protocol(Protocol::Grpc)
        .install(&monkit::Registry::new())
        .unwrap_err();
    assert!(e.to_string().contains("localhost:4317"), "{e}");
    let e = monkit_otlp::Builder::new("http://127.0.0.1:4317")
        .protocol(Protocol::Grpc)
        .header("bad key", "v")
        .install(&monkit::Registry::new())
        .unwrap_err();
    assert!(e.to_string().contains("bad key"), "{e}");
}

/// A collector that accepts the connection and never answers the TLS handshake: a time-out
/// like any other, retried, not a refusal for good.
#[test]
fn a_handshake_that_never_finishes_is_retried() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for s in l.incoming().map_while(Result::ok) {
            keep.lock().unwrap().push(s);
        }
    });
    let reg = export(&format!("https://127.0.0.1:{port}"), |b| {
        b.timeout(Duration::from_millis(300))
    });
    assert_eq!(
        (
            total(&reg, "batches_refused"),
            total(&reg, "batches_retried"),
            total(&reg, "spans_failed")
        ),
        (0.0, 3.0, 3.0)
    );
    assert!(!held.lock().unwrap().is_empty(), "it did connect");
}
