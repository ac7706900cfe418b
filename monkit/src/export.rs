//! Handing finished spans of sampled traces to an exporter (Zipkin, or your own), and deciding
//! which new traces are sampled.
//!
//! A trace is sampled when its root is: by the [`Sampler`] for a new root (one relaxed load and
//! a compare of the root's random id), by the incoming flag for a trace continued from another
//! process, or on demand by `/trace/sample`. Every span of a sampled trace is handed to the
//! exporter when it finishes; the exporter must not block (queue and drop instead).

use crate::trace::FinishedSpan;
use parking_lot::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Receives the finished spans of sampled traces, on the instrumented thread: it must return
/// at once (push to a bounded queue, drop when full).
pub trait SpanExporter: Send + Sync {
    /// One finished span.
    fn export(&self, span: FinishedSpan);
}

static EXPORTER: RwLock<Option<Arc<dyn SpanExporter>>> = RwLock::new(None);

/// A new root is sampled when its (uniformly random) span id is at most this.
static THRESHOLD: AtomicU64 = AtomicU64::new(0);

/// Which new traces are sampled. A trace continued from another process keeps the sampled
/// flag it came with (parent-based), and `/trace/sample` forces one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampler {
    /// Every new trace.
    Always,
    /// No new trace.
    Never,
    /// This fraction (0..=1) of new traces.
    Fraction(f64),
}

/// Sets the sampler for new traces (default: [`Sampler::Never`]).
pub fn set_sampler(s: Sampler) {
    let t = match s {
        Sampler::Always => u64::MAX,
        Sampler::Never => 0,
        Sampler::Fraction(f) if f.is_nan() || f <= 0.0 => 0,
        Sampler::Fraction(f) if f >= 1.0 => u64::MAX,
        Sampler::Fraction(f) => (f * u64::MAX as f64) as u64,
    };
    THRESHOLD.store(t, Ordering::Relaxed);
}

/// Whether a new root with this span id is sampled.
#[inline(always)]
pub(crate) fn sample_root(span_id: u64) -> bool {
    let t = THRESHOLD.load(Ordering::Relaxed);
    t != 0 && span_id <= t
}

/// Installs (or, with `None`, removes) the exporter.
pub fn set_exporter(e: Option<Arc<dyn SpanExporter>>) {
    *EXPORTER.write() = e;
}

/// Hands a finished sampled span to the exporter, if there is one.
pub(crate) fn export(span: FinishedSpan) {
    if let Some(e) = EXPORTER.read().as_ref() {
        e.export(span);
    }
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
    /// The HTTP method.
    pub const HTTP_METHOD: &str = "http.method";
    /// The HTTP path.
    pub const HTTP_PATH: &str = "http.path";
    /// The HTTP response status code.
    pub const HTTP_STATUS_CODE: &str = "http.status_code";
}
