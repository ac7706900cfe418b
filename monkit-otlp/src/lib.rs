//! Exports the finished spans of sampled monkit traces over OTLP: protobuf
//! `ExportTraceServiceRequest`s POSTed to `/v1/traces` (OTLP/HTTP) or sent as gRPC `Export`
//! calls (feature `grpc`), optionally gzip-compressed, built with the OpenTelemetry project's
//! own message types (`opentelemetry-proto`). Jaeger, Tempo, the OpenTelemetry Collector and
//! the vendors behind it take it.
//!
//! ```no_run
//! let exporter = monkit_otlp::Builder::new("http://127.0.0.1:4318/v1/traces")
//!     .service_name("vlite")
//!     .sample_rate(0.1)
//!     .gzip(true)
//!     .install(monkit::default_registry())
//!     .expect("valid configuration");
//! // ... run ...
//! exporter.shutdown(std::time::Duration::from_secs(5)); // sends what is queued
//! ```
//!
//! Or from the standard environment with [`Builder::from_env`]:
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is) or `OTEL_EXPORTER_OTLP_ENDPOINT` (with
//! `/v1/traces` added), `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER` (`always_on`,
//! `always_off`, `traceidratio`, and their `parentbased_` forms, which monkit's sampling
//! already is) with `OTEL_TRACES_SAMPLER_ARG`, `OTEL_EXPORTER_OTLP[_TRACES]_COMPRESSION`
//! (`gzip`), `OTEL_EXPORTER_OTLP[_TRACES]_HEADERS` (`k=v,...`),
//! `OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL` (`http/protobuf`, or `grpc` with the feature `grpc`:
//! then `OTEL_EXPORTER_OTLP_ENDPOINT` is used as it is, and a bare `host:port` means TLS unless
//! `OTEL_EXPORTER_OTLP[_TRACES]_INSECURE=true`), and for an `https://`
//! endpoint `OTEL_EXPORTER_OTLP[_TRACES]_CERTIFICATE` (the CA's PEM file, instead of Mozilla's
//! roots) and `OTEL_EXPORTER_OTLP[_TRACES]_CLIENT_CERTIFICATE` with
//! `OTEL_EXPORTER_OTLP[_TRACES]_CLIENT_KEY` (mutual TLS), `OTEL_EXPORTER_OTLP[_TRACES]_TIMEOUT`
//! (milliseconds), `OTEL_RESOURCE_ATTRIBUTES` (`k=v,...`, percent-decoded), `OTEL_SDK_DISABLED`
//! (`true`: no exporter), `OTEL_PROPAGATORS` (`tracecontext`, `baggage`, `b3`, `b3multi`,
//! `none`: what trace context crosses processes in) and `MONKIT_TAIL_MIN_DURATION`,
//! `MONKIT_TAIL_ERRORS` (tail sampling).
//!
//! Metrics go too, with [`MetricsBuilder`] (`/v1/metrics` every `OTEL_METRIC_EXPORT_INTERVAL`,
//! 60 s by default): function calls by outcome as monotonic Sums, running and highwater as
//! Gauges, durations as ExponentialHistograms (scale 6) taken from the native buckets one for
//! one, with exemplars; every source as a Sum, Gauge or ExponentialHistogram; tags as
//! attributes; cumulative, or delta with
//! `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta`.
//!
//! Logs go too, with [`LogsBuilder`] (`/v1/logs`; `OTEL_LOGS_EXPORTER`,
//! `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`): every record the bridges pass on
//! (`monkit::bridge::LogBridge`, `tracing` events through `MonkitLayer`) with its severity,
//! body, key-values and the trace and span ids of the call it was written in.
//!
//! Queueing, batching, retries and stats are those of `monkit-exporter`, the same as
//! monkit-zipkin's: the program never waits for the collector, and the counts are monkit stats
//! of the scope `monkit_otlp`.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod builder;
pub mod encode;
#[cfg(feature = "grpc")]
mod grpc;
mod logs;
mod metrics;
mod push;

pub use builder::{Builder, Protocol};
pub use logs::{LogsBuilder, LogsExporter, DEFAULT_LOG_QUEUE, DEFAULT_LOG_QUEUE_BYTES};
pub use metrics::Temporality;
pub use push::{MetricsBuilder, MetricsExporter};
