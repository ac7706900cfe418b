//! vlite and tavern export traces and metrics over OTLP/gRPC, configured only by the standard
//! variables, to a Python grpcio server with the official OTLP service classes
//! (`testsupport/otlp_grpc_sink.py`): vlite over mutual TLS with certificates `openssl` makes
//! here, tavern over plain HTTP/2 with gzip. What arrives is read by the official classes.

mod common;
use monkit_testsupport::otlp;
use monkit_testsupport::otlp_grpc;
use monkit_testsupport::pki;
use monkit_testsupport::py_sink;

use common::{peers, post, tavern, vlite};
use otlp_grpc::{have_peers, sink};
use serde_json::Value;

/// Span names, and metric names, of everything the sink was sent.
fn received(lines: &[Value]) -> (Vec<String>, Vec<String>) {
    let (mut spans, mut metrics) = (Vec::new(), Vec::new());
    for l in lines {
        let body = py_sink::body(l);
        if l["signal"] == "traces" {
            spans.extend(
                otlp::decode(&[], &body)
                    .iter()
                    .map(|s| s["name"].to_string()),
            );
        } else {
            let m = otlp::decode_metrics(&[], &body);
            metrics.extend(m.iter().map(|m| m["name"].to_string()));
        }
    }
    (spans, metrics)
}

#[test]
fn vlite_exports_over_grpc_with_mutual_tls() {
    if !have_peers() || !peers::have("openssl", "openssl") {
        return;
    }
    let d = pki::dir("vlite-grpc");
    pki::pki(&d, "ca", "server", "IP:127.0.0.1");
    pki::pki(&d, "ca", "client", "DNS:vlite");
    let p = |f: &str| d.join(f).display().to_string();
    let args = [
        "--tls".to_owned(),
        p("server.pem"),
        p("server.key"),
        "--client-ca".to_owned(),
        p("ca.pem"),
    ];
    let s = sink(&args);
    let endpoint = format!("https://127.0.0.1:{}", s.port);
    let (ca, cert, key) = (p("ca.pem"), p("client.pem"), p("client.key"));
    let v = vlite(
        None,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", &ca),
            ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &cert),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", &key),
            ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
            ("OTEL_TRACES_SAMPLER", "always_on"),
        ],
        None,
    );
    for _ in 0..5 {
        let _ = ureq::get(&format!("http://{}/", v.proxy)).call();
    }
    let lines = s.wait_for(1, |l| l["signal"] == "metrics");
    let lines = if lines.iter().any(|l| l["signal"] == "traces") {
        lines
    } else {
        s.wait_for(1, |l| l["signal"] == "traces")
    };
    let (spans, metrics) = received(&lines);
    assert!(spans.iter().any(|n| n.contains("http_server")), "{spans:?}");
    assert!(
        metrics.iter().any(|n| n.contains("monkit.function.calls")),
        "{metrics:?}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn tavern_exports_over_grpc_with_gzip() {
    if !have_peers() {
        return;
    }
    let s = sink::<&str>(&[]);
    let endpoint = format!("127.0.0.1:{}", s.port);
    let t = tavern(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
        ("OTEL_TRACES_SAMPLER", "always_on"),
    ]);
    assert_eq!(
        post(&format!("{}/greet", t.api), r#"{"name":"ann","age":34}"#).0,
        200
    );
    s.wait_for(1, |l| l["signal"] == "metrics");
    let lines = s.wait_for(1, |l| {
        l["signal"] == "traces"
            && otlp::decode(&[], &py_sink::body(l)).iter().any(|s| {
                s["name"]
                    .as_str()
                    .is_some_and(|n| n.contains("greet_customer"))
            })
    });
    let (spans, metrics) = received(&lines);
    assert!(spans.iter().any(|n| n.contains("POST /greet")), "{spans:?}");
    assert!(
        metrics
            .iter()
            .any(|n| n.contains("monkit.function.duration")),
        "{metrics:?}"
    );
}
