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

pub use crate::util::settings::{parse_duration, ConfigError};

use parking_lot::Mutex;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// What holds telemetry still to be sent: an exporter's queue, a push reporter's next push.
/// Exporters and reporters register themselves ([`register_flush`]) when installed, so that
/// one call ([`flush_all`]) sends everything a program holds before it exits.
pub trait Flush: Send + Sync {
    /// Sends what is held now, waiting at most until `deadline`; whether all of it went.
    fn flush(&self, deadline: Instant) -> bool;
}

static FLUSHERS: Mutex<Vec<Weak<dyn Flush>>> = Mutex::new(Vec::new());

/// Registers `f` for [`flush_all`] for as long as it lives (a dropped one is forgotten).
pub fn register_flush(f: Weak<dyn Flush>) {
    let mut all = FLUSHERS.lock();
    all.retain(|w| w.strong_count() > 0);
    all.push(f);
}

/// Flushes every registered exporter and reporter, all within `timeout` together; whether
/// every one finished in time.
pub fn flush_all(timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    // Taken out of the lock, so a flush that registers or drops another cannot deadlock.
    let live: Vec<Arc<dyn Flush>> = FLUSHERS.lock().iter().filter_map(Weak::upgrade).collect();
    let mut all_done = true;
    for f in live {
        all_done &= f.flush(deadline);
    }
    all_done
}

/// The variable that says how long a shutdown may spend flushing.
pub const SHUTDOWN_TIMEOUT_ENV: &str = "MONKIT_SHUTDOWN_TIMEOUT";

/// How long a shutdown may spend sending what is queued: `MONKIT_SHUTDOWN_TIMEOUT` (seconds,
/// or a number with `ms` or `s`), 5 s when unset. An exporter's drop waits this long too.
pub fn shutdown_timeout() -> Result<Duration, ConfigError> {
    match std::env::var(SHUTDOWN_TIMEOUT_ENV) {
        Err(_) => Ok(Duration::from_secs(5)),
        Ok(v) => parse_timeout(&v).ok_or_else(|| {
            ConfigError::new(
                SHUTDOWN_TIMEOUT_ENV,
                v,
                "a duration of at most 1h, such as 5, 5s or 500ms",
            )
        }),
    }
}

/// A shutdown timeout: a duration of at most an hour.
fn parse_timeout(v: &str) -> Option<Duration> {
    parse_duration(v).filter(|d| *d <= Duration::from_secs(3600))
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

    /// The keys whose values are integers, which exporters with typed attributes send as
    /// such.
    pub const INTEGER_KEYS: [&str; 4] = [
        HTTP_STATUS_CODE,
        RPC_GRPC_STATUS_CODE,
        PEER_PORT,
        "server.port",
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
        assert_eq!(parse_timeout("5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_timeout("2.5s"), Some(Duration::from_millis(2500)));
        assert_eq!(parse_timeout("500ms"), Some(Duration::from_millis(500)));
        for bad in ["", "-1", "soon", "5h", "1e9"] {
            assert_eq!(parse_timeout(bad), None, "{bad}");
        }
    }

    #[test]
    fn flush_all_reaches_every_live_flusher() {
        struct Counting(std::sync::atomic::AtomicU32);
        impl Flush for Counting {
            fn flush(&self, _: Instant) -> bool {
                self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
