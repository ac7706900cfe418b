//! The official W3C Trace Context test suite (`../shared/w3c-trace-context/test`, run with
//! Python and `aiohttp`) against the `tracecontext` example, a service built on monkit as a
//! user would build it, in both of its shapes (new outbound requests, and a proxy forwarding
//! the caller's headers), at Level 2 with strictness 2 and 1: every run must end `OK`.

mod common;

use common::{example, free_port, peers, Killed};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The suite's folder beside the checkout, if it is there.
fn suite() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/w3c-trace-context/test");
    if dir.join("test.py").is_file() {
        return Some(dir);
    }
    // Kept beside the checkout, not in it: without it there is nothing to run.
    eprintln!("SKIPPED peer missing: ../shared/w3c-trace-context (the official W3C test suite)");
    None
}

/// Starts the service; it is ready once it accepts connections.
fn service(forward_headers: bool, reqwest: bool) -> (Killed, u16) {
    let port = free_port();
    let mut cmd = Command::new(example("tracecontext"));
    cmd.env("TRACECONTEXT_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null());
    if forward_headers {
        cmd.arg("--forward-headers");
    }
    if reqwest {
        cmd.arg("--reqwest");
    }
    let child = Killed(
        cmd.spawn()
            .expect("the tracecontext example is built by cargo test"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the tracecontext example never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}

/// One run of the suite: whether it ended OK, and what it printed.
fn run_suite(dir: &PathBuf, port: u16, strict: u8) -> (bool, String) {
    let harness = free_port();
    let out = Command::new("python3")
        .arg("test.py")
        .arg(format!("http://127.0.0.1:{port}/test"))
        .current_dir(dir)
        .env("SPEC_LEVEL", "2")
        .env("STRICT_LEVEL", strict.to_string())
        .env("HARNESS_HOST", "127.0.0.1")
        .env("HARNESS_PORT", harness.to_string())
        .output()
        .expect("python3 runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let ok = out.status.success() && text.lines().any(|l| l.starts_with("OK"));
    (ok, text)
}

#[test]
fn the_official_suite_passes_at_level_2() {
    let Some(dir) = suite() else { return };
    if !peers::have_python(&["aiohttp"], "python3-aiohttp (or aiohttp from pip)") {
        return;
    }
    // Callbacks through monkit_tower::ClientLayer::send at both strictness levels, then through
    // reqwest with monkit_tower::ReqwestMiddleware.
    let shapes = [(false, false), (true, false), (false, true), (true, true)];
    for (forward, reqwest) in shapes {
        let (_svc, port) = service(forward, reqwest);
        let levels: &[u8] = if reqwest { &[2] } else { &[2, 1] };
        for &strict in levels {
            let (ok, text) = run_suite(&dir, port, strict);
            let ran = text
                .lines()
                .find(|l| l.starts_with("Ran "))
                .unwrap_or("no tests ran");
            eprintln!(
                "W3C Trace Context, forwarding headers {forward}, reqwest {reqwest}, STRICT_LEVEL {strict}: {ran}"
            );
            assert!(
                ok,
                "the suite failed (forwarding headers: {forward}, reqwest: {reqwest}, STRICT_LEVEL={strict}):\n{text}"
            );
            let count: usize = ran
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            assert!(count >= 40, "the suite ran too few tests: {ran}");
        }
    }
}
