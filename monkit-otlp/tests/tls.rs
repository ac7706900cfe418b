//! The OTLP exporter over https and mutual TLS, to a Python `ssl` sink with certificates made
//! here by `openssl`: spans arrive and are decoded by the official OpenTelemetry classes; a
//! wrong CA, a name that does not match and a missing client certificate are refused, counted
//! and never retried; a missing certificate file is a clear error when the exporter is built.

use monkit_testsupport::otlp;
use monkit_testsupport::peers;
use monkit_testsupport::pki;

use monkit_testsupport::py_sink;
use monkit_testsupport::totals;

use pki::pki;
use py_sink::PySink;

use serde_json::Value;
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

fn sink(dir: &Path, cert: &str, client_ca: Option<&str>) -> PySink {
    let files = [
        dir.join(format!("{cert}.pem")),
        dir.join(format!("{cert}.key")),
    ];
    let ca = client_ca.map(|c| dir.join(format!("{c}.pem")));
    let args: Vec<&OsStr> = files.iter().chain(&ca).map(|p| p.as_os_str()).collect();
    PySink::start("tls_sink.py", &args)
}

/// The exporter's counts in `reg`: (sent, failed, refused batches, retried batches).
fn counts(reg: &monkit::Registry) -> (f64, f64, f64, f64) {
    let t = |name| totals::total(reg, name);
    (
        t("spans_sent"),
        t("spans_failed"),
        t("batches_refused"),
        t("batches_retried"),
    )
}

/// Sends three spans through an exporter `configure` makes; the registry, once flushed.
fn export(
    url: &str,
    configure: impl FnOnce(monkit_otlp::Builder) -> monkit_otlp::Builder,
) -> monkit::Registry {
    let reg = monkit::Registry::new();
    let exporter = configure(monkit_otlp::Builder::new(url))
        .batch(3, Duration::from_millis(20))
        .retries(2, Duration::from_millis(10), Duration::from_millis(20))
        .install(&reg)
        .unwrap();
    let f = reg.scope("tls").func("work");
    for _ in 0..3 {
        f.task(|| ());
    }
    exporter.shutdown(Duration::from_secs(10));
    reg
}

/// The sink's lines once they hold a body.
fn bodies(s: &PySink) -> Vec<Value> {
    s.wait_for(1, |l| l["body"].is_string())
}

#[test]
fn spans_go_over_https_and_mutual_tls_and_bad_peers_are_refused() {
    if !peers::have("openssl", "openssl")
        || !peers::have_python(
            &["opentelemetry.proto.collector.trace.v1.trace_service_pb2"],
            "opentelemetry-proto (pip)",
        )
    {
        return;
    }
    let d = pki::dir("otlp-tls");
    pki(&d, "ca", "server", "IP:127.0.0.1,DNS:localhost");
    pki(&d, "ca", "client", "DNS:client");
    pki(&d, "ca", "elsewhere", "DNS:elsewhere.test");
    pki(&d, "other_ca", "stranger", "IP:127.0.0.1");
    let ca = d.join("ca.pem");

    // https with the private CA.
    let s = sink(&d, "server", None);
    let url = format!("https://127.0.0.1:{}/v1/traces", s.port);
    let reg = export(&url, |b| b.tls_ca(&ca));
    assert_eq!(counts(&reg).0, 3.0, "sent over https");
    let got = bodies(&s);
    let spans: Vec<Value> = got
        .iter()
        .filter(|l| l["body"].is_string())
        .flat_map(|l| otlp::decode(&[], &py_sink::body(l)))
        .collect();
    assert_eq!(spans.len(), 3, "{got:?}");
    assert!(spans.iter().all(|s| s["name"] == "tls.work"));

    // The same sink, but trusting another CA: refused for good, never retried.
    let reg = export(&url, |b| b.tls_ca(d.join("other_ca.pem")));
    let (sent, failed, refused, retried) = counts(&reg);
    assert_eq!((sent, failed, retried), (0.0, 3.0, 0.0));
    assert!(refused >= 1.0);
    // Mozilla's roots do not know a private CA either.
    let reg = export(&url, |b| b);
    assert_eq!(counts(&reg).0, 0.0);
    assert_eq!(counts(&reg).1, 3.0);
    drop(s);

    // A certificate for another name.
    let s = sink(&d, "elsewhere", None);
    let reg = export(&format!("https://127.0.0.1:{}/v1/traces", s.port), |b| {
        b.tls_ca(&ca)
    });
    assert_eq!(
        (counts(&reg).0, counts(&reg).1, counts(&reg).3),
        (0.0, 3.0, 0.0)
    );
    drop(s);

    // Mutual TLS: with the client certificate, and without it.
    let s = sink(&d, "server", Some("ca"));
    let url = format!("https://127.0.0.1:{}/v1/traces", s.port);
    let reg = export(&url, |b| {
        b.tls_ca(&ca)
            .tls_client_cert(d.join("client.pem"), d.join("client.key"))
    });
    assert_eq!(counts(&reg).0, 3.0, "sent over mutual TLS");
    let clients: Vec<Value> = bodies(&s)
        .iter()
        .filter(|l| l["body"].is_string())
        .map(|l| l["client"].clone())
        .collect();
    assert!(
        clients
            .iter()
            .all(|c| c.as_str().is_some_and(|c| c.contains("commonName=client"))),
        "{clients:?}"
    );
    let reg = export(&url, |b| b.tls_ca(&ca));
    assert_eq!(counts(&reg).0, 0.0, "no client certificate, no entry");
    assert_eq!(counts(&reg).1, 3.0);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn missing_or_malformed_files_are_named_when_building() {
    let d = pki::dir("otlp-tls");
    let e = monkit_otlp::Builder::new("https://127.0.0.1:1/v1/traces")
        .tls_ca(d.join("no-such-ca.pem"))
        .install(&monkit::Registry::new())
        .unwrap_err();
    assert!(e.to_string().contains("no-such-ca.pem"), "{e}");
    std::fs::write(d.join("junk.pem"), "not a certificate\n").unwrap();
    let e = monkit_otlp::Builder::new("https://127.0.0.1:1/v1/traces")
        .tls_ca(d.join("junk.pem"))
        .install(&monkit::Registry::new())
        .unwrap_err();
    assert!(e.to_string().contains("junk.pem"), "{e}");
    assert!(e.to_string().contains("CERTIFICATE"), "{e}");
}
