//! OTLP metrics decoded by the official OpenTelemetry classes: calls by outcome as monotonic
//! Sums, the duration ExponentialHistogram equal to the native buckets read at the same moment
//! (scale 6, index = key - 1), exemplars, sources, and delta temporality.

use monkit_testsupport::otlp;
use monkit_testsupport::peers;
use monkit_testsupport::sink;

use serde_json::Value;
use std::time::{Duration, Instant};

/// The newest request the sink holds once it holds `n`, decoded.
fn nth(s: &sink::Sink, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some((h, b)) = s.got.lock().unwrap().get(n - 1).cloned() {
            return otlp::decode_metrics(&h, &b);
        }
        assert!(Instant::now() < deadline, "fewer than {n} pushes");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn metric<'a>(all: &'a [Value], name: &str) -> &'a Value {
    all.iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {all:#?}"))
}

fn point<'a>(m: &'a Value, pairs: &[(&str, &str)]) -> &'a Value {
    m["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| pairs.iter().all(|(k, v)| p["attributes"][*k] == *v))
        .unwrap_or_else(|| panic!("{pairs:?} in {m:#}"))
}

#[test]
fn metrics_decoded_by_the_official_classes_match_the_native_buckets() {
    if !peers::have_python(
        &["opentelemetry.proto.collector.metrics.v1.metrics_service_pb2"],
        "opentelemetry-proto (pip)",
    ) {
        return;
    }
    let reg = monkit::Registry::new();
    reg.set_sampler(monkit::trace::Sampler::Always);
    let f = reg.scope("m").func("work");
    for i in 0..50u64 {
        f.task(|| std::thread::sleep(Duration::from_micros(i * 20)));
    }
    for _ in 0..3 {
        f.guard().fail("boom");
    }
    reg.scope("m").meter("jobs").mark(7);
    reg.scope("m")
        .float_gauge_with("load", &[("pool", "a")])
        .set(0.5);
    let native = f.stats().success_times.histogram();

    let s = sink::sink("/v1/metrics");
    let exporter = monkit_otlp::MetricsBuilder::new(&s.url)
        .interval(Duration::from_millis(50))
        .gzip(true)
        .install(&reg)
        .unwrap();
    let got = nth(&s, 1);
    drop(exporter);

    let calls = metric(&got, "monkit.function.calls");
    assert_eq!(
        (calls["kind"].as_str(), calls["monotonic"].as_bool()),
        (Some("sum"), Some(true))
    );
    assert_eq!(calls["temporality"], 2, "cumulative");
    assert_eq!(
        point(calls, &[("name", "work"), ("outcome", "success")])["value"],
        50.0
    );
    assert_eq!(
        point(
            calls,
            &[
                ("name", "work"),
                ("outcome", "error"),
                ("error.type", "boom")
            ]
        )["value"],
        3.0
    );
    let d = point(
        metric(&got, "monkit.function.duration"),
        &[("name", "work"), ("kind", "success")],
    );
    assert_eq!(d["scale"], 6);
    assert_eq!(d["count"], native.count);
    let first = native.positive[0].0;
    assert_eq!(d["offset"], first - 1, "OTLP index = native key - 1");
    let counts: Vec<u64> = d["bucket_counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    for (k, n) in &native.positive {
        assert_eq!(counts[(k - first) as usize], *n, "bucket {k}");
    }
    assert_eq!(
        counts.iter().sum::<u64>() + d["zero_count"].as_u64().unwrap(),
        native.count
    );
    assert!(
        !d["exemplars"].as_array().unwrap().is_empty(),
        "exemplars of recorded calls"
    );
    assert_eq!(d["exemplars"][0]["trace_id"].as_str().unwrap().len(), 32);
    assert_eq!(
        point(metric(&got, "jobs"), &[("monkit.scope", "m")])["value"],
        7.0
    );
    assert_eq!(point(metric(&got, "load"), &[("pool", "a")])["value"], 0.5);
    assert_eq!(metric(&got, "load")["kind"], "gauge");
    assert!(metric(&got, "monkit.function.running")["resource"]["service.instance.id"].is_string());
}

#[test]
fn delta_temporality_sends_what_changed() {
    if !peers::have_python(
        &["opentelemetry.proto.collector.metrics.v1.metrics_service_pb2"],
        "opentelemetry-proto (pip)",
    ) {
        return;
    }
    let reg = monkit::Registry::new();
    let f = reg.scope("d").func("step");
    for _ in 0..10 {
        f.task(|| ());
    }
    let s = sink::sink("/v1/metrics");
    let exporter = monkit_otlp::MetricsBuilder::new(&s.url)
        .interval(Duration::from_millis(300))
        .temporality(monkit_otlp::Temporality::Delta)
        .install(&reg)
        .unwrap();
    let first = nth(&s, 1);
    for _ in 0..4 {
        f.task(|| ());
    }
    // Every push after the first, up to one that began after the calls (a loaded machine
    // may push between the first and the calls): their deltas add up to what changed.
    let pushed = s.got.lock().unwrap().len();
    let after: Vec<Vec<Value>> = (2..=pushed + 1).map(|n| nth(&s, n)).collect();
    drop(exporter);
    // A push where nothing changed may leave a point out: zero.
    let calls = |m: &[Value]| {
        m.iter()
            .find(|x| x["name"] == "monkit.function.calls")
            .map_or(0.0, |c| {
                point(c, &[("name", "step"), ("outcome", "success")])["value"]
                    .as_f64()
                    .unwrap()
            })
    };
    assert_eq!(
        metric(&first, "monkit.function.calls")["temporality"],
        1,
        "delta"
    );
    assert_eq!(calls(&first), 10.0);
    let changed: f64 = after.iter().map(|m| calls(m)).sum();
    assert_eq!(
        changed,
        4.0,
        "only what changed, over {} pushes",
        after.len()
    );
    let dur = |m: &[Value]| {
        m.iter()
            .find(|x| x["name"] == "monkit.function.duration")
            .map_or(0, |d| {
                point(d, &[("name", "step"), ("kind", "success")])["count"]
                    .as_u64()
                    .unwrap()
            })
    };
    assert_eq!(dur(&first), 10);
    assert_eq!(after.iter().map(|m| dur(m)).sum::<u64>(), 4);
}

#[test]
fn the_metrics_variables() {
    let e = monkit_otlp::MetricsBuilder::new("ftp://x")
        .install(&monkit::Registry::new())
        .unwrap_err();
    assert!(e.to_string().contains("ftp://x"), "{e}");
}
