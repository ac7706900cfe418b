//! OTLP metrics: every stat of a registry POSTed to `/v1/metrics` at an interval, from a thread
//! of its own, so the program never waits for the collector. A failed push is logged (at most
//! every 10 s) and counted (`metrics_failed` in scope `monkit_otlp`); the next push carries the
//! totals again (cumulative) or what changed since the last one that went out (delta).

use crate::builder::{Protocol, Signal};
use crate::metrics::{Previous, Temporality};
use monkit::Registry;
use monkit_exporter::{ConfigError, Pipeline, Sent, Transport};
use prost::Message;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

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
    /// endpoint; a value that cannot be used is an error naming it.
    pub fn from_env() -> Option<Result<MetricsBuilder, ConfigError>> {
        Self::from_vars(&|k| std::env::var(k).ok())
    }

    pub(crate) fn from_vars(
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Result<MetricsBuilder, ConfigError>> {
        let common = crate::builder::Common::from_vars(get, "METRICS", "v1/metrics")?;
        let common = match common {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        let mut b = MetricsBuilder::new(&common.endpoint).protocol(common.protocol);
        b.service_name = common.service_name.unwrap_or(b.service_name);
        b.resource = common.resource;
        for (k, v) in &common.headers {
            b.target = b.target.header(k, v);
        }
        b = b.gzip(common.gzip);
        if let Some(ca) = common.ca {
            b = b.tls_ca(ca);
        }
        if let Some((cert, key)) = common.client {
            b = b.tls_client_cert(cert, key);
        }
        if let Some(t) = common.timeout {
            b.target = b.target.timeout(t);
        }
        let err = |n: &str, v: &str, want: &str| Some(Err(ConfigError::new(n, v, want)));
        if let Some(v) = get("OTEL_METRIC_EXPORT_INTERVAL").filter(|v| !v.trim().is_empty()) {
            match v.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => b.interval = Duration::from_millis(ms),
                _ => {
                    return err(
                        "OTEL_METRIC_EXPORT_INTERVAL",
                        &v,
                        "a positive number of milliseconds",
                    )
                }
            }
        }
        let pref = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
        if let Some(v) = get(pref).filter(|v| !v.trim().is_empty()) {
            b.temporality = match v.trim().to_ascii_lowercase().as_str() {
                "cumulative" => Temporality::Cumulative,
                "delta" => Temporality::Delta,
                _ => return err(pref, &v, "cumulative or delta"),
            };
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
        let mut sender = self.target.sender(transport);
        let shared = Arc::new(Shared::default());
        let failed = registry.scope("monkit_otlp").meter("metrics_failed");
        let sent = registry.scope("monkit_otlp").meter("metrics_sent");
        let (reg, s) = (registry.clone(), shared.clone());
        let thread = std::thread::Builder::new()
            .name("monkit-otlp-metrics".into())
            .spawn(move || {
                let resource = crate::encode::resource(&self.service_name, &self.resource);
                let start = now_ns();
                let mut prev = Previous::default();
                let mut last_log = None::<Instant>;
                loop {
                    let stop = s.wait(self.interval);
                    let (req, next) = crate::metrics::request(
                        &reg,
                        &resource,
                        self.temporality,
                        &prev,
                        start,
                        now_ns(),
                    );
                    // Retries wait on the stop signal: a shutdown ends them.
                    let mut wait = |d: Duration| !s.wait(d);
                    match sender.send(req.encode_to_vec(), &mut wait) {
                        Sent::Ok { .. } => {
                            prev = next;
                            sent.mark(1);
                        }
                        Sent::Refused { why, .. } | Sent::GaveUp { why, .. } => {
                            failed.mark(1);
                            if last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                                log::warn!(
                                    "monkit-otlp: metrics push to {} failed: {why}",
                                    self.target.endpoint()
                                );
                                last_log = Some(Instant::now());
                            }
                        }
                    }
                    if stop {
                        return;
                    }
                }
            })
            .map_err(|e| {
                ConfigError::new(
                    "monkit-otlp-metrics thread",
                    e.to_string(),
                    "a thread the system can start",
                )
            })?;
        Ok(MetricsExporter {
            shared,
            thread: Some(thread),
        })
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The stop signal the pushing thread waits on between pushes.
#[derive(Default)]
struct Shared {
    stop: Mutex<bool>,
    cv: Condvar,
    stopped: AtomicBool,
}

impl Shared {
    /// Waits `d` or until told to stop; whether it was told.
    fn wait(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut stop = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        while !*stop {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            stop = self
                .cv
                .wait_timeout(stop, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

/// The running OTLP metrics exporter: dropping it pushes once more and stops.
#[must_use = "dropping the MetricsExporter stops the pushes"]
pub struct MetricsExporter {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for MetricsExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsExporter").finish_non_exhaustive()
    }
}

impl Drop for MetricsExporter {
    fn drop(&mut self) {
        if !self.shared.stopped.swap(true, Ordering::AcqRel) {
            *self.shared.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
            self.shared.cv.notify_all();
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(
        pairs: &'static [(&'static str, &'static str)],
    ) -> Option<Result<MetricsBuilder, ConfigError>> {
        MetricsBuilder::from_vars(&|k| pairs.iter().find(|p| p.0 == k).map(|p| p.1.to_owned()))
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
            assert_eq!(from(pairs).unwrap().unwrap_err().setting, k);
        }
    }
}
