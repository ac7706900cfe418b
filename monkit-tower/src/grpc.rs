//! gRPC over tower (tonic's servers and channels): each call a function named
//! `package.Service/Method`, ended when the response body ends, with the outcome its
//! `grpc-status` gives, in the headers of a trailers-only answer or in the trailers after a
//! stream.

use crate::client::{finish_error, open_client_call, BoxError, ClientConfig, Target};
use crate::names::Names;
use crate::server::{note_baggage, open_server_call};
use bytes::Buf;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use monkit::export::keys;
use monkit::{annotate, Func, OpenCall, Outcome, Registry};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The `package.Service` and `Method` of a gRPC path `/package.Service/Method`, when it is
/// one (the protocol's grammar: letters, digits, `_`, and dots in the service).
pub fn grpc_method(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    let ident =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let ok = service.len() + method.len() <= 256 && service.split('.').all(ident) && ident(method);
    ok.then_some((service, method))
}

/// The function of a gRPC path: `package.Service/Method`, or `unknown` for a path that is not
/// a gRPC method (no name is made of it).
fn func_of(names: &Names, path: &str) -> Func {
    match grpc_method(path) {
        Some(_) => names.func("", &path[1..]).0,
        None => names.func("", "unknown").0,
    }
}

/// Notes what is called on the current span.
fn note_rpc(path: &str) {
    annotate(keys::RPC_SYSTEM, "grpc");
    if let Some((s, m)) = grpc_method(path) {
        annotate(keys::RPC_SERVICE, s);
        annotate(keys::RPC_METHOD, m);
    }
}

/// The `grpc-status` of a header or trailer map, if it has a well-formed one.
fn status_of(h: &HeaderMap) -> Option<i32> {
    let v = h.get("grpc-status")?.to_str().ok()?;
    (v.len() <= 3 && !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .then(|| v.parse().ok())
        .flatten()
}

/// The `grpc-message` of a header or trailer map, percent-decoded as the protocol encodes it.
fn message_of(h: &HeaderMap) -> Option<String> {
    let v = h.get("grpc-message")?.as_bytes();
    let mut out = Vec::with_capacity(v.len().min(1024));
    let mut i = 0;
    while i < v.len() && out.len() < 1024 {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            v[i],
            v.get(i + 1).and_then(|&b| hex(b)),
            v.get(i + 2).and_then(|&b| hex(b)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// How the call of a gRPC response ends, decided from its head and then its trailers.
#[derive(Debug)]
struct Ending {
    call: Option<OpenCall>,
    /// `grpc-status` and `grpc-message` of a trailers-only answer.
    head: Option<(i32, Option<String>)>,
    /// The HTTP status, when it was not 200 (not a gRPC answer then).
    http: Option<StatusCode>,
}

impl Ending {
    fn new<RB>(call: Option<OpenCall>, resp: &Response<RB>) -> Ending {
        let head = status_of(resp.headers()).map(|c| (c, message_of(resp.headers())));
        let http = (resp.status() != StatusCode::OK).then_some(resp.status());
        Ending { call, head, http }
    }

    /// Ends the call with the status the trailers (or else the head) gave.
    fn finish(&mut self, trailers: Option<&HeaderMap>) {
        let Some(mut call) = self.call.take() else {
            return;
        };
        let kept = call.span().is_kept();
        let mut note = |k: &str, v: &dyn std::fmt::Display| {
            if kept {
                call.enter(|| annotate(k, v));
            }
        };
        let status = trailers
            .and_then(|t| status_of(t).map(|c| (c, message_of(t))))
            .or_else(|| self.head.take());
        match (status, self.http) {
            (Some((0, _)), _) => {
                note(keys::RPC_GRPC_STATUS_CODE, &0);
                call.finish(Outcome::Ok);
            }
            (Some((code, message)), _) => {
                let kind = monkit::stats::grpc_code_kind(code);
                note(keys::RPC_GRPC_STATUS_CODE, &code);
                note(keys::ERROR_TYPE, &kind);
                let text = message.unwrap_or_else(|| kind.to_owned());
                call.finish_with(Outcome::Error(kind), Some(&text));
            }
            (None, Some(http)) => {
                let kind = if http.is_server_error() {
                    "http_5xx"
                } else {
                    "http_4xx"
                };
                note(keys::HTTP_STATUS_CODE, &http.as_u16());
                call.finish_with(Outcome::Error(kind), Some(&crate::server::StatusLine(http)));
            }
            // The stream ended with no status: the protocol reads that as UNKNOWN.
            (None, None) => {
                call.finish_with(
                    Outcome::Error("unknown"),
                    Some(&"stream ended without grpc-status"),
                );
            }
        }
    }
}

impl Drop for Ending {
    /// A body dropped before its end: a trailers-only answer (its status in the head) that
    /// the reader did not poll to the end ended with that status; any other was cut off.
    fn drop(&mut self) {
        if self.head.is_some() {
            self.finish(None);
        }
    }
}

pin_project_lite::pin_project! {
    /// A gRPC response body whose end (its trailers, its last frame, or an error) ends the
    /// call; dropped before that, the call is `canceled`.
    pub struct GrpcBody<B> {
        #[pin]
        inner: B,
        ending: Ending,
    }
}

impl<B> std::fmt::Debug for GrpcBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcBody")
            .field("ending", &self.ending)
            .finish_non_exhaustive()
    }
}

impl<B> Body for GrpcBody<B>
where
    B: Body,
    B::Data: Buf,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(t) = frame.trailers_ref() {
                    this.ending.finish(Some(t));
                } else if this.inner.is_end_stream() {
                    // The last frame: the reader will not poll again.
                    this.ending.finish(None);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(call) = this.ending.call.take() {
                    call.finish_with(
                        Outcome::Error("stream_error"),
                        Some(&"response body failed"),
                    );
                }
            }
            Poll::Ready(None) => this.ending.finish(None),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        // The inner body's own answer: a trailers-only response must stay one HEADERS frame.
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// The response future of the gRPC services: the call is current on every poll; the
    /// response's body carries it on to its end.
    pub struct GrpcFuture<F> {
        #[pin]
        inner: F,
        call: Option<OpenCall>,
    }
}

impl<F> std::fmt::Debug for GrpcFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcFuture")
            .field("call", &self.call)
            .finish_non_exhaustive()
    }
}

impl<F, RB, E> Future for GrpcFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
    E: Into<BoxError>,
    RB: Body,
{
    type Output = Result<Response<GrpcBody<RB>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = crate::poll_entered(this.call, this.inner, cx);
        let Poll::Ready(out) = polled else {
            return Poll::Pending;
        };
        let call = this.call.take();
        Poll::Ready(match out.map_err(Into::into) {
            Ok(resp) => {
                let mut ending = Ending::new(call, &resp);
                if resp.body().is_end_stream() {
                    // A trailers-only answer: its body is never polled.
                    ending.finish(None);
                }
                Ok(resp.map(|inner| GrpcBody { inner, ending }))
            }
            Err(e) => {
                if let Some(call) = call {
                    finish_error(call, &*e);
                }
                Err(e)
            }
        })
    }
}

/// A [`tower_layer::Layer`] for gRPC servers (tonic's `Server::builder().layer(...)`): each
/// call is one call of a function in scope `grpc_server` named `package.Service/Method`,
/// continuing the caller's trace from its metadata, and ending when the response body ends,
/// so a streaming method's time is all in it. A non-zero `grpc-status` is an error of the
/// code's kind (`not_found`, `unavailable`, `deadline_exceeded`...), with `grpc-message` as
/// its text; a body that stops unfinished is `canceled`.
///
/// ```
/// let layer = monkit_tower::GrpcServerLayer::new(monkit::default_registry());
/// // tonic::transport::Server::builder().layer(layer).add_service(...)
/// # let _ = layer;
/// ```
#[derive(Clone, Debug)]
pub struct GrpcServerLayer {
    names: Arc<Names>,
    baggage: Arc<[String]>,
}

impl GrpcServerLayer {
    /// A layer whose functions are in scope `grpc_server` of `registry`.
    pub fn new(registry: &Registry) -> GrpcServerLayer {
        GrpcServerLayer {
            names: Arc::new(Names::new(registry, "grpc_server")),
            baggage: Arc::new([]),
        }
    }

    /// Notes these W3C baggage keys of incoming calls on their spans, as `baggage.<key>`.
    pub fn with_baggage(mut self, keys: &[&str]) -> Self {
        self.baggage = keys.iter().map(|k| (*k).to_owned()).collect();
        self
    }
}

impl<S> tower_layer::Layer<S> for GrpcServerLayer {
    type Service = GrpcServerService<S>;
    fn layer(&self, inner: S) -> GrpcServerService<S> {
        GrpcServerService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`GrpcServerLayer`] makes.
#[derive(Clone, Debug)]
pub struct GrpcServerService<S> {
    inner: S,
    layer: GrpcServerLayer,
}

impl<S, B, RB> tower_service::Service<Request<B>> for GrpcServerService<S>
where
    S: tower_service::Service<Request<B>, Response = Response<RB>>,
    RB: Body,
    S::Error: Into<BoxError>,
{
    type Response = Response<GrpcBody<RB>>;
    type Error = BoxError;
    type Future = GrpcFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let func = func_of(&self.layer.names, req.uri().path());
        let mut call = open_server_call(func, req.headers());
        let inner = &mut self.inner;
        let baggage = &self.layer.baggage;
        let kept = call.span().is_kept();
        let fut = call.enter(|| {
            if kept {
                note_rpc(req.uri().path());
                note_baggage(req.headers(), baggage);
            }
            inner.call(req)
        });
        GrpcFuture {
            inner: fut,
            call: Some(call),
        }
    }
}

/// A [`tower_layer::Layer`] for gRPC clients (around a tonic `Channel`): each call is one
/// call of a function in scope `grpc_client` named `package.Service/Method`, the current
/// trace injected into its metadata, ending when the response body ends, with the outcome
/// its `grpc-status` gives or the transport error's kind (`connect`, `timeout`...).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051")
///     .connect()
///     .await?;
/// let traced = tower_layer::Layer::layer(
///     &monkit_tower::GrpcClientLayer::new(monkit::default_registry()),
///     channel,
/// );
/// // YourClient::new(traced)
/// # let _ = traced; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct GrpcClientLayer {
    config: Arc<ClientConfig>,
}

impl GrpcClientLayer {
    /// A layer whose functions are in scope `grpc_client` of `registry`.
    pub fn new(registry: &Registry) -> GrpcClientLayer {
        GrpcClientLayer {
            config: Arc::new(ClientConfig::new(registry, "grpc_client")),
        }
    }
}

impl<S> tower_layer::Layer<S> for GrpcClientLayer {
    type Service = GrpcClientService<S>;
    fn layer(&self, inner: S) -> GrpcClientService<S> {
        GrpcClientService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service [`GrpcClientLayer`] makes.
#[derive(Clone, Debug)]
pub struct GrpcClientService<S> {
    inner: S,
    config: Arc<ClientConfig>,
}

impl<S, B, RB> tower_service::Service<Request<B>> for GrpcClientService<S>
where
    S: tower_service::Service<Request<B>, Response = Response<RB>>,
    RB: Body,
    S::Error: Into<BoxError>,
{
    type Response = Response<GrpcBody<RB>>;
    type Error = BoxError;
    type Future = GrpcFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let func = func_of(&self.config.names, req.uri().path());
        let target = Target::of(req.uri(), None);
        let path = req.uri().path().to_owned();
        let mut call = open_client_call(
            func,
            &target,
            "POST",
            &path,
            req.headers_mut(),
            self.config.b3,
        );
        let inner = &mut self.inner;
        let kept = call.span().is_kept();
        let fut = call.enter(|| {
            if kept {
                note_rpc(req.uri().path());
            }
            inner.call(req)
        });
        GrpcFuture {
            inner: fut,
            call: Some(call),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_paths() {
        assert_eq!(
            grpc_method("/tavern.v1.Worker/Poll"),
            Some(("tavern.v1.Worker", "Poll"))
        );
        assert_eq!(grpc_method("/tavern.v1.Worker/"), None);
        assert_eq!(grpc_method("/a/b/c"), None);
        assert_eq!(grpc_method("/../etc"), None);
        assert_eq!(grpc_method("nope"), None);
    }

    #[test]
    fn messages_are_percent_decoded() {
        let mut h = HeaderMap::new();
        h.insert("grpc-message", "no%20such%20user %ZZ".parse().unwrap());
        assert_eq!(message_of(&h).unwrap(), "no such user %ZZ");
        h.insert("grpc-status", "5".parse().unwrap());
        assert_eq!(status_of(&h), Some(5));
        h.insert("grpc-status", "-1".parse().unwrap());
        assert_eq!(status_of(&h), None);
    }
}
