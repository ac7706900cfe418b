//! Bridges from the logging and tracing facades: `tracing` spans as monkit calls and `tracing`
//! events as span events ([`MonkitLayer`], feature `tracing`), and `log` records tied to the
//! span they were written in ([`LogBridge`], feature `log`).

#[cfg(feature = "log")]
mod log;
#[cfg(feature = "tracing")]
mod tracing;

#[cfg(feature = "log")]
pub use self::log::LogBridge;
#[cfg(feature = "tracing")]
pub use self::tracing::{MonkitLayer, DEFAULT_SKIPPED_TARGETS, ERROR_EVENT_KIND};
