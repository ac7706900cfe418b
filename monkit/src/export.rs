//! What exporters need from the core: the sampler for new traces, and the annotation keys
//! with a meaning for exporters. Exporters themselves are [`SpanObserver`](crate::SpanObserver)s
//! registered on a registry ([`Registry::observe`](crate::Registry::observe)), and send only
//! spans whose [`SpanStart::sampled`](crate::SpanStart::sampled) is set.
//!
//! A trace is sampled when its root is: by the [`Sampler`] for a new root (one relaxed load and
//! a compare of the root's random id), by the incoming flag for a trace continued from another
//! process, or on demand by `/trace/sample`.

pub use crate::trace::sampler::Sampler;

pub use crate::util::settings::ConfigError;

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
