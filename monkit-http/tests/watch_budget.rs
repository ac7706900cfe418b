//! Limits that keep clients from locking the pages out: the trace-watcher budget (in all and
//! per client address), the connection cap, the header and idle timeouts. Raw sockets on
//! loopback; clients on different addresses are bound to 127.0.0.x.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A connection from `from` with `path` requested on it.
async fn ask(from: Ipv4Addr, server: SocketAddr, path: &str) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::from((from, 0))).unwrap();
    let mut s = sock.connect(server).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    s
}

/// The status code of the answer, if one comes within `within`.
async fn status_within(s: &mut TcpStream, within: Duration) -> Option<u16> {
    let mut buf = [0u8; 12];
    let mut got = 0;
    let read = async {
        while got < 12 {
            match s.read(&mut buf[got..]).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => got += n,
            }
        }
        std::str::from_utf8(&buf[9..12]).ok()?.parse().ok()
    };
    tokio::time::timeout(within, read).await.ok().flatten()
}

fn registry() -> monkit::Registry {
    let reg = monkit::Registry::new();
    reg.scope("budget").func("never_runs");
    reg
}

const WATCH: &str = "/trace/json?regex=never_runs&timeout=300s";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_watchers_cannot_lock_the_pages_out() {
    let reg = registry();
    let srv = monkit_http::serve(reg.clone(), "127.0.0.1:0").unwrap();
    let addr = srv.local_addr();
    let budget = monkit_http::TraceBudget::default();

    // 1,030 clients on 200 addresses, each asking for the longest trace allowed.
    let mut conns = Vec::new();
    for i in 0..1030u32 {
        let from = Ipv4Addr::new(127, 0, 1, (i % 200) as u8 + 1);
        conns.push(ask(from, addr, WATCH).await);
    }
    let mut refused = 0;
    let mut waiting = Vec::new();
    for mut c in conns {
        match status_within(&mut c, Duration::from_millis(300)).await {
            Some(429) => refused += 1,
            Some(s) => panic!("status {s}"),
            None => waiting.push(c),
        }
    }
    assert_eq!(waiting.len(), budget.max_watchers, "{refused} refused");
    assert_eq!(reg.armed_watchers(), budget.max_watchers);

    // The other pages still answer, quickly.
    for path in ["/stats", "/funcs/json", "/metrics"] {
        let t = Instant::now();
        let mut s = ask(Ipv4Addr::LOCALHOST, addr, path).await;
        assert_eq!(
            status_within(&mut s, Duration::from_secs(2)).await,
            Some(200),
            "{path}"
        );
        assert!(t.elapsed() < Duration::from_secs(2), "{path}");
    }

    // Longer than the budget allows: a clear 400.
    let mut s = ask(Ipv4Addr::LOCALHOST, addr, "/trace/json?regex=x&timeout=1h").await;
    assert_eq!(
        status_within(&mut s, Duration::from_secs(2)).await,
        Some(400)
    );

    // Clients leaving give their share back.
    drop(waiting);
    let deadline = Instant::now() + Duration::from_secs(5);
    while reg.armed_watchers() > 0 {
        assert!(Instant::now() < deadline, "watchers left armed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut s = ask(Ipv4Addr::LOCALHOST, addr, WATCH).await;
    assert_eq!(
        status_within(&mut s, Duration::from_millis(300)).await,
        None,
        "a new watcher waits again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_gets_its_share_only() {
    let reg = registry();
    let mut options = monkit_http::ServeOptions::default();
    options.trace.max_watchers = 5;
    options.trace.max_per_client = 3;
    options.trace.max_timeout = Duration::from_secs(60);
    let srv = monkit_http::serve_with(reg.clone(), "127.0.0.1:0", options).unwrap();
    let addr = srv.local_addr();
    let watch = "/trace/json?regex=never_runs&timeout=60s";
    let a = Ipv4Addr::new(127, 0, 2, 1);
    let b = Ipv4Addr::new(127, 0, 2, 2);
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = ask(a, addr, watch).await;
        assert_eq!(
            status_within(&mut s, Duration::from_millis(200)).await,
            None
        );
        held.push(s);
    }
    let mut s = ask(a, addr, watch).await;
    assert_eq!(
        status_within(&mut s, Duration::from_secs(1)).await,
        Some(429),
        "a fourth from the same client"
    );
    for i in 0..2 {
        let mut s = ask(b, addr, watch).await;
        assert_eq!(
            status_within(&mut s, Duration::from_millis(200)).await,
            None,
            "another client, #{i}"
        );
        held.push(s);
    }
    let mut s = ask(Ipv4Addr::new(127, 0, 2, 3), addr, watch).await;
    assert_eq!(
        status_within(&mut s, Duration::from_secs(1)).await,
        Some(429),
        "past the budget in all"
    );
    let mut s = ask(a, addr, "/trace/json?regex=never_runs&timeout=61s").await;
    assert_eq!(
        status_within(&mut s, Duration::from_secs(1)).await,
        Some(400)
    );
    assert_eq!(reg.armed_watchers(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_let_go() {
    let reg = monkit::Registry::new();
    let scope = reg.scope("big");
    for i in 0..3000 {
        scope
            .func(&format!("function_with_a_longish_name_{i}"))
            .task(|| ());
    }
    let mut options = monkit_http::ServeOptions::default();
    options.idle_timeout = Duration::from_millis(500);
    let srv = monkit_http::serve_with(reg, "127.0.0.1:0", options).unwrap();
    let addr = srv.local_addr();
    let mut page_body = Vec::new();
    std::io::Read::read_to_end(
        &mut ureq::get(&format!("http://{addr}/metrics"))
            .call()
            .unwrap()
            .into_reader(),
        &mut page_body,
    )
    .unwrap();
    let page = page_body.len();
    assert!(
        page > 4 << 20,
        "page larger than the socket buffers: {page}"
    );

    // Asks for the page, reads nothing for a while: the server gives up on it.
    let mut s = ask(Ipv4Addr::LOCALHOST, addr, "/metrics").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut got = 0;
    let mut buf = vec![0u8; 1 << 16];
    let read_all = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read_all)
        .await
        .expect("the server closed the connection");
    assert!(
        got < page,
        "got {got} of {page} bytes: the connection was not cut"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped_and_idle_ones_closed() {
    let reg = registry();
    let mut options = monkit_http::ServeOptions::default();
    options.max_connections = 4;
    options.header_timeout = Duration::from_secs(2);
    let srv = monkit_http::serve_with(reg, "127.0.0.1:0", options).unwrap();
    let addr = srv.local_addr();

    // Keep-alive: after one answer, a silent connection is closed after the header timeout.
    let mut s = ask(Ipv4Addr::LOCALHOST, addr, "/stats").await;
    assert_eq!(
        status_within(&mut s, Duration::from_secs(2)).await,
        Some(200)
    );
    let t = Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
        .await
        .expect("idle keep-alive connection closed")
        .ok();
    assert!(
        t.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );

    // Four silent clients fill the cap; a fifth takes the place of the one idle longest and
    // is answered at once, never left waiting in the backlog.
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(TcpStream::connect(addr).await.unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = Instant::now();
    let mut fifth = ask(Ipv4Addr::LOCALHOST, addr, "/stats").await;
    assert_eq!(
        status_within(&mut fifth, Duration::from_secs(1)).await,
        Some(200)
    );
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(2), silent[0].read(&mut byte)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the oldest idle connection was not closed: {closed:?}"
    );
    drop(silent);
    drop(fifth);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Four connections each answering a waiting trace request: none is idle, so a fifth is
    // told 503 at once.
    let mut busy = Vec::new();
    for i in 0..4 {
        busy.push(ask(Ipv4Addr::new(127, 0, 0, 2 + i), addr, WATCH).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    let mut more = ask(Ipv4Addr::LOCALHOST, addr, "/stats").await;
    assert_eq!(
        status_within(&mut more, Duration::from_secs(1)).await,
        Some(503)
    );
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    drop(busy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_gets_its_share_of_connections() {
    let reg = registry();
    let mut options = monkit_http::ServeOptions::default();
    options.max_connections = 8;
    options.max_connections_per_address = 2;
    let srv = monkit_http::serve_with(reg, "127.0.0.1:0", options).unwrap();
    let addr = srv.local_addr();
    // One address holds its share with two trace requests; a third from it is refused...
    let hog = Ipv4Addr::new(127, 0, 0, 9);
    let _a = ask(hog, addr, WATCH).await;
    let _b = ask(hog, addr, WATCH).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut third = ask(hog, addr, "/stats").await;
    assert_eq!(
        status_within(&mut third, Duration::from_secs(1)).await,
        Some(503)
    );
    // ...while another address is served.
    let mut other = ask(Ipv4Addr::new(127, 0, 0, 10), addr, "/stats").await;
    assert_eq!(
        status_within(&mut other, Duration::from_secs(1)).await,
        Some(200)
    );
}
