//! An accept loop with limits, for the monitoring pages and for any HTTP/1.1 or HTTP/2 server
//! a program runs beside them.
//!
//! hyper serves one connection; what a listening socket needs around that (a connection cap,
//! header and idle timeouts, backing off when the process runs out of file descriptors,
//! logging at a bounded rate) is the same for every server, so it lives here once.

use super::body::{RequestBody, Sending};
use super::conns::{Activity, Conns, Place};
use hyper::body::{Body, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Limits that keep hostile or broken clients from costing the program more than a bounded
/// share of a thread, memory and file descriptors.
///
/// ```
/// let mut options = monkit_http::ServeOptions::default();
/// options.max_connections = 256;
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServeOptions {
    /// A client must send each request's headers within this time, counted from when the
    /// server starts waiting for them (so it also closes a keep-alive connection left idle
    /// between requests). Default 10 s.
    pub header_timeout: Duration,
    /// A connection that made no progress for this long while the server was not working on
    /// one of its requests is closed. Progress is a request arriving, a request body frame
    /// received or a piece of a response taken by the protocol; HTTP/2 keep-alive PINGs are
    /// not progress. So a client that stops reading its responses, or sends a request and
    /// never its body, cannot pin the connection or the responses. Default 30 s.
    pub idle_timeout: Duration,
    /// While the server waits for more of a request's body, the client must send some
    /// within this time, or the body ends with a [`RequestBodyError`](crate::RequestBodyError)
    /// that says so (the service answers as it sees fit; the connection then closes). A
    /// connection whose only requests wait for their bodies counts as idle, so it makes room
    /// for a new client at the connection cap. Default 10 s.
    pub body_timeout: Duration,
    /// Response bytes rendered but not yet sent, over all of the listener's connections
    /// (counted until the protocol takes a response's last piece of at most 8 KiB). Past it,
    /// connections whose responses made no progress for a second are closed, longest stalled
    /// first, and if what the others hold is still over, a request on a connection that
    /// already holds unsent answers is answered `503` (a connection holding nothing is
    /// served: one answer at a time is what a reading client asks). Default 32 MiB.
    pub max_unsent_bytes: usize,
    /// Connections served at once. At the cap a new connection takes the place of the one idle
    /// the longest (no request being answered); when none is idle it is answered `503` and
    /// closed at once, never left waiting in the backlog. Default 1024.
    pub max_connections: usize,
    /// Connections one client address may hold at once; past it, that address's longest-idle
    /// connection makes room, or the new one gets `503`. Default 256, a quarter of the cap.
    pub max_connections_per_address: usize,
    /// The listen backlog asked of the system for listeners this crate binds ([`bind`],
    /// [`serve_with`](crate::serve_with)). Default 1024.
    pub backlog: u32,
    /// Trace watchers the pages hold open at once, and per client (see [`TraceBudget`]).
    pub trace: TraceBudget,
    /// Who may read the pages (see [`Access`](crate::Access)): a token, the `Host` names a
    /// loopback-bound server answers besides loopback ones, the pages served.
    pub access: crate::Access,
    /// HTTP/2 requests (streams) one connection may have open at once; past it the client
    /// must wait (a peer that opens more is refused them). Default 256.
    pub max_concurrent_streams: u32,
    /// The largest request head, in bytes of HTTP/2 header list (names, values and 32 bytes
    /// per field), a client may send; a larger one is refused. Default 64 KiB.
    pub max_header_list_size: u32,
    /// How often an HTTP/2 connection with no frames sends a PING, and how long it waits for
    /// the answer before closing: a peer that vanished costs at most this. Default 20 s and
    /// 20 s.
    pub keep_alive: (Duration, Duration),
    /// Where the console links an exemplar's trace: a URL with `{trace_id}` in it (an
    /// outside trace viewer). Default none: exemplars show their ids on hover.
    pub trace_link: Option<String>,
    /// How `/metrics` exposes durations: classic buckets, summaries (see
    /// [`monkit::render::prometheus::Options`]).
    pub prometheus: monkit::render::prometheus::Options,
}

/// How many `/trace/...` requests may wait for a matching call at once, and for how long.
///
/// A waiting trace request holds a connection and a watcher slot of the registry; without a
/// budget, clients that ask for long traces could use up every connection and lock the other
/// pages out. Requests past the budget get `429 Too Many Requests` at once.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TraceBudget {
    /// Trace requests waiting at once, over all clients. Default 32, half the registry's
    /// trace-id watcher slots and a small share of [`ServeOptions::max_connections`].
    pub max_watchers: usize,
    /// Trace requests waiting at once from one client address. Default 16, half the budget:
    /// on a loopback-only server every client has the same address.
    pub max_per_client: usize,
    /// The longest `timeout=` a trace request may ask for; longer asks are cut to this.
    /// Default 5 minutes.
    pub max_timeout: Duration,
}

impl Default for TraceBudget {
    fn default() -> Self {
        TraceBudget {
            max_watchers: 32,
            max_per_client: 16,
            max_timeout: Duration::from_secs(300),
        }
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(10),
            max_unsent_bytes: 32 << 20,
            max_connections: 1024,
            max_connections_per_address: 256,
            backlog: 1024,
            trace: TraceBudget::default(),
            access: crate::Access::default(),
            prometheus: monkit::render::prometheus::Options::default(),
            max_concurrent_streams: 256,
            max_header_list_size: 64 * 1024,
            keep_alive: (Duration::from_secs(20), Duration::from_secs(20)),
            trace_link: None,
        }
    }
}

use monkit::settings::{ConfigError, Vars};

monkit::settings::declare! {
    MONKIT_HTTP_HEADER_TIMEOUT: Duration, "10s", "how long a client may take to send a request's headers";
    MONKIT_HTTP_IDLE_TIMEOUT: Duration, "30s", "how long a connection may make no progress (PINGs are not progress)";
    MONKIT_HTTP_BODY_TIMEOUT: Duration, "10s", "how long a client may send nothing while the server waits for a request body";
    MONKIT_HTTP_MAX_UNSENT_BYTES: Count, "33554432", "response bytes a listener holds that clients have not read yet";
    MONKIT_HTTP_MAX_CONNECTIONS: Count, "1024", "connections served at once";
    MONKIT_HTTP_MAX_CONNECTIONS_PER_ADDRESS: Count, "256", "connections served at once from one client address";
    MONKIT_HTTP_BACKLOG: Count, "1024", "the listen backlog";
    MONKIT_HTTP2_MAX_STREAMS: Count, "256", "HTTP/2 streams at once on one connection";
    MONKIT_HTTP2_MAX_HEADER_LIST_SIZE: Count, "65536", "bytes of HTTP/2 headers a request may send";
    MONKIT_HTTP2_KEEP_ALIVE: Duration, "20s", "HTTP/2 keep-alive PING interval and timeout";
    MONKIT_TRACE_MAX_WATCHERS: Count, "32", "trace watchers waiting at once";
    MONKIT_TRACE_MAX_PER_CLIENT: Count, "16", "trace watchers waiting at once from one client address";
    MONKIT_TRACE_MAX_TIMEOUT: Duration, "5m", "the longest a trace watcher may wait";
    MONKIT_TRACE_LINK: Url, "none", "a trace viewer's URL with {trace_id} in it, linked from exemplars";
    MONKIT_HTTP_TOKEN: Text, "none", "a bearer token every page request must carry (Authorization: Bearer ...)";
    MONKIT_HTTP_ALLOWED_HOSTS: Text, "loopback names only", "Host names a loopback-bound server answers besides loopback ones, comma-separated";
    MONKIT_HTTP_PAGES: Text, "every page", "the page groups served: console, stats, funcs, ps, trace, metrics, slo, comma-separated";
}

impl ServeOptions {
    /// The defaults, changed by whichever of these variables are set: `MONKIT_HTTP_HEADER_TIMEOUT`,
    /// `MONKIT_HTTP_IDLE_TIMEOUT`, `MONKIT_HTTP_BODY_TIMEOUT`, `MONKIT_TRACE_MAX_TIMEOUT`
    /// (durations such as `10s`, `500ms`), `MONKIT_HTTP_MAX_UNSENT_BYTES`,
    /// `MONKIT_HTTP_MAX_CONNECTIONS`, `MONKIT_HTTP_MAX_CONNECTIONS_PER_ADDRESS`,
    /// `MONKIT_HTTP_BACKLOG`, `MONKIT_TRACE_MAX_WATCHERS`, `MONKIT_TRACE_MAX_PER_CLIENT`,
    /// `MONKIT_HTTP2_MAX_STREAMS`, `MONKIT_HTTP2_MAX_HEADER_LIST_SIZE` (positive counts),
    /// `MONKIT_HTTP2_KEEP_ALIVE` (a duration, for both the interval and the timeout),
    /// `MONKIT_TRACE_LINK` (an `http://` or `https://` URL with `{trace_id}` in it),
    /// `MONKIT_PROMETHEUS_BUCKETS` and `MONKIT_PROMETHEUS_SUMMARIES`, and the core's own
    /// ([`monkit::export::configure`]). A variable that is set but cannot be read is an error
    /// naming it, never ignored.
    pub fn from_env() -> Result<ServeOptions, ConfigError> {
        Self::from_vars(&Vars::env())
    }

    /// [`ServeOptions::from_env`] over any source of variables.
    pub fn from_vars(vars: &Vars) -> Result<ServeOptions, ConfigError> {
        monkit::export::configure(vars)?;
        let mut o = ServeOptions::default();
        // `Vars::duration` takes positive durations of at most a day.
        let duration = |name: &str, into: &mut Duration| -> Result<(), ConfigError> {
            if let Some(d) = vars.duration(name)? {
                *into = d;
            }
            Ok(())
        };
        duration("MONKIT_HTTP_HEADER_TIMEOUT", &mut o.header_timeout)?;
        duration("MONKIT_HTTP_IDLE_TIMEOUT", &mut o.idle_timeout)?;
        duration("MONKIT_HTTP_BODY_TIMEOUT", &mut o.body_timeout)?;
        duration("MONKIT_TRACE_MAX_TIMEOUT", &mut o.trace.max_timeout)?;
        let mut keep_alive = o.keep_alive.0;
        duration("MONKIT_HTTP2_KEEP_ALIVE", &mut keep_alive)?;
        o.keep_alive = (keep_alive, keep_alive);
        let count = |name: &str, into: &mut usize| -> Result<(), ConfigError> {
            if let Some(n) = vars.count(name)? {
                *into = usize::try_from(n).unwrap_or(usize::MAX);
            }
            Ok(())
        };
        let count32 = |name: &str, into: &mut u32| -> Result<(), ConfigError> {
            if let Some(n) = vars.count(name)? {
                *into = u32::try_from(n).unwrap_or(u32::MAX);
            }
            Ok(())
        };
        count("MONKIT_HTTP_MAX_CONNECTIONS", &mut o.max_connections)?;
        count("MONKIT_HTTP_MAX_UNSENT_BYTES", &mut o.max_unsent_bytes)?;
        count(
            "MONKIT_HTTP_MAX_CONNECTIONS_PER_ADDRESS",
            &mut o.max_connections_per_address,
        )?;
        count32("MONKIT_HTTP_BACKLOG", &mut o.backlog)?;
        count("MONKIT_TRACE_MAX_WATCHERS", &mut o.trace.max_watchers)?;
        count("MONKIT_TRACE_MAX_PER_CLIENT", &mut o.trace.max_per_client)?;
        count32("MONKIT_HTTP2_MAX_STREAMS", &mut o.max_concurrent_streams)?;
        count32(
            "MONKIT_HTTP2_MAX_HEADER_LIST_SIZE",
            &mut o.max_header_list_size,
        )?;
        if let Some(v) = vars.url("MONKIT_TRACE_LINK")? {
            if !v.contains("{trace_id}") {
                return Err(ConfigError::new(
                    "MONKIT_TRACE_LINK",
                    v,
                    "an http:// or https:// URL with {trace_id} in it",
                ));
            }
            o.trace_link = Some(v);
        }
        if let Some(t) = vars.string("MONKIT_HTTP_TOKEN") {
            let t = t.trim().to_owned();
            // What a header can carry: visible ASCII.
            if !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ConfigError::new(
                    "MONKIT_HTTP_TOKEN",
                    "<not shown>",
                    "visible ASCII characters, no spaces",
                ));
            }
            o.access.token = Some(t);
        }
        let list = |v: String| -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        if let Some(v) = vars.string("MONKIT_HTTP_ALLOWED_HOSTS") {
            o.access.allowed_hosts = list(v);
        }
        if let Some(v) = vars.string("MONKIT_HTTP_PAGES") {
            let pages = list(v.clone());
            if pages.is_empty()
                || !pages
                    .iter()
                    .all(|p| crate::PAGE_GROUPS.contains(&p.as_str()))
            {
                return Err(ConfigError::new(
                    "MONKIT_HTTP_PAGES",
                    v,
                    "page groups separated by commas: console, stats, funcs, ps, trace, metrics, slo",
                ));
            }
            o.access.pages = Some(pages);
        }
        o.prometheus = monkit::render::prometheus::Options::from_vars(vars)?;
        Ok(o)
    }
}

/// Serves HTTP/1.1 and HTTP/2 connections accepted from `listener` until `shutdown`
/// completes (HTTP/2 by prior knowledge, as gRPC clients and `curl --http2-prior-knowledge`
/// speak it; each connection's first bytes say which), with the limits of `options`: at most
/// `max_connections` at once, the header, idle and body timeouts, the unsent-bytes budget,
/// HTTP/2's stream, header-size and keep-alive limits, and on accept errors (out of file descriptors, say) a growing pause of up
/// to one second instead of a busy loop, with at most one log line per second on stderr.
///
/// `service` makes the service for each connection from the client's address. Its requests
/// carry a [`RequestBody`]; what the listener turned away or closed is the series
/// `monkit_http` on the pages' `/metrics` (see [`Pages`](crate::Pages)).
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use http_body_util::Full;
/// use hyper::{body::Bytes, Response};
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// monkit_http::serve_connections(
///     listener,
///     monkit_http::ServeOptions::default(),
///     |_peer| {
///         hyper::service::service_fn(|_req| async {
///             Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("hi\n"))))
///         })
///     },
///     std::future::pending(),
/// )
/// .await;
/// # Ok(()) }
/// ```
pub async fn serve_connections<M, S, B>(
    listener: TcpListener,
    options: ServeOptions,
    mut service: M,
    shutdown: impl Future<Output = ()>,
) where
    M: FnMut(SocketAddr) -> S,
    S: hyper::service::Service<Request<RequestBody>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let local = listener.local_addr().ok();
    let table = Arc::new(Conns::new(&options, local));
    let (stop, stopped) = watch::channel(false);
    let mut errors = AcceptErrors::new(local);
    tokio::pin!(shutdown);
    loop {
        // Always accepting: a client past the cap is told so at once, not left in the backlog.
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            c = listener.accept() => c,
        };
        let (stream, peer) = match accepted {
            Ok(c) => {
                errors.succeeded();
                c
            }
            Err(e) => {
                if let Some(pause) = errors.failed(&e) {
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(pause) => {}
                    }
                }
                continue;
            }
        };
        let Some(place) = table.admit(peer.ip()) else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let svc = service(peer);
        let stopped = stopped.clone();
        let options = options.clone();
        tokio::spawn(async move {
            connection(stream, svc, &options, stopped, &place).await;
        });
    }
    let _ = stop.send(true);
}

/// Binds a listener for [`serve_connections`] with the backlog `options` asks for (the
/// system's default, 128 on Linux for std's listeners, is soon full under a flood).
pub fn bind(addr: SocketAddr, options: &ServeOptions) -> io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(options.backlog.min(i32::MAX as u32) as i32)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The answer to a connection past the cap: `503`, then closed.
async fn refuse(mut stream: TcpStream) {
    use tokio::io::AsyncWriteExt;
    const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\
        retry-after: 1\r\ncontent-type: text/plain\r\ncontent-length: 32\r\n\r\n\
        too many connections; try again\n";
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(BUSY)).await;
    let _ = stream.shutdown().await;
}

/// Serves one connection until it ends, times out idle, or the server stops.
async fn connection<S, B>(
    stream: TcpStream,
    svc: S,
    options: &ServeOptions,
    mut stopped: watch::Receiver<bool>,
    place: &Place,
) where
    S: hyper::service::Service<Request<RequestBody>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let _ = stream.set_nodelay(true);
    let activity = place.activity.clone();
    activity.touch();
    let io = TokioIo::new(stream);
    let svc = InFlight {
        inner: svc,
        activity: activity.clone(),
        conns: place.table().clone(),
        body_timeout: options.body_timeout,
    };
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(options.max_concurrent_streams)
        .max_header_list_size(options.max_header_list_size)
        .keep_alive_interval(Some(options.keep_alive.0))
        .keep_alive_timeout(options.keep_alive.1);
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    let idle = options.idle_timeout.max(Duration::from_millis(1));
    let mut tick = tokio::time::interval((idle / 4).max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = stopped.changed() => {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(Duration::from_secs(1), conn.as_mut()).await;
                return;
            }
            // A newer connection took this idle one's place.
            _ = place.evict.notified() => return,
            _ = tick.tick() => {
                if activity.idle_for() >= idle {
                    place.table().stats.idle_closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
}

/// The connection's service: notes each request's arrival and the requests being answered
/// (so a long answer, a trace page waiting for its call, is not taken for an idle client),
/// refuses a request when the listener's unsent response bytes are over the budget, and
/// puts the bodies that bound what a client can hold around each request and response.
struct InFlight<S> {
    inner: S,
    activity: Arc<Activity>,
    conns: Arc<Conns>,
    body_timeout: Duration,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Counts one request as being answered while alive.
struct Answering(Arc<Activity>);

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.answering.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

impl<S, B> hyper::service::Service<Request<Incoming>> for InFlight<S>
where
    S: hyper::service::Service<Request<RequestBody>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
{
    type Response = Response<Sending<B>>;
    // Boxed here, so a service's error need not be `Send` itself.
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Sending<B>>, BoxError>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        self.activity.touch();
        let activity = self.activity.clone();
        let conns = self.conns.clone();
        // Refused before it costs anything when the budget is spent already...
        if !self.conns.fits(1, activity.unsent.load(Ordering::Relaxed)) {
            return Box::pin(std::future::ready(Ok(busy(activity, conns))));
        }
        self.activity.answering.fetch_add(1, Ordering::Relaxed);
        let answering = Answering(activity.clone());
        let req =
            req.map(|b| RequestBody::new(b, activity.clone(), conns.clone(), self.body_timeout));
        let fut = self.inner.call(req);
        Box::pin(async move {
            let r = fut.await;
            drop(answering);
            match r {
                Ok(resp) => {
                    let (parts, body) = resp.into_parts();
                    let body = Sending::new(body, activity.clone(), conns.clone());
                    // ... and after it was rendered, when answers made at once spent it.
                    let others = activity.unsent.load(Ordering::Relaxed);
                    if !conns.fits(0, others.saturating_sub(body.unsent())) {
                        return Ok(busy(activity, conns));
                    }
                    Ok(Response::from_parts(parts, body))
                }
                Err(e) => Err(e.into()),
            }
        })
    }
}

/// `503` for a request that finds the listener's unsent-bytes budget spent.
fn busy<B: Body>(activity: Arc<Activity>, conns: Arc<Conns>) -> Response<Sending<B>> {
    use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
    let mut busy = Response::new(Sending::own(
        "too many responses not yet read by their clients; try again\n",
        activity,
        conns,
    ));
    *busy.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
    let h = busy.headers_mut();
    h.insert(RETRY_AFTER, HeaderValue::from_static("1"));
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    busy
}

/// Accept failures: how long to pause before the next accept, and a log line at most once a
/// second saying how many failed since the last.
struct AcceptErrors {
    local: Option<SocketAddr>,
    pause: Duration,
    last_log: Option<Instant>,
    unlogged: u64,
}

/// The first pause after a resource error; it doubles on each further one.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
/// The longest pause between accepts while resources stay short.
const MAX_PAUSE: Duration = Duration::from_secs(1);
/// At most one log line per this long.
const LOG_EVERY: Duration = Duration::from_secs(1);

impl AcceptErrors {
    fn new(local: Option<SocketAddr>) -> AcceptErrors {
        AcceptErrors {
            local,
            pause: Duration::ZERO,
            last_log: None,
            unlogged: 0,
        }
    }

    fn succeeded(&mut self) {
        self.pause = Duration::ZERO;
    }

    /// Notes a failed accept; the pause before the next one, if any.
    fn failed(&mut self, e: &io::Error) -> Option<Duration> {
        self.unlogged += 1;
        if self.last_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            let addr = self
                .local
                .map_or_else(|| "a listener".to_owned(), |a| a.to_string());
            let more = match self.unlogged - 1 {
                0 => String::new(),
                n => format!(" ({n} more since the last line)"),
            };
            log::error!("monkit-http: accepting on {addr} failed: {e}{more}");
            self.last_log = Some(Instant::now());
            self.unlogged = 0;
        }
        if !is_resource_error(e) {
            // The peer's problem (reset before we accepted it): try the next one at once.
            return None;
        }
        self.pause = (self.pause * 2).clamp(FIRST_PAUSE, MAX_PAUSE);
        Some(self.pause)
    }
}

/// Errors that mean the process or system is short of something, where accepting again at
/// once would fail again at once.
fn is_resource_error(e: &io::Error) -> bool {
    !matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_from_the_environment() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            Vars::from_pairs(pairs.iter().copied())
        };
        let o = ServeOptions::from_vars(&vars(&[
            ("MONKIT_HTTP_HEADER_TIMEOUT", "250ms"),
            ("MONKIT_HTTP_MAX_CONNECTIONS", "64"),
            ("MONKIT_TRACE_MAX_PER_CLIENT", "2"),
        ]))
        .unwrap();
        assert_eq!(o.header_timeout, Duration::from_millis(250));
        assert_eq!(o.max_connections, 64);
        assert_eq!(o.trace.max_per_client, 2);
        assert_eq!(o.idle_timeout, ServeOptions::default().idle_timeout);
        let e = ServeOptions::from_vars(&vars(&[("MONKIT_TRACE_MAX_WATCHERS", "0")])).unwrap_err();
        assert_eq!(e.setting, "MONKIT_TRACE_MAX_WATCHERS");
        assert!(e.to_string().contains("positive whole number"), "{e}");
        let e =
            ServeOptions::from_vars(&vars(&[("MONKIT_HTTP_IDLE_TIMEOUT", "soon")])).unwrap_err();
        assert!(
            e.to_string().contains("MONKIT_HTTP_IDLE_TIMEOUT=\"soon\""),
            "{e}"
        );
        // The core's own variables are read by the same call, each refused by name.
        for (k, v) in [
            ("MONKIT_EXACT_HIGHWATER", "maybe"),
            ("MONKIT_SHUTDOWN_TIMEOUT", "later"),
            ("MONKIT_TAGS", "novalue"),
            ("MONKIT_PROMETHEUS_SUMMARIES", "maybe"),
            ("MONKIT_TRACE_LINK", "https://tempo/no-placeholder"),
        ] {
            let e = ServeOptions::from_vars(&Vars::from_pairs([(k, v)])).unwrap_err();
            assert_eq!((e.setting.as_str(), e.value.as_str()), (k, v), "{e}");
        }
    }

    #[test]
    fn resource_errors_back_off_up_to_a_second() {
        let mut e = AcceptErrors::new(None);
        let emfile = io::Error::from_raw_os_error(24);
        let pauses: Vec<_> = (0..12).map(|_| e.failed(&emfile).unwrap()).collect();
        assert_eq!(pauses[0], FIRST_PAUSE);
        assert_eq!(pauses[1], FIRST_PAUSE * 2);
        assert_eq!(*pauses.last().unwrap(), MAX_PAUSE);
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]));
        e.succeeded();
        assert_eq!(e.failed(&emfile), Some(FIRST_PAUSE));
        let reset = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(e.failed(&reset), None);
    }
}
