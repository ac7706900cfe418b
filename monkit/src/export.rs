//! What exporters need from the core: the sampler for new traces, the annotation keys with a
//! meaning for exporters, and one place to flush them all before the program exits. Exporters themselves are [`SpanObserver`](crate::SpanObserver)s
//! registered on a registry ([`Registry::observe`](crate::Registry::observe)), and send only
//! spans whose [`SpanStart::sampled`](crate::SpanStart::sampled) is set.
//!
//! A trace is sampled when its root is: by the [`Sampler`] for a new root (one relaxed load and
//! a compare of the root's random id), by the incoming flag for a trace continued from another
//! process when the sampler is parent-based ([`Sampler::ParentBased`]), or on demand by
//! `/trace/sample`.

pub use crate::trace::sampler::Sampler;

use crate::util::settings::{ConfigError, Vars};

use parking_lot::Mutex;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// What holds telemetry still to be sent: an exporter's queue, a push reporter's next push.
/// Each registers itself ([`register_flush`]) when installed, so that one call
/// ([`flush_all`], or [`shutdown_all`] as a program leaves) sends everything it holds, all of
/// them at once and within one deadline however many there are.
pub trait Flush: Send + Sync {
    /// Asks for what is held now to be sent, and with `stop` for the work to end after it;
    /// returns at once.
    fn begin(&self, stop: bool);
    /// Waits until what was held at the last [`begin`](Flush::begin) is sent, or until
    /// `deadline`; whether it was. A stopping one that is not done by then drops what is
    /// left, counted, and returns.
    fn wait(&self, deadline: Instant) -> bool;
}

static FLUSHERS: Mutex<Vec<Weak<dyn Flush>>> = Mutex::new(Vec::new());

/// Registers `f` for [`flush_all`] and [`shutdown_all`] for as long as it lives (a dropped
/// one is forgotten).
pub fn register_flush(f: Weak<dyn Flush>) {
    let mut all = FLUSHERS.lock();
    all.retain(|w| w.strong_count() > 0);
    all.push(f);
}

/// Asks every registered one at once, then waits for them all within one deadline.
fn each(stop: bool, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    // Taken out of the lock, so a flush that registers or drops another cannot deadlock.
    let live: Vec<Arc<dyn Flush>> = FLUSHERS.lock().iter().filter_map(Weak::upgrade).collect();
    for f in &live {
        f.begin(stop);
    }
    // Every one is waited for (a stopping one abandons at the deadline): no short cut.
    let mut all = true;
    for f in &live {
        all &= f.wait(deadline);
    }
    all
}

/// Sends what every registered exporter and reporter holds now, all within `timeout`
/// together; whether every one finished in time. They go on working after.
pub fn flush_all(timeout: Duration) -> bool {
    each(false, timeout)
}

/// Sends what every registered exporter and reporter holds and stops them, all within
/// `timeout` together: what is not sent by then is dropped and counted, and their handles'
/// drops then return at once. Whether everything was sent.
pub fn shutdown_all(timeout: Duration) -> bool {
    each(true, timeout)
}

const SHUTDOWN_TIMEOUT: &str = "MONKIT_SHUTDOWN_TIMEOUT";

crate::util::settings::declare! {
    MONKIT_SHUTDOWN_TIMEOUT: Duration, "5s", "the one deadline a shutdown's flush of every exporter shares (at most 1h)";
}

/// How long a shutdown may spend sending what is queued, all exporters together:
/// `MONKIT_SHUTDOWN_TIMEOUT` of `vars` (a duration of at most an hour), 5 s when unset.
pub fn shutdown_timeout(vars: &Vars) -> Result<Duration, ConfigError> {
    Ok(vars
        .duration_max(SHUTDOWN_TIMEOUT, Duration::from_secs(3600))?
        .unwrap_or(Duration::from_secs(5)))
}

/// Reads and applies the core's own variables from `vars`: `MONKIT_EXACT_HIGHWATER`,
/// `MONKIT_TAGS` (when no tags were set in code), `MONKIT_SHUTDOWN_TIMEOUT` (checked), and
/// `OTEL_PROPAGATORS` (logged and ignored when unreadable, as OpenTelemetry asks). Every
/// exporter's `from_env` and `monkit_http::ServeOptions::from_env` call it, so a bad value
/// stops a program at its start, naming the variable.
///
/// ```
/// use monkit::settings::Vars;
/// let e = monkit::export::configure(&Vars::from_pairs([("MONKIT_EXACT_HIGHWATER", "maybe")]))
///     .unwrap_err();
/// assert_eq!(e.setting, "MONKIT_EXACT_HIGHWATER");
/// ```
pub fn configure(vars: &Vars) -> Result<(), ConfigError> {
    crate::stats::running::configure(vars)?;
    crate::call::flight::configure(vars)?;
    crate::call::polls::configure(vars)?;
    crate::registry::process_tags::configure(vars)?;
    shutdown_timeout(vars)?;
    crate::trace::propagation::propagators_from(vars);
    Ok(())
}

/// Annotation keys with a meaning for exporters (the rest become plain tags).
pub mod keys {
    /// `server`, `client`, `producer` or `consumer`; absent for local spans.
    pub const SPAN_KIND: &str = "span.kind";
    /// The remote peer's IPv4 address.
    pub const PEER_IPV4: &str = "peer.ipv4";
    /// The remote peer's IPv6 address.
    pub const PEER_IPV6: &str = "peer.ipv6";
    /// The remote peer's port.
    pub const PEER_PORT: &str = "peer.port";
    /// The remote peer's service name.
    pub const PEER_SERVICE: &str = "peer.service";
    /// The HTTP method (OpenTelemetry's stable name; Zipkin's `http.method`).
    pub const HTTP_METHOD: &str = "http.request.method";
    /// The HTTP path (OpenTelemetry's stable name; Zipkin's `http.path`).
    pub const HTTP_PATH: &str = "url.path";
    /// The HTTP response status code (OpenTelemetry's stable name; Zipkin's
    /// `http.status_code`).
    pub const HTTP_STATUS_CODE: &str = "http.response.status_code";
    /// The route template that matched the request (`/users/{id}`).
    pub const HTTP_ROUTE: &str = "http.route";
    /// The host a client request went to.
    pub const SERVER_ADDRESS: &str = "server.address";
    /// The kind of failure, where a span failed (`http_5xx`, `connect`, `not_found`...).
    pub const ERROR_TYPE: &str = "error.type";
    /// The remote procedure call system (`grpc`).
    pub const RPC_SYSTEM: &str = "rpc.system";
    /// The full name of the called service (`tavern.v1.Worker`).
    pub const RPC_SERVICE: &str = "rpc.service";
    /// The called method (`Poll`).
    pub const RPC_METHOD: &str = "rpc.method";
    /// The gRPC status code a call ended with, as a number.
    pub const RPC_GRPC_STATUS_CODE: &str = "rpc.grpc.status_code";

    /// A slow poll event's length, in nanoseconds.
    pub const POLL_NS: &str = crate::polls::SLOW_POLL_NS;

    /// The keys whose values are integers, which exporters with typed attributes send as
    /// such.
    pub const INTEGER_KEYS: [&str; 5] = [
        HTTP_STATUS_CODE,
        RPC_GRPC_STATUS_CODE,
        PEER_PORT,
        "server.port",
        POLL_NS,
    ];

    /// Zipkin's own name of an annotation key, where its conventions name it otherwise.
    pub fn zipkin_name(key: &str) -> &str {
        match key {
            HTTP_METHOD => "http.method",
            HTTP_PATH => "http.path",
            HTTP_STATUS_CODE => "http.status_code",
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        let t = |v: &str| shutdown_timeout(&Vars::from_pairs([("MONKIT_SHUTDOWN_TIMEOUT", v)]));
        assert_eq!(t("5"), Ok(Duration::from_secs(5)));
        assert_eq!(t("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(t("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(t(""), Ok(Duration::from_secs(5)));
        for bad in ["-1", "later", "5h", "1e9"] {
            assert_eq!(
                t(bad).unwrap_err().setting,
                "MONKIT_SHUTDOWN_TIMEOUT",
                "{bad}"
            );
        }
    }

    #[test]
    fn flush_all_reaches_every_live_flusher() {
        struct Counting(std::sync::atomic::AtomicU32);
        impl Flush for Counting {
            fn begin(&self, _: bool) {
                self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            fn wait(&self, _: Instant) -> bool {
                true
            }
        }
        let a = Arc::new(Counting(Default::default()));
        let gone = Arc::new(Counting(Default::default()));
        register_flush(Arc::downgrade(&a) as Weak<dyn Flush>);
        register_flush(Arc::downgrade(&gone) as Weak<dyn Flush>);
        drop(gone);
        assert!(flush_all(Duration::from_secs(1)));
        assert_eq!(a.0.load(std::sync::atomic::Ordering::Relaxed), 1);
    }
}
