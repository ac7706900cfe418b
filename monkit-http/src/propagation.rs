//! Trace context across processes in HTTP headers: W3C `traceparent`/`tracestate` and B3
//! (multi-header `X-B3-*` and single `b3`), a server wrapper that continues incoming traces,
//! and a client helper that propagates the current one.
//!
//! Parsing is strict and never fails a request: a malformed header is ignored and the request
//! starts a fresh trace. Unsampled traces still propagate their ids, with the flag off.

use hyper::header::HeaderMap;
use hyper::{Request, Response};
use monkit::{Registry, SpanRef};
use monkit_tower::{ClientLayer, ServerFuture, ServerLayer};
use std::future::Future;
use std::task::{Context, Poll};

pub use monkit::propagation::{
    baggage, baggage_value, combined_tracestate, format_traceparent, parse_b3_multi,
    parse_b3_single, parse_traceparent, set_baggage, valid_tracestate, Extractor, Incoming,
    Injector,
};
pub use monkit_tower::{default_route, method_name, MAX_NAMES};

/// Reads the trace context of a request's headers (see [`monkit::propagation::extract`]).
pub fn extract(h: &HeaderMap) -> Option<Incoming> {
    monkit::propagation::extract(h)
}

/// Writes the context of `span` into outgoing headers, replacing any already there (see
/// [`monkit::propagation::inject`]).
pub fn inject(h: &mut HeaderMap, span: SpanRef, b3: bool) {
    monkit::propagation::inject(h, span, b3)
}

/// A hyper service wrapper that continues incoming traces: each request runs as a SERVER span
/// named `<METHOD> <route>` (in scope `http_server`), child of the caller's span, annotated
/// with method, path and status code, and answered with a `traceresponse` header. A 5xx
/// response counts as the error kind `http_5xx`.
///
/// It is [`monkit_tower::ServerLayer`] for hyper's own service trait; tower and axum users
/// put that layer on their stack instead.
#[derive(Clone)]
pub struct Traced<S> {
    inner: S,
    registry: Registry,
    layer: ServerLayer,
}

impl<S> std::fmt::Debug for Traced<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traced")
            .field("layer", &self.layer)
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
            layer: ServerLayer::new(registry),
        }
    }

    /// Puts the span functions in scope `scope` instead of `http_server` (to tell two servers
    /// of one process apart).
    pub fn with_scope(mut self, scope: &str) -> Self {
        self.layer = self.layer.with_scope(&self.registry, scope);
        self
    }

    /// Names spans by `route(path)` instead (for example your router's pattern).
    pub fn with_route(mut self, route: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        self.layer = self.layer.with_route(route);
        self
    }

    /// Notes these W3C baggage keys of incoming requests on their spans (`baggage.<key>`).
    pub fn with_baggage(mut self, keys: &[&str]) -> Self {
        self.layer = self.layer.with_baggage(keys);
        self
    }
}

/// A hyper service seen as a tower one, for the length of one call.
struct AsTower<'a, S>(&'a S);

impl<S, R> tower_service::Service<R> for AsTower<'_, S>
where
    S: hyper::service::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: R) -> S::Future {
        self.0.call(req)
    }
}

impl<S, B, RB> hyper::service::Service<Request<B>> for Traced<S>
where
    S: hyper::service::Service<Request<B>, Response = Response<RB>>,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = ServerFuture<S::Future>;

    fn call(&self, req: Request<B>) -> Self::Future {
        use tower_layer::Layer;
        tower_service::Service::call(&mut self.layer.layer(AsTower(&self.inner)), req)
    }
}

/// Propagates the current trace on outgoing requests, each wrapped in a CLIENT span named
/// `<METHOD> <host>` (in scope `http_client`): [`monkit_tower::ClientLayer::send`] under its
/// older name.
#[derive(Clone, Debug)]
pub struct TracedClient {
    layer: ClientLayer,
}

impl TracedClient {
    /// A client helper injecting `traceparent`, its span functions in scope `http_client` of
    /// `registry`.
    pub fn new(registry: &Registry) -> TracedClient {
        TracedClient {
            layer: ClientLayer::new(registry),
        }
    }

    /// Also inject multi-header B3.
    pub fn with_b3(mut self, b3: bool) -> TracedClient {
        self.layer = self.layer.with_b3(b3);
        self
    }

    /// Sends `req` with `send` inside a CLIENT span, the trace context injected into its
    /// headers. A 5xx response counts as the error kind `http_5xx`, an `Err` as the kind its
    /// error names (`connect`, `timeout`, `closed`...).
    pub async fn send<B, RB, E, F, Fut>(&self, req: Request<B>, send: F) -> Result<Response<RB>, E>
    where
        F: FnOnce(Request<B>) -> Fut,
        Fut: Future<Output = Result<Response<RB>, E>>,
        E: std::error::Error + 'static,
    {
        self.layer.send(req, send).await
    }
}
