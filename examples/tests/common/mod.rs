//! Helpers for the example tests: real processes on free loopback ports, HTTP, and a real
//! Prometheus server.
#![allow(dead_code)]

pub use monkit_testsupport::peers;
use monkit_testsupport::ports;
pub use ports::free_port;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Kills the child process when the test ends, pass or fail.
pub struct Killed(pub Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The path of an example binary (built by `cargo test`).
pub fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/<test> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

pub fn wait_for(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while ureq::get(url).call().is_err() {
        assert!(Instant::now() < deadline, "{url} never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// GET, any status; the body.
pub fn get(url: &str) -> String {
    match ureq::get(url).call() {
        Ok(r) => r.into_string().unwrap(),
        Err(ureq::Error::Status(_, r)) => r.into_string().unwrap(),
        Err(e) => panic!("{url}: {e}"),
    }
}

/// POST a JSON body, any status; (status, body).
pub fn post(url: &str, body: &str) -> (u16, String) {
    match ureq::post(url).send_string(body) {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap()),
        Err(e) => panic!("{url}: {e}"),
    }
}

/// A real Prometheus server on a free loopback port, with `config` (YAML).
pub struct Prometheus {
    pub port: u16,
    dir: PathBuf,
    _child: Killed,
}

impl Prometheus {
    /// `None` (the test skips its Prometheus part) when `prometheus` is not installed.
    pub fn start(config: &str) -> Option<Prometheus> {
        Self::start_with(config, &[])
    }

    /// [`Prometheus::start`] with more command-line flags.
    pub fn start_with(config: &str, flags: &[&str]) -> Option<Prometheus> {
        if !peers::have("prometheus", "prometheus") {
            return None;
        }
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("monkit-prom-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("prometheus.yml");
        std::fs::write(&cfg, config).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus is needed for this test (.ci/run installs it)");
        Some(Prometheus {
            port,
            dir,
            _child: Killed(child),
        })
    }

    /// Runs a PromQL query until it returns data, some of it a number (a quantile of no
    /// observations is NaN), or `timeout` passes; the result vector.
    pub fn query_until_data(&self, expr: &str, timeout: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let r = ureq::get(&format!("http://127.0.0.1:{}/api/v1/query", self.port))
                .query("query", expr)
                .call();
            if let Ok(r) = r {
                let v: serde_json::Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
                assert_eq!(v["status"], "success", "{expr}: {v}");
                let numeric = |r: &serde_json::Value| {
                    r["value"][1]
                        .as_str()
                        .and_then(|x| x.parse::<f64>().ok())
                        .is_some_and(f64::is_finite)
                };
                if let Some(res) = v["data"]["result"]
                    .as_array()
                    .filter(|a| a.iter().any(numeric))
                {
                    return res.clone();
                }
            }
            assert!(Instant::now() < deadline, "no data for {expr}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running vlite process: its proxy and monitoring addresses, pid and stderr lines.
pub struct Vlite {
    pub proxy: SocketAddr,
    pub mon: String,
    pub pid: u32,
    pub stderr: Arc<Mutex<Vec<String>>>,
    pub child: Killed,
}

/// Starts vlite (forwarding to `target`, or its own upstream), with `env`, and at most
/// `nofile` open files when given.
pub fn vlite(target: Option<&str>, env: &[(&str, &str)], nofile: Option<u32>) -> Vlite {
    let (proxy_port, mon_port) = (free_port(), free_port());
    let mut cmd = match nofile {
        Some(n) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                .arg(example("vlite"));
            c
        }
        None => Command::new(example("vlite")),
    };
    cmd.args(target)
        .env("VLITE_LISTEN", format!("127.0.0.1:{proxy_port}"))
        .env("VLITE_MONITOR", format!("127.0.0.1:{mon_port}"))
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .expect("the vlite example is built by cargo test");
    let stderr = Arc::new(Mutex::new(Vec::new()));
    {
        let lines = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(l);
            }
        });
    }
    let v = Vlite {
        proxy: format!("127.0.0.1:{proxy_port}").parse().unwrap(),
        mon: format!("http://127.0.0.1:{mon_port}"),
        pid: child.id(),
        stderr,
        child: Killed(child),
    };
    wait_for(&format!("{}/", v.mon));
    wait_for(&format!("http://{}/", v.proxy));
    v
}

/// A running tavern process: its API, monitoring and gRPC addresses.
pub struct Tavern {
    pub _child: Killed,
    pub pid: u32,
    pub api: String,
    pub mon: String,
    pub grpc: String,
}

/// Starts tavern with `env` (two gRPC workers unless `TAVERN_WORKERS` says otherwise) and
/// waits until its API answers.
pub fn tavern(env: &[(&str, &str)]) -> Tavern {
    let (api, mon, grpc) = (free_port(), free_port(), free_port());
    let child = Command::new(example("tavern"))
        .env("TAVERN_LISTEN", format!("127.0.0.1:{api}"))
        .env("TAVERN_MONITOR", format!("127.0.0.1:{mon}"))
        .env("TAVERN_GRPC", format!("127.0.0.1:{grpc}"))
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .spawn()
        .expect("the tavern example is built by cargo test");
    let t = Tavern {
        pid: child.id(),
        _child: Killed(child),
        api: format!("http://127.0.0.1:{api}"),
        mon: format!("http://127.0.0.1:{mon}"),
        grpc: format!("127.0.0.1:{grpc}"),
    };
    wait_for(&format!("{}/", t.mon));
    // The API answers 404 for an unknown customer: any answer means it is up.
    for _ in 0..300 {
        match ureq::get(&format!("{}/customers/nobody", t.api)).call() {
            Ok(_) | Err(ureq::Error::Status(..)) => return t,
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    panic!("the API never answered")
}

/// Raises this process's open-file limit to `n` (floods need thousands of sockets); child
/// processes inherit it.
pub fn raise_nofile(n: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max.min(n.max(lim.rlim_cur));
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}
