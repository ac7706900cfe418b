//! Hostile HTTP input: huge query strings, invalid UTF-8, slow-loris clients (trace watchers
//! by the thousand are in `watch_budget.rs`). Each gets a clear 4xx or is cut off by a timeout; the server
//! keeps answering and the monitored program keeps running.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[monkit::task]
fn busy(i: u64) -> u64 {
    std::hint::black_box(i)
}

/// Sends raw bytes, returns what came back before the server closed or 5 s passed.
fn raw(addr: std::net::SocketAddr, req: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(req).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn status(url: &str) -> u16 {
    match ureq::get(url).call() {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(s, _)) => s,
        Err(e) => panic!("{url}: {e}"),
    }
}

#[test]
fn hostile_clients() {
    let mut opts = monkit_http::ServeOptions::default();
    opts.header_timeout = Duration::from_secs(1);
    opts.max_connections = 2048;
    let srv =
        monkit_http::serve_with(monkit::default_registry().clone(), "127.0.0.1:0", opts).unwrap();
    let addr = srv.local_addr();
    let base = format!("http://{addr}");

    // The monitored program runs throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                busy(i);
                i += 1;
            }
            i
        })
    };

    // Huge query strings: a 400 naming the parameter, or hyper's own 4xx for an oversized head.
    let q = "x".repeat(10_000);
    assert_eq!(status(&format!("{base}/stats?{q}=1")), 400);
    let q = "x".repeat(100_000);
    assert_eq!(
        status(&format!("{base}/stats?{q}=1")),
        414,
        "hyper: URI too long"
    );
    let huge = format!(
        "GET /stats?{} HTTP/1.1\r\nhost: localhost\r\n\r\n",
        "y".repeat(2_000_000)
    );
    let r = raw(addr, huge.as_bytes());
    assert!(
        r.is_empty() || r.starts_with("HTTP/1.1 4"),
        "{}",
        &r[..r.len().min(100)]
    );

    // Invalid UTF-8: percent-encoded and raw.
    let r = raw(
        addr,
        b"GET /trace/json?regex=%FF%FE HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    let r = raw(
        addr,
        b"GET /stats?\xff\xfe=1 HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    let r = raw(addr, b"\xff\xfe\xfd\r\n\r\n");
    assert!(r.is_empty() || r.starts_with("HTTP/1.1 400"), "{r}");

    // Slow-loris: headers never finish; the server hangs up after the header timeout.
    let t = Instant::now();
    let r = raw(addr, b"GET /stats HTTP/1.1\r\nhost: localhost\r\n");
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "took {:?}",
        t.elapsed()
    );
    assert!(r.is_empty() || r.starts_with("HTTP/1.1 408"), "{r}");

    stop.store(true, Ordering::Relaxed);
    let calls = worker.join().unwrap();
    let s = monkit::default_registry()
        .func_by_name("hostile.busy")
        .unwrap()
        .stats();
    assert_eq!(s.successes, calls);
    assert_eq!(status(&format!("{base}/metrics")), 200);
}
