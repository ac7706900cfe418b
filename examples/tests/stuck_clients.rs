//! Clients that hold vlite's connections without moving them, from outside: 1,024 requests
//! from four loopback addresses whose bodies never come, and HTTP/2 clients that answer
//! every keep-alive PING but never open their receive window. Neither locks anyone out, both
//! cost bounded bytes and time, and both are counted on `/metrics`.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A connection to `to` from loopback address `127.0.0.<from>`.
fn connect_from(from: u8, to: SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local: SocketAddr = format!("127.0.0.{from}:0").parse().unwrap();
    s.bind(&local.into()).unwrap();
    s.connect(&to.into()).unwrap();
    s.into()
}

/// Resident memory of a process, in bytes, from /proc.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// The value of the `monkit_http` series `name` of the listener on `port`.
fn listener_counter(mon: &str, port: u16, name: &str) -> f64 {
    let text = get(&format!("{mon}/metrics"));
    let label = format!("listener=\"127.0.0.1:{port}\"");
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(&label))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} for {label} in\n{text}"))
}

/// A GET through the proxy; its status line and how long it took.
fn proxied(proxy: SocketAddr) -> (String, Duration) {
    let t = Instant::now();
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    (out.lines().next().unwrap_or("").to_owned(), t.elapsed())
}

#[test]
fn bodies_that_never_come_lock_no_one_out() {
    raise_nofile(8192);
    let v = vlite(None, &[("MONKIT_HTTP_BODY_TIMEOUT", "3s")], Some(8192));
    // Every place (1,024, at most 256 per address) taken by requests that promise 26 bytes
    // and send one.
    let mut stuck = Vec::new();
    for from in 1..=4u8 {
        for _ in 0..256 {
            let mut s = connect_from(from, v.proxy);
            s.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 26\r\n\r\nx")
                .unwrap();
            stuck.push(s);
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let rss_full = rss(v.pid);
    // Other clients are served at once: each takes the place of one that waits for a body.
    for _ in 0..8 {
        let (status, took) = proxied(v.proxy);
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        assert!(took < Duration::from_secs(1), "a client waited {took:?}");
    }
    // The rest are answered 408 when the body timeout passes; none is held longer.
    let t = Instant::now();
    let mut timed_out = 0;
    for s in &mut stuck {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        if out.starts_with(b"HTTP/1.1 408") {
            timed_out += 1;
        }
    }
    let waited = t.elapsed();
    assert!(waited < Duration::from_secs(6), "{waited:?}");
    let port = v.proxy.port();
    // The first client took a stuck one's place; the others found the places it left.
    let evicted = listener_counter(&v.mon, port, "monkit_http_connections_evicted_total");
    assert!((1.0..=8.0).contains(&evicted), "{evicted}");
    assert_eq!(f64::from(timed_out), 1024.0 - evicted);
    assert_eq!(
        listener_counter(&v.mon, port, "monkit_http_body_timeouts_total"),
        f64::from(timed_out)
    );
    assert_eq!(
        listener_counter(&v.mon, port, "monkit_http_connections_refused_total"),
        0.0
    );
    // The proxy's own function says what happened.
    let funcs: serde_json::Value =
        serde_json::from_str(&get(&format!("{}/funcs/json", v.mon))).unwrap();
    let forward = funcs
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["full_name"] == "vlite.Proxy::forward")
        .unwrap();
    assert_eq!(
        forward["errors"]["client_body_timeout"], timed_out,
        "{forward}"
    );
    eprintln!(
        "1,024 bodies that never come: vlite RSS {:.1} MiB; 8 other clients served; \
         {timed_out} answered 408 within {waited:?}",
        rss_full as f64 / (1 << 20) as f64
    );
}

#[test]
fn clients_that_never_read_pin_bounded_bytes_for_bounded_time() {
    raise_nofile(8192);
    let v = vlite(
        None,
        &[
            ("MONKIT_HTTP_IDLE_TIMEOUT", "4s"),
            ("MONKIT_HTTP2_KEEP_ALIVE", "500ms"),
        ],
        None,
    );
    let mon: SocketAddr = v.mon.trim_start_matches("http://").parse().unwrap();
    let page = get(&format!("{}/metrics", v.mon)).len();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let before = rss(v.pid);
    // 16 connections x 250 `GET /metrics`, no window opened, every PING answered: before,
    // each answer stayed in memory for as long as the client liked (16 x 250 x the page).
    let monkit_testsupport::h2::Stalled {
        drivers,
        statuses,
        held,
    } = rt.block_on(monkit_testsupport::h2::stalled_gets(
        mon, 16, 250, "/metrics",
    ));
    let during = rss(v.pid);
    let refused = statuses.iter().filter(|&&s| s == 503).count();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count() + refused,
        4000
    );
    assert!(refused > 0);
    // What they hold stays near the budget (32 MiB); before, 16 x 250 pages.
    let grew = during.saturating_sub(before);
    assert!(grew < 96 << 20, "vlite grew {} MiB", grew >> 20);
    // Once they have stalled for a second, a scraper that reads is served in full: the
    // stalled make room.
    std::thread::sleep(Duration::from_millis(1100));
    let unsent = listener_counter(&v.mon, mon.port(), "monkit_http_unsent_bytes");
    // Within the budget and one page per connection.
    assert!(
        unsent <= f64::from(32 << 20) + 16.0 * page as f64,
        "{unsent}"
    );
    // All sixteen are closed within the idle timeout though they answer every PING.
    let t = Instant::now();
    rt.block_on(monkit_testsupport::h2::closed(
        drivers,
        Duration::from_secs(10),
    ));
    let closed_in = t.elapsed();
    assert!(closed_in < Duration::from_secs(8), "{closed_in:?}");
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        listener_counter(&v.mon, mon.port(), "monkit_http_unsent_bytes"),
        0.0
    );
    eprintln!(
        "16 x 250 unread GET /metrics ({page} bytes each): vlite RSS {:.1} -> {:.1} MiB, \
         {unsent} bytes held, {refused} refused, all closed {closed_in:?} later",
        before as f64 / (1 << 20) as f64,
        during as f64 / (1 << 20) as f64,
    );
}
