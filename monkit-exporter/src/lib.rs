//! The sending side of monkit's span exporters (Zipkin, OTLP), written once: a bounded
//! lock-free queue filled by instrumented threads, drained in batches by one background thread
//! that sends them, optionally gzip-compressed. The wire format is the caller's ([`Format`]),
//! and so is the carrier: HTTP POSTs by default ([`Http`]), any [`Transport`] (monkit-otlp's
//! gRPC) with [`Pipeline::install_with`].
//!
//! Collectors are obeyed as the OTLP specification says: connection errors and `429`, `502`,
//! `503` and `504` are retried, after the `Retry-After` the collector asked for (seconds or an
//! HTTP date, at most [`MAX_RETRY_AFTER`]) or else with exponential backoff and jitter drawn
//! from a per-process random seed (so a fleet does not retry in step); every other status is
//! permanent, logged and counted (`batches_refused`), as is a TLS failure (a certificate the
//! roots or the collector's name refuse; feature `tls`, on by default, with Mozilla's roots or
//! the CA of [`Pipeline::tls_ca`], and a client certificate for mutual TLS). A response body
//! is read to at most [`MAX_RESPONSE_BODY`] bytes; past that the connection is dropped.
//!
//! The instrumented program never waits: a finished span of a sampled trace is pushed onto the
//! queue, or dropped and counted when it is full. The exporter's own counts are monkit stats of
//! the scope `monkit_<name>`: `spans_sent`, `spans_dropped`, `spans_failed`,
//! `batches_retried`, `batches_refused`.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

monkit::settings::declare! {
    MONKIT_TAIL_MIN_DURATION: Duration, "off", "tail sampling: also export whole traces whose local root lasted this long";
    MONKIT_TAIL_ERRORS: Flag, "off", "tail sampling: also export whole traces in which a span failed";
    MONKIT_TAIL_MAX_BYTES: Count, "33554432", "tail sampling: bytes all pending traces may hold together";
}

use monkit::export::Sampler;
use monkit::{FinishedSpan, Registry};
#[cfg(feature = "tls")]
use std::sync::Arc;
use std::time::Duration;

/// Longest `Retry-After` obeyed; a collector asking for more is retried after this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Most bytes of a collector's response read (an error's text); the rest is never read.
pub const MAX_RESPONSE_BODY: u64 = 64 * 1024;

/// How a batch of spans goes on the wire.
pub trait Format: Send + Sync + 'static {
    /// The `Content-Type` of a request body.
    fn content_type(&self) -> &'static str;
    /// One request body for `batch`.
    fn encode(&self, batch: &[FinishedSpan]) -> Vec<u8>;
}

use monkit::settings::{ConfigError, Vars};

mod http;
mod periodic;
mod send;
mod spans;
mod tail;
#[cfg(feature = "tls")]
mod tls;

pub use http::{retry_after, Http};
pub use periodic::{Ctx, Job, Periodic};
pub use send::{Delivery, Sender, Sent, Transport};
pub use spans::Exporter;
pub use tail::{DEFAULT_TAIL_MAX_BYTES, MAX_PENDING_SPANS, MAX_PENDING_TRACES};
#[cfg(feature = "tls")]
pub use tls::tls_failure;

/// Where an exporter's TLS material comes from: PEM files.
#[derive(Clone, Debug, Default)]
struct TlsFiles {
    /// The CA certificates that may sign the collector's certificate, instead of Mozilla's.
    ca: Option<std::path::PathBuf>,
    /// The client's certificate chain and private key, for mutual TLS.
    client: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// Where and how often to send, and how hard to try.
#[derive(Clone, Debug)]
pub struct Pipeline {
    name: &'static str,
    endpoint: String,
    /// As set; `None`: the default, which depends on tail sampling (see `head_sampler`).
    sampler: Option<Sampler>,
    queue_capacity: usize,
    batch_size: usize,
    batch_interval: Duration,
    timeout: Duration,
    max_retries: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    gzip: bool,
    headers: Vec<(String, String)>,
    tls: TlsFiles,
    tail: tail::TailRule,
}

impl Pipeline {
    /// Sends to `endpoint` as the exporter `name` (its thread `monkit-<name>`, its stats scope
    /// `monkit_<name>`), sampling every new trace and keeping a caller's flag for a continued
    /// one (OpenTelemetry's default, `parentbased_always_on`), with a queue of 4,096 spans, batches of up
    /// to 256 spans or every second, a 5 s request timeout and up to 5 retries backing off
    /// from 100 ms to 10 s, uncompressed.
    pub fn new(name: &'static str, endpoint: &str) -> Pipeline {
        Pipeline {
            name,
            endpoint: endpoint.to_owned(),
            sampler: None,
            queue_capacity: 4096,
            batch_size: 256,
            batch_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            max_retries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            gzip: false,
            headers: Vec::new(),
            tls: TlsFiles::default(),
            tail: tail::TailRule::default(),
        }
    }

    /// The endpoint requests go to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The exporter's name (its thread `monkit-<name>`, its stats scope `monkit_<name>`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The request timeout ([`Pipeline::timeout`]).
    pub fn request_timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether bodies are gzip-compressed ([`Pipeline::gzip`]).
    pub fn is_gzip(&self) -> bool {
        self.gzip
    }

    /// The headers sent with every request ([`Pipeline::header`]).
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The TLS client configuration of [`Pipeline::tls_ca`] and [`Pipeline::tls_client_cert`]
    /// (Mozilla's roots without a CA), for a [`Transport`] that speaks TLS itself; the files are
    /// read now, and a missing or malformed one is an error naming it.
    #[cfg(feature = "tls")]
    pub fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, ConfigError> {
        self.tls.config(self.name)
    }

    /// A [`Sender`] over `transport` with this pipeline's retry rules ([`Pipeline::retries`]).
    pub fn sender(&self, transport: Box<dyn Transport>) -> Sender {
        Sender::new(
            transport,
            self.max_retries,
            self.initial_backoff,
            self.max_backoff,
        )
    }

    /// Samples this fraction (0..=1) of new traces; incoming sampled flags and `/trace/sample`
    /// still decide for theirs (parent-based). [`Pipeline::sampler`] chooses otherwise.
    pub fn sample_rate(mut self, rate: f64) -> Pipeline {
        let rate = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        self.sampler = Some(Sampler::ParentBased(rate));
        self
    }

    /// The sampler: [`Sampler::Always`], `Never` and `Fraction` decide every trace here,
    /// ignoring a caller's flag; [`Sampler::ParentBased`] keeps it.
    pub fn sampler(mut self, s: Sampler) -> Pipeline {
        self.sampler = Some(s);
        self
    }

    /// Most spans waiting to be sent; past this, finished spans are dropped and counted.
    pub fn queue_capacity(mut self, n: usize) -> Pipeline {
        self.queue_capacity = n.max(1);
        self
    }

    /// Most spans per request, and the longest a span waits before its batch is sent.
    pub fn batch(mut self, size: usize, interval: Duration) -> Pipeline {
        self.batch_size = size.max(1);
        self.batch_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Request timeout.
    pub fn timeout(mut self, t: Duration) -> Pipeline {
        self.timeout = t;
        self
    }

    /// Retries of a failed batch (connection errors, and the answers a collector means to be
    /// tried again: HTTP 429 and 502-504, the gRPC codes the OTLP specification names),
    /// backing off exponentially from `initial` to at most `max`, with jitter, or after the
    /// collector's own delay.
    pub fn retries(mut self, max_retries: u32, initial: Duration, max: Duration) -> Pipeline {
        self.max_retries = max_retries;
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// Compresses request bodies with gzip (`Content-Encoding: gzip`).
    pub fn gzip(mut self, on: bool) -> Pipeline {
        self.gzip = on;
        self
    }

    /// A header sent with every request (an API key, say).
    pub fn header(mut self, name: &str, value: &str) -> Pipeline {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// For an `https://` endpoint: trusts only the CA certificates in this PEM file (a private
    /// CA's), instead of Mozilla's roots (feature `tls`).
    pub fn tls_ca(mut self, pem: impl Into<std::path::PathBuf>) -> Pipeline {
        self.tls.ca = Some(pem.into());
        self
    }

    /// For an `https://` endpoint: presents this certificate chain and private key (PEM
    /// files), for a collector that asks for mutual TLS (feature `tls`).
    pub fn tls_client_cert(
        mut self,
        cert_pem: impl Into<std::path::PathBuf>,
        key_pem: impl Into<std::path::PathBuf>,
    ) -> Pipeline {
        self.tls.client = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// Tail sampling: also exports every whole trace in which a local root lasted at least
    /// `min_duration`, or (with `errors`) some span failed, though head sampling did not pick
    /// it. Every trace is then recorded while it runs (each span costs a hand-off to the
    /// exporter); a trace decides when its last open local root ends; at most
    /// [`MAX_PENDING_TRACES`] wait at once, with at most [`MAX_PENDING_SPANS`] spans each and
    /// [`Pipeline::tail_max_bytes`] bytes over all. What does not fit is counted (the trace in
    /// `tail_overflowed`, each span in `tail_spans_lost`), as are the traces kept
    /// (`tail_kept`) and let go (`tail_dropped`). With no sampler set, head sampling is then
    /// off for new traces (a caller's sampled flag still counts): the tail decides.
    pub fn tail_sampling(mut self, min_duration: Option<Duration>, errors: bool) -> Pipeline {
        self.tail.min_duration = min_duration;
        self.tail.errors = errors;
        self
    }

    /// Bytes all traces pending for tail sampling may hold together (default
    /// [`DEFAULT_TAIL_MAX_BYTES`], `MONKIT_TAIL_MAX_BYTES`); past it their spans are not kept,
    /// counted, and their traces not exported.
    pub fn tail_max_bytes(mut self, bytes: usize) -> Pipeline {
        self.tail.max_bytes = bytes;
        self
    }

    /// The sampler for new traces: as set, else `parentbased_always_on`, or, with tail
    /// sampling on, `parentbased_always_off`.
    pub(crate) fn head_sampler(&self) -> Sampler {
        self.sampler.unwrap_or(if self.tail.is_on() {
            Sampler::ParentBased(0.0)
        } else {
            Sampler::ParentBased(1.0)
        })
    }

    /// [`Pipeline::tail_sampling`] from `MONKIT_TAIL_MIN_DURATION` (a duration such as `250ms`)
    /// and `MONKIT_TAIL_ERRORS` (a flag) of `vars`, when set.
    pub fn tail_from_vars(mut self, vars: &Vars) -> Result<Pipeline, ConfigError> {
        if let Some(d) = vars.duration("MONKIT_TAIL_MIN_DURATION")? {
            self.tail.min_duration = Some(d);
        }
        if let Some(on) = vars.flag("MONKIT_TAIL_ERRORS")? {
            self.tail.errors = on;
        }
        if let Some(n) = vars.count("MONKIT_TAIL_MAX_BYTES")? {
            self.tail.max_bytes = usize::try_from(n).unwrap_or(usize::MAX);
        }
        Ok(self)
    }

    /// Starts the sender thread, registers the exporter as a span observer of `registry` and
    /// sets that registry's sampler; batches are POSTed over HTTP ([`Http`]). An `https://`
    /// endpoint's certificate files are read here: a missing or malformed one is a
    /// `ConfigError` naming it.
    pub fn install(
        self,
        registry: &Registry,
        format: impl Format,
    ) -> Result<Exporter, ConfigError> {
        let http = Http::new(&self, format.content_type())?;
        self.install_with(registry, format, Box::new(http))
    }

    /// [`Pipeline::install`] sending over `transport` instead of HTTP.
    pub fn install_with(
        self,
        registry: &Registry,
        format: impl Format,
        transport: Box<dyn Transport>,
    ) -> Result<Exporter, ConfigError> {
        spans::install(self, registry, Box::new(format), transport)
    }
}

/// The [`Pipeline`] settings as methods of an exporter's own builder (a struct with a field
/// `pipeline: Pipeline`), so every span exporter offers the same ones with the same words:
/// `sample_rate`, `sampler`, `queue_capacity`, `batch`, `tail_sampling`, and the delivery
/// settings of [`delivery_settings!`].
#[macro_export]
macro_rules! pipeline_settings {
    ($builder:ty) => {
        $crate::delivery_settings!($builder, pipeline);

        impl $builder {
            /// Samples this fraction (0..=1) of new traces; incoming sampled flags and
            /// `/trace/sample` still decide for theirs (parent-based).
            pub fn sample_rate(mut self, rate: f64) -> Self {
                self.pipeline = self.pipeline.sample_rate(rate);
                self
            }

            /// The sampler: `Always`, `Never` and `Fraction` decide every trace here, ignoring
            /// a caller's flag; `ParentBased` keeps it.
            pub fn sampler(mut self, s: monkit::export::Sampler) -> Self {
                self.pipeline = self.pipeline.sampler(s);
                self
            }

            /// Most spans waiting to be sent; past this, finished spans are dropped and
            /// counted.
            pub fn queue_capacity(mut self, n: usize) -> Self {
                self.pipeline = self.pipeline.queue_capacity(n);
                self
            }

            /// Most spans per request, and the longest a span waits before its batch is sent.
            pub fn batch(mut self, size: usize, interval: std::time::Duration) -> Self {
                self.pipeline = self.pipeline.batch(size, interval);
                self
            }

            /// Tail sampling: also exports whole traces whose local root lasted at least
            /// `min_duration`, or (with `errors`) in which a span failed (see
            /// `monkit_exporter::Pipeline::tail_sampling`).
            pub fn tail_sampling(
                mut self,
                min_duration: Option<std::time::Duration>,
                errors: bool,
            ) -> Self {
                self.pipeline = self.pipeline.tail_sampling(min_duration, errors);
                self
            }
        }
    };
}

/// How a builder's requests are delivered, as its own methods (the builder holds the
/// [`Pipeline`] in the field named second): `timeout`, `retries`, `gzip`, `header`, `tls_ca`,
/// `tls_client_cert`. Span exporters get them through [`pipeline_settings!`]; a builder that
/// sends something else (OTLP metrics) uses this alone.
#[macro_export]
macro_rules! delivery_settings {
    ($builder:ty, $field:ident) => {
        impl $builder {
            /// Request timeout.
            pub fn timeout(mut self, t: std::time::Duration) -> Self {
                self.$field = self.$field.timeout(t);
                self
            }

            /// Retries of a failed request (connection errors, and the answers a collector
            /// means to be tried again: HTTP 429 and 502-504, the gRPC codes the OTLP
            /// specification names), backing off exponentially from `initial` to at most
            /// `max`, with jitter, or after the collector's own delay; a request that still
            /// fails is counted.
            pub fn retries(
                mut self,
                max_retries: u32,
                initial: std::time::Duration,
                max: std::time::Duration,
            ) -> Self {
                self.$field = self.$field.retries(max_retries, initial, max);
                self
            }

            /// Compresses request bodies with gzip (`Content-Encoding: gzip`, or gRPC message
            /// compression).
            pub fn gzip(mut self, on: bool) -> Self {
                self.$field = self.$field.gzip(on);
                self
            }

            /// A header sent with every request (an API key, say).
            pub fn header(mut self, name: &str, value: &str) -> Self {
                self.$field = self.$field.header(name, value);
                self
            }

            /// For an `https://` endpoint: trusts only the CA certificates of this PEM file
            /// instead of Mozilla's roots.
            pub fn tls_ca(mut self, pem: impl Into<std::path::PathBuf>) -> Self {
                self.$field = self.$field.tls_ca(pem);
                self
            }

            /// For an `https://` endpoint: presents this client certificate chain and key
            /// (PEM files), for mutual TLS.
            pub fn tls_client_cert(
                mut self,
                cert_pem: impl Into<std::path::PathBuf>,
                key_pem: impl Into<std::path::PathBuf>,
            ) -> Self {
                self.$field = self.$field.tls_client_cert(cert_pem, key_pem);
                self
            }
        }
    };
}
