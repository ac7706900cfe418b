//! OTLP metrics: every stat of a registry POSTed to `/v1/metrics` at an interval, from a thread
//! of its own, so the program never waits for the collector. A failed push is logged (at most
//! every 10 s) and counted (`metrics_failed` in scope `monkit_otlp`); the next push carries the
//! totals again (cumulative) or what changed since the last one that went out (delta).

use crate::builder::{Protocol, Signal};
use crate::metrics::{Previous, Temporality};
use monkit::settings::{lenient, ConfigError, Vars};
use monkit::{stats::Meter, Registry};
use monkit_exporter::{Ctx, Job, Periodic, Pipeline, Sender, Sent, Transport};
use prost::Message;
use std::time::Duration;

/// Configures and installs the OTLP metrics exporter.
///
/// ```no_run
/// let _metrics = monkit_otlp::MetricsBuilder::new("http://127.0.0.1:4318/v1/metrics")
///     .interval(std::time::Duration::from_secs(10))
///     .install(monkit::default_registry())
///     .unwrap();
/// ```
///
/// A push that fails after its retries is counted, and the next one carries its data again
/// (cumulative sums always do; delta ones keep what was not sent).
#[derive(Clone, Debug)]
pub struct MetricsBuilder {
    /// Where and how to send: endpoint, timeout, headers, gzip, TLS, retries.
    target: Pipeline,
    protocol: Protocol,
    interval: Duration,
    temporality: Temporality,
    service_name: String,
    resource: Vec<(String, String)>,
}

monkit_exporter::delivery_settings!(MetricsBuilder, target);

impl MetricsBuilder {
    /// Pushes to `endpoint` (the full URL of the metrics resource) every 60 s, cumulative,
    /// uncompressed, with a 10 s request timeout.
    pub fn new(endpoint: &str) -> MetricsBuilder {
        MetricsBuilder {
            target: Pipeline::new("otlp_metrics", endpoint).timeout(Duration::from_secs(10)),
            protocol: Protocol::HttpProtobuf,
            interval: Duration::from_secs(60),
            temporality: Temporality::Cumulative,
            service_name: crate::builder::default_service_name(),
            resource: Vec::new(),
        }
    }

    /// From the standard variables: `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` (as is) or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (with `/v1/metrics` added), `OTEL_METRIC_EXPORT_INTERVAL`
    /// (ms), `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` (`cumulative` or `delta`), and
    /// as for traces `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, the `_HEADERS`,
    /// `_COMPRESSION`, `_TIMEOUT`, `_CERTIFICATE`, `_CLIENT_CERTIFICATE` and `_CLIENT_KEY`
    /// variables (the `METRICS_` forms first) and `OTEL_SDK_DISABLED`. `None` without an
    /// endpoint. An `OTEL_*` value that cannot be read is logged and ignored, as the
    /// OpenTelemetry specification asks; a bad `MONKIT_*` one is an error naming it.
    pub fn from_env() -> Option<Result<MetricsBuilder, ConfigError>> {
        Self::from_vars(&Vars::env())
    }

    /// [`MetricsBuilder::from_env`] over any source of variables.
    pub fn from_vars(vars: &Vars) -> Option<Result<MetricsBuilder, ConfigError>> {
        let common = match crate::builder::Common::from_vars(vars, "METRICS", "v1/metrics")? {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        let mut b = MetricsBuilder::new(&common.endpoint).protocol(common.protocol);
        b.target = common.deliver(b.target);
        b.service_name = common.service_name.unwrap_or(b.service_name);
        b.resource = common.resource;
        if let Some(every) = lenient(vars.millis("OTEL_METRIC_EXPORT_INTERVAL")) {
            b.interval = every;
        }
        let pref = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
        match lenient(vars.choice(pref, &["cumulative", "delta"])) {
            Some("delta") => b.temporality = Temporality::Delta,
            Some(_) => b.temporality = Temporality::Cumulative,
            None => {}
        }
        Some(Ok(b))
    }

    /// OTLP/HTTP (the default) or gRPC (feature `grpc`; the endpoint is then the collector's
    /// `http://host:4317` or `https://host:4317`).
    pub fn protocol(mut self, p: Protocol) -> Self {
        self.protocol = p;
        self
    }

    /// How often to push.
    pub fn interval(mut self, every: Duration) -> Self {
        self.interval = every.max(Duration::from_millis(10));
        self
    }

    /// Cumulative (the default) or delta sums and histograms.
    pub fn temporality(mut self, t: Temporality) -> Self {
        self.temporality = t;
        self
    }

    /// The resource's `service.name`.
    pub fn service_name(mut self, name: &str) -> Self {
        self.service_name = name.to_owned();
        self
    }

    /// Starts the pushing thread for `registry`.
    pub fn install(self, registry: &Registry) -> Result<MetricsExporter, ConfigError> {
        let transport = self.protocol.transport(&self.target, Signal::Metrics)?;
        self.install_with(registry, transport)
    }

    fn install_with(
        self,
        registry: &Registry,
        transport: Box<dyn Transport>,
    ) -> Result<MetricsExporter, ConfigError> {
        let scope = registry.scope("monkit_otlp");
        let interval = self.interval;
        let push = Push {
            sender: self.target.sender(transport),
            resource: crate::encode::resource(&self.service_name, &self.resource),
            registry: registry.clone(),
            start: now_ns(),
            prev: Previous::default(),
            sent: scope.meter("metrics_sent"),
            failed: scope.meter("metrics_failed"),
            config: self,
        };
        Ok(MetricsExporter {
            worker: Periodic::spawn("monkit-otlp-metrics", interval, push)?,
        })
    }
}

/// One push a round: every stat, the totals or what changed since the last push that went out.
struct Push {
    config: MetricsBuilder,
    sender: Sender,
    resource: opentelemetry_proto::tonic::resource::v1::Resource,
    registry: Registry,
    start: u64,
    prev: Previous,
    sent: Meter,
    failed: Meter,
}

impl Job for Push {
    fn round(&mut self, _urgent: bool, ctx: &Ctx<'_>) -> bool {
        let (req, next) = crate::metrics::request(
            &self.registry,
            &self.resource,
            self.config.temporality,
            &self.prev,
            self.start,
            now_ns(),
        );
        // Retries wait on the worker: a shutdown out of time ends them.
        let mut wait = |d: Duration| ctx.wait(d);
        match self.sender.send(req.encode_to_vec(), &mut wait) {
            Sent::Ok { .. } => {
                self.prev = next;
                self.sent.mark(1);
            }
            Sent::Refused { why, .. } | Sent::GaveUp { why, .. } => {
                self.failed.mark(1);
                ctx.warn(format_args!(
                    "metrics push to {} failed: {why}",
                    self.config.target.endpoint()
                ));
            }
        }
        false
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The running OTLP metrics exporter: a push worker with the same handle as every exporter's.
/// [`MetricsExporter::shutdown`] (or drop) pushes once more and stops.
#[must_use = "dropping the MetricsExporter stops the pushes"]
#[derive(Debug)]
pub struct MetricsExporter {
    worker: Periodic,
}

impl MetricsExporter {
    /// Pushes now; whether the push finished within `timeout`.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.worker.flush(timeout)
    }

    /// Pushes once more and stops, within `timeout`; whether the last push went out.
    pub fn shutdown(self, timeout: Duration) -> bool {
        self.worker.shutdown(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(
        pairs: &'static [(&'static str, &'static str)],
    ) -> Option<Result<MetricsBuilder, ConfigError>> {
        MetricsBuilder::from_vars(&Vars::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn the_standard_variables() {
        assert!(from(&[]).is_none());
        let b = from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318/"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "5000"),
            ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "Delta"),
            ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "gzip"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(b.target.endpoint(), "http://h:4318/v1/metrics");
        assert_eq!(b.interval, Duration::from_secs(5));
        assert_eq!(b.temporality, Temporality::Delta);
        assert!(b.target.is_gzip());
        let own = from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:1/x"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(own.target.endpoint(), "http://m:1/x");
        for (k, v) in [
            ("OTEL_METRIC_EXPORT_INTERVAL", "often"),
            (
                "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
                "lowmemory",
            ),
        ] {
            let pairs: &'static [(&'static str, &'static str)] = Box::leak(Box::new([
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318"),
                (k, v),
            ]));
            // Logged and ignored, as OpenTelemetry asks: the defaults stay.
            let b = from(pairs).unwrap().unwrap();
            assert_eq!(b.interval, Duration::from_secs(60), "{k}");
            assert_eq!(b.temporality, Temporality::Cumulative, "{k}");
        }
    }
}
