//! The Zipkin exporter: Zipkin v2 JSON over the shared sending pipeline of
//! `monkit-exporter` (queue, batches, retries, stats).

use crate::encode::{encode, Endpoint};
use monkit::{FinishedSpan, Registry};
pub use monkit_exporter::{ConfigError, Exporter};

/// Configures and installs the exporter.
#[derive(Clone, Debug)]
pub struct Builder {
    pipeline: monkit_exporter::Pipeline,
    local: Endpoint,
    proto3: bool,
}

monkit_exporter::pipeline_settings!(Builder);

/// Spans as one proto3 `ListOfSpans` body.
struct Proto3 {
    local: Endpoint,
}

impl monkit_exporter::Format for Proto3 {
    fn content_type(&self) -> &'static str {
        "application/x-protobuf"
    }

    fn encode(&self, batch: &[FinishedSpan]) -> Vec<u8> {
        let json: Vec<serde_json::Value> = batch.iter().map(|s| encode(s, &self.local)).collect();
        crate::proto3::list_of_spans(&json)
    }
}

/// Spans as one `ListOfSpans` JSON body.
struct Json {
    local: Endpoint,
}

impl monkit_exporter::Format for Json {
    fn content_type(&self) -> &'static str {
        "application/json"
    }

    fn encode(&self, batch: &[FinishedSpan]) -> Vec<u8> {
        serde_json::Value::Array(batch.iter().map(|s| encode(s, &self.local)).collect())
            .to_string()
            .into_bytes()
    }
}

impl Builder {
    /// An exporter POSTing to `endpoint` (for example `http://127.0.0.1:9411/api/v2/spans`),
    /// sampling every new trace, with a queue of 4,096 spans, batches of up to 256 spans or
    /// every second, a 5 s request timeout and up to 5 retries backing off from 100 ms to 10 s.
    pub fn new(endpoint: &str) -> Builder {
        Builder {
            pipeline: monkit_exporter::Pipeline::new("zipkin", endpoint),
            local: Endpoint {
                service_name: std::env::current_exe()
                    .ok()
                    .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().to_lowercase()))
                    .unwrap_or_else(|| "unknown".into()),
                ..Endpoint::default()
            },
            proto3: false,
        }
    }

    /// From `MONKIT_ZIPKIN_ENDPOINT` (required: `None` without it), `MONKIT_ZIPKIN_SERVICE_NAME`,
    /// `MONKIT_ZIPKIN_SAMPLE_RATE`, `MONKIT_ZIPKIN_QUEUE`, `MONKIT_ZIPKIN_ENCODING` (`json`
    /// or `proto3`), `MONKIT_ZIPKIN_GZIP` (`1`), and for an `https://` endpoint
    /// `MONKIT_ZIPKIN_CERTIFICATE` (a CA's PEM file, instead of Mozilla's roots),
    /// `MONKIT_ZIPKIN_CLIENT_CERTIFICATE` and `MONKIT_ZIPKIN_CLIENT_KEY` (mutual TLS). A
    /// malformed value is an error.
    pub fn from_env() -> Option<Result<Builder, ConfigError>> {
        let endpoint = std::env::var("MONKIT_ZIPKIN_ENDPOINT").ok()?;
        let mut b = Builder::new(&endpoint);
        if let Ok(name) = std::env::var("MONKIT_ZIPKIN_SERVICE_NAME") {
            b = b.service_name(&name);
        }
        if let Ok(rate) = std::env::var("MONKIT_ZIPKIN_SAMPLE_RATE") {
            match rate.parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => b = b.sample_rate(r),
                _ => {
                    return Some(Err(ConfigError::new(
                        "MONKIT_ZIPKIN_SAMPLE_RATE",
                        rate,
                        "a number in 0..=1",
                    )))
                }
            }
        }
        if let Ok(q) = std::env::var("MONKIT_ZIPKIN_QUEUE") {
            match q.parse::<usize>() {
                Ok(n) if n > 0 => b = b.queue_capacity(n),
                _ => {
                    return Some(Err(ConfigError::new(
                        "MONKIT_ZIPKIN_QUEUE",
                        q,
                        "a positive number of spans",
                    )))
                }
            }
        }
        if let Ok(e) = std::env::var("MONKIT_ZIPKIN_ENCODING") {
            match e.as_str() {
                "json" => b = b.proto3(false),
                "proto3" => b = b.proto3(true),
                _ => {
                    return Some(Err(ConfigError::new(
                        "MONKIT_ZIPKIN_ENCODING",
                        e,
                        "json or proto3",
                    )))
                }
            }
        }
        if let Ok(g) = std::env::var("MONKIT_ZIPKIN_GZIP") {
            b = b.gzip(matches!(g.as_str(), "1" | "true" | "yes"));
        }
        if let Err(e) = monkit::propagation::propagators_from_env() {
            return Some(Err(e));
        }
        b.pipeline = match b.pipeline.tail_from_env() {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        if let Ok(ca) = std::env::var("MONKIT_ZIPKIN_CERTIFICATE") {
            b = b.tls_ca(ca);
        }
        let cert = std::env::var("MONKIT_ZIPKIN_CLIENT_CERTIFICATE").ok();
        let key = std::env::var("MONKIT_ZIPKIN_CLIENT_KEY").ok();
        match (cert, key) {
            (Some(c), Some(k)) => b = b.tls_client_cert(c, k),
            (None, None) => {}
            (c, k) => {
                let (name, value) = match c {
                    Some(c) => ("MONKIT_ZIPKIN_CLIENT_CERTIFICATE", c),
                    None => ("MONKIT_ZIPKIN_CLIENT_KEY", k.unwrap_or_default()),
                };
                return Some(Err(ConfigError::new(
                    name,
                    value,
                    "set with its pair (MONKIT_ZIPKIN_CLIENT_CERTIFICATE and MONKIT_ZIPKIN_CLIENT_KEY)",
                )));
            }
        }
        Some(Ok(b))
    }

    /// Sends proto3 `ListOfSpans` bodies (`application/x-protobuf`) instead of JSON.
    pub fn proto3(mut self, on: bool) -> Builder {
        self.proto3 = on;
        self
    }

    /// The service name of `localEndpoint` (lower-cased).
    pub fn service_name(mut self, name: &str) -> Builder {
        self.local.service_name = name.to_lowercase();
        self
    }

    /// The address and port of `localEndpoint`.
    pub fn local_address(mut self, addr: std::net::SocketAddr) -> Builder {
        match addr.ip() {
            std::net::IpAddr::V4(ip) => self.local.ipv4 = Some(ip),
            std::net::IpAddr::V6(ip) => self.local.ipv6 = Some(ip),
        }
        self.local.port = Some(addr.port()).filter(|&p| p != 0);
        self
    }

    /// Starts the sender thread, registers the exporter as a span observer of `registry` and
    /// sets that registry's sampler.
    pub fn install(self, registry: &Registry) -> Result<Exporter, ConfigError> {
        if self.proto3 {
            self.pipeline
                .install(registry, Proto3 { local: self.local })
        } else {
            self.pipeline.install(registry, Json { local: self.local })
        }
    }
}
