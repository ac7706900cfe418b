//! Configuration: in code, or from the standard `OTEL_*` variables.

use monkit::export::Sampler;
use monkit::settings::{lenient, ConfigError, Vars};
use monkit::{FinishedSpan, Registry};
use monkit_exporter::{Exporter, Pipeline};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

/// How OTLP goes on the wire (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// Protobuf bodies POSTed over HTTP (`http/protobuf`, port 4318): the default.
    #[default]
    HttpProtobuf,
    /// Unary `Export` calls over gRPC (`grpc`, port 4317; feature `grpc`). The endpoint is
    /// the collector's `http://host:port` or `https://host:port`; any path is ignored.
    Grpc,
}

/// What an exporter sends: which OTLP service takes it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Protocol {
    /// The transport for `pipeline` sending `signal`, or why there is none.
    pub(crate) fn transport(
        self,
        pipeline: &Pipeline,
        signal: Signal,
    ) -> Result<Box<dyn monkit_exporter::Transport>, ConfigError> {
        match self {
            Protocol::HttpProtobuf => Ok(Box::new(monkit_exporter::Http::new(
                pipeline,
                "application/x-protobuf",
            )?)),
            #[cfg(feature = "grpc")]
            Protocol::Grpc => Ok(Box::new(crate::grpc::Grpc::new(pipeline, signal)?)),
            #[cfg(not(feature = "grpc"))]
            Protocol::Grpc => {
                let _ = signal;
                Err(ConfigError::new(
                    "OTLP protocol",
                    "grpc",
                    "http/protobuf (grpc needs the feature `grpc` of monkit-otlp)",
                ))
            }
        }
    }
}

/// Configures and installs the OTLP exporter.
#[derive(Clone, Debug)]
pub struct Builder {
    pipeline: Pipeline,
    protocol: Protocol,
    service_name: String,
    /// More resource attributes (`OTEL_RESOURCE_ATTRIBUTES`).
    resource: Vec<(String, String)>,
}

monkit_exporter::pipeline_settings!(Builder);

/// Batches as protobuf `ExportTraceServiceRequest`s.
struct Protobuf {
    resource: Resource,
}

impl monkit_exporter::Format for Protobuf {
    fn content_type(&self) -> &'static str {
        "application/x-protobuf"
    }

    fn encode(&self, batch: &[FinishedSpan]) -> Vec<u8> {
        crate::encode::request(&self.resource, batch).encode_to_vec()
    }
}

monkit::settings::declare! {
    OTEL_SDK_DISABLED: Flag, "false", "no OTLP export at all";
    OTEL_EXPORTER_OTLP_ENDPOINT: Url, "unset: no export", "the collector; `/v1/traces`, `/v1/metrics` and `/v1/logs` are added for HTTP";
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: Url, "unset", "the traces resource, as is";
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: Url, "unset", "the metrics resource, as is";
    OTEL_EXPORTER_OTLP_PROTOCOL: Choice, "http/protobuf", "http/protobuf or grpc (`_TRACES_`, `_METRICS_` and `_LOGS_` forms too)";
    OTEL_EXPORTER_OTLP_INSECURE: Flag, "false", "plain text to a bare gRPC host:port (`_TRACES_`, `_METRICS_`, `_LOGS_` forms too)";
    OTEL_EXPORTER_OTLP_TIMEOUT: Millis, "5000 (traces), 10000 (metrics)", "request timeout (`_TRACES_`, `_METRICS_`, `_LOGS_` forms too)";
    OTEL_EXPORTER_OTLP_COMPRESSION: Choice, "none", "gzip or none (`_TRACES_`, `_METRICS_`, `_LOGS_` forms too)";
    OTEL_EXPORTER_OTLP_HEADERS: Pairs, "none", "headers sent with every request (`_TRACES_`, `_METRICS_`, `_LOGS_` forms too)";
    OTEL_EXPORTER_OTLP_CERTIFICATE: Text, "Mozilla's roots", "a PEM file of the CAs to trust (`_TRACES_`, `_METRICS_`, `_LOGS_` forms too)";
    OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: Text, "none", "a PEM client certificate chain, for mutual TLS (`_TRACES_`, `_METRICS_`, `_LOGS_` forms too)";
    OTEL_EXPORTER_OTLP_CLIENT_KEY: Text, "none", "the client certificate's PEM key (`_TRACES_`, `_METRICS_`, `_LOGS_` forms too)";
    OTEL_SERVICE_NAME: Text, "the executable's name", "the resource's service.name";
    OTEL_RESOURCE_ATTRIBUTES: Pairs, "none", "more resource attributes";
    OTEL_TRACES_SAMPLER: Choice, "parentbased_always_on", "always_on, always_off, traceidratio, or their parentbased_ forms";
    OTEL_TRACES_SAMPLER_ARG: Ratio, "1", "the ratio of the traceidratio samplers";
    OTEL_METRIC_EXPORT_INTERVAL: Millis, "60000", "how often metrics are pushed";
    OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: Choice, "cumulative", "cumulative or delta";
}

/// What the trace and metrics exporters read alike from the `OTEL_*` variables: the
/// signal's own form of each (`OTEL_EXPORTER_OTLP_<SIGNAL>_...`) first, then the shared one.
pub(crate) struct Common {
    pub(crate) endpoint: String,
    pub(crate) protocol: Protocol,
    pub(crate) service_name: Option<String>,
    pub(crate) resource: Vec<(String, String)>,
    pub(crate) timeout: Option<std::time::Duration>,
    pub(crate) gzip: bool,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) ca: Option<String>,
    pub(crate) client: Option<(String, String)>,
}

impl Common {
    /// `None` without an endpoint, or with `OTEL_SDK_DISABLED=true`; `path` is the resource
    /// added to `OTEL_EXPORTER_OTLP_ENDPOINT`. What cannot be read is logged and ignored, as
    /// OpenTelemetry asks of its variables; the core's `MONKIT_*` ones are errors.
    pub(crate) fn from_vars(
        vars: &Vars,
        signal: &str,
        path: &str,
    ) -> Option<Result<Common, ConfigError>> {
        if let Err(e) = monkit::export::configure(vars) {
            return Some(Err(e));
        }
        // The SDK switched off: no exporter, whatever else is set.
        if lenient(vars.flag("OTEL_SDK_DISABLED")) == Some(true) {
            return None;
        }
        // The signal's own form of a variable when it is set, else the shared one.
        let pick = |what: &str| {
            let own = format!("OTEL_EXPORTER_OTLP_{signal}_{what}");
            match vars.string(&own) {
                Some(_) => own,
                None => format!("OTEL_EXPORTER_OTLP_{what}"),
            }
        };
        let protocol = match lenient(vars.choice(&pick("PROTOCOL"), &["http/protobuf", "grpc"])) {
            Some("grpc") => Protocol::Grpc,
            _ => Protocol::HttpProtobuf,
        };
        let own = format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT");
        let mut endpoint = match vars.string(&own) {
            Some(e) => e.trim().to_owned(),
            // gRPC names its service itself: the shared endpoint is used as it is.
            None if protocol == Protocol::Grpc => vars
                .string("OTEL_EXPORTER_OTLP_ENDPOINT")?
                .trim()
                .to_owned(),
            None => {
                let base = vars.string("OTEL_EXPORTER_OTLP_ENDPOINT")?;
                format!("{}/{path}", base.trim().trim_end_matches('/'))
            }
        };
        // A gRPC endpoint may be a bare host:port: TLS unless `_INSECURE` says otherwise.
        if protocol == Protocol::Grpc && !endpoint.contains("://") {
            let insecure = lenient(vars.flag(&pick("INSECURE"))).unwrap_or(false);
            let scheme = if insecure { "http" } else { "https" };
            endpoint = format!("{scheme}://{endpoint}");
        }
        let mut c = Common {
            endpoint,
            protocol,
            service_name: None,
            resource: Vec::new(),
            timeout: lenient(vars.millis(&pick("TIMEOUT"))),
            gzip: lenient(vars.choice(&pick("COMPRESSION"), &["gzip", "none"])) == Some("gzip"),
            headers: lenient(vars.pairs(&pick("HEADERS"))).unwrap_or_default(),
            ca: vars.string(&pick("CERTIFICATE")),
            client: None,
        };
        if let Some(a) = lenient(vars.pairs("OTEL_RESOURCE_ATTRIBUTES")) {
            c.service_name = a
                .iter()
                .find(|(k, _)| k == "service.name")
                .map(|(_, v)| v.clone());
            c.resource = a;
        }
        // OTEL_SERVICE_NAME wins over a service.name in the attributes.
        if let Some(name) = vars.string("OTEL_SERVICE_NAME") {
            c.service_name = Some(name);
        }
        let (cert, key) = (pick("CLIENT_CERTIFICATE"), pick("CLIENT_KEY"));
        match (vars.string(&cert), vars.string(&key)) {
            (Some(c_), Some(k)) => c.client = Some((c_, k)),
            (None, None) => {}
            (Some(v), None) | (None, Some(v)) => {
                let name = if vars.string(&cert).is_some() {
                    cert
                } else {
                    key
                };
                lenient::<()>(Err(ConfigError::new(
                    name,
                    v,
                    "set with its pair: a client certificate needs OTEL_EXPORTER_OTLP_CLIENT_KEY and a key OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                )));
            }
        }
        Some(Ok(c))
    }
}

impl Common {
    /// What was read of delivery (timeout, compression, headers, TLS) applied to `p`: the
    /// same for every signal.
    pub(crate) fn deliver(&self, mut p: Pipeline) -> Pipeline {
        if let Some(t) = self.timeout {
            p = p.timeout(t);
        }
        p = p.gzip(self.gzip);
        for (k, v) in &self.headers {
            p = p.header(k, v);
        }
        if let Some(ca) = &self.ca {
            p = p.tls_ca(ca);
        }
        if let Some((cert, key)) = &self.client {
            p = p.tls_client_cert(cert, key);
        }
        p
    }
}

/// The service name when none is given: the executable's name.
pub(crate) fn default_service_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "unknown_service".into())
}

impl Builder {
    /// An exporter POSTing to `endpoint`, the full URL of the traces resource (for example
    /// `http://127.0.0.1:4318/v1/traces`), sampling every new trace, with the queue, batch and
    /// retry defaults of `monkit-exporter`, uncompressed.
    pub fn new(endpoint: &str) -> Builder {
        Builder {
            pipeline: Pipeline::new("otlp", endpoint),
            protocol: Protocol::HttpProtobuf,
            service_name: default_service_name(),
            resource: Vec::new(),
        }
    }

    /// From the standard `OTEL_*` variables (see the crate doc): `None` when no endpoint is
    /// set. An `OTEL_*` value that cannot be read is logged and ignored, as the OpenTelemetry
    /// specification asks; a bad `MONKIT_*` one (tail sampling, the core's) is an error naming
    /// it.
    pub fn from_env() -> Option<Result<Builder, ConfigError>> {
        Self::from_vars(&Vars::env())
    }

    /// [`Builder::from_env`] over any source of variables.
    pub fn from_vars(vars: &Vars) -> Option<Result<Builder, ConfigError>> {
        let c = match Common::from_vars(vars, "TRACES", "v1/traces")? {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        let mut b = Builder::new(&c.endpoint).protocol(c.protocol);
        if let Some(name) = &c.service_name {
            b = b.service_name(name);
        }
        b.pipeline = c.deliver(b.pipeline);
        b.resource = c.resource;
        b.pipeline = match b.pipeline.tail_from_vars(vars) {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        const SAMPLERS: [&str; 6] = [
            "always_on",
            "always_off",
            "traceidratio",
            "parentbased_always_on",
            "parentbased_always_off",
            "parentbased_traceidratio",
        ];
        let ratio = || lenient(vars.ratio("OTEL_TRACES_SAMPLER_ARG")).unwrap_or(1.0);
        // Only the parent-based samplers let a caller's flag decide: a client must not be able
        // to raise the export volume of `always_off` or `traceidratio`.
        match lenient(vars.choice("OTEL_TRACES_SAMPLER", &SAMPLERS)) {
            Some("always_on") => b = b.sampler(Sampler::Always),
            Some("always_off") => b = b.sampler(Sampler::Never),
            Some("traceidratio") => b = b.sampler(Sampler::Fraction(ratio())),
            Some("parentbased_always_off") => b = b.sampler(Sampler::ParentBased(0.0)),
            Some("parentbased_traceidratio") => b = b.sampler(Sampler::ParentBased(ratio())),
            _ => {}
        }
        Some(Ok(b))
    }

    /// OTLP/HTTP with protobuf bodies (the default), or gRPC (feature `grpc`; the endpoint is
    /// then the collector's `http://host:4317` or `https://host:4317`).
    pub fn protocol(mut self, p: Protocol) -> Builder {
        self.protocol = p;
        self
    }

    /// The resource's `service.name`.
    pub fn service_name(mut self, name: &str) -> Builder {
        self.service_name = name.to_owned();
        self
    }

    /// Starts the sender thread, registers the exporter as a span observer of `registry` and
    /// sets that registry's sampler.
    pub fn install(self, registry: &Registry) -> Result<Exporter, ConfigError> {
        let format = Protobuf {
            resource: crate::encode::resource(&self.service_name, &self.resource),
        };
        let transport = self.protocol.transport(&self.pipeline, Signal::Traces)?;
        self.pipeline.install_with(registry, format, transport)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_percent_decoded() {
        let b = from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "Authorization=Basic%20dXNlcjpwYXNz, x-tenant = acme",
            ),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            b.pipeline.headers(),
            [
                ("Authorization".to_owned(), "Basic dXNlcjpwYXNz".to_owned()),
                ("x-tenant".to_owned(), "acme".to_owned())
            ]
        );
    }

    #[test]
    fn sdk_disabled_resource_attributes_and_timeout() {
        assert!(from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318"),
            ("OTEL_SDK_DISABLED", "true"),
        ])
        .is_none());
        let b = from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "service.name=shop,deployment.environment=prod%20eu, k8s.pod.name=a",
            ),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(b.service_name, "shop");
        assert!(b
            .resource
            .contains(&("deployment.environment".into(), "prod eu".into())));
        assert!(b.resource.contains(&("k8s.pod.name".into(), "a".into())));
        // What cannot be read is logged and ignored, as OpenTelemetry asks: the defaults stay.
        for (k, v) in [
            ("OTEL_RESOURCE_ATTRIBUTES", "novalue"),
            ("OTEL_RESOURCE_ATTRIBUTES", "k=%zz"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
        ] {
            let pairs: &'static [(&'static str, &'static str)] = Box::leak(Box::new([
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318"),
                (k, v),
            ]));
            let b = from(pairs).unwrap().unwrap();
            assert!(b.resource.is_empty(), "{k}");
            assert_eq!(
                b.pipeline.request_timeout(),
                Pipeline::new("x", "y").request_timeout()
            );
        }
        // A bad MONKIT_* value beside them is an error naming it.
        let e = from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318"),
            ("MONKIT_TAIL_ERRORS", "maybe"),
        ])
        .unwrap()
        .unwrap_err();
        assert_eq!(e.setting, "MONKIT_TAIL_ERRORS");
    }

    fn from(
        pairs: &'static [(&'static str, &'static str)],
    ) -> Option<Result<Builder, ConfigError>> {
        Builder::from_vars(&Vars::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn grpc_from_the_variables() {
        let b = from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ])
        .unwrap()
        .unwrap();
        // gRPC names its own service: the endpoint is used as it is.
        assert_eq!(b.protocol, Protocol::Grpc);
        assert_eq!(b.pipeline.endpoint(), "http://h:4317");
        // The signal's own protocol wins; a bare host:port is TLS unless insecure.
        let b = from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(b.pipeline.endpoint(), "https://collector:4317");
        let b = from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(b.pipeline.endpoint(), "http://collector:4317");
        // Unreadable: logged and ignored, so TLS, the default.
        let b = from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_INSECURE", "maybe"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(b.pipeline.endpoint(), "https://collector:4317");
    }

    #[test]
    fn standard_variables() {
        assert!(from(&[]).is_none());
        let b = from(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318/")])
            .unwrap()
            .unwrap();
        assert_eq!(b.pipeline.endpoint(), "http://h:4318/v1/traces");
        let b = from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1/x"),
            ("OTEL_SERVICE_NAME", "shop"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(b.pipeline.endpoint(), "http://t:1/x");
        assert_eq!(b.service_name, "shop");
        for bad in [
            ("OTEL_TRACES_SAMPLER", "sometimes"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"),
        ] {
            let pairs: &'static [(&str, &str)] = Box::leak(Box::new([
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318"),
                bad,
            ]));
            // Logged and ignored: the defaults stay.
            let b = from(pairs).unwrap().unwrap();
            assert_eq!(b.protocol, Protocol::HttpProtobuf, "{bad:?}");
            assert!(!b.pipeline.is_gzip(), "{bad:?}");
        }
        assert!(from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318"),
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ])
        .unwrap()
        .is_ok());
    }
}
