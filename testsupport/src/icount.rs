//! Exact instruction counts for the benchmarks: the bench binary runs itself under valgrind's
//! callgrind, which collects only inside its function `measured`.

use std::process::Command;

/// Instructions callgrind counted inside `measured` when this binary runs with `var=spec`.
pub fn count(var: &str, spec: &str) -> u64 {
    let out = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            "--toggle-collect=*measured*",
        ])
        .arg(std::env::current_exe().unwrap())
        .env(var, spec)
        .output()
        .expect("valgrind runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "valgrind failed: {err}");
    err.lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no instruction count in: {err}"))
}

/// Whether valgrind can run; says so in one line when it cannot, and fails then if
/// `MONKIT_REQUIRE_PEERS=1`.
pub fn have_valgrind() -> bool {
    let have = Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        eprintln!("SKIPPED peer missing: valgrind (Debian package valgrind)");
        assert!(
            std::env::var("MONKIT_REQUIRE_PEERS").as_deref() != Ok("1"),
            "valgrind is required (MONKIT_REQUIRE_PEERS=1)"
        );
    }
    have
}
