//! vlite as a careless or hostile client finds it: what the proxy forwards (RFC 9110 section
//! 7.6.1, W3C Trace Context), the client's mistakes answered as such, connection limits, and
//! running out of file descriptors. A real vlite process; raw sockets on loopback.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sends raw bytes; what came back until the server closed or `wait` passed.
fn raw(addr: SocketAddr, req: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(req).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The head of a response (or request), lowercased, one entry per line.
fn head_lines(msg: &str) -> Vec<String> {
    msg.split("\r\n\r\n")
        .next()
        .unwrap()
        .lines()
        .map(str::to_ascii_lowercase)
        .collect()
}

fn header<'a>(lines: &'a [String], name: &str) -> Vec<&'a str> {
    let prefix = format!("{name}:");
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(&prefix).map(str::trim))
        .collect()
}

/// An upstream that keeps each request head it gets, and answers with hop-by-hop headers
/// of its own.
fn capturing_upstream() -> (String, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let heads = Arc::new(Mutex::new(Vec::new()));
    let keep = heads.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
                head.push(b[0]);
            }
            keep.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&head).into_owned());
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close, x-upstream-hop\r\n\
                  keep-alive: timeout=5\r\nx-upstream-hop: secret\r\nx-kept: yes\r\n\r\nok\n",
            );
        }
    });
    (url, heads)
}

const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const S: &str = "00f067aa0ba902b7";

#[test]
fn the_proxy_forwards_only_what_it_should() {
    let (target, heads) = capturing_upstream();
    let v = vlite(Some(&target), &[], None);
    heads.lock().unwrap().clear(); // the readiness probe's
    let req = format!(
        "GET /h HTTP/1.1\r\nhost: x\r\nconnection: keep-alive, x-private\r\nx-private: 1\r\n\
         keep-alive: 300\r\nproxy-authorization: Basic c2VjcmV0\r\nproxy-connection: keep-alive\r\n\
         te: trailers\r\nupgrade: h2c\r\nb3: {T}-{S}-1\r\nx-b3-traceid: {T}\r\nx-b3-spanid: {S}\r\n\
         x-b3-sampled: 1\r\ntraceparent: 00-{T}-{S}-01\r\ntracestate: a=1\r\ntracestate: b=2\r\n\
         x-end: kept\r\n\r\n"
    );
    let resp = raw(v.proxy, req.as_bytes(), Duration::from_secs(2));
    let resp_head = head_lines(&resp);
    assert!(resp_head[0].starts_with("http/1.1 200"), "{resp}");
    let up = head_lines(&heads.lock().unwrap()[0]);
    for h in [
        "x-private",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "upgrade",
        "b3",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-sampled",
    ] {
        assert!(header(&up, h).is_empty(), "{h} went upstream: {up:#?}");
    }
    assert_eq!(header(&up, "x-end"), ["kept"], "{up:#?}");
    let tp = header(&up, "traceparent");
    assert_eq!(tp.len(), 1, "{up:#?}");
    assert!(
        tp[0].starts_with(&format!("00-{T}-")),
        "same trace: {}",
        tp[0]
    );
    assert!(
        !tp[0].contains(S),
        "names the proxy's span, not the caller's"
    );
    assert_eq!(header(&up, "tracestate"), ["a=1,b=2"], "combined");
    // Nor back down: the upstream's hop-by-hop headers stay with the upstream.
    assert!(header(&resp_head, "x-upstream-hop").is_empty(), "{resp}");
    assert!(header(&resp_head, "keep-alive").is_empty(), "{resp}");
    assert_eq!(header(&resp_head, "x-kept"), ["yes"]);

    // A tracestate the proxy rejected, or one of a trace it did not continue, stays behind.
    for (tp, ts) in [
        (format!("00-{T}-{S}-01"), "=bad"),
        ("garbage".into(), "a=1"),
    ] {
        let req = format!(
            "GET /h HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntraceparent: {tp}\r\ntracestate: {ts}\r\n\r\n"
        );
        let n = heads.lock().unwrap().len();
        assert!(raw(v.proxy, req.as_bytes(), Duration::from_secs(2)).starts_with("HTTP/1.1 200"));
        let up = head_lines(&heads.lock().unwrap()[n]);
        assert!(
            header(&up, "tracestate").is_empty(),
            "{ts} forwarded: {up:#?}"
        );
        assert_eq!(header(&up, "traceparent").len(), 1);
    }
}

#[test]
fn client_mistakes_are_the_clients() {
    let v = vlite(None, &[], None);
    // Malformed chunked framing: the client's error, not the upstream's.
    let r = raw(
        v.proxy,
        b"POST /x HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        Duration::from_secs(2),
    );
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    // A reverse proxy opens no tunnels.
    let r = raw(
        v.proxy,
        b"CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n",
        Duration::from_secs(2),
    );
    assert!(r.starts_with("HTTP/1.1 501"), "{r}");

    let funcs: Vec<serde_json::Value> =
        serde_json::from_str(&get(&format!("{}/funcs/json", v.mon))).unwrap();
    let forward = funcs
        .iter()
        .find(|f| f["full_name"] == "vlite.Proxy::forward")
        .unwrap();
    assert_eq!(forward["errors"]["client_body"], 1, "{forward}");
    assert!(forward["errors"].get("upstream").is_none(), "{forward}");
}

#[test]
fn proxy_connections_are_limited() {
    let v = vlite(
        None,
        &[
            ("MONKIT_HTTP_HEADER_TIMEOUT", "1s"),
            ("MONKIT_HTTP_MAX_CONNECTIONS", "8"),
        ],
        None,
    );
    // Headers never finished: cut off after the header timeout.
    let t = Instant::now();
    let r = raw(
        v.proxy,
        b"GET / HTTP/1.1\r\nhost: x\r\n",
        Duration::from_secs(10),
    );
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert!(r.is_empty() || r.starts_with("HTTP/1.1 408"), "{r}");

    // Eight silent clients fill the cap; a ninth takes the place of the one idle longest and
    // is served at once (before, it waited in the backlog for the header timeout).
    let silent: Vec<_> = (0..8)
        .map(|_| {
            let s = TcpStream::connect(v.proxy).unwrap();
            std::thread::sleep(Duration::from_millis(10));
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    let mut ninth = TcpStream::connect(v.proxy).unwrap();
    ninth
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    ninth
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut out = String::new();
    let _ = ninth.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(
        t.elapsed() < Duration::from_millis(700),
        "a new client waited {:?} behind idle ones",
        t.elapsed()
    );
    drop(silent);
}

/// CPU time (user + system) of a process, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // After the name: state is field 3, utime 14 and stime 15 (1-based), so 11 and 12 here.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

#[test]
fn out_of_file_descriptors_it_backs_off() {
    if !std::path::Path::new("/proc/self/stat").exists() {
        eprintln!("SKIPPED: no /proc on this system");
        return;
    }
    let v = vlite(None, &[("MONKIT_HTTP_HEADER_TIMEOUT", "60s")], Some(64));
    // More connections than the process may hold files: its accepts fail with EMFILE.
    let held: Vec<_> = (0..120)
        .filter_map(|_| TcpStream::connect(v.proxy).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let cpu = cpu_seconds(v.pid);
    let lines = v.stderr.lock().unwrap().len();
    std::thread::sleep(Duration::from_secs(3));
    let spent = cpu_seconds(v.pid) - cpu;
    let logged = v.stderr.lock().unwrap().len() - lines;
    assert!(spent < 0.5, "{spent:.2} s of CPU in 3 s while out of files");
    assert!(
        (1..=6).contains(&logged),
        "{logged} lines in 3 s: {:?}",
        v.stderr.lock().unwrap().last()
    );
    assert!(
        v.stderr
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("Too many open files")),
        "the reason is logged"
    );
    // Once the clients go, it serves again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = raw(
            v.proxy,
            b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            Duration::from_secs(2),
        );
        if r.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "never served again: {r}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A client puts characters XML forbids (U+FFFE, U+FFFF) in a baggage value that vlite notes
/// on its span: the captured trace's SVG is still well-formed.
#[test]
fn characters_xml_forbids_cannot_break_the_trace_svg() {
    let v = vlite(None, &[], None);
    let url = format!("{}/trace/svg?regex=Proxy::handle&timeout=20s", v.mon);
    let watcher = std::thread::spawn(move || get(&url));
    std::thread::sleep(Duration::from_millis(300));
    let r = raw(
        v.proxy,
        b"GET /hi HTTP/1.1\r\nhost: x\r\nbaggage: tenant=a%EF%BF%BFb%EF%BF%BEc%01d\r\nconnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let svg = watcher.join().unwrap();
    assert!(svg.contains("baggage.tenant"), "{svg}");
    assert!(!svg.contains('\u{ffff}') && !svg.contains('\u{fffe}'));
    peers::assert_xml(&svg);
}
