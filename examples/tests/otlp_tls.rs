//! tavern exports traces and metrics over OTLP/HTTP with mutual TLS, configured only by the
//! standard variables, to a Python `ssl` sink (`testsupport/tls_sink.py`) with certificates
//! `openssl` makes here; what arrives is read by the official classes.

mod common;
use monkit_testsupport::otlp;
use monkit_testsupport::pki;
use monkit_testsupport::py_sink;

use common::{peers, post, tavern};
use py_sink::PySink;

#[test]
fn tavern_exports_over_https_with_mutual_tls() {
    if !peers::have("openssl", "openssl")
        || !peers::have_python(
            &["opentelemetry.proto.collector.trace.v1.trace_service_pb2"],
            "opentelemetry-proto (pip)",
        )
    {
        return;
    }
    let d = pki::dir("tavern-tls");
    pki::pki(&d, "ca", "server", "IP:127.0.0.1");
    pki::pki(&d, "ca", "client", "DNS:tavern");
    let p = |f: &str| d.join(f).display().to_string();
    let args = [p("server.pem"), p("server.key"), p("ca.pem")];
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    let s = PySink::start("tls_sink.py", &args);
    let endpoint = format!("https://127.0.0.1:{}", s.port);
    let (ca, cert, key) = (p("ca.pem"), p("client.pem"), p("client.key"));
    let t = tavern(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", &ca),
        ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &cert),
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", &key),
        ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
        ("OTEL_TRACES_SAMPLER", "always_on"),
    ]);
    assert_eq!(
        post(&format!("{}/greet", t.api), r#"{"name":"cy","age":52}"#).0,
        200
    );
    let lines = s.wait_for(1, |l| l["path"] == "/v1/metrics");
    let lines = s
        .wait_for(1, |l| {
            l["path"] == "/v1/traces"
                && otlp::decode(&[], &py_sink::body(l)).iter().any(|s| {
                    s["name"]
                        .as_str()
                        .is_some_and(|n| n.contains("POST /greet"))
                })
        })
        .into_iter()
        .chain(lines)
        .collect::<Vec<_>>();
    // Every request came with the client certificate tavern was given.
    assert!(
        lines
            .iter()
            .filter(|l| l["body"].is_string())
            .all(|l| l["client"]
                .as_str()
                .is_some_and(|c| c.contains("commonName=client"))),
        "{lines:?}"
    );
    let metrics = lines
        .iter()
        .filter(|l| l["path"] == "/v1/metrics")
        .flat_map(|l| otlp::decode_metrics(&[], &py_sink::body(l)))
        .collect::<Vec<_>>();
    assert!(
        metrics.iter().any(|m| m["name"] == "monkit.function.calls"),
        "{metrics:?}"
    );
    let _ = std::fs::remove_dir_all(&d);
}
