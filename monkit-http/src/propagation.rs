//! Trace context across processes in HTTP headers: W3C `traceparent`/`tracestate` and B3
//! (multi-header `X-B3-*` and single `b3`), a server wrapper that continues incoming traces,
//! and a client helper that propagates the current one.
//!
//! Parsing is strict and never fails a request: a malformed header is ignored and the request
//! starts a fresh trace. Unsampled traces still propagate their ids, with the flag off.

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response};
use monkit::export::keys;
use monkit::{annotate, current_span, Func, FutureExt, Outcome, Registry, SpanRef};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A trace context read from a request.
#[derive(Clone, Debug, PartialEq, Eq)]
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
pub fn parse_b3_multi(h: &HeaderMap) -> Option<(u128, u64, Option<bool>)> {
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::trim);
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

/// Reads the trace context of a request: `traceparent` first, then single `b3`, then
/// multi-header B3. `None` (start a fresh trace) when none is present and well-formed.
pub fn extract(h: &HeaderMap) -> Option<Incoming> {
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok());
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
pub fn combined_tracestate(h: &HeaderMap) -> Option<String> {
    let mut all = String::new();
    for v in h.get_all("tracestate") {
        let v = v.to_str().ok()?.trim();
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
const B3_HEADERS: [&str; 6] = [
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
];

/// Writes the context of `span` into outgoing headers: `traceparent` always, B3 multi-header
/// too when `b3`.
///
/// Whatever trace context the headers already held is replaced, not added to, so a proxy
/// passing its caller's headers on never forwards a second context naming the caller's span:
/// `b3` and `X-B3-*` headers are removed (unless `b3` writes its own), and `tracestate` is
/// kept, its several headers combined into one, only when it is well-formed and came with a
/// `traceparent` of the same trace.
pub fn inject(h: &mut HeaderMap, span: SpanRef, b3: bool) {
    let same_trace = h
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_traceparent)
        .is_some_and(|(t, _, _)| t == span.trace_id());
    let tracestate = same_trace.then(|| combined_tracestate(h)).flatten();
    h.remove("tracestate");
    if let Some(v) = tracestate.and_then(|t| HeaderValue::from_str(&t).ok()) {
        h.insert(HeaderName::from_static("tracestate"), v);
    }
    for name in B3_HEADERS {
        h.remove(name);
    }
    let tp = format_traceparent(span.trace_id(), span.span_id(), span.is_sampled());
    if let Ok(v) = HeaderValue::from_str(&tp) {
        h.insert(HeaderName::from_static("traceparent"), v);
    }
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
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(HeaderName::from_static(k), v);
            }
        }
    }
}

/// Most distinct span names one scope of server or client spans holds, however many wrappers
/// feed it (a server often builds one per connection); past this, names become
/// `<METHOD> other` so paths cannot grow the function table without bound.
pub const MAX_NAMES: usize = 256;

/// The methods that name their own spans; any other method is `OTHER`, so a client inventing
/// methods cannot grow the function table either.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// The method as a span name part: a standard method, or `OTHER`.
pub fn method_name(method: &str) -> &'static str {
    METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("OTHER")
}

/// Functions by span name: a wrapper's own cache in front of its scope, with the cap kept by
/// the scope's function count (shared by every wrapper of that scope).
struct Names {
    scope: monkit::Scope,
    funcs: RwLock<HashMap<String, Func>>,
}

impl Names {
    fn new(registry: &Registry, scope: &str) -> Names {
        Names {
            scope: registry.scope(scope),
            funcs: RwLock::new(HashMap::new()),
        }
    }

    fn func(&self, method: &str, what: &str) -> Func {
        let method = method_name(method);
        let name = format!("{method} {what}");
        if let Some(f) = self.funcs.read().get(&name) {
            return *f;
        }
        let f = match self.scope.find_func(&name) {
            Some(f) => f,
            None if self.scope.func_count() >= MAX_NAMES => {
                return self.scope.func(&format!("{method} other"));
            }
            None => self.scope.func(&name),
        };
        let mut cache = self.funcs.write();
        if cache.len() < MAX_NAMES {
            cache.insert(name, f);
        }
        f
    }
}

/// The default route of a path: segments that look like ids (numbers, long hex, UUIDs) become
/// `{id}`, so `/users/42` and `/users/43` are one span name.
pub fn default_route(path: &str) -> String {
    let idish = |s: &str| {
        !s.is_empty()
            && (s.bytes().all(|b| b.is_ascii_digit())
                || (s.len() >= 8 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')))
    };
    let segs: Vec<&str> = path
        .split('/')
        .map(|s| if idish(s) { "{id}" } else { s })
        .collect();
    let r = segs.join("/");
    if r.is_empty() {
        "/".into()
    } else {
        r
    }
}

type RouteFn = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// A hyper service wrapper that continues incoming traces: each request runs as a SERVER span
/// named `<METHOD> <route>` (in scope `http_server`), child of the caller's span, annotated
/// with method, path and status code, and answered with a `traceresponse` header. A 5xx
/// response counts as the error kind `http_5xx`.
#[derive(Clone)]
pub struct Traced<S> {
    inner: S,
    registry: Registry,
    names: Arc<Names>,
    route: RouteFn,
}

impl<S> Traced<S> {
    /// Wraps `inner`, its span functions in scope `http_server` of `registry`, naming spans by
    /// [`default_route`]. Cheap enough to build per connection: the name cap is the scope's.
    pub fn new(registry: &Registry, inner: S) -> Traced<S> {
        Traced {
            inner,
            registry: registry.clone(),
            names: Arc::new(Names::new(registry, "http_server")),
            route: Arc::new(default_route),
        }
    }

    /// Puts the span functions in scope `scope` instead of `http_server` (to tell two servers
    /// of one process apart).
    pub fn with_scope(mut self, scope: &str) -> Self {
        self.names = Arc::new(Names::new(&self.registry, scope));
        self
    }

    /// Names spans by `route(path)` instead (for example your router's pattern).
    pub fn with_route(mut self, route: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        self.route = Arc::new(route);
        self
    }
}

fn classify<RB, E>(r: &Result<Response<RB>, E>) -> Outcome {
    match r {
        Ok(resp) if resp.status().is_server_error() => Outcome::Error("http_5xx"),
        Ok(_) => Outcome::Ok,
        Err(_) => Outcome::Error("http_error"),
    }
}

impl<S, B, RB> hyper::service::Service<Request<B>> for Traced<S>
where
    S: hyper::service::Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: Send + 'static,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<RB>, S::Error>> + Send>>;

    fn call(&self, req: Request<B>) -> Self::Future {
        let incoming = extract(req.headers());
        let method = req.method().as_str().to_owned();
        let path = req.uri().path().to_owned();
        let func = self.names.func(&method, &(self.route)(&path));
        let parent = match &incoming {
            Some(i) => Some(SpanRef::remote(i.trace_id, i.parent_id, i.sampled)),
            None => current_span(),
        };
        let tracestate = incoming.and_then(|i| i.tracestate);
        let fut = self.inner.call(req);
        let work = async move {
            annotate(keys::SPAN_KIND, "server");
            annotate(keys::HTTP_METHOD, &method);
            annotate(keys::HTTP_PATH, &path);
            if let Some(ts) = &tracestate {
                annotate("w3c.tracestate", ts);
            }
            let me = current_span();
            let mut r = fut.await;
            if let Ok(resp) = &mut r {
                annotate(keys::HTTP_STATUS_CODE, resp.status().as_u16());
                if let Some(me) = me {
                    let tp = format_traceparent(me.trace_id(), me.span_id(), me.is_sampled());
                    if let Ok(v) = HeaderValue::from_str(&tp) {
                        resp.headers_mut()
                            .insert(HeaderName::from_static("traceresponse"), v);
                    }
                }
            }
            r
        };
        Box::pin(func.future_classified(work, classify).in_span_opt(parent))
    }
}

/// Propagates the current trace on outgoing requests, each wrapped in a CLIENT span named
/// `<METHOD> <host>` (in scope `http_client`).
#[derive(Clone)]
pub struct TracedClient {
    b3: bool,
    names: Arc<Names>,
}

impl TracedClient {
    /// A client helper injecting `traceparent`, its span functions in scope `http_client` of
    /// `registry`.
    pub fn new(registry: &Registry) -> TracedClient {
        TracedClient {
            b3: false,
            names: Arc::new(Names::new(registry, "http_client")),
        }
    }

    /// Also inject multi-header B3.
    pub fn with_b3(mut self, b3: bool) -> TracedClient {
        self.b3 = b3;
        self
    }

    /// Sends `req` with `send` inside a CLIENT span, the trace context injected into its
    /// headers. A 5xx response counts as the error kind `http_5xx`, an `Err` as `http_error`.
    pub async fn send<B, RB, E, F, Fut>(
        &self,
        mut req: Request<B>,
        send: F,
    ) -> Result<Response<RB>, E>
    where
        F: FnOnce(Request<B>) -> Fut,
        Fut: Future<Output = Result<Response<RB>, E>>,
    {
        // The target: the URI's authority, or the Host header of an origin-form request.
        let authority = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                req.headers()
                    .get(hyper::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            });
        let parsed = authority.and_then(|a| a.parse::<hyper::http::uri::Authority>().ok());
        let host = parsed
            .as_ref()
            .map_or("unknown", |a| a.host())
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = parsed.as_ref().and_then(|a| a.port_u16());
        let func = self.names.func(req.method().as_str(), &host);
        let b3 = self.b3;
        let work = async move {
            annotate(keys::SPAN_KIND, "client");
            annotate(keys::HTTP_METHOD, req.method());
            annotate(keys::HTTP_PATH, req.uri().path());
            if let Ok(ip) = host.parse::<std::net::IpAddr>() {
                annotate(
                    if ip.is_ipv4() {
                        keys::PEER_IPV4
                    } else {
                        keys::PEER_IPV6
                    },
                    ip,
                );
            }
            if let Some(p) = port {
                annotate(keys::PEER_PORT, p);
            }
            if let Some(me) = current_span() {
                inject(req.headers_mut(), me, b3);
            }
            let r = send(req).await;
            if let Ok(resp) = &r {
                annotate(keys::HTTP_STATUS_CODE, resp.status().as_u16());
            }
            r
        };
        func.future_classified(work, classify).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
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
        assert_eq!(h.get_all("traceparent").iter().count(), 1);
        assert_eq!(h.get_all("tracestate").iter().count(), 1);
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
        let mut h = HeaderMap::new();
        h.insert(
            "x-b3-traceid",
            HeaderValue::from_static("463ac35c9f6413ad48485a3953bb6124"),
        );
        h.insert("x-b3-spanid", HeaderValue::from_static("a2fb4a1d1a96d312"));
        h.insert("x-b3-sampled", HeaderValue::from_static("1"));
        let i = extract(&h).unwrap();
        assert_eq!(
            (i.trace_id, i.parent_id, i.sampled),
            (0x463ac35c9f6413ad48485a3953bb6124, 0xa2fb4a1d1a96d312, true)
        );
    }

    #[test]
    fn routes() {
        assert_eq!(
            default_route("/users/42/orders/9f8e7d6c5b4a"),
            "/users/{id}/orders/{id}"
        );
        assert_eq!(default_route(""), "/");
    }
}
