//! The server side: each request a call of `METHOD route` in scope `http_server`, continuing
//! the caller's trace, answered with `traceresponse`.

use crate::names::{default_route, method_name, Names};
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Request, Response, StatusCode};
use monkit::export::keys;
use monkit::propagation::{baggage, extract};
use monkit::{annotate, OpenCall, Outcome, Registry};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

type RouteFn = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// What every server layer of one configuration shares.
#[derive(Clone)]
struct Config {
    names: Arc<Names>,
    route: Option<RouteFn>,
    /// Behind a router: a request without a route template matched none.
    routed: bool,
    fail_4xx: bool,
    baggage: Arc<[String]>,
}

/// A [`tower_layer::Layer`] that makes each request one call of a function in scope
/// `http_server` named `METHOD route`:
///
/// - the route is axum's `MatchedPath` template when there is one (feature `axum`; put the
///   layer on the `Router` with `.layer`, where routing has happened), else what
///   [`with_route`](ServerLayer::with_route) makes of the path, else [`default_route`] (ids
///   folded to `{id}`), or `unmatched` behind a router ([`routed`](ServerLayer::routed));
///   names made from paths are capped per scope ([`MAX_NAMES`](crate::MAX_NAMES)), so
///   clients cannot grow the function table; methods outside the standard nine are `OTHER`;
/// - the caller's trace continues (W3C `traceparent` and `tracestate`, B3 single and
///   multi-header), allowed baggage entries are noted on the span (`baggage.<key>`), and the
///   response carries `traceresponse`;
/// - a 5xx response is an error of kind `http_5xx` (4xx too, as `http_4xx`, with
///   [`client_errors_fail`](ServerLayer::client_errors_fail)), an `Err` from the service
///   `http_error`, a panic `panic`, a request dropped before its response (the client went
///   away) `canceled`.
///
/// The call ends when the response's head is ready; a streamed body's time is not in it.
///
/// ```
/// use axum::{routing::get, Router};
/// let app: Router = Router::new()
///     .route("/users/{id}", get(|| async { "ann" }))
///     .layer(monkit_tower::ServerLayer::new(monkit::default_registry()));
/// # let _ = app;
/// ```
#[derive(Clone)]
pub struct ServerLayer {
    config: Arc<Config>,
}

impl std::fmt::Debug for ServerLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerLayer")
            .field("names", &self.config.names)
            .field("routed", &self.config.routed)
            .field("fail_4xx", &self.config.fail_4xx)
            .field("baggage", &self.config.baggage)
            .finish_non_exhaustive()
    }
}

impl ServerLayer {
    /// A layer whose functions are in scope `http_server` of `registry`.
    pub fn new(registry: &Registry) -> ServerLayer {
        ServerLayer {
            config: Arc::new(Config {
                names: Arc::new(Names::new(registry, "http_server")),
                route: None,
                routed: false,
                fail_4xx: false,
                baggage: Arc::new([]),
            }),
        }
    }

    /// Puts the functions in scope `scope` of the same registry instead (to tell two servers of
    /// one process apart).
    pub fn with_scope(mut self, scope: &str) -> Self {
        let names = Arc::new(self.config.names.in_scope(scope));
        Arc::make_mut(&mut self.config).names = names;
        self
    }

    /// Names requests that have no `MatchedPath` by `route(path)` (your router's pattern),
    /// instead of [`default_route`]. The names stay capped.
    pub fn with_route(mut self, route: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        Arc::make_mut(&mut self.config).route = Some(Arc::new(route));
        self
    }

    /// Says the layer is on a router (axum's `Router::layer`, feature `axum`): a request
    /// without a route template matched no route, and is a call of `<METHOD> unmatched`, as
    /// OpenTelemetry names a span when no route matched, never a name made from its path.
    pub fn routed(mut self, on: bool) -> Self {
        Arc::make_mut(&mut self.config).routed = on;
        self
    }

    /// Counts 4xx responses as errors of kind `http_4xx` too (by default they are the
    /// client's mistake and the call a success).
    pub fn client_errors_fail(mut self, fail: bool) -> Self {
        Arc::make_mut(&mut self.config).fail_4xx = fail;
        self
    }

    /// Notes these W3C baggage keys of incoming requests on their spans, as `baggage.<key>`
    /// (baggage comes from outside: only the keys named are read).
    pub fn with_baggage(mut self, keys: &[&str]) -> Self {
        Arc::make_mut(&mut self.config).baggage = keys.iter().map(|k| (*k).to_owned()).collect();
        self
    }
}

impl<S> tower_layer::Layer<S> for ServerLayer {
    type Service = ServerService<S>;
    fn layer(&self, inner: S) -> ServerService<S> {
        ServerService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service [`ServerLayer`] makes.
#[derive(Clone)]
pub struct ServerService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> std::fmt::Debug for ServerService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerService")
            .field("names", &self.config.names)
            .finish_non_exhaustive()
    }
}

/// Begins the call of one request: names it, continues the caller's trace, notes what the
/// request is; then `call` makes the inner future with the call's span current.
fn begin<B, F>(c: &Config, req: Request<B>, call: impl FnOnce(Request<B>) -> F) -> ServerFuture<F> {
    let path = req.uri().path();
    let template = matched_path(&req);
    let route: std::borrow::Cow<'_, str> = match (template, &c.route) {
        (Some(t), _) => t.into(),
        (None, _) if c.routed => "unmatched".into(),
        (None, Some(f)) => f(path).into(),
        (None, None) => default_route(path).into(),
    };
    let (func, folded) = c.names.func(method_name(req.method().as_str()), &route);
    let mut open = open_server_call(func, req.headers());
    // What the request was, for whoever sees the finished span; nothing when nobody will.
    if open.span().is_kept() {
        open.enter(|| {
            annotate(keys::HTTP_METHOD, req.method());
            annotate(keys::HTTP_PATH, path);
            if template.is_some() {
                annotate(keys::HTTP_ROUTE, &route);
            } else if folded {
                annotate("http.route.folded", &route);
            }
            note_baggage(req.headers(), &c.baggage);
        });
    }
    drop(route);
    let call_fut = open.enter(|| call(req));
    ServerFuture {
        inner: call_fut,
        call: Some(open),
        fail_4xx: c.fail_4xx,
    }
}

/// Opens the SERVER call of `func` under the caller's context in `headers` (or the current
/// span when they carry none), noting the span kind and the caller's `tracestate`.
pub(crate) fn open_server_call(func: monkit::Func, headers: &HeaderMap) -> OpenCall {
    let incoming = if carries_context(headers) {
        extract(headers)
    } else {
        None
    };
    let mut open = func.open(incoming.as_ref().map(|i| i.parent()));
    if open.span().is_kept() {
        open.enter(|| {
            annotate(keys::SPAN_KIND, "server");
            if let Some(ts) = incoming.as_ref().and_then(|i| i.tracestate.as_deref()) {
                annotate("w3c.tracestate", ts);
            }
        });
    }
    open
}

/// Whether `headers` hold any trace context header: the common case of none is told by three
/// lookups of names known in advance, without parsing a name per lookup.
fn carries_context(headers: &HeaderMap) -> bool {
    static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
    static B3: HeaderName = HeaderName::from_static("b3");
    static B3_TRACE_ID: HeaderName = HeaderName::from_static("x-b3-traceid");
    headers.contains_key(&TRACEPARENT)
        || headers.contains_key(&B3)
        || headers.contains_key(&B3_TRACE_ID)
}

/// Notes the allowed baggage entries of `headers` on the current span.
pub(crate) fn note_baggage(headers: &HeaderMap, allow: &[String]) {
    if allow.is_empty() {
        return;
    }
    let allow: Vec<&str> = allow.iter().map(String::as_str).collect();
    for (k, v) in baggage(headers, &allow) {
        annotate(&format!("baggage.{k}"), v);
    }
}

#[cfg(feature = "axum")]
fn matched_path<B>(req: &Request<B>) -> Option<&str> {
    req.extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str())
}

#[cfg(not(feature = "axum"))]
fn matched_path<B>(_: &Request<B>) -> Option<&str> {
    None
}

impl<S, B, RB> tower_service::Service<Request<B>> for ServerService<S>
where
    S: tower_service::Service<Request<B>, Response = Response<RB>>,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = ServerFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let inner = &mut self.inner;
        begin(&self.config, req, |req| inner.call(req))
    }
}

/// The outcome of a server response: 5xx an error, 4xx too when asked.
pub(crate) fn status_outcome(status: StatusCode, fail_4xx: bool) -> Outcome {
    if status.is_server_error() {
        Outcome::Error("http_5xx")
    } else if fail_4xx && status.is_client_error() {
        Outcome::Error("http_4xx")
    } else {
        Outcome::Ok
    }
}

/// Ends `call` for a response: notes its status, adds `traceresponse`, and finishes with
/// the status's outcome (and the status line as the error's text).
pub(crate) fn finish_response<RB>(mut call: OpenCall, resp: &mut Response<RB>, fail_4xx: bool) {
    let status = resp.status();
    let me = call.span();
    if me.is_kept() {
        call.enter(|| annotate(keys::HTTP_STATUS_CODE, status.as_u16()));
    }
    if me.trace_id() != 0 {
        static TRACERESPONSE: HeaderName = HeaderName::from_static("traceresponse");
        resp.headers_mut()
            .insert(TRACERESPONSE.clone(), traceparent_value(me));
    }
    let outcome = status_outcome(status, fail_4xx);
    if outcome.is_failure() {
        call.finish_with(outcome, Some(&StatusLine(status)));
    } else {
        call.finish(outcome);
    }
}

/// The `traceparent` form of `span` as a header value, written straight into its bytes.
fn traceparent_value(span: monkit::SpanRef) -> HeaderValue {
    let b =
        monkit::propagation::traceparent_bytes(span.trace_id(), span.span_id(), span.w3c_flags());
    // Hex digits and dashes are always a valid value.
    HeaderValue::from_bytes(&b).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `503 Service Unavailable`: a status as an error's text.
pub(crate) struct StatusLine(pub(crate) StatusCode);

impl std::fmt::Display for StatusLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HTTP {} {}",
            self.0.as_u16(),
            self.0.canonical_reason().unwrap_or("")
        )
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`ServerService`]: the request's call is current on every
    /// poll and ends with the response.
    pub struct ServerFuture<F> {
        #[pin]
        inner: F,
        call: Option<OpenCall>,
        fail_4xx: bool,
    }
}

impl<F> std::fmt::Debug for ServerFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerFuture")
            .field("call", &self.call)
            .finish_non_exhaustive()
    }
}

impl<F, RB, E> Future for ServerFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let polled = crate::poll_entered(this.call, this.inner, cx);
        let Poll::Ready(mut out) = polled else {
            return Poll::Pending;
        };
        if let Some(call) = this.call.take() {
            match &mut out {
                Ok(resp) => finish_response(call, resp, *this.fail_4xx),
                Err(_) => call.finish(Outcome::Error("http_error")),
            }
        }
        Poll::Ready(out)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn traceparent_values_are_the_w3c_form() {
        let span = monkit::SpanRef::remote_with_flags(
            0x0af7651916cd43dd8448eb211c80319c,
            0xb7ad6b7169203331,
            3,
        );
        assert_eq!(
            super::traceparent_value(span).to_str().unwrap(),
            monkit::propagation::format_traceparent(
                span.trace_id(),
                span.span_id(),
                span.w3c_flags()
            )
        );
    }
}
