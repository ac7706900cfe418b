//! Clients that hold a connection without moving it: a request whose body never comes
//! (HTTP/1.1 and HTTP/2), and an HTTP/2 client that answers the server's PINGs but never
//! opens its receive window. Each costs bounded time and bytes, never locks other clients
//! out, and is counted on `/metrics`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const BIG: usize = 128 * 1024;

/// `/echo` reads the body and sends it back (408 when the client stops sending it); any
/// other path gets 128 KiB.
async fn service(
    req: Request<monkit_http::RequestBody>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() != "/echo" {
        return Ok(Response::new(Full::new(Bytes::from(vec![b'x'; BIG]))));
    }
    Ok(match req.into_body().collect().await {
        Ok(b) => Response::new(Full::new(b.to_bytes())),
        Err(e) => {
            let mut r = Response::new(Full::new(Bytes::from(e.to_string())));
            *r.status_mut() = if e.is_timeout() {
                StatusCode::REQUEST_TIMEOUT
            } else {
                StatusCode::BAD_REQUEST
            };
            r
        }
    })
}

/// Serves [`service`] with `options` on a thread of its own; the address.
fn start(options: monkit_http::ServeOptions) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            monkit_http::serve_connections(
                tokio::net::TcpListener::from_std(listener).unwrap(),
                options,
                |_| hyper::service::service_fn(service),
                std::future::pending(),
            )
            .await;
        });
    });
    addr
}

/// The `monkit_http` series of listener `addr`, from a real pages server's `/metrics`.
fn counters(pages: SocketAddr, addr: SocketAddr) -> Vec<(String, f64)> {
    let text = ureq::get(&format!("http://{pages}/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let label = format!("listener=\"{addr}\"");
    text.lines()
        .filter(|l| l.starts_with("monkit_http_") && l.contains(&label))
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap();
            let name = name.split('{').next().unwrap().to_owned();
            (name, value.parse().unwrap())
        })
        .collect()
}

fn counter(all: &[(String, f64)], name: &str) -> f64 {
    all.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in {all:?}"))
        .1
}

fn options() -> monkit_http::ServeOptions {
    let mut o = monkit_http::ServeOptions::default();
    o.max_connections = 16;
    o.max_connections_per_address = 16;
    o.body_timeout = Duration::from_secs(2);
    o.idle_timeout = Duration::from_secs(3);
    o.keep_alive = (Duration::from_millis(200), Duration::from_secs(1));
    o
}

/// A plain GET that must be answered 200 with the whole body, and how long it took.
fn served(addr: SocketAddr) -> Duration {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /big HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "{}",
        &text[..text.len().min(200)]
    );
    assert!(out.len() > BIG, "{} bytes", out.len());
    t.elapsed()
}

#[test]
fn a_body_that_never_comes_neither_holds_its_connection_nor_locks_others_out() {
    let pages = monkit_http::serve(monkit::Registry::new(), "127.0.0.1:0").unwrap();
    let addr = start(options());
    // A thread of its own, so the HTTP/2 clients answer the server's PINGs throughout.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();

    // Every place taken: half by HTTP/1.1 requests that promise 26 bytes and send one...
    let stuck: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 26\r\n\r\nx")
                .unwrap();
            s
        })
        .collect();
    // ... half by HTTP/2 requests: HEADERS without END_STREAM, and nothing after.
    let h2_stuck: Vec<_> = rt.block_on(async {
        let mut held = Vec::new();
        for _ in 0..8 {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (mut client, conn) = h2::client::handshake(tcp).await.unwrap();
            let driver = tokio::spawn(conn);
            let req = http::Request::post(format!("http://{addr}/echo"))
                .body(())
                .unwrap();
            let (resp, stream) = client.send_request(req, false).unwrap();
            held.push((client, driver, resp, stream));
        }
        held
    });
    std::thread::sleep(Duration::from_millis(200));
    // A new client takes the place of one of them at once, well before the body timeout.
    let took = served(addr);
    assert!(
        took < Duration::from_millis(1000),
        "a new client waited {took:?}"
    );

    // The HTTP/1.1 ones still open get 408 after the body timeout, the rest were closed to
    // make room; none is held longer.
    let t = Instant::now();
    let mut timed_out = 0;
    for mut s in stuck {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        if text.starts_with("HTTP/1.1 408") {
            timed_out += 1;
        } else {
            assert!(text.is_empty(), "{text}");
        }
    }
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    // HTTP/2 requests still open get 408 as well.
    let h2_timed_out = rt.block_on(async {
        let mut n = 0;
        for (_client, _driver, resp, _stream) in h2_stuck {
            if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_secs(6), resp).await {
                assert_eq!(r.status(), 408);
                n += 1;
            }
        }
        n
    });
    // One made room for the new client; every other one timed out.
    assert_eq!(timed_out + h2_timed_out, 15, "{timed_out} + {h2_timed_out}");

    let c = counters(pages.local_addr(), addr);
    assert_eq!(
        counter(&c, "monkit_http_body_timeouts_total"),
        f64::from(timed_out + h2_timed_out),
        "{c:?}"
    );
    assert_eq!(
        counter(&c, "monkit_http_connections_evicted_total"),
        1.0,
        "{c:?}"
    );
    assert_eq!(
        counter(&c, "monkit_http_connections_refused_total"),
        0.0,
        "{c:?}"
    );
}

#[test]
fn a_client_that_never_reads_is_bounded_in_bytes_and_time() {
    let pages = monkit_http::serve(monkit::Registry::new(), "127.0.0.1:0").unwrap();
    let mut o = options();
    o.max_unsent_bytes = 1 << 20;
    let addr = start(o);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();

    // Four connections that open no window, answer every PING, and ask for 50 big
    // responses each (25 MiB in all).
    let monkit_testsupport::h2::Stalled {
        drivers,
        statuses,
        held: _held,
    } = rt.block_on(monkit_testsupport::h2::stalled_gets(addr, 4, 50, "/big"));
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    let busy = statuses.iter().filter(|&&s| s == 503).count();
    assert_eq!(ok + busy, 200, "{statuses:?}");
    assert!(busy > 0 && ok > 0, "{ok} answered, {busy} refused");
    // What the listener holds stays within the budget and one response per connection.
    let c = counters(pages.local_addr(), addr);
    let unsent = counter(&c, "monkit_http_unsent_bytes");
    assert!(unsent > 0.0, "{c:?}");
    assert!(unsent <= f64::from((1 << 20) + 4 * BIG as u32), "{c:?}");

    // A second past the stall, a reading client is answered in full: the stalled make room.
    std::thread::sleep(Duration::from_millis(1100));
    served(addr);
    served(addr);

    // And all four are closed within the idle timeout though they answer every PING.
    let t = Instant::now();
    rt.block_on(monkit_testsupport::h2::closed(
        drivers,
        Duration::from_secs(6),
    ));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let c = counters(pages.local_addr(), addr);
    assert_eq!(counter(&c, "monkit_http_unsent_bytes"), 0.0, "{c:?}");
    assert_eq!(
        counter(&c, "monkit_http_responses_refused_total"),
        busy as f64,
        "{c:?}"
    );
    let closed = counter(&c, "monkit_http_connections_stalled_closed_total")
        + counter(&c, "monkit_http_connections_idle_closed_total");
    assert!(closed >= 4.0, "{c:?}");
}
