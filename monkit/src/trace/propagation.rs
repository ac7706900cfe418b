//! Trace context across processes over any carrier: W3C `traceparent`/`tracestate`/`baggage`
//! and B3 (multi-header `X-B3-*` and single `b3`), read from anything that can [`Extractor`]
//! (HTTP headers, a message's metadata, a workflow signal's header map) and written to
//! anything that can [`Injector`].
//!
//! Parsing is strict and never fails the carrier's work: a malformed value is ignored and the
//! receiver starts a fresh trace. Unsampled traces still propagate their ids, flag off.

use crate::trace::span::SpanRef;
use std::collections::{BTreeMap, HashMap};

/// Something trace context can be read from: string keys to string values. Keys are the
/// lowercase names (`traceparent`, `x-b3-traceid`); an implementation whose keys may come
/// in other cases should find them whatever the case.
pub trait Extractor {
    /// The value of `key`, if any.
    fn get(&self, key: &str) -> Option<&str>;
    /// Every value of `key`, in order (a carrier that holds one value per key returns that).
    fn get_all(&self, key: &str) -> Vec<&str> {
        self.get(key).into_iter().collect()
    }
}

/// Something trace context can be written to.
pub trait Injector {
    /// Sets `key` to `value`, replacing what it held.
    fn set(&mut self, key: &str, value: String);
    /// Removes `key`.
    fn remove(&mut self, key: &str);
}

/// The carrier impls of a string map: exact key first, then any case.
macro_rules! string_map_carrier {
    ($map:ty, [$($generics:tt)*]) => {
        impl<$($generics)*> Extractor for $map {
            fn get(&self, key: &str) -> Option<&str> {
                match <$map>::get(self, key) {
                    Some(v) => Some(v.as_str()),
                    None => self
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(key))
                        .map(|(_, v)| v.as_str()),
                }
            }
        }
        impl<$($generics)*> Injector for $map {
            fn set(&mut self, key: &str, value: String) {
                Injector::remove(self, key);
                self.insert(key.to_owned(), value);
            }
            fn remove(&mut self, key: &str) {
                self.retain(|k, _| !k.eq_ignore_ascii_case(key));
            }
        }
    };
}
string_map_carrier!(HashMap<String, String, S>, [S: std::hash::BuildHasher]);
string_map_carrier!(BTreeMap<String, String>, []);

#[cfg(feature = "http")]
impl Extractor for http::HeaderMap {
    fn get(&self, key: &str) -> Option<&str> {
        http::HeaderMap::get(self, key).and_then(|v| v.to_str().ok())
    }
    fn get_all(&self, key: &str) -> Vec<&str> {
        http::HeaderMap::get_all(self, key)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }
}

#[cfg(feature = "http")]
impl Injector for http::HeaderMap {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            http::header::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.insert(k, v);
        }
    }
    fn remove(&mut self, key: &str) {
        http::HeaderMap::remove(self, key);
    }
}

/// A trace context read from a carrier.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Incoming {
    /// The trace.
    pub trace_id: u128,
    /// The caller's span: the parent of ours.
    pub parent_id: u64,
    /// Whether the caller sampled the trace.
    pub sampled: bool,
    /// W3C `tracestate`, passed on as it came (if well-formed).
    pub tracestate: Option<String>,
}

fn hex_u64(s: &str) -> Option<u64> {
    (s.len() == 16
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then(|| u64::from_str_radix(s, 16).ok())
    .flatten()
}

fn hex_u128(s: &str) -> Option<u128> {
    (s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then(|| u128::from_str_radix(s, 16).ok())
    .flatten()
}

/// Parses a W3C `traceparent`: `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`,
/// lowercase, ids not all zero. A later version is read by its first four fields, as the
/// specification asks; version `ff` is invalid. Returns (trace id, parent id, sampled).
pub fn parse_traceparent(v: &str) -> Option<(u128, u64, bool)> {
    let b = v.as_bytes();
    if b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let version = u8::from_str_radix(v.get(0..2)?, 16).ok()?;
    if version == 0xff
        || !v[0..2]
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    {
        return None;
    }
    if version == 0 && b.len() != 55 {
        return None;
    }
    if version > 0 && b.len() > 55 && b[55] != b'-' {
        return None;
    }
    let trace = hex_u128(&v[3..35]).filter(|&t| t != 0)?;
    let parent = hex_u64(&v[36..52]).filter(|&p| p != 0)?;
    let flags = &v[53..55];
    if !flags
        .bytes()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some((trace, parent, flags & 1 == 1))
}

/// A `traceparent` value for a span.
pub fn format_traceparent(trace_id: u128, span_id: u64, sampled: bool) -> String {
    format!(
        "00-{trace_id:032x}-{span_id:016x}-{:02x}",
        u8::from(sampled)
    )
}

/// Whether a `tracestate` is well-formed enough to pass on: at most 32 comma-separated
/// `key=value` members of printable ASCII, at most 512 bytes.
pub fn valid_tracestate(v: &str) -> bool {
    let members: Vec<&str> = v
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    v.len() <= 512
        && !members.is_empty()
        && members.len() <= 32
        && members.iter().all(|m| match m.split_once('=') {
            Some((k, val)) => {
                !k.is_empty()
                    && k.len() <= 256
                    && k.bytes().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-*/@".contains(&c)
                    })
                    && !val.is_empty()
                    && val.len() <= 256
                    && val
                        .bytes()
                        .all(|c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
            }
            None => false,
        })
}

/// A B3 trace id: 16 or 32 lowercase hex.
fn b3_trace(s: &str) -> Option<u128> {
    match s.len() {
        16 => hex_u64(s).map(u128::from),
        32 => hex_u128(s),
        _ => None,
    }
    .filter(|&t| t != 0)
}

/// Parses a single `b3` header: `{trace}-{span}[-{sampled}[-{parent}]]`. A lone sampling
/// decision (`0`, `1`, `d`) carries no context and gives `None`.
pub fn parse_b3_single(v: &str) -> Option<(u128, u64, Option<bool>)> {
    let parts: Vec<&str> = v.trim().split('-').collect();
    if parts.len() < 2 || parts.len() > 4 {
        return None;
    }
    let trace = b3_trace(parts[0])?;
    let span = hex_u64(parts[1]).filter(|&s| s != 0)?;
    let sampled = match parts.get(2) {
        None => None,
        Some(&"1") | Some(&"d") => Some(true),
        Some(&"0") => Some(false),
        Some(_) => return None,
    };
    if let Some(p) = parts.get(3) {
        hex_u64(p).filter(|&p| p != 0)?;
    }
    Some((trace, span, sampled))
}

/// Parses multi-header B3 (`X-B3-TraceId`, `X-B3-SpanId`, `X-B3-Sampled`, `X-B3-Flags`).
pub fn parse_b3_multi(h: &impl Extractor) -> Option<(u128, u64, Option<bool>)> {
    let get = |n: &str| h.get(n).map(str::trim);
    let trace = b3_trace(get("x-b3-traceid")?)?;
    let span = hex_u64(get("x-b3-spanid")?).filter(|&s| s != 0)?;
    if let Some(p) = get("x-b3-parentspanid") {
        hex_u64(p).filter(|&p| p != 0)?;
    }
    let debug = get("x-b3-flags") == Some("1");
    let sampled = match get("x-b3-sampled") {
        None => None,
        Some("1") | Some("true") => Some(true),
        Some("0") | Some("false") => Some(false),
        Some(_) => return None,
    };
    Some((trace, span, if debug { Some(true) } else { sampled }))
}

/// Reads the trace context of a carrier: `traceparent` first, then single `b3`, then
/// multi-header B3. `None` (start a fresh trace) when none is present and well-formed.
pub fn extract(h: &impl Extractor) -> Option<Incoming> {
    let get = |n: &str| h.get(n);
    if let Some((trace_id, parent_id, sampled)) = get("traceparent").and_then(parse_traceparent) {
        return Some(Incoming {
            trace_id,
            parent_id,
            sampled,
            tracestate: combined_tracestate(h),
        });
    }
    let (trace_id, parent_id, sampled) = get("b3")
        .and_then(parse_b3_single)
        .or_else(|| parse_b3_multi(h))?;
    Some(Incoming {
        trace_id,
        parent_id,
        sampled: sampled.unwrap_or(false),
        tracestate: None,
    })
}

/// Every `tracestate` header of a request joined into one list, as W3C Trace Context says
/// several must be read; `None` when there is none or the whole is not well-formed.
pub fn combined_tracestate(h: &impl Extractor) -> Option<String> {
    let mut all = String::new();
    for v in h.get_all("tracestate") {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        if !all.is_empty() {
            all.push(',');
        }
        all.push_str(v);
    }
    valid_tracestate(&all).then_some(all)
}

/// The trace headers `inject` writes or removes: both B3 forms and W3C.
pub(crate) const B3_HEADERS: [&str; 6] = [
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
];

/// Writes the context of `span` into a carrier: `traceparent` always, B3 multi-header
/// too when `b3`.
///
/// Whatever trace context the headers already held is replaced, not added to, so a proxy
/// passing its caller's headers on never forwards a second context naming the caller's span:
/// `b3` and `X-B3-*` headers are removed (unless `b3` writes its own), and `tracestate` is
/// kept, its several headers combined into one, only when it is well-formed and came with a
/// `traceparent` of the same trace.
pub fn inject<C: Extractor + Injector>(h: &mut C, span: SpanRef, b3: bool) {
    let same_trace = h
        .get("traceparent")
        .and_then(parse_traceparent)
        .is_some_and(|(t, _, _)| t == span.trace_id());
    let tracestate = same_trace.then(|| combined_tracestate(h)).flatten();
    h.remove("tracestate");
    if let Some(t) = tracestate {
        h.set("tracestate", t);
    }
    for name in B3_HEADERS {
        h.remove(name);
    }
    h.set(
        "traceparent",
        format_traceparent(span.trace_id(), span.span_id(), span.is_sampled()),
    );
    if b3 {
        let pairs = [
            ("x-b3-traceid", format!("{:032x}", span.trace_id())),
            ("x-b3-spanid", format!("{:016x}", span.span_id())),
            (
                "x-b3-sampled",
                if span.is_sampled() { "1" } else { "0" }.to_owned(),
            ),
        ];
        for (k, v) in pairs {
            h.set(k, v);
        }
    }
}

/// Longest `baggage` value read, in bytes (the W3C limit).
const MAX_BAGGAGE: usize = 8192;

/// The W3C `baggage` entries of a carrier whose keys are in `allow` (baggage comes from
/// outside: only keys the program asks for are read), values percent-decoded, properties
/// after `;` dropped. Malformed members are skipped; a value over 8192 bytes is ignored.
///
/// ```
/// use std::collections::HashMap;
/// let mut m = HashMap::new();
/// m.insert("baggage".to_owned(), "tenant=acme, user=a%20b;p=1, secret=x".to_owned());
/// assert_eq!(
///     monkit::propagation::baggage(&m, &["tenant", "user"]),
///     vec![("tenant".to_owned(), "acme".to_owned()), ("user".to_owned(), "a b".to_owned())]
/// );
/// ```
pub fn baggage(h: &impl Extractor, allow: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let all = h.get_all("baggage");
    if all.iter().map(|v| v.len()).sum::<usize>() > MAX_BAGGAGE {
        return out;
    }
    for member in all.iter().flat_map(|v| v.split(',')) {
        let value_part = member.split(';').next().unwrap_or("");
        let Some((k, v)) = value_part.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if k.is_empty() || !allow.contains(&k) || out.iter().any(|(o, _)| o == k) {
            continue;
        }
        if let Some(v) = percent_decode(v.trim()) {
            out.push((k.to_owned(), v));
        }
    }
    out
}

/// Writes `entries` as the W3C `baggage` value, percent-encoding what must be.
pub fn set_baggage(h: &mut impl Injector, entries: &[(&str, &str)]) {
    if entries.is_empty() {
        return;
    }
    let members: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    h.set("baggage", members.join(","));
}

fn percent_decode(v: &str) -> Option<String> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = v.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn percent_encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~!#$&'*+/:<>?@[]^`{|}".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Incoming {
    /// The parent context to start the receiving span under.
    pub fn parent(&self) -> SpanRef {
        SpanRef::remote(self.trace_id, self.parent_id, self.sampled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A carrier that keeps repeated keys, as HTTP headers do.
    #[derive(Default)]
    struct Multi(Vec<(String, String)>);

    impl Extractor for Multi {
        fn get(&self, key: &str) -> Option<&str> {
            self.0
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        }
        fn get_all(&self, key: &str) -> Vec<&str> {
            self.0
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .collect()
        }
    }

    impl Injector for Multi {
        fn set(&mut self, key: &str, value: String) {
            self.remove(key);
            self.0.push((key.to_owned(), value));
        }
        fn remove(&mut self, key: &str) {
            self.0.retain(|(k, _)| k != key);
        }
    }

    impl Multi {
        fn count(&self, key: &str) -> usize {
            self.get_all(key).len()
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> Multi {
        Multi(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const TRACE: u128 = 0x4bf92f3577b34da6a3ce929d0e0e4736;

    #[test]
    fn inject_replaces_what_came_in() {
        let mut h = headers(&[
            ("traceparent", TP),
            ("tracestate", "a=1"),
            ("tracestate", "b=2,c=3"),
            ("b3", "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1"),
            ("x-b3-traceid", "4bf92f3577b34da6a3ce929d0e0e4736"),
            ("x-b3-spanid", "00f067aa0ba902b7"),
            ("x-b3-parentspanid", "00f067aa0ba902b6"),
            ("x-b3-sampled", "1"),
            ("x-b3-flags", "1"),
        ]);
        let me = SpanRef::remote(TRACE, 0x1234, true);
        inject(&mut h, me, false);
        assert_eq!(
            h.get("traceparent").unwrap(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000001234-01"
        );
        assert_eq!(h.count("traceparent"), 1);
        assert_eq!(h.count("tracestate"), 1);
        assert_eq!(h.get("tracestate").unwrap(), "a=1,b=2,c=3");
        for k in B3_HEADERS {
            assert!(h.get(k).is_none(), "{k} forwarded");
        }
    }

    #[test]
    fn tracestate_follows_only_its_own_valid_trace() {
        // Rejected on the way in: not forwarded.
        let mut h = headers(&[("traceparent", TP), ("tracestate", "=bad")]);
        inject(&mut h, SpanRef::remote(TRACE, 1, true), false);
        assert!(h.get("tracestate").is_none());
        // One bad member spoils the combined list.
        let mut h = headers(&[
            ("traceparent", TP),
            ("tracestate", "a=1"),
            ("tracestate", "B=2"),
        ]);
        inject(&mut h, SpanRef::remote(TRACE, 1, true), false);
        assert!(h.get("tracestate").is_none());
        // A state of another trace (the incoming traceparent was not continued).
        let mut h = headers(&[("traceparent", TP), ("tracestate", "a=1")]);
        inject(&mut h, SpanRef::remote(TRACE + 1, 1, true), false);
        assert!(h.get("tracestate").is_none());
        let mut h = headers(&[("traceparent", "garbage"), ("tracestate", "a=1")]);
        inject(&mut h, SpanRef::remote(TRACE, 1, true), false);
        assert!(h.get("tracestate").is_none());
        // On the way in, several headers are one list.
        let h = headers(&[
            ("traceparent", TP),
            ("tracestate", "a=1"),
            ("tracestate", "b=2"),
        ]);
        assert_eq!(extract(&h).unwrap().tracestate.as_deref(), Some("a=1,b=2"));
    }

    #[test]
    fn traceparent() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            parse_traceparent(tp),
            Some((0x4bf92f3577b34da6a3ce929d0e0e4736, 0x00f067aa0ba902b7, true))
        );
        assert_eq!(
            format_traceparent(0x4bf92f3577b34da6a3ce929d0e0e4736, 0x00f067aa0ba902b7, true),
            tp
        );
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
        // A later version: first four fields.
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-x")
                .is_some()
        );
    }

    #[test]
    fn b3() {
        assert_eq!(
            parse_b3_single("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90"),
            Some((
                0x80f198ee56343ba864fe8b2a57d3eff7,
                0xe457b5a2e4d86bd1,
                Some(true)
            ))
        );
        assert_eq!(
            parse_b3_single("e457b5a2e4d86bd1-e457b5a2e4d86bd1-0"),
            Some((0xe457b5a2e4d86bd1, 0xe457b5a2e4d86bd1, Some(false)))
        );
        assert_eq!(parse_b3_single("1"), None);
        assert_eq!(parse_b3_single("x-y"), None);
        // Any map, and keys in any case.
        let h: HashMap<String, String> = [
            ("X-B3-TraceId", "463ac35c9f6413ad48485a3953bb6124"),
            ("X-B3-SpanId", "a2fb4a1d1a96d312"),
            ("X-B3-Sampled", "1"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let i = extract(&h).unwrap();
        assert_eq!(
            (i.trace_id, i.parent_id, i.sampled),
            (0x463ac35c9f6413ad48485a3953bb6124, 0xa2fb4a1d1a96d312, true)
        );
    }
}
