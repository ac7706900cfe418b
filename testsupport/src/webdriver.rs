//! Headless Chromium for the tests, driven through Debian's `chromedriver` with the W3C
//! WebDriver protocol. Written here rather than taken from a crate: the tests need five
//! commands (open a session, load a page, run a script, take a screenshot, close), which are
//! a few JSON requests over the HTTP client the tests already use, where a WebDriver crate
//! would bring a second HTTP stack and a TLS library.

use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running chromedriver and one browser session; both end on drop.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
}

/// chromedriver's port: one the including test's `common` module hands out (see
/// `ports.rs`), so no other listener takes it before chromedriver binds it.
fn port() -> u16 {
    crate::ports::free_port()
}

fn answer(r: Result<ureq::Response, ureq::Error>, what: &str) -> Value {
    let body = match r {
        Ok(r) => r.into_string().unwrap_or_default(),
        Err(ureq::Error::Status(code, r)) => {
            panic!("{what}: {code} {}", r.into_string().unwrap_or_default())
        }
        Err(e) => panic!("{what}: {e}"),
    };
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"));
    v["value"].clone()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium (JavaScript on or off), with the flags
    /// this closed network needs (no background connections, no sandbox as root), in a fresh
    /// profile.
    pub fn start(javascript: bool) -> Browser {
        let p = port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={p}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{p}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while ureq::get(&format!("{base}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver never answered");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = std::env::temp_dir().join(format!("monkit-chromium-{p}"));
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1400,1000".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        if !javascript {
            args.push("--blink-settings=scriptEnabled=false".to_owned());
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
        }}});
        let mut b = Browser {
            driver,
            base,
            session: String::new(),
        };
        let v = answer(
            ureq::post(&format!("{}/session", b.base)).send_json(caps),
            "new session",
        );
        b.session = v["sessionId"].as_str().expect("a session id").to_owned();
        b
    }

    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.base, self.session)
    }

    /// Loads `url` and waits for the document.
    pub fn goto(&self, url: &str) {
        answer(
            ureq::post(&self.url("/url")).send_json(json!({ "url": url })),
            "navigate",
        );
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page; its return value.
    pub fn run(&self, script: &str, args: Value) -> Value {
        answer(
            ureq::post(&self.url("/execute/sync"))
                .send_json(json!({"script": script, "args": args})),
            script,
        )
    }

    /// Polls `script` until it returns something truthy (not null, false, 0 or ""), or panics
    /// after `timeout` saying `what`.
    pub fn wait_until(&self, what: &str, timeout: Duration, script: &str) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.run(script, json!([]));
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting: {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A PNG of the viewport, written to `path`.
    pub fn screenshot(&self, path: &std::path::Path) {
        let b64 = answer(ureq::get(&self.url("/screenshot")).call(), "screenshot");
        use base64::Engine as _;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("base64 text"))
            .expect("a base64 PNG");
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = ureq::delete(&self.url("")).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
