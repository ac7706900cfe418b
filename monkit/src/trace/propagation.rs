//! Trace context across processes over any carrier: W3C `traceparent`/`tracestate`/`baggage`
//! and B3 (multi-header `X-B3-*` and single `b3`), read from anything that can [`Extractor`]
//! (HTTP headers, a message's metadata, a workflow signal's header map) and written to
//! anything that can [`Injector`].
//!
//! Parsing is strict and never fails the carrier's work: a malformed value is ignored and the
//! receiver starts a fresh trace. Unsampled traces still propagate their ids, flag off.
//!
//! What is met: W3C Trace Context Level 2 (the `random` flag read, kept and sent, and set on
//! every trace monkit starts; repeated `traceparent` lines are invalid; `tracestate` checked
//! member by member against the key and value grammar and its 32-member and 512-character
//! limits), and W3C Baggage (members with properties and percent-encoded values, at least 64
//! members and 8192 bytes passed on). A continued trace's `tracestate` and `baggage` go out
//! again on every request the trace makes from this process ([`inject`]).

use crate::trace::span::SpanRef;
use crate::trace::values;
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

/// gRPC metadata as a carrier (feature `tonic`): its ASCII entries, keys lowercase as gRPC
/// sends them.
#[cfg(feature = "tonic")]
impl Extractor for tonic::metadata::MetadataMap {
    fn get(&self, key: &str) -> Option<&str> {
        tonic::metadata::MetadataMap::get(self, key).and_then(|v| v.to_str().ok())
    }
    fn get_all(&self, key: &str) -> Vec<&str> {
        tonic::metadata::MetadataMap::get_all(self, key)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }
}

#[cfg(feature = "tonic")]
impl Injector for tonic::metadata::MetadataMap {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            value.parse::<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>(),
        ) {
            self.insert(k, v);
        }
    }
    fn remove(&mut self, key: &str) {
        tonic::metadata::MetadataMap::remove(self, key);
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
    /// Whether the caller says the trace id is random (W3C Level 2).
    pub random: bool,
    /// W3C `tracestate`, its lines combined into one and checked member by member (`None`
    /// when there was none or it was not well-formed).
    pub tracestate: Option<String>,
    /// W3C `baggage`, its well-formed members (`None` when there were none).
    pub baggage: Option<String>,
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

/// HTTP's optional whitespace (RFC 9110 section 5.6.3): spaces and tabs.
fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// Parses a W3C `traceparent`: `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`,
/// lowercase, ids not all zero, optional whitespace around it. A later version is read by its
/// first four fields, as the specification asks; version `ff` is invalid. Returns (trace id,
/// parent id, trace flags): flag `01` is sampled, `02` random.
pub fn parse_traceparent(v: &str) -> Option<(u128, u64, u8)> {
    let v = trim_ows(v);
    let b = v.as_bytes();
    if b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let lower_hex = |s: &str| {
        s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    };
    if !lower_hex(&v[0..2]) {
        return None;
    }
    let version = u8::from_str_radix(&v[0..2], 16).ok()?;
    if version == 0xff || (version == 0 && b.len() != 55) {
        return None;
    }
    if version > 0 && b.len() > 55 && b[55] != b'-' {
        return None;
    }
    let trace = hex_u128(&v[3..35]).filter(|&t| t != 0)?;
    let parent = hex_u64(&v[36..52]).filter(|&p| p != 0)?;
    let flags = &v[53..55];
    if !lower_hex(flags) {
        return None;
    }
    Some((trace, parent, u8::from_str_radix(flags, 16).ok()?))
}

/// A `traceparent` value: version `00`, and of `flags` the bits this version defines
/// (`01` sampled, `02` random).
pub fn format_traceparent(trace_id: u128, span_id: u64, flags: u8) -> String {
    let b = traceparent_bytes(trace_id, span_id, flags);
    // Hex digits and dashes only.
    String::from_utf8_lossy(&b).into_owned()
}

/// A `traceparent` value as its 55 bytes, written without formatting machinery (what a
/// server answering every request with `traceresponse` wants).
pub fn traceparent_bytes(trace_id: u128, span_id: u64, flags: u8) -> [u8; 55] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut b = *b"00-00000000000000000000000000000000-0000000000000000-00";
    let mut put = |at: usize, bytes: &[u8]| {
        for (i, byte) in bytes.iter().enumerate() {
            b[at + 2 * i] = HEX[usize::from(byte >> 4)];
            b[at + 2 * i + 1] = HEX[usize::from(byte & 0xf)];
        }
    };
    put(3, &trace_id.to_be_bytes());
    put(36, &span_id.to_be_bytes());
    put(53, &[flags & 0x03]);
    b
}

/// Most members a `tracestate` holds (W3C); one with more is invalid whole.
pub const MAX_TRACESTATE_MEMBERS: usize = 32;
/// Longest combined `tracestate` passed on; past it, members over 128 characters go first,
/// then members from the end, as the specification says.
pub const MAX_TRACESTATE_LEN: usize = 512;

/// A `tracestate` key: a lowercase letter or digit, then up to 255 of lowercase letters,
/// digits and `_ - * / @` (a multi-tenant key is `tenant@system`).
fn tracestate_key(k: &str) -> bool {
    let b = k.as_bytes();
    !b.is_empty()
        && b.len() <= 256
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-*/@".contains(c))
}

/// A `tracestate` value: 1 to 256 printable ASCII characters but `,` and `=`, not ending in
/// a space.
fn tracestate_value(v: &str) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.len() <= 256
        && b.iter()
            .all(|c| (0x20..=0x7e).contains(c) && *c != b',' && *c != b'=')
        && b[b.len() - 1] != b' '
}

/// The members of `tracestate` lines read as one list: empty members skipped, each member
/// checked, later duplicates of a key dropped. `None` when a member is malformed or there are
/// more than [`MAX_TRACESTATE_MEMBERS`].
fn tracestate_members<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<Vec<&'a str>> {
    let mut out: Vec<&str> = Vec::new();
    for m in lines.into_iter().flat_map(|l| l.split(',')).map(trim_ows) {
        if m.is_empty() {
            continue;
        }
        let (k, v) = m.split_once('=')?;
        if !tracestate_key(k) || !tracestate_value(v) {
            return None;
        }
        if !out.iter().any(|o| o.split('=').next() == Some(k)) {
            out.push(m);
        }
    }
    (out.len() <= MAX_TRACESTATE_MEMBERS).then_some(out)
}

/// Whether a `tracestate` is well-formed: members of the key and value grammar, at most
/// [`MAX_TRACESTATE_MEMBERS`] of them, at least one.
pub fn valid_tracestate(v: &str) -> bool {
    tracestate_members([v]).is_some_and(|m| !m.is_empty())
}

/// Every `tracestate` header of a carrier joined into one list, as W3C Trace Context says
/// several must be read; `None` when there is none or the whole is not well-formed. Past
/// [`MAX_TRACESTATE_LEN`] characters it is cut as the specification says.
pub fn combined_tracestate(h: &impl Extractor) -> Option<String> {
    let mut members = tracestate_members(h.get_all("tracestate"))?;
    let len = |m: &[&str]| m.iter().map(|s| s.len()).sum::<usize>() + m.len().saturating_sub(1);
    while len(&members) > MAX_TRACESTATE_LEN {
        match members.iter().rposition(|m| m.len() > 128) {
            Some(i) => members.remove(i),
            None => members.pop().unwrap_or_default(),
        };
    }
    (!members.is_empty()).then(|| members.join(","))
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

/// Which trace-context formats [`extract`] reads and [`inject`] writes (OpenTelemetry's
/// `OTEL_PROPAGATORS`): `tracecontext` (W3C `traceparent` and `tracestate`), `baggage` (W3C),
/// `b3` (the single `b3` header), `b3multi` (`X-B3-*`), or `none`. Unset, monkit reads all of
/// them and writes W3C Trace Context and Baggage (B3 multi-header too where a caller asks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Propagators(u8);

const PROP_SET: u8 = 1 << 7;

impl Propagators {
    /// W3C Trace Context.
    pub const TRACECONTEXT: Propagators = Propagators(1);
    /// W3C Baggage.
    pub const BAGGAGE: Propagators = Propagators(2);
    /// Zipkin's single `b3` header.
    pub const B3: Propagators = Propagators(4);
    /// Zipkin's `X-B3-*` headers.
    pub const B3_MULTI: Propagators = Propagators(8);

    /// The formats of an `OTEL_PROPAGATORS` value (comma-separated names); `None` when a name
    /// is not one monkit knows (`xray`, `jaeger`, `ottrace` are not).
    pub fn parse(list: &str) -> Option<Propagators> {
        let mut bits = PROP_SET;
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            bits |= match name {
                "tracecontext" => 1,
                "baggage" => 2,
                "b3" => 4,
                "b3multi" => 8,
                "none" => 0,
                _ => return None,
            };
        }
        Some(Propagators(bits))
    }

    fn has(self, p: Propagators) -> bool {
        self.0 & PROP_SET == 0 || self.0 & p.0 != 0
    }

    /// Whether writing `p` was asked for explicitly (so `inject`'s own defaults do not apply).
    fn set(self) -> bool {
        self.0 & PROP_SET != 0
    }
}

static PROPAGATORS: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
static FROM_ENV: std::sync::Once = std::sync::Once::new();

/// Uses `p` for every [`extract`] and [`inject`] of the process from now on.
pub fn set_propagators(p: Propagators) {
    FROM_ENV.call_once(|| {});
    PROPAGATORS.store(p.0, std::sync::atomic::Ordering::Relaxed);
}

/// Reads `OTEL_PROPAGATORS` of `vars` (`monkit::export::configure` calls this): a list naming
/// a format monkit does not know is logged and ignored, as OpenTelemetry's specification
/// asks; unset, nothing changes.
pub(crate) fn propagators_from(vars: &crate::util::settings::Vars) {
    let read = vars.string(PROPAGATORS_VAR).map(|v| {
        Propagators::parse(&v).map(Some).ok_or_else(|| {
            crate::util::settings::ConfigError::new(
                PROPAGATORS_VAR,
                v,
                "a comma-separated list of tracecontext, baggage, b3, b3multi or none",
            )
        })
    });
    if let Some(p) = read.and_then(crate::util::settings::lenient) {
        set_propagators(p);
    }
}

const PROPAGATORS_VAR: &str = "OTEL_PROPAGATORS";

crate::util::settings::declare! {
    OTEL_PROPAGATORS: Text, "tracecontext,baggage", "the formats trace context crosses processes in: tracecontext, baggage, b3, b3multi, none";
}

/// The formats in use: set, or read from `OTEL_PROPAGATORS` once.
fn propagators() -> Propagators {
    FROM_ENV.call_once(|| {
        let read = crate::util::settings::Vars::env()
            .string(PROPAGATORS_VAR)
            .map(|v| (Propagators::parse(&v), v));
        match read {
            Some((Some(p), _)) => PROPAGATORS.store(p.0, std::sync::atomic::Ordering::Relaxed),
            Some((None, v)) => log::warn!("monkit: ignoring {PROPAGATORS_VAR}={v:?}: it names a format monkit does not know; using tracecontext,baggage"),
            None => {}
        }
    });
    Propagators(PROPAGATORS.load(std::sync::atomic::Ordering::Relaxed))
}

/// Reads the trace context of a carrier: `traceparent` first, then single `b3`, then
/// multi-header B3. `None` (start a fresh trace) when none is present and well-formed; two
/// `traceparent` lines are one invalid value.
pub fn extract(h: &impl Extractor) -> Option<Incoming> {
    let p = propagators();
    let bag = || {
        if p.has(Propagators::BAGGAGE) {
            baggage_value(h)
        } else {
            None
        }
    };
    if p.has(Propagators::TRACECONTEXT) {
        let tps = h.get_all("traceparent");
        let w3c = match tps.as_slice() {
            [one] => parse_traceparent(one),
            _ => None,
        };
        if let Some((trace_id, parent_id, flags)) = w3c {
            return Some(Incoming {
                trace_id,
                parent_id,
                sampled: flags & 1 != 0,
                random: flags & 2 != 0,
                tracestate: combined_tracestate(h),
                baggage: bag(),
            });
        }
    }
    let single = || {
        p.has(Propagators::B3)
            .then(|| h.get("b3").and_then(parse_b3_single))
            .flatten()
    };
    let multi = || {
        p.has(Propagators::B3_MULTI)
            .then(|| parse_b3_multi(h))
            .flatten()
    };
    let (trace_id, parent_id, sampled) = single().or_else(multi)?;
    Some(Incoming {
        trace_id,
        parent_id,
        sampled: sampled.unwrap_or(false),
        random: false,
        tracestate: None,
        baggage: bag(),
    })
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

/// Writes the context of `span` into a carrier: `traceparent` always (with its sampled and
/// random flags), `tracestate` and `baggage` as the trace arrived with them, B3 multi-header
/// too when `b3`.
///
/// Whatever trace context the carrier already held is replaced, not added to, so a proxy
/// passing its caller's headers on never forwards a second context naming the caller's span:
/// `b3` and `X-B3-*` headers are removed (unless `b3` writes its own). The carrier's own
/// `tracestate` lines are kept, combined into one, only when well-formed and beside a
/// `traceparent` of the same trace; otherwise the trace's incoming `tracestate` goes out. The
/// carrier's own `baggage` is kept; without one, the trace's incoming baggage goes out.
pub fn inject<C: Extractor + Injector>(h: &mut C, span: SpanRef, b3: bool) {
    let p = propagators();
    let w3c = p.has(Propagators::TRACECONTEXT);
    let with_baggage = p.has(Propagators::BAGGAGE);
    // Unset, B3 multi-header goes out where the caller asks; set, as the list says.
    let multi = if p.set() {
        p.has(Propagators::B3_MULTI)
    } else {
        b3
    };
    let single = p.set() && p.has(Propagators::B3);
    let same_trace = matches!(
        h.get_all("traceparent").as_slice(),
        [one] if parse_traceparent(one).is_some_and(|(t, _, _)| t == span.trace_id())
    );
    let carried = same_trace.then(|| combined_tracestate(h)).flatten();
    let (state, bag) = values::context(span.trace_id());
    h.remove("tracestate");
    if w3c {
        if let Some(t) = carried.or_else(|| state.map(|s| s.to_string())) {
            h.set("tracestate", t);
        }
    }
    if with_baggage && h.get("baggage").is_none() {
        if let Some(b) = bag {
            h.set("baggage", b.to_string());
        }
    }
    for name in B3_HEADERS {
        h.remove(name);
    }
    if w3c {
        h.set(
            "traceparent",
            format_traceparent(span.trace_id(), span.span_id(), span.w3c_flags()),
        );
    } else {
        h.remove("traceparent");
    }
    if single {
        h.set(
            "b3",
            format!(
                "{:032x}-{:016x}-{}",
                span.trace_id(),
                span.span_id(),
                if span.is_sampled() { "1" } else { "0" }
            ),
        );
    }
    if multi {
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

/// Most bytes of `baggage` passed on (W3C Baggage: at least 8192 must be); members past it
/// are dropped from the end.
pub const MAX_BAGGAGE_BYTES: usize = 8192;
/// Most `baggage` members passed on (W3C Baggage: at least 64 must be).
pub const MAX_BAGGAGE_MEMBERS: usize = 180;

/// An RFC 9110 token: a baggage key or property name.
fn token(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

/// A baggage value: baggage-octets (printable ASCII but space, `"`, `,`, `;` and `\`), with
/// `%XX` escapes for the rest.
fn baggage_octets(v: &str) -> bool {
    v.bytes()
        .all(|c| c == 0x21 || (0x23..=0x7e).contains(&c) && !b",;\\".contains(&c))
}

/// One member `key=value[;property[=value]...]`: its key and value, or `None` if malformed.
fn baggage_member(m: &str) -> Option<(&str, &str)> {
    let mut parts = m.split(';');
    let (k, v) = parts.next()?.split_once('=')?;
    let (k, v) = (trim_ows(k), trim_ows(v));
    if !token(k) || !baggage_octets(v) {
        return None;
    }
    for p in parts {
        let p = trim_ows(p);
        let ok = match p.split_once('=') {
            Some((pk, pv)) => token(trim_ows(pk)) && baggage_octets(trim_ows(pv)),
            None => token(p),
        };
        if !ok {
            return None;
        }
    }
    Some((k, v))
}

/// The well-formed members of every `baggage` line, in order, within the limits.
fn baggage_members(h: &impl Extractor) -> Vec<&str> {
    let mut out = Vec::new();
    let mut bytes = 0;
    for m in h.get_all("baggage").into_iter().flat_map(|l| l.split(',')) {
        let m = trim_ows(m);
        if m.is_empty() || baggage_member(m).is_none() {
            continue;
        }
        let more = m.len() + usize::from(!out.is_empty());
        if out.len() == MAX_BAGGAGE_MEMBERS || bytes + more > MAX_BAGGAGE_BYTES {
            break;
        }
        bytes += more;
        out.push(m);
    }
    out
}

/// The carrier's `baggage` as one value of its well-formed members, properties kept (what
/// [`inject`] passes on); `None` when it has none.
pub fn baggage_value(h: &impl Extractor) -> Option<String> {
    let m = baggage_members(h);
    (!m.is_empty()).then(|| m.join(","))
}

/// The W3C `baggage` entries of a carrier whose keys are in `allow` (baggage comes from
/// outside: only keys the program asks for are read), values percent-decoded, properties
/// after `;` dropped. Malformed members are skipped; the first of a repeated key wins.
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
    let mut out: Vec<(String, String)> = Vec::new();
    for m in baggage_members(h) {
        let Some((k, v)) = baggage_member(m) else {
            continue;
        };
        if !allow.contains(&k) || out.iter().any(|(o, _)| o == k) {
            continue;
        }
        if let Some(v) = crate::util::percent::decode(v) {
            out.push((k.to_owned(), v));
        }
    }
    out
}

/// Sets `entries` in the carrier's W3C `baggage`, percent-encoding values as needed. The
/// other members stay: those the carrier holds, or, when it holds none, those the current
/// span's trace arrived with; an entry replaces a member of the same key.
pub fn set_baggage<C: Extractor + Injector>(h: &mut C, entries: &[(&str, &str)]) {
    if entries.is_empty() {
        return;
    }
    let mut members: Vec<String> = baggage_members(h).into_iter().map(str::to_owned).collect();
    if members.is_empty() {
        if let Some(b) = crate::trace::span::current_span().and_then(|s| s.baggage()) {
            members = b.split(',').map(str::to_owned).collect();
        }
    }
    for (k, v) in entries {
        if !token(k) {
            continue;
        }
        members.retain(|m| baggage_member(m).is_none_or(|(mk, _)| mk != *k));
        members.push(format!(
            "{k}={}",
            crate::util::percent::encode_baggage_value(v)
        ));
    }
    h.set("baggage", members.join(","));
}

impl Incoming {
    /// The parent context to start the receiving span under: the caller's ids and flags. The
    /// `tracestate` and `baggage` it came with are kept for the trace until its local root
    /// ends, so every request the trace makes from here carries them on ([`inject`]).
    pub fn parent(&self) -> SpanRef {
        let flags = u8::from(self.sampled) | (u8::from(self.random) << 1);
        let span = SpanRef::remote_with_flags(self.trace_id, self.parent_id, flags);
        values::set_context(
            span.trace_id(),
            self.tracestate.as_deref(),
            self.baggage.as_deref(),
        );
        span
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
            Some((0x4bf92f3577b34da6a3ce929d0e0e4736, 0x00f067aa0ba902b7, 1))
        );
        assert_eq!(
            format_traceparent(0x4bf92f3577b34da6a3ce929d0e0e4736, 0x00f067aa0ba902b7, 1),
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
    fn level_2_random_flag_is_kept_and_sent() {
        let h = headers(&[(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02",
        )]);
        let i = extract(&h).unwrap();
        assert!(i.random && !i.sampled);
        let parent = i.parent();
        assert!(parent.is_random() && !parent.is_sampled());
        assert_eq!(parent.w3c_flags(), 2);
        let mut out = Multi::default();
        inject(&mut out, parent, false);
        assert!(out.get("traceparent").unwrap().ends_with("-02"));
        // Bits this version does not define are not passed on.
        let h = headers(&[(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff",
        )]);
        assert_eq!(extract(&h).unwrap().parent().w3c_flags(), 3);
    }

    #[test]
    fn repeated_traceparent_is_invalid() {
        let h = headers(&[
            ("traceparent", TP),
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b7-01",
            ),
        ]);
        assert_eq!(extract(&h), None);
        // Whitespace around a single one is not.
        let h = headers(&[(
            "traceparent",
            " \t00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\t",
        )]);
        assert_eq!(extract(&h).unwrap().trace_id, TRACE);
    }

    #[test]
    fn tracestate_grammar() {
        for good in [
            "foo=1",
            "foo@=1,bar=2",
            "foo@@bar=1",
            "t@vvvvvvvvvvvvvvv=1",
            "0a=x y",
            "foo=1 , bar=2\t,\tbaz=3",
            "a=!\"#$%&'()*+-./0123456789:;<>?@ABCXYZ[\\]^_`abcxyz{|}~",
        ] {
            assert!(valid_tracestate(good), "{good}");
        }
        for bad in [
            "@foo=1",
            "foo =1",
            "FOO=1",
            "foo.bar=1",
            "foo=bar=baz",
            "foo=",
            "=1",
            "foo=1,2",
            "",
        ] {
            assert!(!valid_tracestate(bad), "{bad:?}");
        }
        assert!(valid_tracestate(&format!("{}=1", "z".repeat(256))));
        assert!(!valid_tracestate(&format!("{}=1", "z".repeat(257))));
        assert!(valid_tracestate(&format!("a={}", "v".repeat(256))));
        assert!(!valid_tracestate(&format!("a={}", "v".repeat(257))));
        let members = |n: usize| {
            (1..=n)
                .map(|i| format!("k{i}=v"))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert!(valid_tracestate(&members(32)));
        assert!(!valid_tracestate(&members(33)));
        // Later duplicates of a key go; empty lines and members are nothing.
        let h = headers(&[
            ("tracestate", "foo=1,foo=2"),
            ("tracestate", ""),
            ("tracestate", "bar=3,,foo=4"),
        ]);
        assert_eq!(combined_tracestate(&h).as_deref(), Some("foo=1,bar=3"));
        // Over 512 characters: long members first, then from the end.
        let long = format!("big={}", "x".repeat(200));
        let mut lines = vec![long.clone()];
        lines.extend((0..40).map(|i| format!("m{i:02}={}", "y".repeat(6))));
        let joined = lines[..30].join(",");
        let h = Multi(vec![("tracestate".into(), joined)]);
        let cut = combined_tracestate(&h).unwrap();
        assert!(
            cut.len() <= MAX_TRACESTATE_LEN && !cut.contains("big="),
            "{cut}"
        );
        assert!(cut.starts_with("m00="));
    }

    #[test]
    fn tracestate_and_baggage_go_out_with_their_trace() {
        let h = headers(&[
            // A trace of its own: the store is process-wide, and tests run side by side.
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
            ("tracestate", "rojo=00f067aa0ba902b7"),
            ("tracestate", "congo=t61rcWkgMzE"),
            ("baggage", "tenant=acme;p=1, user=a%20b"),
        ]);
        let parent = extract(&h).unwrap().parent();
        // A new request of the trace (no headers of its own) carries both on.
        let child = SpanRef::remote(parent.trace_id(), 0x77, true);
        let mut out = Multi::default();
        inject(&mut out, child, false);
        assert_eq!(
            out.get("tracestate"),
            Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
        );
        assert_eq!(out.get("baggage"), Some("tenant=acme;p=1,user=a%20b"));
        // Another trace gets neither.
        let mut other = Multi::default();
        inject(&mut other, SpanRef::remote(TRACE, 0x77, true), false);
        assert_eq!(other.get("tracestate"), None);
        assert_eq!(other.get("baggage"), None);
        crate::trace::values::end_trace(parent.trace_id());
        let mut after = Multi::default();
        inject(&mut after, child, false);
        assert_eq!(
            after.get("tracestate"),
            None,
            "gone with the trace's local root"
        );
    }

    #[test]
    fn baggage_by_the_spec() {
        // 64 members of 8192 bytes in all pass whole; members past the limits are dropped.
        let value = "v".repeat(8192 / 64 - 5);
        let all: Vec<String> = (0..64).map(|i| format!("k{i:02}={value}")).collect();
        let joined = all.join(",");
        assert!(joined.len() <= MAX_BAGGAGE_BYTES, "{}", joined.len());
        let h = Multi(vec![("baggage".into(), joined.clone())]);
        assert_eq!(baggage_value(&h).as_deref(), Some(joined.as_str()));
        let too_many = (0..200)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",");
        let h = Multi(vec![("baggage".into(), too_many)]);
        assert_eq!(
            baggage_value(&h).unwrap().split(',').count(),
            MAX_BAGGAGE_MEMBERS
        );
        // Properties, percent-encoding, malformed members skipped.
        let h = headers(&[(
            "baggage",
            "a=1;prop;q = x , bad key=2, c=%E2%9C%93, d=\"quoted\", e=3",
        )]);
        assert_eq!(
            baggage_value(&h).as_deref(),
            Some("a=1;prop;q = x,c=%E2%9C%93,e=3")
        );
        assert_eq!(
            baggage(&h, &["a", "c", "e"]),
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("c".to_owned(), "\u{2713}".to_owned()),
                ("e".to_owned(), "3".to_owned())
            ]
        );
        // Setting an entry keeps the others and replaces its own key.
        let mut h = headers(&[("baggage", "a=1,b=2")]);
        set_baggage(&mut h, &[("b", "x y"), ("c", "3")]);
        assert_eq!(h.get("baggage"), Some("a=1,b=x%20y,c=3"));
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
