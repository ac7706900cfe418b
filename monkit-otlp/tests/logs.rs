//! OTLP logs: `log` records written inside `#[task]` calls, through `monkit::bridge::LogBridge`,
//! decoded by the official OpenTelemetry classes (a sink stores the bodies; it is not a
//! collector) with the trace and span ids of the spans exported for the same calls; then sent
//! over HTTP and gRPC to a real collector, rotel's `rotel-agent`, which prints what it took.
//! One test: the logger is process-wide.

use monkit_testsupport::{otlp, peers, sink};
use serde_json::Value;
use std::sync::Mutex;
use std::time::Duration;

/// The ids of each `take_order` call, as the program saw them.
static CALLS: Mutex<Vec<(u64, monkit::SpanRef)>> = Mutex::new(Vec::new());

#[monkit::task]
fn take_order(n: u64) {
    CALLS
        .lock()
        .unwrap()
        .push((n, monkit::current_span().unwrap()));
    log::info!(order = n; "order {n} taken");
    log::debug!("not sent: below the bridge's level");
}

/// A logger that drops everything: what goes out is the sinks' business here.
struct Quiet;
impl log::Log for Quiet {
    fn enabled(&self, _: &log::Metadata) -> bool {
        false
    }
    fn log(&self, _: &log::Record) {}
    fn flush(&self) {}
}

fn ids_of(n: u64) -> monkit::SpanRef {
    CALLS
        .lock()
        .unwrap()
        .iter()
        .find(|(m, _)| *m == n)
        .map(|(_, s)| *s)
        .unwrap()
}

#[test]
fn logs_carry_their_spans_ids_to_the_official_classes_and_a_real_collector() {
    if !peers::have_python(
        &["opentelemetry.proto.collector.logs.v1.logs_service_pb2"],
        "opentelemetry-proto (pip)",
    ) {
        return;
    }
    monkit::bridge::LogBridge::new(Quiet)
        .max_level(log::LevelFilter::Info)
        .install()
        .unwrap();
    let reg = monkit::default_registry();

    // The official classes: spans and logs of the same calls, side by side.
    let traces = sink::sink("/v1/traces");
    let logs = sink::sink("/v1/logs");
    let spans = monkit_otlp::Builder::new(&traces.url)
        .service_name("logs-test")
        .install(reg)
        .unwrap();
    let exporter = monkit_otlp::LogsBuilder::new(&logs.url)
        .service_name("logs-test")
        .gzip(true)
        .install(reg)
        .unwrap();
    log::warn!("outside any call");
    take_order(7);
    assert!(spans.flush(Duration::from_secs(10)));
    assert!(exporter.flush(Duration::from_secs(10)));
    let records: Vec<Value> = logs
        .got
        .lock()
        .unwrap()
        .iter()
        .flat_map(|(h, b)| otlp::decode_logs(h, b))
        .collect();
    let exported: Vec<Value> = traces
        .got
        .lock()
        .unwrap()
        .iter()
        .flat_map(|(h, b)| otlp::decode(h, b))
        .collect();
    assert_eq!(records.len(), 2, "{records:#?}");
    let outside = &records[0];
    assert_eq!(outside["body"], "outside any call");
    assert_eq!(outside["severity_number"], 13);
    assert_eq!(outside["trace_id"], "", "no span, no ids");
    let r = &records[1];
    assert_eq!(r["body"], "order 7 taken");
    assert_eq!(
        (r["severity_number"].clone(), r["severity_text"].clone()),
        (9.into(), "INFO".into())
    );
    assert_eq!(r["attributes"]["order"], "7");
    assert_eq!(r["attributes"]["code.namespace"], "logs");
    assert_eq!(r["resource"]["service.name"], "logs-test");
    assert_eq!(r["scope"], "monkit");
    let call = exported
        .iter()
        .find(|s| s["name"] == "logs.take_order")
        .expect("the call's span was exported");
    assert_eq!(
        r["trace_id"], call["trace_id"],
        "the record's trace is its span's"
    );
    assert_eq!(r["span_id"], call["span_id"]);
    assert_eq!(r["trace_id"], format!("{:032x}", ids_of(7).trace_id()));
    assert_eq!(r["flags"], 1, "sampled");
    let t = r["time"].as_u64().unwrap();
    assert!(t >= call["start"].as_u64().unwrap() && t <= call["end"].as_u64().unwrap());
    assert!(exporter.shutdown(Duration::from_secs(5)));
    drop(spans);

    // A real collector, over HTTP and over gRPC.
    let Some(rotel) = monkit_testsupport::rotel::Rotel::start(&["logs"]) else {
        return;
    };
    let (http, grpc) = (rotel.http, rotel.grpc);
    let over_http = monkit_otlp::LogsBuilder::new(&format!("http://127.0.0.1:{http}/v1/logs"));
    // gRPC with the feature `grpc` (the full test script turns it on).
    let over_grpc = cfg!(feature = "grpc").then(|| {
        monkit_otlp::LogsBuilder::new(&format!("http://127.0.0.1:{grpc}"))
            .protocol(monkit_otlp::Protocol::Grpc)
    });
    for (n, builder) in [(8, Some(over_http)), (9, over_grpc)] {
        let Some(builder) = builder else { continue };
        let e = builder.service_name("logs-test").install(reg).unwrap();
        take_order(n);
        assert!(e.shutdown(Duration::from_secs(10)), "sent to rotel");
        let ids = ids_of(n);
        let want = [
            format!("Body: Str(order {n} taken)"),
            format!("Trace ID       : {:032x}", ids.trace_id()),
            format!("Span ID        : {:016x}", ids.span_id()),
        ];
        rotel.wait_for(&format!("{want:?}"), |said| {
            want.iter().all(|w| said.contains(w.as_str())).then_some(())
        });
    }
}
