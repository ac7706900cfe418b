//! Test helpers: a recording Zipkin receiver (a real hyper server on loopback), and the two
//! real validators (the JSON schema of the official spec, and Zipkin's own Go model).
#![allow(dead_code)]

pub use monkit_testsupport::peers;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How the receiver answers.
pub const OK: u8 = 0;
pub const FAIL_500: u8 = 1;
pub const SLOW: u8 = 2;

pub struct Receiver {
    pub addr: SocketAddr,
    pub bodies: Arc<Mutex<Vec<String>>>,
    pub mode: Arc<AtomicU8>,
    _rt: tokio::runtime::Runtime,
}

impl Receiver {
    pub fn url(&self) -> String {
        format!("http://{}/api/v2/spans", self.addr)
    }
}

pub fn receiver() -> Receiver {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let mode = Arc::new(AtomicU8::new(OK));
    let (b, m) = (bodies.clone(), mode.clone());
    rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (b, m) = (b.clone(), m.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (b, m) = (b.clone(), m.clone());
                    async move {
                        let ok = req.uri().path() == "/api/v2/spans"
                            && req.headers().get("content-type").map(|v| v.as_bytes())
                                == Some(b"application/json");
                        let body = req.into_body().collect().await?.to_bytes();
                        let status = match m.load(Ordering::Relaxed) {
                            FAIL_500 => StatusCode::INTERNAL_SERVER_ERROR,
                            SLOW => {
                                tokio::time::sleep(Duration::from_secs(3)).await;
                                StatusCode::ACCEPTED
                            }
                            _ if ok => {
                                b.lock().push(String::from_utf8_lossy(&body).into_owned());
                                StatusCode::ACCEPTED
                            }
                            _ => StatusCode::BAD_REQUEST,
                        };
                        let mut r = Response::new(Full::new(Bytes::new()));
                        *r.status_mut() = status;
                        Ok::<_, hyper::Error>(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Receiver {
        addr,
        bodies,
        mode,
        _rt: rt,
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The official Zipkin spec, when the workplace keeps it beside the checkout (it does in CI);
/// no other outside path is read.
fn official_spec() -> Option<PathBuf> {
    let beside = repo_root().join("../shared/zipkin/zipkin2-api.yaml");
    beside.exists().then_some(beside)
}

fn run(cmd: &mut Command, input: &str) -> (bool, String) {
    let o = peers::pipe(cmd, input.as_bytes());
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

/// Validates a body against the repository's Zipkin v2 JSON Schema and, when it is there,
/// the official spec's ListOfSpans (unknown keys forbidden). Skipped without python3 and its
/// jsonschema and yaml modules (see `peers`).
pub fn validate_schema(body: &str) {
    if !peers::have_python(&["jsonschema", "yaml"], "python3-jsonschema python3-yaml") {
        return;
    }
    let script = repo_root().join("monkit-zipkin/tests/tools/validate_schema.py");
    let ours = repo_root().join("monkit-zipkin/tests/zipkin-v2-span.schema.json");
    for schema in std::iter::once(ours).chain(official_spec()) {
        let (ok, out) = run(Command::new("python3").arg(&script).arg(&schema), body);
        assert!(ok, "{} rejects the body: {out}\n{body}", schema.display());
    }
}

/// Decodes a body with Zipkin's Go model; returns its lines (`trace id parent kind ...`).
pub fn go_decode(body: &str) -> Option<Vec<String>> {
    if !peers::have("go", "golang-go")
        || !peers::have_dir(
            "/usr/share/gocode/src/github.com/openzipkin/zipkin-go",
            "golang-github-openzipkin-zipkin-go-dev",
        )
    {
        return None;
    }
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let bin = out_dir.join("zipkin_decode");
    if !bin.exists() {
        let src = repo_root().join("monkit-zipkin/tests/tools/zipkin_decode");
        let status = Command::new("go")
            .args(["build", "-o"])
            .arg(&bin)
            .arg(".")
            .current_dir(src)
            .env("GO111MODULE", "off")
            .env("GOPATH", "/usr/share/gocode")
            .env("GOCACHE", out_dir.join("gocache"))
            .status()
            .expect("go is needed (.ci/run installs golang-go)");
        assert!(status.success(), "building the Go decoder failed");
    }
    let (ok, out) = run(&mut Command::new(&bin), body);
    assert!(ok, "Zipkin's Go model rejected the body: {out}\n{body}");
    Some(out.lines().map(str::to_owned).collect())
}
