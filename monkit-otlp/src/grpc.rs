//! OTLP over gRPC (feature `grpc`): each body is one unary `Export` call of the trace or metrics
//! service, through tonic's HTTP/2 channel over hyper-rustls with the pipeline's own rustls
//! setup (so the same CA, client certificate and failures as OTLP/HTTP), gzip as gRPC message
//! compression. tonic is async: the transport owns a current-thread tokio runtime, made on
//! the exporter's thread at the first send, so nothing runs on the program's own runtime.
//!
//! Answers are read as the OTLP specification says for gRPC: `CANCELLED`,
//! `DEADLINE_EXCEEDED`, `ABORTED`, `OUT_OF_RANGE`, `UNAVAILABLE` and `DATA_LOSS` are retried,
//! `RESOURCE_EXHAUSTED` only when the collector sent a `google.rpc.RetryInfo` (whose delay is
//! then the wait, as a `Retry-After` is over HTTP); every other code, and a TLS failure, is
//! permanent. A partial success (some spans or points rejected) is logged.

use crate::builder::Signal;
use monkit::settings::ConfigError;
use monkit_exporter::{Delivery, Pipeline, Transport, MAX_RETRY_AFTER};
use std::time::Duration;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::{Code, Status};

/// The gRPC side of a signal: its service's method, and what its answer rejected.
impl Signal {
    fn path(self) -> &'static str {
        match self {
            Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        }
    }

    /// What a response says was rejected, if anything: the count and the collector's text.
    fn rejected(self, body: &[u8]) -> Option<(i64, String)> {
        use opentelemetry_proto::tonic::collector::{
            logs::v1 as l, metrics::v1 as m, trace::v1 as t,
        };
        use prost::Message;
        let (n, text) = match self {
            Signal::Traces => {
                let p = t::ExportTraceServiceResponse::decode(body)
                    .ok()?
                    .partial_success?;
                (p.rejected_spans, p.error_message)
            }
            Signal::Metrics => {
                let p = m::ExportMetricsServiceResponse::decode(body)
                    .ok()?
                    .partial_success?;
                (p.rejected_data_points, p.error_message)
            }
            Signal::Logs => {
                let p = l::ExportLogsServiceResponse::decode(body)
                    .ok()?
                    .partial_success?;
                (p.rejected_log_records, p.error_message)
            }
        };
        (n > 0 || !text.is_empty()).then_some((n, text))
    }
}

/// Sends bodies as gRPC calls; see the module doc.
pub(crate) struct Grpc {
    uri: tonic::transport::Uri,
    endpoint: String,
    service: Signal,
    metadata: MetadataMap,
    timeout: Duration,
    gzip: bool,
    tls: std::sync::Arc<rustls::ClientConfig>,
    /// Made on the exporter's thread at the first send (a runtime must not be dropped inside
    /// another one, and the program's thread may be one).
    conn: Option<(
        tokio::runtime::Runtime,
        tonic::client::Grpc<tonic::transport::Channel>,
    )>,
}

impl Grpc {
    /// The transport for `pipeline`'s endpoint (`http://host:port` or `https://host:port`; a
    /// path is ignored, the service names its own) and `service`.
    pub(crate) fn new(pipeline: &Pipeline, service: Signal) -> Result<Grpc, ConfigError> {
        let endpoint = pipeline.endpoint();
        let bad = |want: String| ConfigError::new("OTLP gRPC endpoint", endpoint, want);
        let uri: tonic::transport::Uri = endpoint
            .parse()
            .map_err(|e| bad(format!("an http:// or https:// URL ({e})")))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(bad("an http:// or https:// URL with a host".into()));
        }
        let mut metadata = MetadataMap::new();
        for (k, v) in pipeline.headers() {
            let key = MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes());
            let value = MetadataValue::try_from(v.as_str());
            match (key, value) {
                (Ok(key), Ok(value)) => {
                    metadata.insert(key, value);
                }
                _ => {
                    return Err(ConfigError::new(
                        "OTLP gRPC header",
                        format!("{k}={v}"),
                        "a metadata key of lowercase letters, digits, '-', '_', '.' and a printable ASCII value",
                    ))
                }
            }
        }
        // The connector asks for `h2` by ALPN itself.
        let mut tls = (*pipeline.tls_config()?).clone();
        tls.alpn_protocols.clear();
        Ok(Grpc {
            uri,
            endpoint: endpoint.to_owned(),
            service,
            metadata,
            timeout: pipeline.request_timeout(),
            gzip: pipeline.is_gzip(),
            tls: std::sync::Arc::new(tls),
            conn: None,
        })
    }

    fn connect(
        &self,
    ) -> std::io::Result<(
        tokio::runtime::Runtime,
        tonic::client::Grpc<tonic::transport::Channel>,
    )> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("monkit-otlp-grpc")
            .build()?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*self.tls).clone())
            .https_or_http()
            .enable_http2()
            .build();
        let channel = {
            // The channel's worker task is spawned on this runtime.
            let _in = rt.enter();
            tonic::transport::Endpoint::from(self.uri.clone())
                .timeout(self.timeout)
                .connect_timeout(self.timeout)
                .connect_with_connector_lazy(connector)
        };
        let mut client = tonic::client::Grpc::new(channel);
        if self.gzip {
            client = client
                .send_compressed(tonic::codec::CompressionEncoding::Gzip)
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        }
        Ok((rt, client))
    }
}

impl Transport for Grpc {
    fn deliver(&mut self, body: &[u8]) -> Delivery {
        if self.conn.is_none() {
            match self.connect() {
                Ok(c) => self.conn = Some(c),
                Err(e) => {
                    return Delivery::Retry {
                        why: format!("cannot start the gRPC runtime: {e}"),
                        after: None,
                    }
                }
            }
        }
        let Some((rt, client)) = &mut self.conn else {
            return Delivery::Refused("no connection".into());
        };
        let mut req = tonic::Request::new(body.to_vec());
        *req.metadata_mut() = self.metadata.clone();
        req.set_timeout(self.timeout);
        let path = http::uri::PathAndQuery::from_static(self.service.path());
        // The channel's own timeouts bound the connection and the call; this bounds whatever
        // else could wait (a channel that never becomes ready), so the thread always goes on.
        let limit = self.timeout + Duration::from_secs(1);
        let answer = rt.block_on(async {
            let call = async {
                client
                    .ready()
                    .await
                    .map_err(|e| Status::from_error(e.into()))?;
                client.unary(req, path, Raw).await
            };
            tokio::time::timeout(limit, call)
                .await
                .unwrap_or_else(|_| Err(Status::deadline_exceeded("no answer in time")))
        });
        match answer {
            Ok(resp) => {
                if let Some((n, text)) = self.service.rejected(resp.get_ref()) {
                    log::warn!(
                        "monkit-otlp: {} partly rejected the export ({n} rejected): {text}",
                        self.endpoint
                    );
                }
                Delivery::Sent
            }
            Err(status) => classify(&status),
        }
    }
}

/// What the OTLP specification makes of a gRPC status.
fn classify(status: &Status) -> Delivery {
    use tonic_types::StatusExt;
    let source = std::error::Error::source(status);
    if let Some(why) = source.and_then(monkit_exporter::tls_failure) {
        return Delivery::Refused(why);
    }
    let why = format!("gRPC {:?}: {}", status.code(), status.message());
    // The transport failed (connecting, a handshake that timed out, a reset): no answer from
    // the collector at all, retried as over HTTP, whatever code tonic put on it.
    if source.is_some_and(|e| e.is::<tonic::transport::Error>()) {
        return Delivery::Retry { why, after: None };
    }
    let after = status
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .map(|d| d.min(MAX_RETRY_AFTER));
    match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => Delivery::Retry { why, after },
        Code::ResourceExhausted if after.is_some() => Delivery::Retry { why, after },
        _ => Delivery::Refused(why),
    }
}

/// Bodies pass through as they are: they are encoded protobuf already.
#[derive(Clone, Copy, Debug, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, StatusExt};

    #[test]
    fn codes_as_the_specification_says() {
        let retried = |s: Status| matches!(classify(&s), Delivery::Retry { .. });
        for code in [
            Code::Cancelled,
            Code::DeadlineExceeded,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unavailable,
            Code::DataLoss,
        ] {
            assert!(retried(Status::new(code, "x")), "{code:?}");
        }
        for code in [
            Code::InvalidArgument,
            Code::Unauthenticated,
            Code::PermissionDenied,
            Code::Unimplemented,
            Code::Internal,
            Code::ResourceExhausted,
        ] {
            assert!(!retried(Status::new(code, "x")), "{code:?}");
        }
        // Throttled with RetryInfo: retried after the collector's delay (capped).
        for (asked, waited) in [(3, 3), (3600, MAX_RETRY_AFTER.as_secs())] {
            let s = Status::with_error_details(
                Code::ResourceExhausted,
                "slow down",
                ErrorDetails::with_retry_info(Some(Duration::from_secs(asked))),
            );
            assert!(s.get_details_retry_info().is_some());
            assert_eq!(
                classify(&s),
                Delivery::Retry {
                    why: "gRPC ResourceExhausted: slow down".into(),
                    after: Some(Duration::from_secs(waited)),
                }
            );
        }
    }
}
