//! Outside programs the tests drive as real peers (`dot`, `promtool`, `prometheus`, ...).
//!
//! A test asks for its peers before using them. When one is missing, the test prints one line
//! naming the program and the Debian/Ubuntu package that provides it, and skips that part;
//! with `MONKIT_REQUIRE_PEERS=1` (set by the full test script and CI) a missing peer fails the
//! test instead.

use std::path::PathBuf;
use std::process::{Command, Stdio};

fn required() -> bool {
    std::env::var("MONKIT_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// The program's path on `PATH`, if any.
pub fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn missing(what: &str, package: &str) -> bool {
    let line = format!("peer missing: {what}; install the Debian/Ubuntu package `{package}`");
    if required() {
        panic!("{line} (MONKIT_REQUIRE_PEERS=1)");
    }
    // Written to stderr directly, past the test harness's capture, so the skip shows in a
    // passing run too.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {line}");
    false
}

/// Whether `program` (from the Debian package `package`) can be run.
pub fn have(program: &str, package: &str) -> bool {
    find(program).is_some() || missing(&format!("`{program}` not found"), package)
}

/// Whether `python3` can import every one of `modules` (from the packages `packages`).
pub fn have_python(modules: &[&str], packages: &str) -> bool {
    if !have("python3", "python3") {
        return false;
    }
    let ok = Command::new("python3")
        .arg("-c")
        .arg(format!("import {}", modules.join(", ")))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok || missing(
        &format!("python3 cannot import {}", modules.join(", ")),
        packages,
    )
}

/// Whether `dir` exists (a source package such as a Go library under /usr/share/gocode).
pub fn have_dir(dir: &str, package: &str) -> bool {
    std::path::Path::new(dir).is_dir() || missing(&format!("{dir} not found"), package)
}

/// Runs a peer with `input` on its stdin; what it printed and how it ended. Panics, saying
/// which, when the program cannot be started.
pub fn pipe(cmd: &mut Command, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut c = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?} is needed (scripts/test-all.sh installs it): {e}"));
    // A peer that exits early closes its stdin; what it printed says why.
    let _ = c.stdin.take().expect("piped").write_all(input);
    c.wait_with_output().expect("the peer ran")
}

/// `curl -s --http2-prior-knowledge` with `args`: HTTP/2 without TLS, as the tests speak it.
pub fn curl_h2<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::process::Output {
    Command::new("curl")
        .args(["-s", "--http2-prior-knowledge"])
        .args(args)
        .output()
        .expect("curl runs")
}

/// Asserts that `promtool check metrics` takes `text` without a word (its lint included);
/// skips, saying so, when promtool is not installed.
pub fn assert_promtool_takes(text: &str) {
    if !have("promtool", "prometheus") {
        return;
    }
    let out = pipe(
        Command::new("promtool").args(["check", "metrics"]),
        text.as_bytes(),
    );
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}"
    );
}

/// The real OTLP collector `rotel-agent` that the PyPI package `rotel` ships inside its
/// Python package (on `PATH` too if it is there); `None`, saying so, when it is not installed.
pub fn rotel_agent() -> Option<PathBuf> {
    if let Some(p) = find("rotel-agent") {
        return Some(p);
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), 'rotel-agent'))",
        ])
        .output()
        .ok();
    let path = out
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|p| p.is_file());
    if path.is_none() {
        missing(
            "rotel-agent (pip package rotel)",
            "python3-pip, then pip install rotel",
        );
    }
    path
}

/// Checks that `doc` is well-formed XML with `xmllint`, when it is installed (the line naming
/// it otherwise comes from [`have`]).
pub fn assert_xml(doc: &str) {
    if have("xmllint", "libxml2-utils") {
        let out = pipe(
            Command::new("xmllint").args(["--noout", "-"]),
            doc.as_bytes(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
