//! The vlite example as a real process: driven over HTTP, its pages checked, and its
//! `/metrics` scraped by a real Prometheus server queried through its HTTP API.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the child process when the test ends, pass or fail.
struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/<test> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

fn wait_for(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while ureq::get(url).call().is_err() {
        assert!(Instant::now() < deadline, "{url} never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn get(url: &str) -> String {
    match ureq::get(url).call() {
        Ok(r) => r.into_string().unwrap(),
        Err(ureq::Error::Status(_, r)) => r.into_string().unwrap(),
        Err(e) => panic!("{url}: {e}"),
    }
}

/// A recording receiver for the exporter's POSTs (a real HTTP server on loopback).
fn span_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/v2/spans", l.local_addr().unwrap());
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let b = bodies.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let b = b.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        let mut h = String::new();
                        r.read_line(&mut h).unwrap();
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).unwrap();
                    b.lock().unwrap().push(String::from_utf8(body).unwrap());
                    let mut w = &s;
                    w.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                        .unwrap();
                }
            });
        }
    });
    (url, bodies)
}

#[test]
fn vlite_end_to_end_with_prometheus() {
    let (proxy_port, mon_port) = (free_port(), free_port());
    let (spans_url, bodies) = span_receiver();
    let _vlite = Killed(
        Command::new(example("vlite"))
            .env("VLITE_LISTEN", format!("127.0.0.1:{proxy_port}"))
            .env("VLITE_MONITOR", format!("127.0.0.1:{mon_port}"))
            .env("MONKIT_ZIPKIN_ENDPOINT", &spans_url)
            .env("MONKIT_ZIPKIN_SERVICE_NAME", "vlite")
            .stdout(Stdio::null())
            .spawn()
            .expect("the vlite example is built by cargo test"),
    );
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    let mon = format!("http://127.0.0.1:{mon_port}");
    wait_for(&format!("{mon}/"));
    wait_for(&format!("{proxy}/"));

    // 1 request answered by wait_for, then 10 ok and 5 failing upstream answers.
    for _ in 0..10 {
        assert!(get(&format!("{proxy}/hello")).starts_with("hello from the upstream"));
    }
    for _ in 0..5 {
        assert_eq!(get(&format!("{proxy}/fail")), "failed on purpose\n");
    }

    let stats = get(&format!("{mon}/stats"));
    assert!(
        stats.contains("function,name=Proxy::handle,scope=vlite successes=16"),
        "{stats}"
    );
    assert!(stats.contains("requests,scope=vlite total=16"), "{stats}");

    let funcs: Vec<serde_json::Value> =
        serde_json::from_str(&get(&format!("{mon}/funcs/json"))).unwrap();
    let by = |n: &str| funcs.iter().find(|f| f["full_name"] == n).unwrap().clone();
    let handle = by("vlite.Proxy::handle");
    let forward = by("vlite.Proxy::forward");
    // Requests arrive as SERVER spans (trace continued from headers), the handler under them.
    let server = by("http_server.GET /hello");
    assert_eq!(server["entry"], true);
    assert!(handle["parent_ids"]
        .as_array()
        .unwrap()
        .contains(&server["id"]));
    assert_eq!(forward["parent_ids"], serde_json::json!([handle["id"]]));
    assert_eq!(
        by("http_client.GET 127.0.0.1")["parent_ids"],
        serde_json::json!([forward["id"]])
    );
    assert_eq!(by("vlite.upstream")["success"], 16);
    // The tracing span, bridged, under the task it runs in.
    let rewrite = by("vlite.rewrite_request");
    assert_eq!(rewrite["success"], 16);
    assert_eq!(rewrite["parent_ids"], serde_json::json!([forward["id"]]));
    assert!(stats.contains("process,scope=env rss_bytes="), "{stats}");

    let metrics = get(&format!("{mon}/metrics"));
    assert!(metrics
        .contains("monkit_function_successes_total{name=\"Proxy::handle\",scope=\"vlite\"} 16"));

    // A real Prometheus scrapes it.
    let prom_port = free_port();
    let dir = std::env::temp_dir().join(format!("monkit-prom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: vlite\n    static_configs:\n      - targets: ['127.0.0.1:{mon_port}']\n"
        ),
    )
    .unwrap();
    let _prom = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus is needed for this test (.ci/run installs it)"),
    );
    let query = format!(
        "http://127.0.0.1:{prom_port}/api/v1/query?query=monkit_function_successes_total%7Bname%3D%22Proxy%3A%3Ahandle%22%7D"
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    let value = loop {
        if let Ok(r) = ureq::get(&query).call() {
            let v: serde_json::Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
            if let Some(s) = v["data"]["result"][0]["value"][1].as_str() {
                break s.to_owned();
            }
        }
        assert!(Instant::now() < deadline, "Prometheus never scraped vlite");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(value, "16");
    let _ = std::fs::remove_dir_all(&dir);

    // Zipkin export, switched on by MONKIT_ZIPKIN_*: one trace through proxy and upstream.
    let deadline = Instant::now() + Duration::from_secs(20);
    let spans: Vec<serde_json::Value> = loop {
        let all: Vec<serde_json::Value> = bodies
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| serde_json::from_str::<Vec<serde_json::Value>>(b).unwrap())
            .collect();
        if all.iter().filter(|s| s["kind"] == "SERVER").count() >= 2 {
            break all;
        }
        assert!(Instant::now() < deadline, "no spans exported: {all:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let client = spans.iter().find(|s| s["kind"] == "CLIENT").unwrap();
    let upstream_server = spans
        .iter()
        .find(|s| s["kind"] == "SERVER" && s["parentId"] == client["id"])
        .expect("the upstream's SERVER span is a child of the proxy's CLIENT span");
    assert_eq!(upstream_server["traceId"], client["traceId"]);
    assert_eq!(client["localEndpoint"]["serviceName"], "vlite");
}
