//! Trace context across processes in HTTP headers: W3C `traceparent`/`tracestate` and B3
//! (multi-header `X-B3-*` and single `b3`), a server wrapper that continues incoming traces,
//! and a client helper that propagates the current one.
//!
//! Parsing is strict and never fails a request: a malformed header is ignored and the request
//! starts a fresh trace. Unsampled traces still propagate their ids, with the flag off.

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response};
use monkit::export::keys;
use monkit::{annotate, current_span, trace::InSpanExt, Func, Outcome, Registry, SpanRef};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use monkit::propagation::{
    baggage, baggage_value, combined_tracestate, format_traceparent, parse_b3_multi,
    parse_b3_single, parse_traceparent, set_baggage, valid_tracestate, Extractor, Incoming,
    Injector,
};

/// Reads the trace context of a request's headers (see [`monkit::propagation::extract`]).
pub fn extract(h: &HeaderMap) -> Option<Incoming> {
    monkit::propagation::extract(h)
}

/// Writes the context of `span` into outgoing headers, replacing any already there (see
/// [`monkit::propagation::inject`]).
pub fn inject(h: &mut HeaderMap, span: SpanRef, b3: bool) {
    monkit::propagation::inject(h, span, b3)
}

/// Most distinct span names one scope of server or client spans holds, however many wrappers
/// feed it (a server often builds one per connection); past this, names become
/// `<METHOD> other` so paths cannot grow the function table without bound. Each refusal is
/// counted (`cardinality_refused` in scope `monkit`), the folded span is annotated with the
/// route it stands for (`http.route.folded`), and the last quarter of the room goes only to
/// names asked for repeatedly (see `monkit::Scope::func_within`), so junk paths sent first do
/// not keep real routes out. Route templates (the tower layer's `MatchedPath`, or
/// [`Traced::with_route`]) are the real fix.
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

    /// The function of `method what`, and whether it is the scope's stand-in `<METHOD>
    /// other` (the name table was full): the caller then says on the span which route it holds.
    fn func(&self, method: &str, what: &str) -> (Func, bool) {
        let method = method_name(method);
        let name = format!("{method} {what}");
        if let Some(f) = self.funcs.read().get(&name) {
            return (*f, false);
        }
        let fallback = format!("{method} other");
        let f = self.scope.func_within(&name, MAX_NAMES, &fallback);
        let folded = f.name() == fallback && name != fallback;
        if !folded {
            let mut cache = self.funcs.write();
            if cache.len() < MAX_NAMES {
                cache.insert(name, f);
            }
        }
        (f, folded)
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

impl<S> std::fmt::Debug for Traced<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traced")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
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
        let route = (self.route)(&path);
        let (func, folded) = self.names.func(&method, &route);
        let parent = match &incoming {
            Some(i) => Some(i.parent()),
            None => current_span(),
        };
        let tracestate = incoming.and_then(|i| i.tracestate);
        let fut = self.inner.call(req);
        let work = async move {
            annotate(keys::SPAN_KIND, "server");
            annotate(keys::HTTP_METHOD, &method);
            annotate(keys::HTTP_PATH, &path);
            if folded {
                annotate("http.route.folded", &route);
            }
            if let Some(ts) = &tracestate {
                annotate("w3c.tracestate", ts);
            }
            let me = current_span();
            let mut r = fut.await;
            if let Ok(resp) = &mut r {
                annotate(keys::HTTP_STATUS_CODE, resp.status().as_u16());
                if let Some(me) = me {
                    let tp = format_traceparent(me.trace_id(), me.span_id(), me.w3c_flags());
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

impl std::fmt::Debug for TracedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedClient")
            .field("b3", &self.b3)
            .finish_non_exhaustive()
    }
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
        let (func, _) = self.names.func(req.method().as_str(), &host);
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

    #[test]
    fn routes() {
        assert_eq!(
            default_route("/users/42/orders/9f8e7d6c5b4a"),
            "/users/{id}/orders/{id}"
        );
        assert_eq!(default_route(""), "/");
    }
}
