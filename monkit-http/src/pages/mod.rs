//! The monitoring pages: what each path answers (`routes.rs`, the one table), the trace
//! requests (`trace.rs`), the console (`console.rs`), and here the service that renders a
//! page once for every client asking at the same moment.

mod access;
mod console;
mod duration;
mod routes;
mod trace;
mod trim;

use crate::server::TraceBudget;
pub use access::{Access, PAGE_GROUPS};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use monkit::render;
use monkit::{trace::WatchSpec, Registry};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, Semaphore};

pub(super) const TEXT: &str = "text/plain; charset=utf-8";
pub(super) const JSON: &str = "application/json";
pub(super) const HTML: &str = "text/html; charset=utf-8";
pub(super) const SVG: &str = "image/svg+xml";
const DOT: &str = "text/vnd.graphviz; charset=utf-8";
/// Prometheus rule files (`/slo/rules`): YAML, as `application/yaml` (RFC 9512).
const YAML: &str = "application/yaml; charset=utf-8";

/// The pages, as a hyper service over any request body (it is never read).
///
/// Concurrent requests for the same page share one rendering, and at most
/// [`RENDERS_AT_ONCE`] renderings run at a time, so many scrapers of a large `/metrics` cost
/// about one copy of the page, not one each. Trace pages wait within a [`TraceBudget`].
///
/// ```
/// let pages = monkit_http::Pages::new(monkit::Registry::new());
/// # let _ = pages;
/// ```
#[derive(Clone)]
pub struct Pages {
    registry: Registry,
    shared: Arc<Shared>,
    /// The client, when known (the server knows it; a service mounted elsewhere may not).
    client: Option<IpAddr>,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages")
            .field("registry", &self.registry)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

/// Renderings running at once, over all pages; more requests for other pages wait their turn.
pub const RENDERS_AT_ONCE: usize = 2;

/// What all clones of one `Pages` share.
struct Shared {
    budget: TraceBudget,
    prometheus: render::prometheus::Options,
    /// Where the console links an exemplar's trace (`{trace_id}` replaced), if anywhere.
    trace_link: Option<String>,
    /// Trace requests waiting now: in all, and per client.
    watching: Mutex<(usize, HashMap<IpAddr, usize>)>,
    /// Requests waiting for a rendering that is under way, by page.
    rendering: Mutex<HashMap<Plain, Vec<oneshot::Sender<Rendered>>>>,
    render_slots: Arc<Semaphore>,
    access: Access,
}

/// A page rendered once and handed to every request that asked for it meanwhile.
#[derive(Clone)]
struct Rendered {
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
}

/// What a page is, once the path is known.
#[derive(Clone, Debug)]
enum Page {
    Trace {
        spec: WatchSpec,
        timeout: Duration,
        format: TraceFormat,
    },
    Recent {
        spec: WatchSpec,
        format: RecentFormat,
    },
    Plain(Plain),
}

/// What a `/trace/recent` page answers: a held call's tree, or the list (as JSON or not).
#[derive(Clone, Copy, Debug, PartialEq)]
enum RecentFormat {
    Json,
    Svg,
    List(bool),
}

/// The exposition format a scraper asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum MetricsFormat {
    Text,
    OpenMetrics,
    /// Protobuf, with native histograms (what Prometheus asks for with them enabled).
    Protobuf,
}

/// A page with no parameters: the same for every client at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Plain {
    Index,
    ConsoleFragment,
    StatsText,
    StatsJson,
    FuncsText(render::funcs::Order),
    FuncsJson(render::funcs::Order),
    SloJson,
    SloDashboard,
    /// The rule file: windows scaled by the `f64` of these bits, `for:` in ms when given.
    SloRules(u64, Option<u64>),
    FuncsDot,
    PsText,
    PsJson,
    PsDot,
    Metrics(MetricsFormat),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum TraceFormat {
    Svg,
    Json,
    Sample,
}

pub(super) fn response(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static(TEXT)),
    );
    // A page is what its type says, and a page that runs (the console, a trace) loads nothing
    // from elsewhere and is framed by nobody.
    h.insert(
        hyper::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if content_type == HTML || content_type == SVG {
        h.insert(
            hyper::header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    r
}

/// The console's and the trace SVG's policy: their own inline script and style, requests to
/// this server only, no frames, no plugins, no other origin.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
    form-action 'self'";

pub(super) fn error(status: StatusCode, msg: impl std::fmt::Display) -> Response<Full<Bytes>> {
    response(status, TEXT, format!("{msg}\n"))
}

impl Pages {
    /// Pages for `registry`, with the default [`TraceBudget`].
    pub fn new(registry: Registry) -> Pages {
        Pages::with_trace_budget(registry, TraceBudget::default())
    }

    /// Pages for `registry` whose trace pages wait within `budget`.
    pub fn with_trace_budget(registry: Registry, budget: TraceBudget) -> Pages {
        Pages::with_options(registry, budget, render::prometheus::Options::default())
    }

    /// Pages for `registry` whose trace pages wait within `budget` and whose `/metrics`
    /// exposes durations as `prometheus` says (buckets, summaries).
    pub fn with_options(
        registry: Registry,
        budget: TraceBudget,
        prometheus: render::prometheus::Options,
    ) -> Pages {
        // What monkit let go is among the stats the pages show.
        registry.expose_losses();
        // And what the listeners turned away or closed.
        registry
            .scope("monkit_http")
            .chain("monkit_http", crate::server::ListenerSource);
        Pages {
            registry,
            shared: Arc::new(Shared {
                budget,
                prometheus,
                trace_link: None,
                watching: Mutex::new((0, HashMap::new())),
                rendering: Mutex::new(HashMap::new()),
                render_slots: Arc::new(Semaphore::new(RENDERS_AT_ONCE)),
                access: Access::default(),
            }),
            client: None,
        }
    }

    /// Who may read these pages (see [`Access`]).
    pub fn with_access(mut self, access: Access) -> Pages {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.access = access;
        }
        self
    }

    /// Links the console's exemplars to an outside trace viewer: `template` with
    /// `{trace_id}` replaced by the exemplar's trace id (32 hex digits), for example
    /// `https://tempo.example/trace/{trace_id}` (see `MONKIT_TRACE_LINK`).
    pub fn with_trace_link(mut self, template: Option<String>) -> Pages {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.trace_link = template;
        }
        self
    }

    /// The same pages, answering `client` (whose trace requests count against its share of
    /// the budget). The server calls this for each connection.
    pub fn for_client(&self, client: IpAddr) -> Pages {
        Pages {
            client: Some(client),
            ..self.clone()
        }
    }

    fn render(reg: &Registry, page: Plain, shared: &Shared) -> Rendered {
        fn funcs_in(
            reg: &Registry,
            order: render::funcs::Order,
        ) -> Vec<(monkit::Func, monkit::registry::FuncStats)> {
            let mut funcs = render::funcs::read(reg);
            order.sort(&mut funcs);
            funcs
        }
        let prom = &shared.prometheus;
        let link = shared.trace_link.as_deref();
        if let Plain::Metrics(MetricsFormat::Protobuf) = page {
            return Rendered {
                status: StatusCode::OK,
                content_type: render::prometheus::PROTOBUF_CONTENT_TYPE,
                body: Bytes::from(render::prometheus::render_protobuf(reg, prom)),
            };
        }
        let (content_type, body): (&'static str, String) = match page {
            Plain::Index => (
                HTML,
                console::page(
                    &render::funcs::read(reg),
                    &reg.running_spans(),
                    &console::Recent::of(reg),
                    &reg.objectives(),
                    &routes::index(),
                    link,
                ),
            ),
            Plain::ConsoleFragment => (
                JSON,
                console::fragment(
                    &render::funcs::read(reg),
                    &reg.running_spans(),
                    &console::Recent::of(reg),
                    &reg.objectives(),
                    link,
                ),
            ),
            Plain::StatsText => (TEXT, render::text::stats(reg)),
            Plain::StatsJson => (JSON, render::json::stats(reg).to_string()),
            Plain::FuncsText(order) => (TEXT, render::funcs::text(&funcs_in(reg, order))),
            Plain::FuncsJson(order) => {
                (JSON, render::funcs::json(&funcs_in(reg, order)).to_string())
            }
            Plain::FuncsDot => (DOT, render::dot::dot(&render::funcs::read(reg))),
            Plain::SloJson => (JSON, monkit::slo::json(&reg.objectives()).to_string()),
            Plain::SloDashboard => (
                JSON,
                monkit::slo::dashboard::dashboard(&reg.objectives()).to_string(),
            ),
            Plain::SloRules(scale, for_ms) => {
                let mut o =
                    monkit::slo::rules::RuleOptions::default().scaled(f64::from_bits(scale));
                if let Some(ms) = for_ms {
                    o = o.alert_for(std::time::Duration::from_millis(ms));
                }
                (YAML, monkit::slo::rules::rules(&reg.objectives(), &o))
            }
            Plain::PsText => (TEXT, render::ps::text(&reg.running_spans())),
            Plain::PsJson => (JSON, render::ps::json(&reg.running_spans()).to_string()),
            Plain::PsDot => (DOT, render::ps::dot(&reg.running_spans())),
            Plain::Metrics(format) => {
                let open = format == MetricsFormat::OpenMetrics;
                (
                    if open {
                        render::prometheus::OPENMETRICS_CONTENT_TYPE
                    } else {
                        render::prometheus::CONTENT_TYPE
                    },
                    render::prometheus::render_with(reg, open, prom),
                )
            }
        };
        Rendered {
            status: StatusCode::OK,
            content_type,
            body: trim::page_bytes(body),
        }
    }

    /// The page, rendered on tokio's blocking pool (so a large page never stalls the server's
    /// other connections), shared with every request for the same page that arrives while
    /// it renders. The rendering runs to the end even if the client that started it leaves.
    async fn rendered(&self, page: Plain) -> Rendered {
        let (tx, rx) = oneshot::channel();
        let first = {
            let mut waiting = self.shared.rendering.lock();
            match waiting.get_mut(&page) {
                Some(w) => {
                    w.push(tx);
                    false
                }
                None => {
                    waiting.insert(page, vec![tx]);
                    true
                }
            }
        };
        if first {
            let registry = self.registry.clone();
            let shared = self.shared.clone();
            tokio::spawn(async move {
                let slot = shared.render_slots.clone().acquire_owned().await;
                let for_render = shared.clone();
                let r = tokio::task::spawn_blocking(move || {
                    Pages::render(&registry, page, &for_render)
                })
                .await;
                drop(slot);
                let r = r.unwrap_or_else(|e| Rendered {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    content_type: TEXT,
                    body: Bytes::from(format!("rendering failed: {e}\n")),
                });
                let waiting = shared.rendering.lock().remove(&page).unwrap_or_default();
                for w in waiting {
                    let _ = w.send(r.clone());
                }
            });
        }
        rx.await.unwrap_or_else(|_| Rendered {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            content_type: TEXT,
            body: Bytes::from_static(b"rendering was abandoned\n"),
        })
    }

    /// Answers one request.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Full<Bytes>> {
        if let Some(r) = self.shared.access.refuse(&req) {
            return r.into_response();
        }
        let page = match routes::route(&req, &self.shared.access) {
            Ok(p) => p,
            Err(r) => return r.into_response(),
        };
        let page = match page {
            Page::Trace {
                spec,
                timeout,
                format,
            } => return self.trace(spec, timeout, format).await,
            Page::Recent { spec, format } => return self.recent(spec, format).await,
            Page::Plain(p) => p,
        };
        let r = self.rendered(page).await;
        let len = r.body.len();
        let body = if req.method() == Method::HEAD {
            Bytes::new()
        } else {
            r.body
        };
        let mut resp = response(r.status, r.content_type, body);
        if req.method() == Method::HEAD {
            resp.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(len));
        }
        resp
    }
}

impl<B: Send + 'static> hyper::service::Service<Request<B>> for Pages {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<B>) -> Self::Future {
        let pages = self.clone();
        Box::pin(async move { Ok(pages.handle(req).await) })
    }
}

#[cfg(test)]
mod tests {
    use super::routes::{negotiate_metrics, route};
    use super::trace::{parse_duration, trace_params, MAX_TRACE_TIMEOUT};
    use super::*;

    #[test]
    fn metrics_format_by_q_value() {
        use MetricsFormat::*;
        let f = |a: &[&str]| negotiate_metrics(a);
        assert_eq!(f(&[]), Some(Text));
        assert_eq!(f(&["*/*"]), Some(Text));
        assert_eq!(
            f(&["application/openmetrics-text;q=0, text/plain;q=1"]),
            Some(Text)
        );
        assert_eq!(
            f(&["text/plain;q=0.5, application/openmetrics-text;q=0.9"]),
            Some(OpenMetrics)
        );
        assert_eq!(
            f(&["Application/OpenMetrics-Text; version=1.0.0"]),
            Some(OpenMetrics)
        );
        // Ties go to the range listed first.
        assert_eq!(
            f(&["application/openmetrics-text", "text/plain"]),
            Some(OpenMetrics)
        );
        assert_eq!(f(&["text/plain, application/openmetrics-text"]), Some(Text));
        let pb = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";
        assert_eq!(
            f(&[&format!(
                "{pb};q=0.7,application/openmetrics-text;version=1.0.0;q=0.5,text/plain;q=0.1"
            )]),
            Some(Protobuf)
        );
        assert_eq!(f(&[&format!("{pb};q=0, text/plain;q=0.1")]), Some(Text));
        assert_eq!(
            f(&["application/vnd.google.protobuf;proto=other.Message"]),
            None
        );
        // Refusing everything is a 406; a malformed q counts as 1.
        assert_eq!(
            f(&["text/plain;q=0, application/openmetrics-text;q=0"]),
            None
        );
        assert_eq!(f(&["image/png"]), None);
        assert_eq!(
            f(&["application/openmetrics-text;q=abc, text/plain;q=0.5"]),
            Some(OpenMetrics)
        );
        assert_eq!(
            f(&["text/*;q=0.2, application/openmetrics-text;q=0.1"]),
            Some(Text)
        );
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// No query string panics the parser; every refusal is a 400 naming its reason.
        #[test]
        fn any_trace_query(q in any::<String>(), raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            for query in [q.clone(), String::from_utf8_lossy(&raw).into_owned()] {
                match trace_params(Some(&query), TraceFormat::Json) {
                    Ok(Page::Trace { timeout, .. }) => prop_assert!(timeout <= MAX_TRACE_TIMEOUT),
                    Ok(_) => prop_assert!(false, "not a trace page"),
                    Err(r) => {
                        prop_assert_eq!(r.status, StatusCode::BAD_REQUEST);
                        prop_assert!(!r.msg.is_empty());
                    }
                }
            }
        }

        #[test]
        fn any_duration(s in any::<String>()) {
            if let Some(d) = parse_duration(&s) {
                prop_assert!(d > Duration::ZERO && d <= MAX_TRACE_TIMEOUT);
            }
        }
    }

    #[test]
    fn routes() {
        let get = |p: &str| Request::get(p).body(()).unwrap();
        let all = Access::default();
        assert!(matches!(
            route(&get("/stats"), &all).unwrap(),
            Page::Plain(Plain::StatsText)
        ));
        assert!(matches!(
            route(&get("/funcs/dot"), &all).unwrap(),
            Page::Plain(Plain::FuncsDot)
        ));
        assert!(matches!(
            route(&get("/trace/svg?regex=x&timeout=250ms"), &all).unwrap(),
            Page::Trace { timeout, .. } if timeout == Duration::from_millis(250)
        ));
        assert_eq!(
            route(&get("/trace/svg?timeout=soon"), &all)
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(route(&get("/nope"), &all).unwrap_err().status, 404);
        assert_eq!(route(&get("/stats?x=1"), &all).unwrap_err().status, 400);
        let post = Request::post("/stats").body(()).unwrap();
        assert_eq!(route(&post, &all).unwrap_err().status, 405);
        // A page its access does not serve is not found.
        let metrics_only = Access {
            pages: Some(vec!["metrics".into()]),
            ..Access::default()
        };
        assert!(route(&get("/metrics"), &metrics_only).is_ok());
        for p in ["/stats", "/trace/svg?regex=x", "/trace/sample?regex=x", "/"] {
            assert_eq!(
                route(&get(p), &metrics_only).unwrap_err().status,
                404,
                "{p}"
            );
        }
    }
}
