//! The client side: each outgoing request a call of `METHOD host` in scope `http_client`,
//! the trace context injected into its headers.

use crate::names::{method_name, Names};
use crate::server::{status_outcome, StatusLine};
use http::{Request, Response, Uri};
use monkit::export::keys;
use monkit::propagation::inject;
use monkit::{annotate, Func, OpenCall, Outcome, Registry};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The error type of the wrapped clients: whatever the inner client failed with, boxed (the
/// call's error kind is read from it first).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A route template for an outgoing request, put in its extensions, so the span is named
/// `GET api.example.com/users/{id}` rather than by host alone; the path itself never names a
/// span.
///
/// ```
/// let mut req = http::Request::get("http://api.example.com/users/7").body(()).unwrap();
/// req.extensions_mut().insert(monkit_tower::ClientRoute("/users/{id}"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientRoute(pub &'static str);

/// What every client layer of one configuration shares.
#[derive(Clone, Debug)]
pub(crate) struct ClientConfig {
    pub(crate) names: Arc<Names>,
    pub(crate) b3: bool,
    pub(crate) fail_4xx: bool,
}

impl ClientConfig {
    pub(crate) fn new(registry: &Registry, scope: &str) -> ClientConfig {
        ClientConfig {
            names: Arc::new(Names::new(registry, scope)),
            b3: false,
            fail_4xx: false,
        }
    }

    /// The function of a request to `uri` (or the `host` header's authority) with `method`.
    pub(crate) fn func(
        &self,
        method: &str,
        uri: &Uri,
        host_header: Option<&str>,
        route: Option<ClientRoute>,
    ) -> (Func, Target) {
        let target = Target::of(uri, host_header);
        let what = match route {
            Some(ClientRoute(r)) => format!("{}{}", target.host, r),
            None => target.host.clone(),
        };
        (self.names.func(method_name(method), &what).0, target)
    }
}

/// Where a request goes: host and port.
pub(crate) struct Target {
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
}

impl Target {
    pub(crate) fn of(uri: &Uri, host_header: Option<&str>) -> Target {
        let parsed = uri
            .authority()
            .cloned()
            .or_else(|| host_header.and_then(|h| h.parse::<http::uri::Authority>().ok()));
        let host = parsed
            .as_ref()
            .map_or("unknown", |a| a.host())
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = parsed
            .as_ref()
            .and_then(|a| a.port_u16())
            .or(match uri.scheme_str() {
                Some("https") => Some(443),
                Some("http") => Some(80),
                _ => None,
            });
        Target { host, port }
    }

    /// Notes the peer on the current span.
    pub(crate) fn annotate(&self) {
        annotate(keys::SERVER_ADDRESS, &self.host);
        if let Ok(ip) = self.host.parse::<std::net::IpAddr>() {
            let key = if ip.is_ipv4() {
                keys::PEER_IPV4
            } else {
                keys::PEER_IPV6
            };
            annotate(key, ip);
        }
        if let Some(p) = self.port {
            annotate(keys::PEER_PORT, p);
        }
    }
}

/// Opens the CLIENT call of a request and injects its context into `headers`.
pub(crate) fn open_client_call(
    func: Func,
    target: &Target,
    method: &str,
    path: &str,
    headers: &mut http::HeaderMap,
    b3: bool,
) -> OpenCall {
    let mut call = func.open(None);
    if call.span().is_kept() {
        call.enter(|| {
            annotate(keys::SPAN_KIND, "client");
            annotate(keys::HTTP_METHOD, method);
            annotate(keys::HTTP_PATH, path);
            target.annotate();
        });
    }
    inject(headers, call.span(), b3);
    call
}

/// The kind of a transport error: what the error's chain says (`connect`, `timeout`,
/// `connection_refused`...), else `transport`.
pub(crate) fn transport_kind(e: &(dyn std::error::Error + 'static)) -> &'static str {
    monkit::stats::error_kind_of(e).unwrap_or("transport")
}

/// A [`tower_layer::Layer`] for HTTP clients (hyper-util's client, a tonic `Channel` used for
/// plain HTTP, anything that is a `Service<http::Request<B>>`): each request is one call of a
/// function in scope `http_client` named `METHOD host` (with the [`ClientRoute`] the caller
/// gives, `METHOD host/route`), the current trace injected into its headers (`traceparent`,
/// `tracestate`, `baggage`; B3 too with [`with_b3`](ClientLayer::with_b3)). A 5xx answer is an
/// error of kind `http_5xx`, a failure to get one an error of its transport kind (`connect`,
/// `timeout`, `connection_refused`...).
///
/// ```
/// use tower_layer::Layer;
/// let client = monkit_tower::ClientLayer::new(monkit::default_registry())
///     .layer(tower_service_fn());
/// # fn tower_service_fn() -> impl tower_service::Service<http::Request<()>> { NoClient }
/// # #[derive(Clone)] struct NoClient;
/// # impl tower_service::Service<http::Request<()>> for NoClient {
/// #     type Response = http::Response<()>; type Error = std::io::Error;
/// #     type Future = std::future::Ready<Result<http::Response<()>, std::io::Error>>;
/// #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), std::io::Error>> { std::task::Poll::Ready(Ok(())) }
/// #     fn call(&mut self, _: http::Request<()>) -> Self::Future { std::future::ready(Ok(http::Response::new(()))) }
/// # }
/// # let _ = client;
/// ```
#[derive(Clone, Debug)]
pub struct ClientLayer {
    config: Arc<ClientConfig>,
}

impl ClientLayer {
    /// A layer whose functions are in scope `http_client` of `registry`.
    pub fn new(registry: &Registry) -> ClientLayer {
        ClientLayer {
            config: Arc::new(ClientConfig::new(registry, "http_client")),
        }
    }

    /// Puts the functions in scope `scope` of the same registry instead.
    pub fn with_scope(mut self, scope: &str) -> Self {
        let names = Arc::new(self.config.names.in_scope(scope));
        Arc::make_mut(&mut self.config).names = names;
        self
    }

    /// Also injects multi-header B3 (`X-B3-TraceId`...), for peers that read only B3.
    pub fn with_b3(mut self, b3: bool) -> Self {
        Arc::make_mut(&mut self.config).b3 = b3;
        self
    }

    /// Counts 4xx answers as errors of kind `http_4xx` too.
    pub fn client_errors_fail(mut self, fail: bool) -> Self {
        Arc::make_mut(&mut self.config).fail_4xx = fail;
        self
    }
}

impl ClientLayer {
    /// Sends one request with `send` (any client's send function) as this layer's call: the
    /// same span, context and outcome as the layer's service, without a tower stack.
    ///
    /// ```
    /// # async fn demo() {
    /// let layer = monkit_tower::ClientLayer::new(monkit::default_registry());
    /// let req = http::Request::get("http://127.0.0.1:1/").body(()).unwrap();
    /// let r = layer
    ///     .send(req, |req| async move {
    ///         assert!(req.headers().contains_key("traceparent"));
    ///         Ok::<_, std::io::Error>(http::Response::new(()))
    ///     })
    ///     .await;
    /// # r.unwrap(); }
    /// ```
    ///
    /// The sender may fail with any error type: `std::io::Error`, hyper's, a
    /// `Box<dyn Error + Send + Sync>`, `anyhow::Error`, a `String`. Its kind is named by its
    /// chain where the type is known to be an error (see `monkit::stats::kind_of_any`; a type
    /// of your own: `monkit::stats::add_error_view`), else by its type, and its text is kept.
    pub async fn send<B, RB, E, F, Fut>(&self, req: Request<B>, send: F) -> Result<Response<RB>, E>
    where
        F: FnOnce(Request<B>) -> Fut,
        Fut: Future<Output = Result<Response<RB>, E>>,
        E: std::fmt::Display + 'static,
    {
        let (mut call, req) = begin_client(&self.config, req);
        let out = {
            use monkit::trace::InSpanExt;
            let span = call.span();
            call.enter(|| send(req)).in_span(span).await
        };
        match &out {
            Ok(resp) => finish_status(call, resp.status(), self.config.fail_4xx),
            Err(e) => {
                // An error of a known type is a transport failure of the kind its chain says.
                let kind = monkit::stats::error_view(e)
                    .map_or_else(|| monkit::stats::kind_of_any(e), transport_kind);
                finish_failure(call, kind, e)
            }
        }
        out
    }
}

/// Opens the call of an outgoing request and injects its context.
fn begin_client<B>(config: &ClientConfig, mut req: Request<B>) -> (OpenCall, Request<B>) {
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok());
    let route = req.extensions().get::<ClientRoute>().copied();
    let (func, target) = config.func(req.method().as_str(), req.uri(), host, route);
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let call = open_client_call(
        func,
        &target,
        method.as_str(),
        &path,
        req.headers_mut(),
        config.b3,
    );
    (call, req)
}

impl<S> tower_layer::Layer<S> for ClientLayer {
    type Service = ClientService<S>;
    fn layer(&self, inner: S) -> ClientService<S> {
        ClientService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service [`ClientLayer`] makes.
#[derive(Clone, Debug)]
pub struct ClientService<S> {
    inner: S,
    config: Arc<ClientConfig>,
}

impl<S, B, RB> tower_service::Service<Request<B>> for ClientService<S>
where
    S: tower_service::Service<Request<B>, Response = Response<RB>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<RB>;
    type Error = BoxError;
    type Future = ClientFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let (mut call, req) = begin_client(&self.config, req);
        let inner = &mut self.inner;
        let fut = call.enter(|| inner.call(req));
        ClientFuture {
            inner: fut,
            call: Some(call),
            fail_4xx: self.config.fail_4xx,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`ClientService`]: the request's call ends with the response
    /// head or the error.
    pub struct ClientFuture<F> {
        #[pin]
        inner: F,
        call: Option<OpenCall>,
        fail_4xx: bool,
    }
}

impl<F> std::fmt::Debug for ClientFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientFuture")
            .field("call", &self.call)
            .finish_non_exhaustive()
    }
}

/// Ends a client call for an answer with `status`.
pub(crate) fn finish_status(mut call: OpenCall, status: http::StatusCode, fail_4xx: bool) {
    let kept = call.span().is_kept();
    if kept {
        call.enter(|| annotate(keys::HTTP_STATUS_CODE, status.as_u16()));
    }
    let outcome = status_outcome(status, fail_4xx);
    if let Outcome::Error(kind) = outcome {
        if kept {
            call.enter(|| annotate(keys::ERROR_TYPE, kind));
        }
        call.finish_with(outcome, Some(&StatusLine(status)));
    } else {
        call.finish(outcome);
    }
}

/// Ends a client call that got no answer.
pub(crate) fn finish_error(call: OpenCall, e: &(dyn std::error::Error + 'static)) {
    finish_failure(call, transport_kind(e), &e)
}

/// Ends a client call that got no answer, failed as `kind` with the text `e`.
fn finish_failure(mut call: OpenCall, kind: &'static str, e: &dyn std::fmt::Display) {
    if call.span().is_kept() {
        call.enter(|| annotate(keys::ERROR_TYPE, kind));
    }
    call.finish_with(Outcome::Error(kind), Some(e));
}

impl<F, RB, E> Future for ClientFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<RB>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = crate::poll_entered(this.call, this.inner, cx);
        let Poll::Ready(out) = polled else {
            return Poll::Pending;
        };
        let out = out.map_err(Into::into);
        if let Some(call) = this.call.take() {
            match &out {
                Ok(resp) => finish_status(call, resp.status(), *this.fail_4xx),
                Err(e) => finish_error(call, &**e),
            }
        }
        Poll::Ready(out)
    }
}
