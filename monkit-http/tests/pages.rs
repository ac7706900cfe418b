//! Every page fetched from a real server on a loopback port with a real HTTP client, parsed,
//! and checked against known calls; the dot page rendered by Graphviz and the metrics page
//! checked by promtool.

use monkit_testsupport::peers;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};

#[derive(Debug)]
struct Timeout;
impl monkit::ErrorKind for Timeout {
    fn error_kind(&self) -> &'static str {
        "timeout"
    }
}

#[monkit::task]
fn handle_http(i: u64) -> Result<u64, Timeout> {
    if i.is_multiple_of(10) {
        return Err(Timeout);
    }
    lookup(i);
    Ok(i)
}

#[monkit::task]
fn lookup(i: u64) -> u64 {
    i * 2
}

#[monkit::task]
fn never_called_page_fn() {}

#[monkit::task]
fn hammered(i: u64) -> u64 {
    i + 1
}

/// A `/stats/json` row: measurement, tags, field, value.
type StatRow = (String, BTreeMap<String, String>, String, Option<f64>);

struct Fetched {
    status: u16,
    content_type: String,
    body: String,
}

fn fetch(method: &str, url: &str) -> Fetched {
    let agent = ureq::AgentBuilder::new().build();
    let r = match agent.request(method, url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    Fetched {
        status: r.status(),
        content_type: r.header("content-type").unwrap_or("").to_owned(),
        body: r.into_string().unwrap(),
    }
}

fn get(url: &str) -> Fetched {
    fetch("GET", url)
}

fn server() -> monkit_http::Server {
    monkit_http::serve(monkit::default_registry().clone(), "127.0.0.1:0").unwrap()
}

/// Runs `prog args` with `input` on stdin; returns (success, stdout + stderr).
fn run_with_stdin(prog: &str, args: &[&str], input: &str) -> (bool, String) {
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{prog} is needed for this test (.ci/run installs it): {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn parse_stat_line(line: &str) -> (String, String, f64) {
    monkit::render::text::parse_line(line).unwrap_or_else(|| panic!("bad stat line: {line}"))
}

#[test]
fn every_page() {
    // Custom sources (the process stats) go through every page and promtool too.
    monkit::env::register(monkit::default_registry());
    for i in 0..100 {
        let _ = handle_http(i);
    }
    let srv = server();
    let base = format!("http://{}", srv.local_addr());

    // The console: every plain page linked from its navigation, and every link works.
    let idx = get(&format!("{base}/"));
    assert_eq!(idx.status, 200);
    assert!(idx.content_type.starts_with("text/html"));
    let nav = idx.body.split("<nav").nth(1).unwrap();
    let nav = nav.split("</nav>").next().unwrap();
    let links: Vec<String> = nav
        .split("href=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().replace("&amp;", "&"))
        .collect();
    assert!(links.len() >= 6, "{links:?}");
    assert!(links.iter().any(|l| l.starts_with("/trace/svg?")));
    // Trace pages wait for a call; they are tested in tests/trace.rs.
    for l in links.iter().filter(|l| !l.starts_with("/trace/")) {
        assert_eq!(get(&format!("{base}{l}")).status, 200, "{l}");
    }

    // /stats text.
    let stats = get(&format!("{base}/stats"));
    assert_eq!(stats.content_type, "text/plain; charset=utf-8");
    let lines: BTreeMap<(String, String), f64> = stats
        .body
        .lines()
        .map(parse_stat_line)
        .map(|(k, f, v)| ((k, f), v))
        .collect();
    let key = "function,name=handle_http,scope=pages".to_owned();
    assert_eq!(lines[&(key.clone(), "successes".into())], 90.0);
    assert_eq!(lines[&(key.clone(), "errors".into())], 10.0);
    assert_eq!(lines[&(key, "total".into())], 100.0);
    assert_eq!(
        lines[&(
            "function,error_name=timeout,name=handle_http,scope=pages".into(),
            "count".into()
        )],
        10.0
    );
    assert_eq!(
        get(&format!("{base}/stats/text")).body.lines().count(),
        stats.body.lines().count()
    );

    // /stats/json.
    let j = get(&format!("{base}/stats/json"));
    assert_eq!(j.content_type, "application/json");
    let rows: Vec<StatRow> = serde_json::from_str(&j.body).unwrap();
    let row = rows
        .iter()
        .find(|r| {
            r.0 == "function"
                && r.1.get("name").map(String::as_str) == Some("lookup")
                && r.2 == "successes"
        })
        .unwrap();
    assert_eq!(row.3, Some(90.0));

    // /funcs/json: counts, parents, entry, never-called functions listed with zeros.
    let fj = get(&format!("{base}/funcs/json"));
    let funcs: Vec<serde_json::Value> = serde_json::from_str(&fj.body).unwrap();
    let by = |n: &str| {
        funcs
            .iter()
            .find(|f| f["full_name"] == n)
            .unwrap_or_else(|| panic!("{n} missing"))
            .clone()
    };
    let h = by("pages.handle_http");
    let l = by("pages.lookup");
    assert_eq!(h["successes"], 90);
    assert_eq!(h["errors"]["timeout"], 10);
    assert_eq!(h["entry"], true);
    assert_eq!(l["parent_ids"], serde_json::json!([h["id"]]));
    assert_eq!(l["entry"], false);
    assert!(h["success_times"]["quantiles"]["0.50"].as_u64().unwrap() > 0);
    let n = by("pages.never_called_page_fn");
    assert_eq!(
        (n["successes"].as_u64(), n["total"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(n["file"].as_str().unwrap().ends_with("pages.rs"));

    // /funcs text.
    let ft = get(&format!("{base}/funcs"));
    assert!(ft
        .body
        .contains(&format!("[{}] pages.handle_http", h["id"])));
    assert!(ft.body.contains("error timeout: 10"));

    // /funcs/dot, rendered by Graphviz.
    let dot = get(&format!("{base}/funcs/dot"));
    assert!(dot.content_type.starts_with("text/vnd.graphviz"));
    assert!(dot.body.contains(&format!("f{} -> f{};", h["id"], l["id"])));
    assert!(dot.body.contains(&format!("r{0} -> f{0};", h["id"])));
    if peers::have("dot", "graphviz") {
        let (ok, out) = run_with_stdin("dot", &["-Tsvg"], &dot.body);
        assert!(ok, "dot failed: {out}");
        assert!(out.contains("<svg"));
    }

    // /metrics, checked by promtool.
    let m = get(&format!("{base}/metrics"));
    assert_eq!(m.content_type, "text/plain; version=0.0.4; charset=utf-8");
    let want = "monkit_function_successes_total{name=\"handle_http\",scope=\"pages\"} 90";
    assert!(m.body.lines().any(|l| l == want), "{}", m.body);
    assert!(m.body.contains("process_rss_bytes{scope=\"env\"}"));
    // What monkit let go, as counters an operator can alert on.
    for loss in [
        "annotations_dropped",
        "contexts_dropped",
        "observer_panics",
        "flight_evicted",
        "flight_skipped",
    ] {
        let family = format!("# TYPE monkit_{loss}_total counter");
        assert!(m.body.contains(&family), "{family} in {}", m.body);
    }
    peers::assert_promtool_takes(&m.body);
}

#[test]
fn methods_errors_and_openmetrics() {
    let srv = server();
    let base = format!("http://{}", srv.local_addr());
    let head = fetch("HEAD", &format!("{base}/stats"));
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    let post = fetch("POST", &format!("{base}/stats"));
    assert_eq!(post.status, 405);
    let nope = get(&format!("{base}/nope"));
    assert_eq!(nope.status, 404);
    assert_eq!(nope.body.trim(), "path not found: /nope");
    let bad = get(&format!("{base}/stats?colour=red"));
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("\"colour\""), "{}", bad.body);

    let om = ureq::get(&format!("{base}/metrics"))
        .set("Accept", "application/openmetrics-text; version=1.0.0")
        .call()
        .unwrap();
    assert!(om
        .content_type()
        .starts_with("application/openmetrics-text"));
    let body = om.into_string().unwrap();
    assert!(body.ends_with("# EOF\n"));
    assert!(body.contains("# TYPE monkit_function_successes counter"));
}

#[test]
fn concurrent_clients_while_calling() {
    const CALLS: u64 = 200_000;
    let srv = server();
    let base = format!("http://{}", srv.local_addr());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let start = Arc::new(Barrier::new(52));
    std::thread::scope(|s| {
        let clients: Vec<_> = (0..50)
            .map(|i| {
                let (stop, start, base) = (stop.clone(), start.clone(), base.clone());
                s.spawn(move || {
                    let pages = [
                        "/stats",
                        "/stats/json",
                        "/funcs",
                        "/funcs/json",
                        "/funcs/dot",
                        "/metrics",
                    ];
                    start.wait();
                    let mut n = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let r = get(&format!("{base}{}", pages[(i + n) % pages.len()]));
                        assert_eq!(r.status, 200);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let callers: Vec<_> = (0..2)
            .map(|_| {
                let start = start.clone();
                s.spawn(move || {
                    start.wait();
                    for i in 0..CALLS {
                        hammered(i);
                    }
                })
            })
            .collect();
        for c in callers {
            c.join().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let fetched: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
        assert!(fetched >= 50, "{fetched} pages fetched");
    });
    let after = monkit::default_registry()
        .func_by_name("pages.hammered")
        .unwrap()
        .stats();
    assert_eq!(after.successes, 2 * CALLS);
    assert_eq!((after.current, after.errors_total), (0, 0));
    assert!((1..=2).contains(&after.highwater));
}
