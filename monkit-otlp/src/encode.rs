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

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..KeyValue::default()
    }
}

/// The resource all spans of a process share: `service.name` and the process-wide tags.
pub fn resource(service_name: &str) -> Resource {
    let mut attributes = vec![kv("service.name", service_name)];
    for (k, v) in monkit::registry::process_tags().iter() {
        if k != "service.name" {
            attributes.push(kv(k, v));
        }
    }
    attributes.push(kv("telemetry.sdk.name", "monkit"));
    attributes.push(kv("telemetry.sdk.language", "rust"));
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
            attributes.push(kv(k, v));
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
