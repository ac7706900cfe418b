//! What the OTLP exporter sends, decoded by the official OpenTelemetry protobuf classes
//! (PyPI `opentelemetry-proto`) and checked span by span against what the program did; and
//! how it behaves when the collector is down, failing or slow. The receiving end is a sink
//! that stores request bodies for the decoder, not a collector.

use monkit_testsupport::otlp;
use monkit_testsupport::peers;
use monkit_testsupport::ports;
use monkit_testsupport::sink;

use otlp::decode;

use monkit::{FinishedSpan, SpanObserver};
use serde_json::Value;
use sink::{sink, FAIL_503, OK, SLOW};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Keeps what the program itself saw of every recorded span.
#[derive(Default)]
struct Seen(Mutex<Vec<FinishedSpan>>);

impl SpanObserver for Seen {
    fn finish(&self, s: &FinishedSpan) {
        self.0.lock().unwrap().push(s.clone());
    }
}

#[derive(Debug)]
struct Timeout;
impl monkit::ErrorKind for Timeout {
    fn error_kind(&self) -> &'static str {
        "timeout"
    }
}

#[monkit::task(args)]
fn lookup(key: &str) -> Result<u64, Timeout> {
    std::thread::sleep(Duration::from_millis(2));
    if key == "slow" {
        Err(Timeout)
    } else {
        Ok(7)
    }
}

#[monkit::task]
fn handle(n: u32) {
    monkit::annotate(monkit::export::keys::SPAN_KIND, "server");
    monkit::annotate("http.method", "GET");
    let _ = lookup("fast");
    let _ = lookup("slow");
    static MON: monkit::Scope = monkit::scope!();
    MON.func_with("step", &[("workflow", "checkout")])
        .task(|| std::hint::black_box(n));
}

/// An async step whose first poll blocks: a slow poll, an event of its span.
#[monkit::task]
async fn blocking_step() {
    std::thread::sleep(Duration::from_millis(15));
    tokio::task::yield_now().await;
}

/// Both tests set the same process tags before anything reads them (whichever runs first).
fn set_tags() {
    let _ = monkit::registry::set_process_tags(&[("instance", "otlp-test")]);
    assert_eq!(
        monkit::registry::process_tags().get("instance"),
        Some("otlp-test")
    );
}

fn hex(v: &Value) -> String {
    v.as_str().unwrap().to_owned()
}

#[test]
fn spans_decoded_by_the_official_classes_and_faults() {
    if !peers::have_python(
        &["opentelemetry.proto.collector.trace.v1.trace_service_pb2"],
        "opentelemetry-proto (pip)",
    ) {
        return;
    }
    set_tags();
    let reg = monkit::default_registry();
    let s = sink("/v1/traces");
    let seen = Arc::new(Seen::default());
    let _seen = reg.observe(seen.clone());
    let exporter = monkit_otlp::Builder::new(&s.url)
        .service_name("otlp-test")
        .gzip(true)
        .batch(3, Duration::from_millis(50))
        .install(reg)
        .unwrap();
    for n in 0..3 {
        handle(n);
    }
    monkit::polls::set_slow_poll(Duration::from_millis(10));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(blocking_step());
    assert!(exporter.flush(Duration::from_secs(10)));

    let got = s.got.lock().unwrap().clone();
    assert!(got.len() >= 2, "batches of 3 spans: {} requests", got.len());
    let mut spans = Vec::new();
    for (headers, body) in &got {
        let ct = headers.iter().find(|(k, _)| k == "content-type").unwrap();
        assert_eq!(ct.1, "application/x-protobuf");
        spans.extend(decode(headers, body));
    }
    let program = seen.0.lock().unwrap().clone();
    assert_eq!(spans.len(), program.len(), "every recorded span sent once");
    assert_eq!(program.len(), 3 * 4 + 1);
    for p in &program {
        let id = format!("{:016x}", p.start.span_id);
        let d = spans
            .iter()
            .find(|d| d["span_id"] == id.as_str())
            .unwrap_or_else(|| panic!("span {id} not sent"));
        assert_eq!(hex(&d["trace_id"]), format!("{:032x}", p.start.trace_id));
        assert_eq!(
            hex(&d["parent_span_id"]),
            p.start
                .parent_id
                .map_or(String::new(), |x| format!("{x:016x}"))
        );
        assert_eq!(d["name"], p.start.full_name());
        assert_eq!(d["start"], p.start.start_unix_ns);
        assert_eq!(d["end"], p.finish_unix_ns);
        assert_eq!(d["resource"]["service.name"], "otlp-test");
        assert_eq!(d["resource"]["instance"], "otlp-test");
        assert_eq!(d["scope"], "monkit");
        let attrs = &d["attributes"];
        match p.start.name() {
            "handle" => {
                assert_eq!(d["kind"], 2, "SERVER");
                assert_eq!(d["parent_span_id"], "");
                assert_eq!(attrs["http.method"], "GET");
                assert_eq!(d["status_code"], 0, "success leaves the status unset");
            }
            "lookup" => {
                assert_eq!(d["kind"], 1, "INTERNAL");
                let key = if p.outcome == monkit::Outcome::Ok {
                    "fast"
                } else {
                    "slow"
                };
                assert_eq!(attrs["args"], format!("key={key:?}").as_str());
                if p.outcome != monkit::Outcome::Ok {
                    assert_eq!(d["status_code"], 2, "ERROR");
                    assert_eq!(d["status_message"], "timeout");
                    assert_eq!(attrs["error.type"], "timeout");
                }
            }
            "step" => assert_eq!(attrs["workflow"], "checkout", "the function's tags"),
            "blocking_step" => {
                // Its polls as attributes, the slow one an event at the span's start.
                assert_eq!(attrs["monkit.polls"], 2, "{d}");
                let busy = attrs["monkit.busy_ns"].as_u64().unwrap();
                assert!(busy >= 15_000_000 && busy <= p.duration_ns(), "{d}");
                let events = d["events"].as_array().unwrap();
                assert_eq!(events.len(), 1, "{d}");
                assert_eq!(events[0]["name"], "slow poll");
                assert_eq!(events[0]["time"], p.start.start_unix_ns);
                assert!(events[0]["attributes"]["monkit.poll_ns"].as_u64().unwrap() >= 15_000_000);
            }
            other => panic!("unexpected span {other}"),
        }
        // A child lies within its parent.
        if let Some(parent) = program
            .iter()
            .find(|x| Some(x.start.span_id) == p.start.parent_id)
        {
            assert!(p.start.start_unix_ns >= parent.start.start_unix_ns);
            assert!(p.finish_unix_ns <= parent.finish_unix_ns);
        }
    }

    // Faults. Pushed back with 503: retried, then sent once it recovers.
    let stat = |name: &str| -> f64 {
        let mut v = 0.0;
        reg.stats(|k, f, x| {
            if k.measurement == name && f == "total" && k.tags.get("scope") == Some("monkit_otlp") {
                v = x;
            }
        });
        v
    };
    s.mode.store(FAIL_503, Ordering::Relaxed);
    let before = s.got.lock().unwrap().len();
    handle(9);
    std::thread::sleep(Duration::from_millis(600));
    assert!(stat("batches_retried") >= 1.0, "retried on 503");
    s.mode.store(OK, Ordering::Relaxed);
    assert!(exporter.flush(Duration::from_secs(20)));
    assert!(
        s.got.lock().unwrap().len() > before,
        "sent after recovering"
    );

    // Slow: the program does not wait for the collector.
    s.mode.store(SLOW, Ordering::Relaxed);
    let t = Instant::now();
    for n in 0..100 {
        handle(n);
    }
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "the program waited: {:?}",
        t.elapsed()
    );
    s.mode.store(OK, Ordering::Relaxed);
    exporter.shutdown(Duration::from_secs(20));
    assert_eq!(stat("spans_dropped"), 0.0);
    assert!(stat("spans_sent") >= 3.0 * 4.0 + 4.0 + 400.0 - stat("spans_failed"));
}

#[test]
fn a_collector_that_is_down_costs_counted_drops() {
    set_tags();
    let reg = monkit::Registry::new();
    // A port nobody listens on.
    let port = ports::free_port();
    let exporter = monkit_otlp::Builder::new(&format!("http://127.0.0.1:{port}/v1/traces"))
        .queue_capacity(10)
        .batch(5, Duration::from_millis(10))
        .retries(1, Duration::from_millis(10), Duration::from_millis(20))
        .install(&reg)
        .unwrap();
    let f = reg.scope("down").func("work");
    let t = Instant::now();
    for _ in 0..1000 {
        f.task(|| ());
    }
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    exporter.shutdown(Duration::from_secs(5));
    let (mut dropped, mut failed, mut sent) = (0.0, 0.0, 0.0);
    reg.stats(|k, f, v| {
        if f == "total" {
            match k.measurement.as_str() {
                "spans_dropped" => dropped = v,
                "spans_failed" => failed = v,
                "spans_sent" => sent = v,
                _ => {}
            }
        }
    });
    assert_eq!(sent, 0.0);
    assert_eq!(
        dropped + failed,
        1000.0,
        "every span counted: dropped or failed"
    );
    assert!(dropped > 0.0, "the bounded queue dropped");
}
