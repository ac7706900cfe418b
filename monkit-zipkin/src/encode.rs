//! monkit spans as Zipkin v2 JSON spans.

use monkit::export::keys;
use monkit::FinishedSpan;
use serde_json::{json, Map, Value};

/// A Zipkin endpoint: who recorded the spans.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Endpoint {
    /// Lower-case service name.
    pub service_name: String,
    /// IPv4 address, if known.
    pub ipv4: Option<std::net::Ipv4Addr>,
    /// IPv6 address, if known.
    pub ipv6: Option<std::net::Ipv6Addr>,
    /// Listen port, if known (never 0).
    pub port: Option<u16>,
}

impl Endpoint {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        if !self.service_name.is_empty() {
            m.insert("serviceName".into(), json!(self.service_name));
        }
        if let Some(ip) = self.ipv4 {
            m.insert("ipv4".into(), json!(ip.to_string()));
        }
        if let Some(ip) = self.ipv6 {
            m.insert("ipv6".into(), json!(ip.to_string()));
        }
        if let Some(p) = self.port.filter(|&p| p != 0) {
            m.insert("port".into(), json!(p));
        }
        Value::Object(m)
    }
}

/// One span in Zipkin v2 JSON. Annotations become tags, except the keys of
/// [`monkit::export::keys`] that Zipkin has fields for (kind, remote endpoint).
pub fn encode(span: &FinishedSpan, local: &Endpoint) -> Value {
    let mut tags = Map::new();
    let mut kind = None;
    let mut remote = Endpoint::default();
    let mut has_remote = false;
    // The function's own tags first, so an annotation of the same key wins.
    for (k, v) in span.start.tags().iter() {
        tags.insert(k.to_owned(), json!(v));
    }
    for (k, v) in &span.annotations {
        match k.as_str() {
            keys::SPAN_KIND => {
                kind = match v.as_str() {
                    "server" => Some("SERVER"),
                    "client" => Some("CLIENT"),
                    "producer" => Some("PRODUCER"),
                    "consumer" => Some("CONSUMER"),
                    _ => None,
                }
            }
            keys::PEER_IPV4 => {
                remote.ipv4 = v.parse().ok();
                has_remote |= remote.ipv4.is_some();
            }
            keys::PEER_IPV6 => {
                remote.ipv6 = v.parse().ok();
                has_remote |= remote.ipv6.is_some();
            }
            keys::PEER_PORT => {
                remote.port = v.parse().ok().filter(|&p| p != 0);
                has_remote |= remote.port.is_some();
            }
            keys::PEER_SERVICE => {
                remote.service_name = v.to_lowercase();
                has_remote = true;
            }
            _ => {
                tags.insert(keys::zipkin_name(k).to_owned(), json!(v));
            }
        }
    }
    // Zipkin's `error` tag says what went wrong: the error's text where the span kept it (the
    // kind then goes as `error.type`), else the kind.
    if let Some(k) = span.outcome.failure_kind() {
        match &span.error {
            Some(text) => {
                tags.insert("error".into(), json!(text));
                tags.insert("error.type".into(), json!(k));
            }
            None => {
                tags.insert("error".into(), json!(k));
            }
        }
    }
    let mut m = Map::new();
    m.insert(
        "traceId".into(),
        json!(format!("{:032x}", span.start.trace_id)),
    );
    m.insert("id".into(), json!(format!("{:016x}", span.start.span_id)));
    if let Some(p) = span.start.parent_id {
        m.insert("parentId".into(), json!(format!("{p:016x}")));
    }
    m.insert(
        "name".into(),
        json!(format!("{}.{}", span.start.scope(), span.start.name())),
    );
    if let Some(k) = kind {
        m.insert("kind".into(), json!(k));
    }
    m.insert("timestamp".into(), json!(span.start.start_unix_ns / 1000));
    // Microseconds, rounded up, at least 1.
    let dur_ns = span.finish_unix_ns.saturating_sub(span.start.start_unix_ns);
    m.insert("duration".into(), json!(dur_ns.div_ceil(1000).max(1)));
    m.insert("localEndpoint".into(), local.to_json());
    if has_remote {
        m.insert("remoteEndpoint".into(), remote.to_json());
    }
    // An async span's polls: how many and how long it ran, as tags.
    if let Some(p) = span.polls() {
        tags.insert("monkit.polls".into(), json!(p.count.to_string()));
        tags.insert(
            "monkit.busy_us".into(),
            json!((p.busy_ns / 1000).to_string()),
        );
    }
    // Events (slow polls among them) as annotations: Zipkin's have a time and a text only, so
    // the attributes follow the name as `key=value`.
    if !span.events().is_empty() {
        let annotations = span
            .events()
            .iter()
            .map(|e| {
                let mut value = e.name.clone();
                for (k, v) in &e.attributes {
                    value.push_str(&format!(" {k}={v}"));
                }
                json!({"timestamp": e.time_unix_ns / 1000, "value": value})
            })
            .collect();
        m.insert("annotations".into(), Value::Array(annotations));
    }
    if !tags.is_empty() {
        m.insert("tags".into(), Value::Object(tags));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use monkit::{Outcome, SpanStart};

    #[test]
    fn fields() {
        let func = Box::leak(Box::new(monkit::stats::FuncName::new(
            "svc",
            "GET /x",
            monkit::stats::Tags::default(),
        )));
        let start = SpanStart::new(0xabc, 0x12, Some(0x34), func, 1_500_000_000_123_456, true);
        let s = FinishedSpan::new(
            start,
            1_500_000_000_123_457,
            Outcome::Error("timeout"),
            vec![
                ("span.kind".into(), "server".into()),
                ("peer.ipv4".into(), "127.0.0.1".into()),
                ("peer.port".into(), "4000".into()),
                ("http.status_code".into(), "504".into()),
            ],
        );
        let v = encode(
            &s,
            &Endpoint {
                service_name: "a".into(),
                ..Endpoint::default()
            },
        );
        assert_eq!(v["traceId"], "00000000000000000000000000000abc");
        assert_eq!(v["id"], "0000000000000012");
        assert_eq!(v["parentId"], "0000000000000034");
        assert_eq!(v["kind"], "SERVER");
        assert_eq!(v["timestamp"], 1_500_000_000_123u64);
        assert_eq!(v["duration"], 1);
        assert_eq!(v["remoteEndpoint"]["port"], 4000);
        assert_eq!(v["tags"]["error"], "timeout");
        assert_eq!(v["tags"]["http.status_code"], "504");
        assert!(v["tags"].get("span.kind").is_none());
        // With the error's text: that is the `error` tag, the kind `error.type`.
        let v = encode(
            &s.with_error("upstream took 30 s"),
            &Endpoint {
                service_name: "a".into(),
                ..Endpoint::default()
            },
        );
        assert_eq!(v["tags"]["error"], "upstream took 30 s");
        assert_eq!(v["tags"]["error.type"], "timeout");
    }
}
