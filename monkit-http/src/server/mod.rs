//! The server: the accept loop and its limits (`listen.rs`), shutdown on a signal
//! (`shutdown.rs`), [`Traced`] for a program's own hyper services, and here the monitoring
//! server, a thread with its own small tokio runtime.

mod body;
mod conns;
mod listen;
mod shutdown;
mod traced;

use crate::Pages;
pub use body::{RequestBody, RequestBodyError};
pub(crate) use conns::ListenerSource;
pub use listen::{bind, serve_connections, ServeOptions, TraceBudget};
use monkit::Registry;
pub use shutdown::until_shutdown;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use tokio::sync::watch;
pub use traced::Traced;

/// A running monitoring server. Dropping it stops the server.
#[must_use = "dropping the Server stops it"]
pub struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
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
/// but is logged as a warning (the `log` crate).
pub fn serve(registry: Registry, addr: impl ToSocketAddrs) -> io::Result<Server> {
    serve_with(registry, addr, ServeOptions::default())
}

/// [`serve`] with explicit limits.
pub fn serve_with(
    registry: Registry,
    addr: impl ToSocketAddrs,
    options: ServeOptions,
) -> io::Result<Server> {
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address to listen on");
    let mut bound = None;
    for a in addr.to_socket_addrs()? {
        match crate::bind(a, &options) {
            Ok(l) => {
                bound = Some(l);
                break;
            }
            Err(e) => last = e,
        }
    }
    let std_listener = bound.ok_or(last)?;
    let addr = std_listener.local_addr()?;
    if !addr.ip().is_loopback() {
        log::warn!("monkit-http: serving on {addr}, which is not a loopback address: anyone who can reach it can read every page");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("monkit-http")
        .build()?;
    let (stop, stopped) = watch::channel(false);
    let mut access = options.access.clone();
    access.loopback = addr.ip().is_loopback();
    let pages = Pages::with_options(registry, options.trace.clone(), options.prometheus.clone())
        .with_trace_link(options.trace_link.clone())
        .with_access(access);
    let thread = std::thread::Builder::new()
        .name("monkit-http".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(std_listener) {
                    Ok(l) => l,
                    Err(e) => {
                        log::error!("monkit-http: cannot listen on {addr}: {e}");
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
    let stop = async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    serve_connections(listener, options, |peer| pages.for_client(peer.ip()), stop).await;
}
