//! tavern's log lines over OTLP, configured only by the standard variables, at a real
//! collector (rotel's `rotel-agent`, printing what it takes): over HTTP and over gRPC, each
//! workflow step's record carries the trace and span ids of the call that wrote it, and the
//! same trace's spans arrive at the same collector.

mod common;
use monkit_testsupport::{peers, ports};

use common::{post, tavern, Killed};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// rotel-agent listening on free HTTP and gRPC ports, printing logs and spans to a file.
struct Rotel {
    _child: Killed,
    out: std::path::PathBuf,
    http: u16,
    grpc: u16,
}

fn rotel() -> Option<Rotel> {
    let agent = peers::rotel_agent()?;
    let (http, grpc) = (ports::free_port(), ports::free_port());
    let out = std::env::temp_dir().join(format!("tavern-rotel-{http}.log"));
    let child = Command::new(agent)
        .args(["start", "--exporter", "blackhole"])
        .args(["--debug-log", "logs", "--debug-log", "traces"])
        .args(["--debug-log-verbosity", "detailed"])
        .args(["--otlp-http-endpoint", &format!("127.0.0.1:{http}")])
        .args(["--otlp-grpc-endpoint", &format!("127.0.0.1:{grpc}")])
        .stdout(Stdio::from(std::fs::File::create(&out).unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .expect("rotel-agent starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", http)).is_err() {
        assert!(Instant::now() < deadline, "rotel-agent never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Rotel {
        _child: Killed(child),
        out,
        http,
        grpc,
    })
}

/// The trace and span ids rotel printed for the log record whose body is `body`, and the name
/// of the span with those ids, once it has printed both.
fn ids_at_collector(out: &std::path::Path, body: &str) -> (String, String, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let said = std::fs::read_to_string(out).unwrap_or_default();
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
                if let Some(name) = span.and_then(|b| id(b, "Name")) {
                    return (t, s, name);
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "rotel never printed {body:?} with a trace that also has spans:\n{said}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn tavern_logs_reach_a_real_collector_with_their_trace_ids() {
    let Some(r) = rotel() else {
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
        let (trace, span, name) = ids_at_collector(&r.out, &format!("booked ale for {who}"));
        assert_eq!((trace.len(), span.len()), (32, 16), "{protocol}");
        assert_eq!(name, "tavern::workflows.process_order", "{protocol}");
        // The step's earlier line, from the same call: the same ids.
        let (t2, s2, _) = ids_at_collector(&r.out, &format!("found {who}"));
        assert_eq!((t2, s2), (trace, span), "{protocol}: one call, one span");
    }
    let _ = std::fs::remove_file(&r.out);
}
