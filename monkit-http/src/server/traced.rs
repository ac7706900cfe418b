//! [`monkit_tower::ServerLayer`] for hyper's own service trait, so a hyper server that has no
//! tower stack continues incoming traces the same way. The client side is
//! [`monkit_tower::ClientLayer::send`], which needs no wrapper.

use hyper::{Request, Response};
use monkit::Registry;
use monkit_tower::{ServerFuture, ServerLayer};
use std::task::{Context, Poll};

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
    /// [`monkit_tower::default_route`]. Cheap enough to build per connection: the name cap is the scope's.
    pub fn new(registry: &Registry, inner: S) -> Traced<S> {
        Traced {
            inner,
            layer: ServerLayer::new(registry),
        }
    }

    /// Puts the span functions in scope `scope` instead of `http_server` (to tell two servers
    /// of one process apart).
    pub fn with_scope(mut self, scope: &str) -> Self {
        self.layer = self.layer.with_scope(scope);
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
