//! vlite as a broken collector, an impatient operator and a hostile client find it: a
//! collector that pushes back (429 with `Retry-After`, an endless error body), SIGTERM right
//! after traffic, sampled requests under `always_off`, `Accept` with q-values, a flood of junk
//! paths, and 2,000 idle connections. A real vlite process; loopback clients; a Python sink
//! that pushes back (`testsupport/pushback_sink.py`, not a collector).

mod common;

use monkit_testsupport::sink;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The Python sink: its URL and the JSON lines it prints, one per request.
struct PushbackSink {
    url: String,
    seen: Arc<Mutex<Vec<Value>>>,
    _child: Killed,
}

fn pushback_sink(mode: &str, count: u32) -> Option<PushbackSink> {
    if !peers::have("python3", "python3") {
        return None;
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testsupport/pushback_sink.py"
    );
    let mut child: Child = Command::new("python3")
        .args([script, mode, &count.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("the sink starts").unwrap();
    let port = first
        .strip_prefix("listening ")
        .expect("its port")
        .to_owned();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            s.lock().unwrap().push(serde_json::from_str(&l).unwrap());
        }
    });
    Some(PushbackSink {
        url: format!("http://127.0.0.1:{port}"),
        seen,
        _child: Killed(child),
    })
}

/// A stat of vlite's `/stats`: the value of `field` on the first series whose key contains
/// every part of `key`.
fn stat(v: &Vlite, key: &[&str], field: &str) -> Option<f64> {
    get(&format!("{}/stats", v.mon)).lines().find_map(|l| {
        // Spaces in the key are escaped; the last one separates the field.
        let (k, fv) = l.rsplit_once(' ')?;
        let (f, val) = fv.split_once('=')?;
        (f == field && key.iter().all(|p| k.contains(p))).then(|| val.parse().ok())?
    })
}

fn traffic(v: &Vlite, n: usize, headers: &str) {
    for i in 0..n {
        let mut s = TcpStream::connect(v.proxy).unwrap();
        write!(
            s,
            "GET /r{i} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{headers}\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    }
}

fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_collector_that_pushes_back_is_obeyed() {
    let Some(sink) = pushback_sink("429", 2) else {
        return;
    };
    let v = vlite(None, &[("OTEL_EXPORTER_OTLP_ENDPOINT", &sink.url)], None);
    traffic(&v, 10, "");
    wait_until(
        "a delivery after the pushback",
        Duration::from_secs(20),
        || sink.seen.lock().unwrap().iter().any(|r| r["status"] == 200),
    );
    let seen = sink.seen.lock().unwrap().clone();
    let at: Vec<f64> = seen.iter().map(|r| r["at"].as_f64().unwrap()).collect();
    eprintln!(
        "pushback: {} requests, {:.2} s and {:.2} s between the first three",
        seen.len(),
        at[1] - at[0],
        at[2] - at[1]
    );
    // Asked to come back in 2 s, twice: it did, and only then.
    assert!(at[1] - at[0] >= 1.9 && at[2] - at[1] >= 1.9, "{seen:?}");
    assert!(
        seen.len() <= 4,
        "{} requests for one batch: {seen:?}",
        seen.len()
    );
    assert_eq!(
        stat(&v, &["monkit_otlp", "spans_failed"], "total"),
        Some(0.0)
    );
    assert_eq!(
        stat(&v, &["monkit_otlp", "batches_retried"], "total"),
        Some(2.0)
    );
}

#[test]
fn an_endless_error_body_is_not_read() {
    let Some(sink) = pushback_sink("endless", 1) else {
        return;
    };
    let v = vlite(None, &[("OTEL_EXPORTER_OTLP_ENDPOINT", &sink.url)], None);
    traffic(&v, 5, "");
    wait_until(
        "a delivery after the endless body",
        Duration::from_secs(20),
        || sink.seen.lock().unwrap().iter().any(|r| r["status"] == 200),
    );
    let seen = sink.seen.lock().unwrap().clone();
    let sent = seen[0]["sent"].as_u64().unwrap();
    eprintln!("endless body: {sent} bytes written before the exporter hung up");
    // 64 KiB read, then the connection dropped (socket buffers hold a few MB more at most).
    assert!(
        sent < 16 << 20,
        "the exporter read {sent} bytes of an error body"
    );
}

#[test]
fn sigterm_sends_what_was_queued() {
    let sink = sink::sink("/api/v2/spans");
    let v = vlite(None, &[("MONKIT_ZIPKIN_ENDPOINT", &sink.url)], None);
    traffic(&v, 20, "");
    std::thread::sleep(Duration::from_millis(100));
    let (status, _) = terminate(v, Duration::from_secs(8));
    assert!(status.success(), "vlite exited with {status:?}");
    let traces: std::collections::HashSet<String> = sink
        .got
        .lock()
        .unwrap()
        .iter()
        .flat_map(|(_, body)| serde_json::from_slice::<Vec<Value>>(body).unwrap())
        // The proxy's SERVER spans of the requests sent (the start-up probe asked for `/`).
        .filter(|s| {
            s["kind"] == "SERVER"
                && s["name"]
                    .as_str()
                    .is_some_and(|n| n.to_ascii_lowercase().contains(" /r"))
        })
        .map(|s| s["traceId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        traces.len(),
        20,
        "spans of {} of 20 requests arrived",
        traces.len()
    );
}

/// SIGTERM to vlite, then its exit status and how long it took, failing past `within`.
fn terminate(v: Vlite, within: Duration) -> (std::process::ExitStatus, Duration) {
    let t = Instant::now();
    unsafe_kill(v.pid, "TERM");
    let mut child = v.child;
    loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            return (s, t.elapsed());
        }
        assert!(t.elapsed() < within, "vlite did not exit on SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `signal` to `pid` with kill(1).
fn unsafe_kill(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{signal} {pid}");
}

#[test]
fn always_off_is_not_forced_by_a_client() {
    let Some(sink) = pushback_sink("ok", 0) else {
        return;
    };
    let v = vlite(
        None,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &sink.url),
            ("OTEL_TRACES_SAMPLER", "always_off"),
        ],
        None,
    );
    let sampled = "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n";
    traffic(&v, 20, sampled);
    // Batches go out every second: two of them would have been sent.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(sink.seen.lock().unwrap().is_empty(), "always_off exported");
    assert_eq!(stat(&v, &["monkit_otlp", "spans_sent"], "total"), Some(0.0));
}

#[test]
fn metrics_negotiation_honours_q() {
    let v = vlite(None, &[], None);
    let ask = |accept: &str| {
        let r = ureq::get(&format!("{}/metrics", v.mon))
            .set("Accept", accept)
            .call();
        match r {
            Ok(r) => (200, r.header("content-type").unwrap_or("").to_owned()),
            Err(ureq::Error::Status(c, r)) => {
                (c, r.header("content-type").unwrap_or("").to_owned())
            }
            Err(e) => panic!("{e}"),
        }
    };
    let (s, ct) = ask("application/openmetrics-text;q=0, text/plain;q=1");
    assert_eq!(s, 200);
    assert!(ct.starts_with("text/plain"), "{ct}");
    let (_, ct) = ask("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0, text/plain;q=0.5");
    assert!(ct.starts_with("text/plain"), "{ct}");
    let (_, ct) = ask("TEXT/plain;q=0.2, Application/OpenMetrics-Text;q=0.9");
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    assert_eq!(
        ask("text/plain;q=0, application/openmetrics-text;q=0").0,
        406
    );
}

#[test]
fn junk_paths_do_not_keep_real_routes_out() {
    let v = vlite(None, &[], None);
    // Far past the 256 names a scope of server spans holds, each path once.
    for i in 0..400 {
        let mut s = TcpStream::connect(v.proxy).unwrap();
        write!(
            s,
            "GET /junk-{i}-x HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        let _ = s.read_to_end(&mut Vec::new());
    }
    // A real route that comes later and recurs still gets its own name.
    for _ in 0..10 {
        let mut s = TcpStream::connect(v.proxy).unwrap();
        write!(
            s,
            "GET /late-route HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        let _ = s.read_to_end(&mut Vec::new());
    }
    let funcs: Vec<Value> = serde_json::from_str(&get(&format!("{}/funcs/json", v.mon))).unwrap();
    let names: Vec<&str> = funcs
        .iter()
        .filter_map(|f| f["full_name"].as_str())
        .collect();
    assert!(names.contains(&"http_server.GET /late-route"), "{names:?}");
    assert!(
        names
            .iter()
            .filter(|n| n.starts_with("http_server."))
            .count()
            <= 257
    );
    let refused = stat(&v, &["cardinality_refused", "http_server.GET"], "total").unwrap_or(0.0);
    eprintln!("400 junk paths: {refused} refusals counted, the late route named");
    assert!(refused >= 400.0 - 256.0, "refusals counted: {refused}");
}

#[test]
fn the_pages_answer_under_a_connection_flood() {
    let v = vlite(None, &[], Some(4096));
    raise_nofile(4096);
    let port: u16 = v
        .mon
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let mut idle = Vec::new();
    for _ in 0..2000 {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connection {} refused: {e}", idle.len()),
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    let stats = get(&format!("{}/stats", v.mon));
    eprintln!(
        "2,000 idle connections held: /stats answered in {:?}",
        t.elapsed()
    );
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "/stats took {:?}",
        t.elapsed()
    );
    assert!(stats.contains("function"), "{stats}");
    drop(idle);
}

/// A collector that accepts connections and never answers: each accepted socket is held open
/// unread until the test ends.
fn silent_collector() -> (std::net::SocketAddr, Arc<Mutex<Vec<TcpStream>>>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for s in l.incoming().map_while(Result::ok) {
            keep.lock().unwrap().push(s);
        }
    });
    (addr, held)
}

#[test]
fn sigterm_with_four_dead_collectors_ends_within_the_one_deadline() {
    let (silent, _held) = silent_collector();
    // A port nobody listens on: connections are refused.
    let refused = format!("127.0.0.1:{}", free_port());
    let zipkin = format!("http://{silent}/api/v2/spans");
    let otlp = format!("http://{refused}");
    let silent = silent.to_string();
    let v = vlite(
        None,
        &[
            ("MONKIT_ZIPKIN_ENDPOINT", &zipkin),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp),
            ("OTEL_METRIC_EXPORT_INTERVAL", "100"),
            ("MONKIT_GRAPHITE_ADDR", &silent),
            ("MONKIT_GRAPHITE_INTERVAL", "100ms"),
            ("MONKIT_SHUTDOWN_TIMEOUT", "1s"),
        ],
        None,
    );
    traffic(&v, 20, "");
    // Let every exporter be mid-try: Zipkin's request hangs, OTLP's retries back off.
    std::thread::sleep(Duration::from_millis(1500));
    let (status, took) = terminate(v, Duration::from_secs(10));
    eprintln!("SIGTERM to exit with four dead collectors and a 1 s deadline: {took:?}");
    assert!(status.success(), "vlite exited with {status:?}");
    // The deadline, plus what a process takes to leave on a loaded 2-core machine.
    assert!(
        took < Duration::from_millis(1800),
        "took {took:?} for a deadline of 1 s"
    );
}

#[test]
fn a_bad_setting_of_any_crate_stops_vlite_naming_it() {
    let endpoints = [
        ("MONKIT_ZIPKIN_ENDPOINT", "http://127.0.0.1:9/api/v2/spans"),
        ("MONKIT_GRAPHITE_ADDR", "127.0.0.1:9"),
    ];
    for (var, bad) in [
        ("MONKIT_ZIPKIN_GZIP", "maybe"),
        ("MONKIT_ZIPKIN_QUEUE", "-1"),
        ("MONKIT_EXACT_HIGHWATER", "maybe"),
        ("MONKIT_SHUTDOWN_TIMEOUT", "later"),
        ("MONKIT_TAGS", "novalue"),
        ("MONKIT_GRAPHITE_INTERVAL", "often"),
        ("MONKIT_GRAPHITE_TAGGED", "maybe"),
        ("MONKIT_TAIL_ERRORS", "maybe"),
        ("MONKIT_HTTP_IDLE_TIMEOUT", "soon"),
        ("MONKIT_PROMETHEUS_SUMMARIES", "maybe"),
    ] {
        let (code, stderr) = vlite_exit(&[endpoints[0], endpoints[1], (var, bad)]);
        assert_eq!(code, Some(2), "{var}={bad}: {stderr}");
        assert!(
            stderr.contains(&format!("{var}=\"{bad}\"")),
            "{var}={bad} not named: {stderr}"
        );
    }
    // An unset graphite address cannot resolve: named by its variable, not "graphite address".
    let (code, stderr) = vlite_exit(&[("MONKIT_GRAPHITE_ADDR", "no-such-host.invalid:2003")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("MONKIT_GRAPHITE_ADDR="), "{stderr}");
}

#[test]
fn a_bad_otel_setting_is_logged_by_name_and_ignored() {
    let v = vlite(
        None,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:9"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_INSECURE", "maybe"),
            ("OTEL_TRACES_SAMPLER", "sometimes"),
        ],
        None,
    );
    wait_until("the warnings", Duration::from_secs(5), || {
        let lines = v.stderr.lock().unwrap().join("\n");
        lines.contains("OTEL_EXPORTER_OTLP_INSECURE=\"maybe\"")
            && lines.contains("OTEL_TRACES_SAMPLER=\"sometimes\"")
    });
    // And it serves.
    assert!(get(&format!("{}/metrics", v.mon)).contains("monkit_function"));
}

/// Starts vlite with `env` and waits (at most 20 s) for it to exit: its status code and
/// what it said on stderr.
fn vlite_exit(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let child = Command::new(example("vlite"))
        .env("VLITE_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("VLITE_MONITOR", format!("127.0.0.1:{}", free_port()))
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_with_timeout(child, Duration::from_secs(20));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The child's output once it exits, killing it after `within`.
fn wait_with_timeout(mut child: Child, within: Duration) -> std::process::Output {
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > within {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}
