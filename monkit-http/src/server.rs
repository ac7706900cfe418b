//! The monitoring server: a thread with its own small tokio runtime.

use crate::Pages;
use hyper_util::rt::{TokioIo, TokioTimer};
use monkit::Registry;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;
use tokio::sync::watch;

/// Limits that keep hostile or broken clients from costing the program more than a bounded
/// share of a thread, memory and file descriptors.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// A client must send its request headers within this time, or the connection is closed
    /// (so a slow client cannot hold a connection open forever). Default 10 s.
    pub header_timeout: Duration,
    /// Connections served at once; further clients wait in the listen backlog. Default 1024.
    pub max_connections: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_timeout: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

/// A running monitoring server. Dropping it stops the server.
pub struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// The address the server listens on (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes connections and waits for the server thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Starts serving `registry`'s pages on `addr` on a new thread and returns once the socket is
/// bound (so bind errors come back here).
///
/// Bind to a loopback address (`127.0.0.1:9000`) unless you mean to publish your program's
/// internals: anyone who can reach the port can read every page. Binding elsewhere is allowed
/// but is said on stderr.
pub fn serve(registry: Registry, addr: impl ToSocketAddrs) -> io::Result<Server> {
    serve_with(registry, addr, ServeOptions::default())
}

/// [`serve`] with explicit limits.
pub fn serve_with(
    registry: Registry,
    addr: impl ToSocketAddrs,
    options: ServeOptions,
) -> io::Result<Server> {
    let std_listener = std::net::TcpListener::bind(addr)?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    if !addr.ip().is_loopback() {
        eprintln!("monkit-http: serving on {addr}, which is not a loopback address: anyone who can reach it can read every page");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("monkit-http")
        .build()?;
    let (stop, stopped) = watch::channel(false);
    let pages = Pages::new(registry);
    let thread = std::thread::Builder::new()
        .name("monkit-http".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(std_listener) {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("monkit-http: cannot listen on {addr}: {e}");
                        return;
                    }
                };
                accept_loop(listener, pages, stopped, options).await;
            })
        })?;
    Ok(Server {
        addr,
        stop,
        thread: Some(thread),
    })
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    pages: Pages,
    mut stopped: watch::Receiver<bool>,
    options: ServeOptions,
) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(options.max_connections.max(1)));
    loop {
        let permit = tokio::select! {
            _ = stopped.changed() => return,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let conn = tokio::select! {
            _ = stopped.changed() => return,
            c = listener.accept() => c,
        };
        let (stream, _) = match conn {
            Ok(c) => c,
            Err(_) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let pages = pages.clone();
        let mut stopped = stopped.clone();
        let header_timeout = options.header_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), pages);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stopped.changed() => conn.as_mut().graceful_shutdown(),
            }
        });
    }
}
