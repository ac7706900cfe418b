//! A sink written in Python (a script of `testsupport/`), run for one test: it prints
//! `listening PORT`, then one JSON line per thing it received, which are kept here. Stopped
//! by PID when dropped.

use serde_json::Value;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running Python sink and the lines it printed so far.
pub struct PySink {
    child: Child,
    pub port: u16,
    pub lines: Arc<Mutex<Vec<Value>>>,
}

impl Drop for PySink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PySink {
    /// Starts `testsupport/<script>` with `args` and waits until it listens.
    pub fn start(script: &str, args: &[&OsStr]) -> PySink {
        let path = crate::scripts().join(script);
        let mut child = Command::new("python3")
            .arg(path)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        let port = first
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{script} said {first:?}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let keep = lines.clone();
        std::thread::spawn(move || {
            for l in out.lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&l) {
                    keep.lock().unwrap().push(v);
                }
            }
        });
        PySink { child, port, lines }
    }

    /// The lines so far, once `n` of them satisfy `ready` (the output is read on another
    /// thread); panics after 5 s.
    pub fn wait_for(&self, n: usize, ready: impl Fn(&Value) -> bool) -> Vec<Value> {
        for _ in 0..500 {
            let lines = self.lines.lock().unwrap().clone();
            if lines.iter().filter(|l| ready(l)).count() >= n {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "the sink printed nothing expected: {:?}",
            self.lines.lock().unwrap()
        )
    }
}

/// The bytes of a line's `body` field, which the sinks print in base64.
pub fn body(line: &Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(line["body"].as_str().expect("a line with a body"))
        .expect("base64")
}
