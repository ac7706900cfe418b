//! rotel's `rotel-agent`, a real OTLP collector (PyPI `rotel`), started on free loopback ports
//! for HTTP and gRPC, printing what it takes (`--debug-log`) to a file the test reads; stopped
//! by its PID when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running collector.
pub struct Rotel {
    child: Child,
    out: PathBuf,
    /// Its OTLP/HTTP port (`http://127.0.0.1:<port>/v1/...`).
    pub http: u16,
    /// Its OTLP/gRPC port.
    pub grpc: u16,
}

impl Rotel {
    /// Starts one that prints the `signals` it takes (`logs`, `traces`, `metrics`) in detail
    /// and drops them; `None`, saying so, when rotel is not installed.
    pub fn start(signals: &[&str]) -> Option<Rotel> {
        let agent = crate::peers::rotel_agent()?;
        let (http, grpc) = (crate::ports::free_port(), crate::ports::free_port());
        let out =
            std::env::temp_dir().join(format!("monkit-rotel-{}-{http}.log", std::process::id()));
        let mut cmd = Command::new(agent);
        cmd.args([
            "start",
            "--exporter",
            "blackhole",
            "--debug-log-verbosity",
            "detailed",
        ]);
        for s in signals {
            cmd.args(["--debug-log", s]);
        }
        let child = cmd
            .args(["--otlp-http-endpoint", &format!("127.0.0.1:{http}")])
            .args(["--otlp-grpc-endpoint", &format!("127.0.0.1:{grpc}")])
            .stdout(Stdio::from(
                std::fs::File::create(&out).expect("a temporary file"),
            ))
            .stderr(Stdio::null())
            .spawn()
            .expect("rotel-agent starts");
        let r = Rotel {
            child,
            out,
            http,
            grpc,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", http)).is_err() {
            assert!(
                Instant::now() < deadline,
                "rotel-agent never listened on {http}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(r)
    }

    /// What it printed so far.
    pub fn printed(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits until `found` finds something in what it printed (up to 20 s), and returns it.
    pub fn wait_for<T>(&self, what: &str, mut found: impl FnMut(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let said = self.printed();
            if let Some(t) = found(&said) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "rotel never printed {what}:\n{said}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.out);
    }
}
