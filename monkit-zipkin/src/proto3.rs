//! The proto3 encoding of Zipkin v2 (`zipkin.proto3.ListOfSpans`, `Content-Type:
//! application/x-protobuf`), made from the same span model as the JSON encoding, so the two
//! can never disagree on what a span says.
//!
//! The messages are declared with prost's derive rather than generated from `zipkin.proto`,
//! so building needs no `protoc`; field numbers and types follow `zipkin.proto`.

use prost::Message;
use serde_json::Value;
use std::collections::HashMap;

#[derive(Clone, PartialEq, Message)]
struct Endpoint {
    #[prost(string, tag = "1")]
    service_name: String,
    #[prost(bytes = "vec", tag = "2")]
    ipv4: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    ipv6: Vec<u8>,
    #[prost(int32, tag = "4")]
    port: i32,
}

#[derive(Clone, PartialEq, Message)]
struct Span {
    #[prost(bytes = "vec", tag = "1")]
    trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    parent_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    id: Vec<u8>,
    #[prost(int32, tag = "4")]
    kind: i32,
    #[prost(string, tag = "5")]
    name: String,
    #[prost(fixed64, tag = "6")]
    timestamp: u64,
    #[prost(uint64, tag = "7")]
    duration: u64,
    #[prost(message, optional, tag = "8")]
    local_endpoint: Option<Endpoint>,
    #[prost(message, optional, tag = "9")]
    remote_endpoint: Option<Endpoint>,
    #[prost(message, repeated, tag = "10")]
    annotations: Vec<Annotation>,
    #[prost(map = "string, string", tag = "11")]
    tags: HashMap<String, String>,
}

#[derive(Clone, PartialEq, Message)]
struct Annotation {
    #[prost(fixed64, tag = "1")]
    timestamp: u64,
    #[prost(string, tag = "2")]
    value: String,
}

#[derive(Clone, PartialEq, Message)]
struct ListOfSpans {
    #[prost(message, repeated, tag = "1")]
    spans: Vec<Span>,
}

fn hex_bytes(v: &Value) -> Vec<u8> {
    let s = v.as_str().unwrap_or("");
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

fn endpoint(v: &Value) -> Option<Endpoint> {
    let m = v.as_object()?;
    let ip = |k: &str| -> Vec<u8> {
        match m.get(k).and_then(Value::as_str) {
            Some(s) => match s.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V4(a)) => a.octets().to_vec(),
                Ok(std::net::IpAddr::V6(a)) => a.octets().to_vec(),
                Err(_) => Vec::new(),
            },
            None => Vec::new(),
        }
    };
    Some(Endpoint {
        service_name: m
            .get("serviceName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        ipv4: ip("ipv4"),
        ipv6: ip("ipv6"),
        port: m.get("port").and_then(Value::as_i64).unwrap_or(0) as i32,
    })
}

/// One span, from its v2 JSON form.
fn span(j: &Value) -> Span {
    Span {
        trace_id: hex_bytes(&j["traceId"]),
        parent_id: hex_bytes(&j["parentId"]),
        id: hex_bytes(&j["id"]),
        kind: match j["kind"].as_str() {
            Some("CLIENT") => 1,
            Some("SERVER") => 2,
            Some("PRODUCER") => 3,
            Some("CONSUMER") => 4,
            _ => 0,
        },
        name: j["name"].as_str().unwrap_or("").to_owned(),
        timestamp: j["timestamp"].as_u64().unwrap_or(0),
        duration: j["duration"].as_u64().unwrap_or(0),
        local_endpoint: endpoint(&j["localEndpoint"]),
        remote_endpoint: endpoint(&j["remoteEndpoint"]),
        annotations: j["annotations"]
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|a| Annotation {
                        timestamp: a["timestamp"].as_u64().unwrap_or(0),
                        value: a["value"].as_str().unwrap_or("").to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        tags: j["tags"]
            .as_object()
            .map(|t| {
                t.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// A `ListOfSpans` body of spans in their v2 JSON form.
pub(crate) fn list_of_spans(json: &[Value]) -> Vec<u8> {
    ListOfSpans {
        spans: json.iter().map(span).collect(),
    }
    .encode_to_vec()
}
