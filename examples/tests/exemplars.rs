//! From a latency number to its trace: vlite exports its traces over OTLP to a sink that
//! stores them for the official decoder, serves `/metrics` as OpenMetrics with exemplars on
//! its bucket lines (accepted by the strict `prometheus_client` parser), and a real Prometheus
//! 2.42 with exemplar storage scrapes it: the trace ids `/api/v1/query_exemplars` returns are
//! trace ids the sink received.

mod common;
use monkit_testsupport::otlp;
use monkit_testsupport::sink;

use common::{peers, vlite, Prometheus};
use serde_json::Value;
use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

/// The trace ids of every span the sink holds, read by the official OTLP classes.
fn exported_trace_ids(s: &sink::Sink) -> HashSet<String> {
    let mut ids = HashSet::new();
    for (headers, body) in s.got.lock().unwrap().iter() {
        for sp in otlp::decode(headers, body) {
            ids.insert(sp["trace_id"].as_str().unwrap().to_owned());
        }
    }
    ids
}

#[test]
fn exemplars_lead_from_the_histogram_to_exported_traces() {
    if !peers::have_python(
        &[
            "opentelemetry.proto.collector.trace.v1.trace_service_pb2",
            "prometheus_client.openmetrics.parser",
        ],
        "opentelemetry-proto prometheus-client (pip)",
    ) {
        return;
    }
    let s = sink::sink("/v1/traces");
    let m = sink::sink("/v1/metrics");
    let v = vlite(
        None,
        &[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &s.url),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", &m.url),
            ("OTEL_METRIC_EXPORT_INTERVAL", "500"),
            ("OTEL_TRACES_SAMPLER", "always_on"),
        ],
        None,
    );
    for _ in 0..10 {
        for p in ["/", "/slow"] {
            let _ = ureq::get(&format!("http://{}{p}", v.proxy)).call();
        }
    }
    let page = ureq::get(&format!("{}/metrics", v.mon))
        .set("accept", "application/openmetrics-text; version=1.0.0")
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let with_exemplar: Vec<&str> = page
        .lines()
        .filter(|l| l.contains("_bucket{") && l.contains(" # {trace_id=\""))
        .collect();
    assert!(
        !with_exemplar.is_empty(),
        "exemplars on bucket lines: {page}"
    );
    // The strict OpenMetrics parser reads the whole page, exemplars included.
    let check = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
n = 0
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        if s.exemplar is not None:
            n += 1
            assert len(s.exemplar.labels["trace_id"]) == 32
print(n)
"#;
    let out = peers::pipe(
        Command::new("python3").arg("-c").arg(check),
        page.as_bytes(),
    );
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused the page: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(parsed, with_exemplar.len());

    // Prometheus with exemplar storage scrapes it (OpenMetrics, by its Accept header).
    let mon_port = v.mon.rsplit(':').next().unwrap().to_owned();
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: vlite\n    static_configs:\n      - targets: ['127.0.0.1:{mon_port}']\n"
    );
    let Some(prom) = Prometheus::start_with(&config, &["--enable-feature=exemplar-storage"]) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let found: Vec<String> = loop {
        for p in ["/", "/slow"] {
            let _ = ureq::get(&format!("http://{}{p}", v.proxy)).call();
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let r = ureq::get(&format!(
            "http://127.0.0.1:{}/api/v1/query_exemplars",
            prom.port
        ))
        .query("query", "monkit_function_duration_seconds_bucket")
        .query("start", &(now - 300).to_string())
        .query("end", &(now + 60).to_string())
        .call();
        if let Ok(r) = r {
            let body: Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
            let ids: Vec<String> = body["data"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|series| series["exemplars"].as_array().cloned().unwrap_or_default())
                .filter_map(|e| e["labels"]["trace_id"].as_str().map(str::to_owned))
                .collect();
            if !ids.is_empty() {
                break ids;
            }
        }
        assert!(Instant::now() < deadline, "Prometheus stored no exemplars");
        std::thread::sleep(Duration::from_millis(500));
    };
    // Every exemplar's trace was exported (give the exporter its batch interval).
    std::thread::sleep(Duration::from_millis(1500));
    let exported = exported_trace_ids(&s);
    eprintln!(
        "exemplars: {} bucket lines, {} in Prometheus, {} traces exported",
        with_exemplar.len(),
        found.len(),
        exported.len()
    );
    // /funcs/json lists each function's exemplars too, and they are exported traces as well.
    let funcs: Vec<Value> =
        serde_json::from_str(&common::get(&format!("{}/funcs/json", v.mon))).unwrap();
    let listed: Vec<String> = funcs
        .iter()
        .flat_map(|f| {
            f["success_exemplars"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|e| e["trace_id"].as_str().map(str::to_owned))
        .collect();
    assert!(!listed.is_empty());
    let exported = exported_trace_ids(&s);
    assert!(
        listed.iter().all(|t| exported.contains(t)),
        "every listed exemplar's trace was exported"
    );
    // The server spans carry OpenTelemetry's stable HTTP keys, the status code as an integer,
    // and the resource the SDK keys and this process's instance id.
    let all: Vec<Value> = s
        .got
        .lock()
        .unwrap()
        .iter()
        .flat_map(|(h, b)| otlp::decode(h, b))
        .collect();
    let server = all
        .iter()
        .find(|sp| sp["name"] == "http_server.GET /slow")
        .expect("a server span");
    assert_eq!(
        server["attributes"]["http.request.method"], "GET",
        "{server}"
    );
    assert_eq!(server["attributes"]["url.path"], "/slow");
    assert_eq!(
        server["attributes"]["http.response.status_code"], 200,
        "typed: {server}"
    );
    assert_eq!(server["kind"], 2, "SPAN_KIND_SERVER");
    assert_eq!(server["resource"]["telemetry.sdk.language"], "rust");
    assert!(server["resource"]["service.instance.id"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    // vlite pushes its stats over OTLP metrics too, from the standard variables.
    let (h, b) = m
        .got
        .lock()
        .unwrap()
        .last()
        .cloned()
        .expect("a metrics push");
    let metrics = otlp::decode_metrics(&h, &b);
    let calls = metrics
        .iter()
        .find(|m| m["name"] == "monkit.function.calls")
        .expect("function calls");
    assert!(
        calls["points"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["attributes"]["name"] == "GET /slow"),
        "{calls}"
    );
    let missing: Vec<&String> = found.iter().filter(|t| !exported.contains(*t)).collect();
    assert!(
        missing.is_empty(),
        "exemplar traces never exported: {missing:?} (of {})",
        found.len()
    );
}
