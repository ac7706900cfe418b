//! OTLP logs: every record the bridges pass on (`monkit::bridge::LogBridge`, `tracing` events
//! through `MonkitLayer`) with its severity, body, attributes, resource and the ids of the span
//! it was written in, sent as `ExportLogsServiceRequest`s from a thread of its own. A writer
//! only queues: the queue is bounded in records and in bytes, and what does not fit is
//! counted (`logs_dropped`), never waited for.

use crate::builder::{Protocol, Signal};
use crossbeam_queue::ArrayQueue;
use monkit::settings::{lenient, ConfigError, Vars};
use monkit::stats::Meter;
use monkit::trace::logs::{add_log_sink, LogRecord, LogSink, LogSinkHandle};
use monkit::Registry;
use monkit_exporter::{Ctx, Job, Periodic, Pipeline, Sender, Sent};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope};
use opentelemetry_proto::tonic::logs::v1 as pb;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Records queued at most by default.
pub const DEFAULT_LOG_QUEUE: usize = 8192;
/// Bytes of queued records at most by default (bodies, targets, attributes).
pub const DEFAULT_LOG_QUEUE_BYTES: usize = 8 << 20;
/// Records in one request at most.
const BATCH: usize = 512;
/// How often the worker looks at the queue (writers never wake it).
const POLL: Duration = Duration::from_millis(200);

monkit::settings::declare! {
    OTEL_LOGS_EXPORTER: Choice, "otlp (when an endpoint is set)", "otlp or none: whether log records go out over OTLP";
    OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: Url, "unset", "the logs resource, as is (`/v1/logs` is added to OTEL_EXPORTER_OTLP_ENDPOINT for HTTP)";
}

/// Configures and installs the OTLP logs exporter.
///
/// ```no_run
/// let _logs = monkit_otlp::LogsBuilder::new("http://127.0.0.1:4318/v1/logs")
///     .service_name("vlite")
///     .install(monkit::default_registry())
///     .unwrap();
/// // Records reach it through the bridges: monkit::bridge::LogBridge (feature `log` of
/// // monkit) or tracing events through monkit::bridge::MonkitLayer.
/// ```
#[derive(Clone, Debug)]
pub struct LogsBuilder {
    /// Where and how to send: endpoint, timeout, headers, gzip, TLS, retries.
    target: Pipeline,
    protocol: Protocol,
    service_name: String,
    resource: Vec<(String, String)>,
    queue: usize,
    queue_bytes: usize,
}

monkit_exporter::delivery_settings!(LogsBuilder, target);

impl LogsBuilder {
    /// Sends to `endpoint` (the full URL of the logs resource), uncompressed, with a 10 s
    /// request timeout; at most [`DEFAULT_LOG_QUEUE`] records and
    /// [`DEFAULT_LOG_QUEUE_BYTES`] queued.
    pub fn new(endpoint: &str) -> LogsBuilder {
        LogsBuilder {
            target: Pipeline::new("otlp_logs", endpoint).timeout(Duration::from_secs(10)),
            protocol: Protocol::HttpProtobuf,
            service_name: crate::builder::default_service_name(),
            resource: Vec::new(),
            queue: DEFAULT_LOG_QUEUE,
            queue_bytes: DEFAULT_LOG_QUEUE_BYTES,
        }
    }

    /// From the standard variables: `OTEL_LOGS_EXPORTER` (`otlp`, the default, or `none`),
    /// `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT` (as is) or `OTEL_EXPORTER_OTLP_ENDPOINT` (with
    /// `/v1/logs` added for HTTP), and as for traces `OTEL_SERVICE_NAME`,
    /// `OTEL_RESOURCE_ATTRIBUTES`, the `_PROTOCOL`, `_HEADERS`, `_COMPRESSION`, `_TIMEOUT`,
    /// `_INSECURE`, `_CERTIFICATE`, `_CLIENT_CERTIFICATE` and `_CLIENT_KEY` variables (the
    /// `LOGS_` forms first) and `OTEL_SDK_DISABLED`. `None` without an endpoint or with
    /// `OTEL_LOGS_EXPORTER=none`.
    pub fn from_env() -> Option<Result<LogsBuilder, ConfigError>> {
        Self::from_vars(&Vars::env())
    }

    /// [`LogsBuilder::from_env`] over any source of variables.
    pub fn from_vars(vars: &Vars) -> Option<Result<LogsBuilder, ConfigError>> {
        if lenient(vars.choice("OTEL_LOGS_EXPORTER", &["otlp", "none"])) == Some("none") {
            return None;
        }
        let common = match crate::builder::Common::from_vars(vars, "LOGS", "v1/logs")? {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        let mut b = LogsBuilder::new(&common.endpoint).protocol(common.protocol);
        b.target = common.deliver(b.target);
        b.service_name = common.service_name.unwrap_or(b.service_name);
        b.resource = common.resource;
        Some(Ok(b))
    }

    /// OTLP/HTTP (the default) or gRPC (feature `grpc`; the endpoint is then the collector's
    /// `http://host:4317` or `https://host:4317`).
    pub fn protocol(mut self, p: Protocol) -> Self {
        self.protocol = p;
        self
    }

    /// The resource's `service.name`.
    pub fn service_name(mut self, name: &str) -> Self {
        self.service_name = name.to_owned();
        self
    }

    /// Records and bytes queued at most; past either, records are dropped and counted.
    pub fn max_queue(mut self, records: usize, bytes: usize) -> Self {
        self.queue = records.max(1);
        self.queue_bytes = bytes.max(1024);
        self
    }

    /// Starts the sending thread and takes the bridges' records until the exporter stops.
    pub fn install(self, registry: &Registry) -> Result<LogsExporter, ConfigError> {
        let transport = self.protocol.transport(&self.target, Signal::Logs)?;
        let scope = registry.scope("monkit_otlp");
        let queue = Arc::new(Queue {
            records: ArrayQueue::new(self.queue),
            bytes: AtomicUsize::new(0),
            max_bytes: self.queue_bytes,
            dropped: scope.meter("logs_dropped"),
        });
        let weak = Arc::downgrade(&queue);
        scope.gauge("logs_queued_bytes", move || {
            weak.upgrade()
                .map_or(0.0, |q| q.bytes.load(Ordering::Relaxed) as f64)
        });
        let job = Batches {
            queue: queue.clone(),
            sender: self.target.sender(transport),
            resource: crate::encode::resource(&self.service_name, &self.resource),
            sent: scope.meter("logs_sent"),
            failed: scope.meter("logs_failed"),
            endpoint: self.target.endpoint().to_owned(),
        };
        let worker = Periodic::spawn("monkit-otlp-logs", POLL, job)?;
        Ok(LogsExporter {
            sink: Some(add_log_sink(queue)),
            worker,
        })
    }
}

/// The bytes a queued record holds, for the queue's bound.
fn size_of(r: &LogRecord) -> usize {
    std::mem::size_of::<LogRecord>()
        + r.body.len()
        + r.target.len()
        + r.attributes
            .iter()
            .map(|(k, v)| k.len() + v.len() + 48)
            .sum::<usize>()
}

/// What writers touch: the queue and its counts.
struct Queue {
    records: ArrayQueue<LogRecord>,
    bytes: AtomicUsize,
    max_bytes: usize,
    dropped: Meter,
}

impl LogSink for Queue {
    fn emit(&self, record: &LogRecord) {
        let size = size_of(record);
        // Claim the bytes first: two writers never pass the bound together.
        if self
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                (b + size <= self.max_bytes).then_some(b + size)
            })
            .is_err()
        {
            self.dropped.mark(1);
            return;
        }
        if self.records.push(record.clone()).is_err() {
            self.bytes.fetch_sub(size, Ordering::Relaxed);
            self.dropped.mark(1);
        }
    }
}

/// One request per round with what is queued, up to [`BATCH`] records.
struct Batches {
    queue: Arc<Queue>,
    sender: Sender,
    resource: Resource,
    sent: Meter,
    failed: Meter,
    endpoint: String,
}

impl Job for Batches {
    fn round(&mut self, _urgent: bool, ctx: &Ctx<'_>) -> bool {
        let mut batch = Vec::new();
        while batch.len() < BATCH {
            let Some(r) = self.queue.records.pop() else {
                break;
            };
            self.queue.bytes.fetch_sub(size_of(&r), Ordering::Relaxed);
            batch.push(r);
        }
        if batch.is_empty() {
            return false;
        }
        let n = batch.len() as u64;
        let body = request(&self.resource, &batch).encode_to_vec();
        let mut wait = |d: Duration| ctx.wait(d);
        match self.sender.send(body, &mut wait) {
            Sent::Ok { .. } => self.sent.mark(n),
            Sent::Refused { why, .. } | Sent::GaveUp { why, .. } => {
                self.failed.mark(n);
                ctx.warn(format_args!("logs to {} failed: {why}", self.endpoint));
            }
        }
        // More queued: another round at once.
        !self.queue.records.is_empty()
    }

    fn abandon(&mut self) {
        while let Some(r) = self.queue.records.pop() {
            self.queue.bytes.fetch_sub(size_of(&r), Ordering::Relaxed);
            self.queue.dropped.mark(1);
        }
    }
}

/// A request carrying `batch` for `resource`.
pub(crate) fn request(resource: &Resource, batch: &[LogRecord]) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![pb::ResourceLogs {
            resource: Some(resource.clone()),
            scope_logs: vec![pb::ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "monkit".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..InstrumentationScope::default()
                }),
                log_records: batch.iter().map(record).collect(),
                ..pb::ScopeLogs::default()
            }],
            ..pb::ResourceLogs::default()
        }],
    }
}

fn text(s: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s.to_owned())),
    }
}

/// One record: severity number and text, body, the target as `code.namespace` (as
/// OpenTelemetry's log bridges name it), key-values as attributes, and the span's ids.
fn record(r: &LogRecord) -> pb::LogRecord {
    let mut attributes = Vec::with_capacity(r.attributes.len() + 1);
    attributes.push(crate::encode::kv("code.namespace", &r.target));
    attributes.extend(r.attributes.iter().map(|(k, v)| crate::encode::kv(k, v)));
    pb::LogRecord {
        time_unix_nano: r.time_unix_ns,
        observed_time_unix_nano: r.time_unix_ns,
        severity_number: r.severity.otel_number(),
        severity_text: r.severity.as_str().into(),
        body: Some(text(&r.body)),
        attributes,
        flags: u32::from(r.sampled),
        trace_id: if r.trace_id == 0 {
            Vec::new()
        } else {
            r.trace_id.to_be_bytes().to_vec()
        },
        span_id: if r.span_id == 0 {
            Vec::new()
        } else {
            r.span_id.to_be_bytes().to_vec()
        },
        ..pb::LogRecord::default()
    }
}

/// The running OTLP logs exporter. [`LogsExporter::shutdown`] (or drop) stops taking records,
/// sends what is queued and stops.
#[must_use = "dropping the LogsExporter stops the export"]
#[derive(Debug)]
pub struct LogsExporter {
    sink: Option<LogSinkHandle>,
    worker: Periodic,
}

impl LogsExporter {
    /// Sends what is queued now; whether it went within `timeout`.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.worker.flush(timeout)
    }

    /// Stops taking records, sends what is queued and stops, within `timeout`; whether the
    /// last send went out.
    pub fn shutdown(mut self, timeout: Duration) -> bool {
        self.sink = None;
        self.worker.shutdown(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&'static str, &'static str)]) -> Option<Result<LogsBuilder, ConfigError>> {
        LogsBuilder::from_vars(&Vars::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn the_standard_variables() {
        assert!(from(&[]).is_none(), "no endpoint, no exporter");
        let base = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318/");
        let b = from(&[base]).unwrap().unwrap();
        assert_eq!(b.target.endpoint(), "http://h:4318/v1/logs");
        assert!(from(&[base, ("OTEL_LOGS_EXPORTER", "none")]).is_none());
        assert!(from(&[base, ("OTEL_LOGS_EXPORTER", "otlp")]).is_some());
        // A value it cannot read is logged and ignored: the default, otlp, stays.
        assert!(from(&[base, ("OTEL_LOGS_EXPORTER", "kafka")]).is_some());
        let own = from(&[base, ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://l:1/x")])
            .unwrap()
            .unwrap();
        assert_eq!(own.target.endpoint(), "http://l:1/x");
        let gz = from(&[base, ("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "gzip")])
            .unwrap()
            .unwrap();
        assert!(gz.target.is_gzip());
        assert!(from(&[base, ("OTEL_SDK_DISABLED", "true")]).is_none());
    }

    #[test]
    fn the_queue_is_bounded_in_bytes() {
        let reg = Registry::new();
        let q = Queue {
            records: ArrayQueue::new(1000),
            bytes: AtomicUsize::new(0),
            max_bytes: 64 * 1024,
            dropped: reg.scope("t").meter("dropped"),
        };
        let big = LogRecord::new(
            1,
            monkit::trace::logs::Severity::Info,
            "t",
            &"x".repeat(4000),
        );
        for _ in 0..100 {
            q.emit(&big);
        }
        let kept = q.records.len();
        assert!(kept < 20, "{kept} records of 4 KB in 64 KiB");
        assert!(q.bytes.load(Ordering::Relaxed) <= 64 * 1024);
        assert_eq!(q.dropped.total() as usize, 100 - kept);
    }
}
