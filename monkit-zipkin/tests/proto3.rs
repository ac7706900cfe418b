//! The proto3 encoding, gzip-compressed, decoded with the official `zipkin.proto` (compiled
//! by protoc at test time) and checked span by span against the JSON encoding of the same
//! spans, which the other tests check against Zipkin's schema and Go model.

use monkit_testsupport::peers;
use monkit_testsupport::sink;

use monkit::{FinishedSpan, SpanObserver};
use serde_json::Value;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Seen(Mutex<Vec<FinishedSpan>>);

impl SpanObserver for Seen {
    fn finish(&self, s: &FinishedSpan) {
        self.0.lock().unwrap().push(s.clone());
    }
}

fn proto_dir() -> Option<std::path::PathBuf> {
    let d = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/zipkin");
    d.join("zipkin.proto").exists().then_some(d)
}

#[test]
fn proto3_bodies_decoded_by_the_official_proto() {
    let Some(dir) = proto_dir() else {
        eprintln!("SKIPPED peer missing: ../shared/zipkin/zipkin.proto (the official proto)");
        return;
    };
    if !peers::have("protoc", "protobuf-compiler")
        || !peers::have_python(&["google.protobuf"], "python3-protobuf")
    {
        return;
    }
    let reg = monkit::Registry::new();
    let s = sink::sink("/api/v2/spans");
    let seen = Arc::new(Seen::default());
    let _o = reg.observe(seen.clone());
    let exporter = monkit_zipkin::Builder::new(&s.url)
        .service_name("svc")
        .proto3(true)
        .gzip(true)
        .install(&reg)
        .unwrap();
    let scope = reg.scope("p3");
    let (call, fail) = (scope.func("call"), scope.func("fail"));
    for _ in 0..3 {
        call.task(|| {
            monkit::annotate(monkit::export::keys::SPAN_KIND, "client");
            monkit::annotate(monkit::export::keys::PEER_IPV4, "127.0.0.1");
            monkit::annotate(monkit::export::keys::PEER_PORT, 8080);
            monkit::annotate("http.path", "/x");
            let _ = fail.task_result(|| Err::<(), _>(std::io::Error::other("no")));
        });
    }
    assert!(exporter.flush(Duration::from_secs(10)));
    exporter.shutdown(Duration::from_secs(5));

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/tools/zipkin_proto3_decode.py"
    );
    let mut decoded = Vec::new();
    for (headers, body) in s.got.lock().unwrap().iter() {
        let h = |k: &str| {
            headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(h("content-type"), Some("application/x-protobuf"));
        assert_eq!(h("content-encoding"), Some("gzip"));
        let out = peers::pipe(
            Command::new("python3").arg(script).arg(&dir).arg("--gzip"),
            body,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let spans: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        decoded.extend(spans);
    }
    let program = seen.0.lock().unwrap().clone();
    assert_eq!(program.len(), 6);
    assert_eq!(decoded.len(), 6, "every span sent once");
    let local = monkit_zipkin::Endpoint {
        service_name: "svc".into(),
        ..Default::default()
    };
    for p in &program {
        let j = monkit_zipkin::encode(p, &local);
        let d = decoded
            .iter()
            .find(|d| d["id"] == j["id"])
            .unwrap_or_else(|| panic!("{} not sent", j["id"]));
        assert_eq!(d["trace_id"], j["traceId"]);
        assert_eq!(
            d["parent_id"],
            j.get("parentId").cloned().unwrap_or(Value::from(""))
        );
        assert_eq!(d["name"], j["name"]);
        assert_eq!(d["timestamp"], j["timestamp"]);
        assert_eq!(d["duration"], j["duration"]);
        assert_eq!(d["local_endpoint"]["service_name"], "svc");
        assert_eq!(d.get("tags").cloned().unwrap_or_default(), j["tags"]);
        if p.start.name() == "call" {
            assert_eq!(d["kind"], "CLIENT");
            assert_eq!(d["remote_endpoint"]["ipv4"], "127.0.0.1");
            assert_eq!(d["remote_endpoint"]["port"], 8080);
        } else {
            assert_eq!(d["tags"]["error"], j["tags"]["error"]);
        }
    }
}
