//! reqwest through `reqwest_middleware`: the same client call as [`ClientLayer`]
//! (crate::ClientLayer), for the client most Rust services use.

use crate::client::{finish_error, finish_status, open_client_call, ClientConfig, ClientRoute};
use http::Extensions;
use monkit::Registry;
use reqwest_middleware::{Middleware, Next};

/// A `reqwest_middleware::Middleware`: each request one call of a function in scope
/// `http_client` named `METHOD host` (`METHOD host/route` with a [`ClientRoute`] in the
/// request's extensions), the current trace injected, ended by the answer's status (5xx an
/// error of kind `http_5xx`) or the error's kind (`connect`, `timeout`, `http_5xx`...).
///
/// ```
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(monkit_tower::ReqwestMiddleware::new(monkit::default_registry()))
///     .build();
/// # let _ = client;
/// ```
#[derive(Clone, Debug)]
pub struct ReqwestMiddleware {
    config: ClientConfig,
}

impl ReqwestMiddleware {
    /// A middleware whose functions are in scope `http_client` of `registry`.
    pub fn new(registry: &Registry) -> ReqwestMiddleware {
        ReqwestMiddleware {
            config: ClientConfig::new(registry, "http_client"),
        }
    }

    /// Also injects multi-header B3.
    pub fn with_b3(mut self, b3: bool) -> Self {
        self.config.b3 = b3;
        self
    }

    /// Counts 4xx answers as errors of kind `http_4xx` too.
    pub fn client_errors_fail(mut self, fail: bool) -> Self {
        self.config.fail_4xx = fail;
        self
    }
}

#[async_trait::async_trait]
impl Middleware for ReqwestMiddleware {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let uri: http::Uri = req.url().as_str().parse().unwrap_or_default();
        let route = extensions.get::<ClientRoute>().copied();
        let method = req.method().as_str().to_owned();
        let (func, target) = self.config.func(&method, &uri, None, route);
        let path = req.url().path().to_owned();
        let call = open_client_call(
            func,
            &target,
            &method,
            &path,
            req.headers_mut(),
            self.config.b3,
        );
        let span = call.span();
        let out = {
            use monkit::trace::InSpanExt;
            next.run(req, extensions).in_span(span).await
        };
        match &out {
            Ok(resp) => finish_status(call, resp.status(), self.config.fail_4xx),
            Err(reqwest_middleware::Error::Reqwest(e)) => finish_error(call, e),
            Err(reqwest_middleware::Error::Middleware(e)) => finish_error(call, e.as_ref()),
        }
        out
    }
}
