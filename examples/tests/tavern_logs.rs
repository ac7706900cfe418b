//! tavern's log lines over OTLP, configured only by the standard variables, at a real
//! collector (rotel's `rotel-agent`, printing what it takes): over HTTP and over gRPC, each
//! workflow step's record carries the trace and span ids of the call that wrote it, and the
//! same trace's spans arrive at the same collector.

mod common;
use monkit_testsupport::rotel::Rotel;

use common::{post, tavern};

/// The trace and span ids rotel printed for the log record whose body is `body`, and the name
/// of the span with those ids, once it has printed both.
fn ids_at_collector(rotel: &Rotel, body: &str) -> (String, String, String) {
    rotel.wait_for(&format!("{body:?} with the span that wrote it"), |said| {
        let record = said
            .split("LogRecord #")
            .find(|r| r.contains(&format!("Body: Str({body})")));
        let id = |block: &str, label: &str| {
            block
                .lines()
                .find_map(|l| l.trim().strip_prefix(label))
                .map(|v| v.trim_start_matches([' ', ':']).trim().to_owned())
        };
        if let Some(r) = record {
            let (t, s) = (id(r, "Trace ID"), id(r, "Span ID"));
            if let (Some(t), Some(s)) = (t, s) {
                // The span that wrote it, exported to the same collector.
                let span = said.split("Span #").skip(1).find(|b| {
                    id(b, "Trace ID").as_deref() == Some(t.as_str())
                        && id(b, "ID").as_deref() == Some(s.as_str())
                });
                return span.and_then(|b| id(b, "Name")).map(|name| (t, s, name));
            }
        }
        None
    })
}

#[test]
fn tavern_logs_reach_a_real_collector_with_their_trace_ids() {
    let Some(r) = Rotel::start(&["logs", "traces"]) else {
        return;
    };
    for (protocol, endpoint) in [
        ("http/protobuf", format!("http://127.0.0.1:{}", r.http)),
        ("grpc", format!("http://127.0.0.1:{}", r.grpc)),
    ] {
        let t = tavern(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_METRIC_EXPORT_INTERVAL", "600000"),
        ]);
        let who = format!("guest-{}", protocol.len());
        let (s, b) = post(
            &format!("{}/greet", t.api),
            &format!(r#"{{"name":"{who}","age":30}}"#),
        );
        assert_eq!(s, 200, "{b}");
        let (s, b) = post(
            &format!("{}/order", t.api),
            &format!(r#"{{"customer":"{who}","item":"ale"}}"#),
        );
        assert_eq!(s, 200, "{b}");
        let (trace, span, name) = ids_at_collector(&r, &format!("booked ale for {who}"));
        assert_eq!((trace.len(), span.len()), (32, 16), "{protocol}");
        assert_eq!(name, "tavern::workflows.process_order", "{protocol}");
        // The step's earlier line, from the same call: the same ids.
        let (t2, s2, _) = ids_at_collector(&r, &format!("found {who}"));
        assert_eq!((t2, s2), (trace, span), "{protocol}: one call, one span");
    }
}
