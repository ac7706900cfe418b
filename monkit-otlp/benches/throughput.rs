//! What one OTLP exporter thread sustains, and what its queue holds in memory:
//! - spans per second encoded, gzip-compressed and POSTed in 512-span batches to a loopback
//!   server that reads and discards each request (no collector is involved, and none could
//!   be faster);
//! - the resident memory of 10,000 spans waiting in the queue (the collector unreachable).
//!
//! Run with `cargo bench -p monkit-otlp --bench throughput`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// A loopback HTTP server that answers every POST 200 and keeps nothing.
fn discard() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/traces", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut w = s;
                loop {
                    let mut len = 0usize;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.to_ascii_lowercase();
                        if let Some(v) = l.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    let _ = w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
                }
            });
        }
    });
    url
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn sent(reg: &monkit::Registry) -> f64 {
    let mut n = 0.0;
    reg.stats(|k, f, v| {
        if f == "total" && k.measurement == "spans_sent" {
            n = v;
        }
    });
    n
}

/// One span of the kind a server makes: a function with tags and four annotations.
fn span(f: &monkit::Func, i: u64) {
    f.task(|| {
        monkit::annotate("http.request.method", "GET");
        monkit::annotate("url.path", "/users/42");
        monkit::annotate("http.response.status_code", 200);
        monkit::annotate("request", i);
    });
}

fn main() {
    // `cargo test` runs benches as tests with `--bench` absent: only measure when benchmarking.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    // Memory first, while the heap has no freed memory of earlier work to reuse.
    // 10,000 spans held: the collector is a port nobody listens on, retried slowly.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let reg = monkit::Registry::new();
    let exporter = monkit_otlp::Builder::new(&format!("http://127.0.0.1:{port}/v1/traces"))
        .batch(100_000, Duration::from_secs(3600))
        .queue_capacity(10_000)
        .install(&reg)
        .unwrap();
    let f = reg
        .scope("bench")
        .func_with("handle", &[("route", "/users/{id}")]);
    for i in 0..100 {
        span(&f, i);
    }
    let before = rss_kib();
    for i in 0..10_000 {
        span(&f, i);
    }
    let after = rss_kib();
    println!(
        "a queue of 10,000 spans: {} KiB of resident memory ({:.0} bytes a span, four annotations each); queued {}",
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 * 1024.0 / 10_000.0,
        exporter.queued()
    );
    drop(exporter);

    const N: u64 = 200_000;
    let reg = monkit::Registry::new();
    let exporter = monkit_otlp::Builder::new(&discard())
        .gzip(true)
        .batch(512, Duration::from_millis(50))
        .queue_capacity(N as usize)
        .install(&reg)
        .unwrap();
    let f = reg
        .scope("bench")
        .func_with("handle", &[("route", "/users/{id}")]);
    let t0 = Instant::now();
    for i in 0..N {
        span(&f, i);
    }
    let produced = t0.elapsed();
    while sent(&reg) < N as f64 && t0.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let all = t0.elapsed();
    println!(
        "one exporter thread: {:.0} spans/s encoded, gzipped and sent in 512-span batches ({} spans in {:.2} s; the instrumented thread queued them in {:.2} s, {:.0} ns a span)",
        sent(&reg) / all.as_secs_f64(),
        sent(&reg),
        all.as_secs_f64(),
        produced.as_secs_f64(),
        produced.as_nanos() as f64 / N as f64
    );
    exporter.shutdown(Duration::from_secs(5));
}
