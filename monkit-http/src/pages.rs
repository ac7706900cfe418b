//! Routing a request to a page and rendering it.

use crate::listen::TraceBudget;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use monkit::render;
use monkit::{trace::Captured, trace::WatchSpec, Registry};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, Semaphore};

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";
const HTML: &str = "text/html; charset=utf-8";
const SVG: &str = "image/svg+xml";
const DOT: &str = "text/vnd.graphviz; charset=utf-8";

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
    Plain(Plain),
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
    FuncsText,
    FuncsJson,
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

/// How long a trace page waits for a matching call unless told otherwise.
const DEFAULT_TRACE_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest wait a client may ask for.
const MAX_TRACE_TIMEOUT: Duration = Duration::from_secs(3600);

/// A trace page's `timeout=`, at most [`MAX_TRACE_TIMEOUT`].
fn parse_duration(v: &str) -> Option<Duration> {
    crate::duration::parse(v, MAX_TRACE_TIMEOUT)
}

fn bad(msg: String) -> Refusal {
    Refusal {
        status: StatusCode::BAD_REQUEST,
        msg,
    }
}

/// The format `/metrics` answers `Accept` with, by RFC 9110 section 12.5.1: media types
/// compared without regard to case, each format given the quality of the most specific range
/// that matches it (`q=0` is "not this"), the highest quality served, ties going to the range
/// listed first (and, through one range such as `*/*`, to text). A malformed `q` counts as 1. No `Accept` at all is the text format; `None`
/// when every format is refused.
fn negotiate_metrics(accept: &[&str]) -> Option<MetricsFormat> {
    // In the order preferred when a client likes several equally through one range (`*/*`).
    const OFFERS: [(MetricsFormat, &str, Option<&str>); 3] = [
        (MetricsFormat::Text, "text/plain", None),
        (
            MetricsFormat::OpenMetrics,
            "application/openmetrics-text",
            None,
        ),
        (
            MetricsFormat::Protobuf,
            "application/vnd.google.protobuf",
            Some("io.prometheus.client.metricfamily"),
        ),
    ];
    struct Range {
        typ: String,
        sub: String,
        proto: Option<String>,
        q: f32,
        at: usize,
    }
    let mut ranges = Vec::new();
    for item in accept.iter().flat_map(|v| v.split(',')) {
        let mut parts = item.split(';');
        let Some((typ, sub)) = parts.next().and_then(|m| m.trim().split_once('/')) else {
            continue;
        };
        let (mut q, mut proto) = (1.0f32, None);
        for p in parts {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"');
            match k.trim().to_ascii_lowercase().as_str() {
                "q" => {
                    q = v
                        .parse()
                        .ok()
                        .filter(|q: &f32| (0.0..=1.0).contains(q))
                        .unwrap_or(1.0)
                }
                "proto" => proto = Some(v.to_ascii_lowercase()),
                _ => {}
            }
        }
        ranges.push(Range {
            typ: typ.trim().to_ascii_lowercase(),
            sub: sub.trim().to_ascii_lowercase(),
            proto,
            q,
            at: ranges.len(),
        });
    }
    if ranges.is_empty() {
        return Some(MetricsFormat::Text);
    }
    // Per offer: (quality, position of the range that gave it), from its most specific match.
    let mut best: Option<(MetricsFormat, f32, usize)> = None;
    for (format, media, needs_proto) in OFFERS {
        let (t, st) = media.split_once('/').unwrap_or((media, ""));
        let matched = ranges
            .iter()
            .filter_map(|r| {
                let specificity = match (r.typ.as_str(), r.sub.as_str()) {
                    ("*", "*") => 1,
                    (rt, "*") if rt == t => 2,
                    (rt, rs) if rt == t && rs == st => 3,
                    _ => return None,
                };
                // The protobuf format is only this one message: a range naming another is no match.
                if specificity == 3
                    && needs_proto.is_some()
                    && r.proto.as_deref().is_some_and(|p| Some(p) != needs_proto)
                {
                    return None;
                }
                Some((specificity, r))
            })
            .max_by_key(|(s, r)| (*s, std::cmp::Reverse(r.at)));
        let Some((specificity, r)) = matched else {
            continue;
        };
        // The protobuf format is served only to a client that asks for it by name.
        if needs_proto.is_some() && specificity < 3 {
            continue;
        }
        if r.q <= 0.0 {
            continue;
        }
        let better = match best {
            None => true,
            Some((_, q, at)) => r.q > q || (r.q == q && r.at < at),
        };
        if better {
            best = Some((format, r.q, r.at));
        }
    }
    best.map(|(f, _, _)| f)
}

/// The query of a trace page.
fn trace_params(query: Option<&str>, format: TraceFormat) -> Result<Page, Refusal> {
    let mut spec = WatchSpec::default().with_preselect(true);
    spec.sample = format == TraceFormat::Sample;
    let mut timeout = DEFAULT_TRACE_TIMEOUT;
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "regex" => spec.regex = Some(v.into_owned()),
            "trace_id" => {
                let t = v.trim_start_matches("0x");
                match u128::from_str_radix(t, 16) {
                    Ok(id) if id != 0 && t.len() <= 32 && !t.starts_with('+') => {
                        spec.trace_id = Some(id)
                    }
                    _ => {
                        return Err(bad(format!(
                            "trace_id expected to be hex unsigned 128 bit number: {v:?}"
                        )))
                    }
                }
            }
            "preselect" => {
                spec.preselect = match v.as_ref() {
                    "true" | "1" | "yes" | "" => true,
                    "false" | "0" | "no" => false,
                    _ => {
                        return Err(bad(format!(
                            "preselect expected to be true or false: {v:?}"
                        )))
                    }
                }
            }
            "min_duration" => {
                let d = parse_duration(&v).ok_or_else(|| {
                    bad(format!(
                        "min_duration expected to be a duration such as 50ms or 2s: {v:?}"
                    ))
                })?;
                spec = spec.min_duration(d);
            }
            "outcome" => {
                let ok = !v.is_empty()
                    && v.len() <= 64
                    && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !ok {
                    return Err(bad(format!(
                        "outcome expected to be error, panic, canceled, failure or an error kind: {v:?}"
                    )));
                }
                spec = spec.outcome(monkit::trace::OutcomeMatch::parse(&v));
            }
            "timeout" => {
                timeout = parse_duration(&v).ok_or_else(|| {
                    bad(format!(
                        "timeout expected to be a duration such as 10s or 500ms: {v:?}"
                    ))
                })?
            }
            _ => {
                return Err(bad(format!(
                    "unknown query parameter {k:?} for a trace page"
                )))
            }
        }
    }
    Ok(Page::Trace {
        spec,
        timeout,
        format,
    })
}

/// Why a request gets no page.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    msg: String,
}

impl Refusal {
    fn into_response(self) -> Response<Full<Bytes>> {
        let mut r = error(self.status, self.msg);
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        }
        r
    }
}

/// Every page the index lists: (path, description).
const INDEX: &[(&str, &str)] = &[
    (
        "/stats",
        "every stat, one line each (Go monkit line format)",
    ),
    ("/stats/json", "every stat as JSON"),
    (
        "/funcs",
        "every function: callers, counts, errors, time quantiles",
    ),
    ("/funcs/json", "every function as JSON"),
    ("/funcs/dot", "call graph in Graphviz dot"),
    ("/ps", "spans running now, as trees"),
    ("/ps/json", "spans running now as JSON"),
    (
        "/ps/dot",
        "spans running now as Graphviz dot, one cluster per trace",
    ),
    (
        "/trace/svg?regex=.&timeout=10s",
        "the next call of a matching function, its whole span tree as an SVG timeline",
    ),
    ("/trace/json?regex=.&timeout=10s", "the same as JSON"),
    ("/metrics", "Prometheus exposition format"),
];

fn response(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static(TEXT)),
    );
    r
}

fn error(status: StatusCode, msg: impl std::fmt::Display) -> Response<Full<Bytes>> {
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
        Pages {
            registry,
            shared: Arc::new(Shared {
                budget,
                prometheus,
                trace_link: None,
                watching: Mutex::new((0, HashMap::new())),
                rendering: Mutex::new(HashMap::new()),
                render_slots: Arc::new(Semaphore::new(RENDERS_AT_ONCE)),
            }),
            client: None,
        }
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

    fn route<B>(req: &Request<B>) -> Result<Page, Refusal> {
        let path = req.uri().path();
        let page = match path {
            "/" => Plain::Index,
            "/console/fragment" => Plain::ConsoleFragment,
            "/stats" | "/stats/" | "/stats/text" => Plain::StatsText,
            "/stats/json" => Plain::StatsJson,
            "/funcs" | "/funcs/" | "/funcs/text" => Plain::FuncsText,
            "/funcs/json" => Plain::FuncsJson,
            "/funcs/dot" => Plain::FuncsDot,
            "/ps" | "/ps/" | "/ps/text" => Plain::PsText,
            "/ps/json" => Plain::PsJson,
            "/ps/dot" => Plain::PsDot,
            "/trace/svg" | "/trace/json" | "/trace/sample" => {
                let format = match path {
                    "/trace/svg" => TraceFormat::Svg,
                    "/trace/json" => TraceFormat::Json,
                    _ => TraceFormat::Sample,
                };
                // Checked below like every page; parameters parsed here.
                if matches!(*req.method(), Method::GET | Method::HEAD) {
                    return trace_params(req.uri().query(), format);
                }
                Plain::Index
            }
            "/metrics" => {
                let accept: Vec<&str> = req
                    .headers()
                    .get_all(hyper::header::ACCEPT)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                match negotiate_metrics(&accept) {
                    Some(f) => Plain::Metrics(f),
                    None => {
                        return Err(Refusal {
                            status: StatusCode::NOT_ACCEPTABLE,
                            msg: "no acceptable format: /metrics serves text/plain (Prometheus \
                                  text 0.0.4), application/openmetrics-text and \
                                  application/vnd.google.protobuf \
                                  (proto=io.prometheus.client.MetricFamily)"
                                .into(),
                        })
                    }
                }
            }
            _ => {
                return Err(Refusal {
                    status: StatusCode::NOT_FOUND,
                    msg: format!("path not found: {path}"),
                });
            }
        };
        if !matches!(*req.method(), Method::GET | Method::HEAD) {
            return Err(Refusal {
                status: StatusCode::METHOD_NOT_ALLOWED,
                msg: format!(
                    "method {} not allowed on {path}; use GET or HEAD",
                    req.method()
                ),
            });
        }
        // No page takes parameters yet: a parameter is a mistake worth telling about.
        if let Some(q) = req.uri().query() {
            if let Some((k, _)) = form_urlencoded::parse(q.as_bytes()).next() {
                return Err(Refusal {
                    status: StatusCode::BAD_REQUEST,
                    msg: format!("unknown query parameter {k:?} for {path}"),
                });
            }
        }
        Ok(Page::Plain(page))
    }

    fn render(reg: &Registry, page: Plain, shared: &Shared) -> Rendered {
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
                crate::console::page(
                    &render::funcs::json(&render::funcs::read(reg)),
                    &render::ps::json(&reg.running_spans()),
                    INDEX,
                    link,
                ),
            ),
            Plain::ConsoleFragment => (
                JSON,
                crate::console::fragment(
                    &render::funcs::json(&render::funcs::read(reg)),
                    &render::ps::json(&reg.running_spans()),
                    link,
                )
                .to_string(),
            ),
            Plain::StatsText => (TEXT, render::text::stats(reg)),
            Plain::StatsJson => (JSON, render::json::stats(reg).to_string()),
            Plain::FuncsText => (TEXT, render::funcs::text(&render::funcs::read(reg))),
            Plain::FuncsJson => (
                JSON,
                render::funcs::json(&render::funcs::read(reg)).to_string(),
            ),
            Plain::FuncsDot => (DOT, render::dot::dot(&render::funcs::read(reg))),
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
            body: crate::trim::page_bytes(body),
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
        let page = match Self::route(&req) {
            Ok(p) => p,
            Err(r) => return r.into_response(),
        };
        let page = match page {
            Page::Trace {
                spec,
                timeout,
                format,
            } => return self.trace(spec, timeout, format).await,
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

/// One waiting trace request's share of the budget, given back when it ends or its client
/// leaves.
struct Watching {
    shared: Arc<Shared>,
    client: Option<IpAddr>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        let mut w = self.shared.watching.lock();
        w.0 -= 1;
        if let Some(c) = self.client {
            if let Some(n) = w.1.get_mut(&c) {
                *n -= 1;
                if *n == 0 {
                    w.1.remove(&c);
                }
            }
        }
    }
}

impl Pages {
    /// Takes a share of the trace budget, or says why not.
    fn start_watching(&self) -> Result<Watching, Refusal> {
        let budget = &self.shared.budget;
        let mut w = self.shared.watching.lock();
        if w.0 >= budget.max_watchers {
            return Err(Refusal {
                status: StatusCode::TOO_MANY_REQUESTS,
                msg: format!(
                    "{} trace requests are waiting already, the most this server allows; try again later",
                    w.0
                ),
            });
        }
        if let Some(c) = self.client {
            let mine = w.1.entry(c).or_insert(0);
            if *mine >= budget.max_per_client {
                return Err(Refusal {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    msg: format!(
                        "{mine} trace requests from {c} are waiting already, the most one client may have; try again later"
                    ),
                });
            }
            *mine += 1;
        }
        w.0 += 1;
        Ok(Watching {
            shared: self.shared.clone(),
            client: self.client,
        })
    }

    /// Waits for the watched call and answers with its trace (or, for `/trace/sample`, the
    /// id of the trace marked as sampled). If the client goes away, hyper drops this future,
    /// and with it the watcher and its share of the budget.
    async fn trace(
        &self,
        spec: WatchSpec,
        timeout: Duration,
        format: TraceFormat,
    ) -> Response<Full<Bytes>> {
        let longest = self.shared.budget.max_timeout;
        if timeout > longest {
            return error(
                StatusCode::BAD_REQUEST,
                format!("timeout {timeout:?} is longer than this server allows ({longest:?})"),
            );
        }
        let _share = match self.start_watching() {
            Ok(w) => w,
            Err(r) => {
                let mut resp = r.into_response();
                resp.headers_mut()
                    .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
                return resp;
            }
        };
        let watcher = match self.registry.watch(spec) {
            Ok(w) => w,
            Err(e) => {
                let status = match e {
                    monkit::trace::WatchError::TooManyTraceWatchers => {
                        StatusCode::TOO_MANY_REQUESTS
                    }
                    _ => StatusCode::BAD_REQUEST,
                };
                return error(status, e);
            }
        };
        let captured = match tokio::time::timeout(timeout, watcher).await {
            Ok(c) => c,
            Err(_) => {
                return error(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("no matching call within {timeout:?}"),
                )
            }
        };
        match (captured, format) {
            (Captured::Sampled(id), _) => response(
                StatusCode::OK,
                JSON,
                serde_json::json!({ "trace_id": format!("{id:032x}") }).to_string(),
            ),
            (Captured::Trace(spans), TraceFormat::Json) => response(
                StatusCode::OK,
                JSON,
                render::trace::json(&spans).to_string(),
            ),
            (Captured::Trace(spans), _) => {
                match tokio::task::spawn_blocking(move || render::trace::svg(&spans)).await {
                    Ok(svg) => response(StatusCode::OK, SVG, svg),
                    Err(e) => error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("rendering failed: {e}"),
                    ),
                }
            }
            (other, _) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("a capture this page cannot show: {other:?}"),
            ),
        }
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

    use super::*;
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
        assert!(matches!(
            Pages::route(&get("/stats")).unwrap(),
            Page::Plain(Plain::StatsText)
        ));
        assert!(matches!(
            Pages::route(&get("/funcs/dot")).unwrap(),
            Page::Plain(Plain::FuncsDot)
        ));
        assert!(matches!(
            Pages::route(&get("/trace/svg?regex=x&timeout=250ms")).unwrap(),
            Page::Trace { timeout, .. } if timeout == Duration::from_millis(250)
        ));
        assert_eq!(
            Pages::route(&get("/trace/svg?timeout=soon"))
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(Pages::route(&get("/nope")).unwrap_err().status, 404);
        assert_eq!(Pages::route(&get("/stats?x=1")).unwrap_err().status, 400);
        let post = Request::post("/stats").body(()).unwrap();
        assert_eq!(Pages::route(&post).unwrap_err().status, 405);
    }
}
