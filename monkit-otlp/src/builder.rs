//! Configuration: in code, or from the standard `OTEL_*` variables.

use monkit::export::Sampler;
use monkit::{FinishedSpan, Registry};
use monkit_exporter::{ConfigError, Exporter, Pipeline};
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

fn var(names: &[&str], get: &dyn Fn(&str) -> Option<String>) -> Option<(String, String)> {
    names.iter().find_map(|n| {
        get(n)
            .filter(|v| !v.trim().is_empty())
            .map(|v| ((*n).to_owned(), v))
    })
}

/// `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_EXPORTER_OTLP_HEADERS`: `key=value` pairs separated
/// by commas, percent-decoded (W3C Baggage's octets); `None` when a pair is malformed.
fn key_values(v: &str) -> Option<Vec<(String, String)>> {
    let decode = monkit::propagation::percent_decode;
    v.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (k, val) = p.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then_some(())?;
            Some((decode(k)?, decode(val.trim())?))
        })
        .collect()
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
    /// added to `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub(crate) fn from_vars(
        get: &dyn Fn(&str) -> Option<String>,
        signal: &str,
        path: &str,
    ) -> Option<Result<Common, ConfigError>> {
        // The SDK switched off: no exporter, whatever else is set.
        if var(&["OTEL_SDK_DISABLED"], get)
            .is_some_and(|(_, v)| v.trim().eq_ignore_ascii_case("true"))
        {
            return None;
        }
        let names = |what: &str| {
            [
                format!("OTEL_EXPORTER_OTLP_{signal}_{what}"),
                format!("OTEL_EXPORTER_OTLP_{what}"),
            ]
        };
        let pick = |what: &str| {
            let [own, shared] = names(what);
            var(&[own.as_str(), shared.as_str()], get)
        };
        let err = |name: &str, v: &str, want: &str| Some(Err(ConfigError::new(name, v, want)));
        let protocol = match pick("PROTOCOL") {
            None => Protocol::HttpProtobuf,
            Some((_, p)) if p.trim() == "http/protobuf" => Protocol::HttpProtobuf,
            Some((_, p)) if p.trim() == "grpc" => Protocol::Grpc,
            Some((n, p)) => return err(&n, &p, "http/protobuf or grpc"),
        };
        let mut endpoint = match var(&[names("ENDPOINT")[0].as_str()], get) {
            Some((_, e)) => e,
            // gRPC names its service itself: the shared endpoint is used as it is.
            None if protocol == Protocol::Grpc => var(&["OTEL_EXPORTER_OTLP_ENDPOINT"], get)?.1,
            None => {
                let (_, base) = var(&["OTEL_EXPORTER_OTLP_ENDPOINT"], get)?;
                format!("{}/{path}", base.trim_end_matches('/'))
            }
        };
        // A gRPC endpoint may be a bare host:port: TLS unless `_INSECURE` says otherwise.
        if protocol == Protocol::Grpc && !endpoint.contains("://") {
            let insecure = match pick("INSECURE") {
                None => false,
                Some((_, v)) if v.trim().eq_ignore_ascii_case("true") => true,
                Some((_, v)) if v.trim().eq_ignore_ascii_case("false") => false,
                Some((n, v)) => return err(&n, &v, "true or false"),
            };
            let scheme = if insecure { "http" } else { "https" };
            endpoint = format!("{scheme}://{}", endpoint.trim());
        }
        let mut c = Common {
            endpoint,
            protocol,
            service_name: None,
            resource: Vec::new(),
            timeout: None,
            gzip: false,
            headers: Vec::new(),
            ca: None,
            client: None,
        };
        if let Some((n, attrs)) = var(&["OTEL_RESOURCE_ATTRIBUTES"], get) {
            match key_values(&attrs) {
                Some(a) => {
                    c.service_name = a
                        .iter()
                        .find(|(k, _)| k == "service.name")
                        .map(|(_, v)| v.clone());
                    c.resource = a;
                }
                None => return err(&n, &attrs, "expected key=value pairs separated by commas"),
            }
        }
        // OTEL_SERVICE_NAME wins over a service.name in the attributes.
        if let Some((_, name)) = var(&["OTEL_SERVICE_NAME"], get) {
            c.service_name = Some(name);
        }
        if let Some((n, t)) = pick("TIMEOUT") {
            match t.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => c.timeout = Some(std::time::Duration::from_millis(ms)),
                _ => return err(&n, &t, "expected a positive number of milliseconds"),
            }
        }
        if let Some((n, z)) = pick("COMPRESSION") {
            match z.as_str() {
                "gzip" => c.gzip = true,
                "none" => c.gzip = false,
                _ => return err(&n, &z, "expected gzip or none"),
            }
        }
        if let Some((n, h)) = pick("HEADERS") {
            match key_values(&h) {
                Some(pairs) => c.headers = pairs,
                None => return err(&n, &h, "expected key=value pairs separated by commas"),
            }
        }
        c.ca = pick("CERTIFICATE").map(|(_, v)| v);
        match (pick("CLIENT_CERTIFICATE"), pick("CLIENT_KEY")) {
            (Some((_, cert)), Some((_, key))) => c.client = Some((cert, key)),
            (None, None) => {}
            (Some((n, v)), None) | (None, Some((n, v))) => {
                return err(
                    &n,
                    &v,
                    "set with its pair: a client certificate needs OTEL_EXPORTER_OTLP_CLIENT_KEY and a key OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                )
            }
        }
        Some(Ok(c))
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
    /// set; a value that cannot be used is an error naming it.
    pub fn from_env() -> Option<Result<Builder, ConfigError>> {
        let b = Self::from_vars(&|k| std::env::var(k).ok())?;
        // The formats trace context crosses processes in, as the SDK's variable says.
        Some(monkit::propagation::propagators_from_env().and(b))
    }

    fn from_vars(get: &dyn Fn(&str) -> Option<String>) -> Option<Result<Builder, ConfigError>> {
        let c = match Common::from_vars(get, "TRACES", "v1/traces")? {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        let err = |name: &str, v: &str, want: &str| Some(Err(ConfigError::new(name, v, want)));
        let mut b = Builder::new(&c.endpoint).protocol(c.protocol);
        if let Some(name) = &c.service_name {
            b = b.service_name(name);
        }
        b.resource = c.resource;
        if let Some(t) = c.timeout {
            b = b.timeout(t);
        }
        b = b.gzip(c.gzip);
        for (k, v) in &c.headers {
            b.pipeline = b.pipeline.header(k, v);
        }
        if let Some(ca) = c.ca {
            b = b.tls_ca(ca);
        }
        if let Some((cert, key)) = c.client {
            b = b.tls_client_cert(cert, key);
        }
        b.pipeline = match b.pipeline.tail_from_vars(get) {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        let arg = var(&["OTEL_TRACES_SAMPLER_ARG"], get).map(|(_, a)| a);
        if let Some((n, s)) = var(&["OTEL_TRACES_SAMPLER"], get) {
            let ratio = || match arg.as_deref().map(str::parse::<f64>) {
                None => Ok(1.0),
                Some(Ok(r)) if (0.0..=1.0).contains(&r) => Ok(r),
                Some(_) => Err(()),
            };
            match s.as_str() {
                // Only the parent-based samplers let a caller's flag decide: a client must not
                // be able to raise the export volume of `always_off` or `traceidratio`.
                "always_on" => b = b.sampler(Sampler::Always),
                "always_off" => b = b.sampler(Sampler::Never),
                "parentbased_always_on" => b = b.sampler(Sampler::ParentBased(1.0)),
                "parentbased_always_off" => b = b.sampler(Sampler::ParentBased(0.0)),
                "traceidratio" | "parentbased_traceidratio" => match ratio() {
                    Ok(r) if s == "traceidratio" => b = b.sampler(Sampler::Fraction(r)),
                    Ok(r) => b = b.sampler(Sampler::ParentBased(r)),
                    Err(()) => {
                        return err(
                            "OTEL_TRACES_SAMPLER_ARG",
                            arg.as_deref().unwrap_or(""),
                            "expected a ratio in 0..=1",
                        )
                    }
                },
                _ => {
                    return err(
                        &n,
                        &s,
                        "expected always_on, always_off or traceidratio (parentbased_ forms too)",
                    )
                }
            }
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
        let kv = key_values("Authorization=Basic%20dXNlcjpwYXNz, x-tenant = acme").unwrap();
        assert_eq!(
            kv,
            vec![
                ("Authorization".to_owned(), "Basic dXNlcjpwYXNz".to_owned()),
                ("x-tenant".to_owned(), "acme".to_owned())
            ]
        );
        assert!(key_values("bad%").is_none());
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
        for (k, v) in [
            ("OTEL_RESOURCE_ATTRIBUTES", "novalue"),
            ("OTEL_RESOURCE_ATTRIBUTES", "k=%zz"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
        ] {
            let pairs: &'static [(&'static str, &'static str)] = Box::leak(Box::new([
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318"),
                (k, v),
            ]));
            let e = from(pairs).unwrap().unwrap_err();
            assert_eq!(e.setting, k, "{e}");
        }
    }

    fn from(
        pairs: &'static [(&'static str, &'static str)],
    ) -> Option<Result<Builder, ConfigError>> {
        Builder::from_vars(&|k| pairs.iter().find(|p| p.0 == k).map(|p| p.1.to_owned()))
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
        let e = from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_INSECURE", "maybe"),
        ])
        .unwrap()
        .unwrap_err();
        assert_eq!(e.setting, "OTEL_EXPORTER_OTLP_INSECURE");
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
            let e = from(pairs).unwrap().unwrap_err();
            assert!(e.setting == bad.0 && e.value == bad.1, "{e}");
        }
        let e = from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318"),
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ])
        .unwrap()
        .unwrap_err();
        assert_eq!(e.setting, "OTEL_TRACES_SAMPLER_ARG", "{e}");
    }
}
