//! Reading what an OTLP exporter sent: the official OpenTelemetry classes (PyPI
//! `opentelemetry-proto`, through the scripts in `monkit-otlp/tests/tools/`) decode each stored
//! body into JSON spans or metrics.
//! needs the `peers` module beside it.

use serde_json::Value;
use std::process::Command;

/// The official classes' reading of one traces body (gzip-compressed when its headers say so).
pub fn decode(headers: &[(String, String)], body: &[u8]) -> Vec<Value> {
    run("otlp_decode.py", headers, body)
}

/// The official classes' reading of one metrics body.
pub fn decode_metrics(headers: &[(String, String)], body: &[u8]) -> Vec<Value> {
    run("otlp_metrics_decode.py", headers, body)
}

/// The official classes' reading of one logs body: every record.
pub fn decode_logs(headers: &[(String, String)], body: &[u8]) -> Vec<Value> {
    run("otlp_logs_decode.py", headers, body)
}

fn run(tool: &str, headers: &[(String, String)], body: &[u8]) -> Vec<Value> {
    let script = format!(
        "{}/../monkit-otlp/tests/tools/{tool}",
        env!("CARGO_MANIFEST_DIR")
    );
    let gz = headers
        .iter()
        .any(|(k, v)| k == "content-encoding" && v == "gzip");
    let out = crate::peers::pipe(
        Command::new("python3")
            .arg(&script)
            .args(gz.then_some("--gzip")),
        body,
    );
    assert!(
        out.status.success(),
        "the official decoder refused the body: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
