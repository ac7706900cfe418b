//! monkit spans as an OTLP `ExportTraceServiceRequest`, with the OpenTelemetry project's own
//! message types (`opentelemetry-proto`).

use monkit::export::keys;
use monkit::FinishedSpan;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};

pub(crate) fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..KeyValue::default()
    }
}

/// An integer attribute.
fn int_kv(key: &str, n: u64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(
                i64::try_from(n).unwrap_or(i64::MAX),
            )),
        }),
        ..KeyValue::default()
    }
}

/// An annotation as an attribute: typed where its key's values are numbers (status codes,
/// ports), a string otherwise; monkit's peer keys under OpenTelemetry's names.
fn attribute(key: &str, value: &str) -> KeyValue {
    let key = match key {
        keys::PEER_IPV4 | keys::PEER_IPV6 => "network.peer.address",
        keys::PEER_PORT => "network.peer.port",
        keys::PEER_SERVICE => "peer.service",
        k => k,
    };
    if keys::INTEGER_KEYS.contains(&key) || key == "network.peer.port" {
        if let Ok(n) = value.parse::<i64>() {
            return KeyValue {
                key: key.to_owned(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::IntValue(n)),
                }),
                ..KeyValue::default()
            };
        }
    }
    kv(key, value)
}

/// The resource all spans of a process share: `service.name`, `service.instance.id` (this
/// process), the `telemetry.sdk.*` keys, then `extra` (`OTEL_RESOURCE_ATTRIBUTES`) and the
/// process-wide tags, each key once, the first given winning.
pub fn resource(service_name: &str, extra: &[(String, String)]) -> Resource {
    let instance = format!(
        "{}-{}",
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "host".into()),
        std::process::id()
    );
    let mut attributes = vec![
        kv("service.name", service_name),
        kv("service.instance.id", &instance),
        kv("telemetry.sdk.name", "monkit"),
        kv("telemetry.sdk.language", "rust"),
        kv("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
    ];
    let tags = monkit::registry::process_tags();
    let more = extra
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(tags.iter());
    for (k, v) in more {
        if !attributes.iter().any(|a| a.key == k) {
            attributes.push(kv(k, v));
        }
    }
    Resource {
        attributes,
        ..Resource::default()
    }
}

/// One span: ids big-endian, kind from the `span.kind` annotation, status from the outcome
/// (an error's kind is the status message and the `error.type` attribute), the function's
/// tags and the span's annotations (arguments included) as attributes.
pub fn span(s: &FinishedSpan) -> Span {
    let mut kind = span::SpanKind::Internal;
    let mut attributes = Vec::with_capacity(s.start.tags().len() + s.annotations.len() + 2);
    attributes.push(kv("monkit.scope", s.start.scope()));
    attributes.push(kv("monkit.function", s.start.name()));
    for (k, v) in s.start.tags().iter() {
        attributes.push(kv(k, v));
    }
    for (k, v) in &s.annotations {
        if k == keys::SPAN_KIND {
            kind = match v.as_str() {
                "server" => span::SpanKind::Server,
                "client" => span::SpanKind::Client,
                "producer" => span::SpanKind::Producer,
                "consumer" => span::SpanKind::Consumer,
                _ => span::SpanKind::Internal,
            };
        } else {
            attributes.push(attribute(k, v));
        }
    }
    let failed = s.outcome.failure_kind();
    let status = match failed {
        None => Status::default(),
        Some(why) => {
            attributes.push(kv("error.type", why));
            Status {
                // What the error said, where the span kept it; else its kind.
                message: s.error.clone().unwrap_or_else(|| why.to_owned()),
                code: status::StatusCode::Error as i32,
            }
        }
    };
    // An async span's polls: how many and how long it ran.
    if let Some(p) = s.polls() {
        attributes.push(int_kv("monkit.polls", u64::from(p.count)));
        attributes.push(int_kv("monkit.busy_ns", p.busy_ns));
    }
    // Events (slow polls and log records among them) as span events.
    let events = s
        .events()
        .iter()
        .map(|e| span::Event {
            time_unix_nano: e.time_unix_ns,
            name: e.name.clone(),
            attributes: e.attributes.iter().map(|(k, v)| attribute(k, v)).collect(),
            ..span::Event::default()
        })
        .collect();
    Span {
        trace_id: s.start.trace_id.to_be_bytes().to_vec(),
        span_id: s.start.span_id.to_be_bytes().to_vec(),
        parent_span_id: s
            .start
            .parent_id
            .map_or_else(Vec::new, |p| p.to_be_bytes().to_vec()),
        // Sampled: only sampled spans are exported.
        flags: 0x100 | u32::from(s.start.sampled),
        name: s.start.full_name().to_owned(),
        kind: kind as i32,
        start_time_unix_nano: s.start.start_unix_ns,
        end_time_unix_nano: s.finish_unix_ns.max(s.start.start_unix_ns),
        attributes,
        events,
        status: Some(status),
        ..Span::default()
    }
}

/// A request carrying `batch` for `resource`.
pub fn request(resource: &Resource, batch: &[FinishedSpan]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource.clone()),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "monkit".to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    ..InstrumentationScope::default()
                }),
                spans: batch.iter().map(span).collect(),
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}
