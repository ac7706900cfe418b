//! Exports the finished spans of sampled monkit traces to Zipkin, as v2 JSON or proto3
//! (`POST /api/v2/spans`, a `ListOfSpans`), optionally gzip-compressed.
//!
//! ```no_run
//! let exporter = monkit_zipkin::Builder::new("http://127.0.0.1:9411/api/v2/spans")
//!     .service_name("vlite")
//!     .sample_rate(0.1)
//!     .install(monkit::default_registry())
//!     .expect("valid configuration");
//! // ... run ...
//! exporter.shutdown(std::time::Duration::from_secs(5)); // sends what is queued
//! ```
//!
//! Or from the environment: `MONKIT_ZIPKIN_ENDPOINT` (required), `MONKIT_ZIPKIN_SERVICE_NAME`,
//! `MONKIT_ZIPKIN_SAMPLE_RATE` (0..=1, default 1), `MONKIT_ZIPKIN_QUEUE` (spans):
//! `monkit_zipkin::Builder::from_env()`.
//!
//! The exporter is a [`monkit::SpanObserver`] of the registry it is installed on: it sends the
//! spans of that registry's sampled traces, beside any other observer.
//!
//! The instrumented program never waits for Zipkin: a finished span is pushed onto a bounded
//! lock-free queue (dropped and counted when full); a background thread sends batches (by size
//! and by interval), retries connection errors and 5xx with exponential backoff and jitter,
//! and gives up on 4xx with a logged reason. Its own counts are monkit stats under the scope
//! `monkit_zipkin`: `spans_sent`, `spans_dropped`, `spans_failed`, `batches_retried`.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod encode;
mod exporter;
mod proto3;

pub use encode::{encode, Endpoint};
pub use exporter::Builder;
