//! The Zipkin exporter: Zipkin v2 JSON over the shared sending pipeline of
//! `monkit-exporter` (queue, batches, retries, stats).

use crate::encode::{encode, Endpoint};
use monkit::settings::{ConfigError, Vars};
use monkit::{FinishedSpan, Registry};
use monkit_exporter::Exporter;

monkit::settings::declare! {
    MONKIT_ZIPKIN_ENDPOINT: Url, "unset: no export", "where Zipkin spans are POSTed (`http://host:9411/api/v2/spans`)";
    MONKIT_ZIPKIN_SERVICE_NAME: Text, "the executable's name", "the localEndpoint's service name";
    MONKIT_ZIPKIN_SAMPLE_RATE: Ratio, "1", "the fraction of new traces sampled (parent-based)";
    MONKIT_ZIPKIN_QUEUE: Count, "4096", "spans waiting to be sent; past this they are dropped and counted";
    MONKIT_ZIPKIN_ENCODING: Choice, "json", "json or proto3";
    MONKIT_ZIPKIN_GZIP: Flag, "off", "gzip request bodies";
    MONKIT_ZIPKIN_CERTIFICATE: Text, "Mozilla's roots", "a PEM file of the CAs to trust";
    MONKIT_ZIPKIN_CLIENT_CERTIFICATE: Text, "none", "a PEM client certificate chain, for mutual TLS";
    MONKIT_ZIPKIN_CLIENT_KEY: Text, "none", "the client certificate's PEM key";
}

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
    /// or `proto3`), `MONKIT_ZIPKIN_GZIP` (a flag), for an `https://` endpoint
    /// `MONKIT_ZIPKIN_CERTIFICATE` (a CA's PEM file, instead of Mozilla's roots),
    /// `MONKIT_ZIPKIN_CLIENT_CERTIFICATE` and `MONKIT_ZIPKIN_CLIENT_KEY` (mutual TLS), tail
    /// sampling's `MONKIT_TAIL_*` and the core's own variables (`monkit::export::configure`).
    /// A value that cannot be read is an error naming it.
    pub fn from_env() -> Option<Result<Builder, ConfigError>> {
        Self::from_vars(&Vars::env())
    }

    /// [`Builder::from_env`] over any source of variables.
    pub fn from_vars(vars: &Vars) -> Option<Result<Builder, ConfigError>> {
        let read = || -> Result<Option<Builder>, ConfigError> {
            monkit::export::configure(vars)?;
            let Some(endpoint) = vars.url("MONKIT_ZIPKIN_ENDPOINT")? else {
                return Ok(None);
            };
            let mut b = Builder::new(&endpoint);
            if let Some(name) = vars.string("MONKIT_ZIPKIN_SERVICE_NAME") {
                b = b.service_name(&name);
            }
            if let Some(r) = vars.ratio("MONKIT_ZIPKIN_SAMPLE_RATE")? {
                b = b.sample_rate(r);
            }
            if let Some(n) = vars.count("MONKIT_ZIPKIN_QUEUE")? {
                b = b.queue_capacity(usize::try_from(n).unwrap_or(usize::MAX));
            }
            if let Some(e) = vars.choice("MONKIT_ZIPKIN_ENCODING", &["json", "proto3"])? {
                b = b.proto3(e == "proto3");
            }
            if let Some(g) = vars.flag("MONKIT_ZIPKIN_GZIP")? {
                b = b.gzip(g);
            }
            b.pipeline = b.pipeline.tail_from_vars(vars)?;
            if let Some(ca) = vars.string("MONKIT_ZIPKIN_CERTIFICATE") {
                b = b.tls_ca(ca);
            }
            const CERT: &str = "MONKIT_ZIPKIN_CLIENT_CERTIFICATE";
            const KEY: &str = "MONKIT_ZIPKIN_CLIENT_KEY";
            match (vars.string(CERT), vars.string(KEY)) {
                (Some(c), Some(k)) => b = b.tls_client_cert(c, k),
                (None, None) => {}
                (c, k) => {
                    let (name, value) = match c {
                        Some(c) => (CERT, c),
                        None => (KEY, k.unwrap_or_default()),
                    };
                    return Err(ConfigError::new(
                        name,
                        value,
                        "set with its pair (MONKIT_ZIPKIN_CLIENT_CERTIFICATE and MONKIT_ZIPKIN_CLIENT_KEY)",
                    ));
                }
            }
            Ok(Some(b))
        };
        read().transpose()
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
