//! The route table the router, the index and the crate doc are made from, the router itself,
//! and what a refused request is told.

use super::access::Access;
use super::{error, MetricsFormat, Page, Plain, TraceFormat};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ALLOW};
use hyper::{Method, Request, Response, StatusCode};
use monkit::render::funcs::Order;

/// What answers a path.
#[derive(Clone, Copy, Debug)]
pub(super) enum Answer {
    /// A page with no parameters.
    Plain(Plain),
    /// A trace page, its parameters read from the query.
    Trace(TraceFormat),
    /// `/metrics`, its format chosen by `Accept`.
    Metrics,
    /// A page of what the flight recorder holds.
    Recent(super::RecentFormat),
}

/// One page: the paths it answers (the first is its name), what answers, and what the index
/// says of it (with the link it shows, when the page needs a query to show anything).
#[derive(Debug)]
pub(super) struct Route {
    pub(super) paths: &'static [&'static str],
    /// Its group, for `Access::pages`.
    pub(super) group: &'static str,
    pub(super) answer: Answer,
    pub(super) about: Option<&'static str>,
    pub(super) example: Option<&'static str>,
}

const fn page(
    paths: &'static [&'static str],
    group: &'static str,
    answer: Answer,
    about: Option<&'static str>,
) -> Route {
    Route {
        paths,
        group,
        answer,
        about,
        example: None,
    }
}

/// Every page.
pub(super) const ROUTES: &[Route] = &[
    page(&["/"], "console", Answer::Plain(Plain::Index), None),
    page(
        &["/console/fragment"],
        "console",
        Answer::Plain(Plain::ConsoleFragment),
        None,
    ),
    page(
        &["/stats", "/stats/", "/stats/text"],
        "stats",
        Answer::Plain(Plain::StatsText),
        Some("every stat, one line each (Go monkit line format)"),
    ),
    page(
        &["/stats/json"],
        "stats",
        Answer::Plain(Plain::StatsJson),
        Some("every stat as JSON"),
    ),
    page(
        &["/funcs", "/funcs/", "/funcs/text"],
        "funcs",
        Answer::Plain(Plain::FuncsText(Order::Name)),
        Some("every function: callers, counts, errors, polls, time quantiles (sort=slow_polls, busy, max_poll)"),
    ),
    page(
        &["/funcs/json"],
        "funcs",
        Answer::Plain(Plain::FuncsJson(Order::Name)),
        Some("every function as JSON"),
    ),
    page(
        &["/funcs/dot"],
        "funcs",
        Answer::Plain(Plain::FuncsDot),
        Some("call graph in Graphviz dot"),
    ),
    page(
        &["/slo", "/slo/", "/slo/json"],
        "slo",
        Answer::Plain(Plain::SloJson),
        Some("objectives: budget left, burn rates over 5m to 6h, alerts burning, functions eating the budget"),
    ),
    page(
        &["/slo/dashboard"],
        "slo",
        Answer::Plain(Plain::SloDashboard),
        Some("the objectives as a Grafana dashboard: budget, burn rates, the covered functions' rates and latency"),
    ),
    page(
        &["/slo/rules"],
        "slo",
        Answer::Plain(Plain::SloRules(1f64.to_bits(), None)),
        Some("the objectives as a Prometheus rule file: recording rules and multi-window burn-rate alerts (scale=, for=)"),
    ),
    page(
        &["/ps", "/ps/", "/ps/text"],
        "ps",
        Answer::Plain(Plain::PsText),
        Some("spans running now, as trees"),
    ),
    page(
        &["/ps/json"],
        "ps",
        Answer::Plain(Plain::PsJson),
        Some("spans running now as JSON"),
    ),
    page(
        &["/ps/dot"],
        "ps",
        Answer::Plain(Plain::PsDot),
        Some("spans running now as Graphviz dot, one cluster per trace"),
    ),
    Route {
        paths: &["/trace/svg"],
        group: "trace",
        answer: Answer::Trace(TraceFormat::Svg),
        about: Some("the next call of a matching function, its whole span tree as an SVG timeline"),
        example: Some("/trace/svg?regex=.&timeout=10s"),
    },
    Route {
        paths: &["/trace/json"],
        group: "trace",
        answer: Answer::Trace(TraceFormat::Json),
        about: Some("the same as JSON"),
        example: Some("/trace/json?regex=.&timeout=10s"),
    },
    Route {
        paths: &["/trace/recent", "/trace/recent/"],
        group: "trace",
        answer: Answer::Recent(super::RecentFormat::List(false)),
        about: Some("the slowest and failed calls of the last minutes, held by the flight recorder (format=json)"),
        example: None,
    },
    Route {
        paths: &["/trace/recent/svg"],
        group: "trace",
        answer: Answer::Recent(super::RecentFormat::Svg),
        about: Some("a held call's whole tree at once: the slowest for min_duration, the latest for outcome, or by trace_id"),
        example: Some("/trace/recent/svg?regex=.&min_duration=1ms"),
    },
    Route {
        paths: &["/trace/recent/json"],
        group: "trace",
        answer: Answer::Recent(super::RecentFormat::Json),
        about: Some("the same as JSON"),
        example: Some("/trace/recent/json?regex=.&outcome=failure"),
    },
    page(
        &["/trace/sample"],
        "trace",
        Answer::Trace(TraceFormat::Sample),
        None,
    ),
    page(
        &["/metrics"],
        "metrics",
        Answer::Metrics,
        Some("Prometheus exposition format"),
    ),
];

/// What the index lists: (link, description).
pub(super) fn index() -> Vec<(&'static str, &'static str)> {
    ROUTES
        .iter()
        .filter_map(|r| Some((r.example.unwrap_or(r.paths[0]), r.about?)))
        .collect()
}

/// The page a request asks for, or why it gets none (a page `access` does not serve is not
/// found).
pub(super) fn route<B>(req: &Request<B>, access: &Access) -> Result<Page, Refusal> {
    let path = req.uri().path();
    let found = ROUTES
        .iter()
        .find(|r| r.paths.contains(&path))
        .filter(|r| access.serves(r.group));
    let Some(r) = found else {
        return Err(Refusal {
            status: StatusCode::NOT_FOUND,
            msg: format!("path not found: {path}"),
        });
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
    let page = match r.answer {
        Answer::Plain(p) => p,
        Answer::Trace(format) => return super::trace::trace_params(req.uri().query(), format),
        Answer::Recent(format) => return super::trace::recent_params(req.uri().query(), format),
        Answer::Metrics => {
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
    };
    // `/funcs` takes `sort`; no other plain page takes parameters: a parameter is a mistake
    // worth telling about.
    let mut page = page;
    if let Some(q) = req.uri().query() {
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            page = match (page, &*k) {
                (Plain::FuncsText(_) | Plain::FuncsJson(_), "sort") => {
                    let Some(order) = Order::parse(&v) else {
                        return Err(bad(format!(
                            "sort={v:?} is not an order of {path}: use name, slow_polls, busy or max_poll"
                        )));
                    };
                    match page {
                        Plain::FuncsText(_) => Plain::FuncsText(order),
                        _ => Plain::FuncsJson(order),
                    }
                }
                (Plain::SloRules(_, for_ms), "scale") => match v.parse::<f64>() {
                    Ok(s) if s.is_finite() && s > 0.0 && s <= 1000.0 => {
                        Plain::SloRules(s.to_bits(), for_ms)
                    }
                    _ => {
                        return Err(bad(format!(
                            "scale={v:?}: a number above 0 and at most 1000 (windows are multiplied by it)"
                        )))
                    }
                },
                (Plain::SloRules(scale, _), "for") => {
                    match monkit::settings::parse_duration(&v) {
                        Some(d) if d <= std::time::Duration::from_secs(86_400) => {
                            Plain::SloRules(scale, Some(d.as_millis() as u64))
                        }
                        _ => {
                            return Err(bad(format!(
                                "for={v:?}: a duration like 30s or 2m, at most a day"
                            )))
                        }
                    }
                }
                _ => {
                    return Err(Refusal {
                        status: StatusCode::BAD_REQUEST,
                        msg: format!("unknown query parameter {k:?} for {path}"),
                    })
                }
            };
        }
    }
    Ok(Page::Plain(page))
}

pub(super) fn bad(msg: String) -> Refusal {
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
pub(super) fn negotiate_metrics(accept: &[&str]) -> Option<MetricsFormat> {
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

/// Why a request gets no page.
#[derive(Debug)]
pub(super) struct Refusal {
    pub(super) status: StatusCode,
    pub(super) msg: String,
}

impl Refusal {
    pub(super) fn into_response(self) -> Response<Full<Bytes>> {
        let mut r = error(self.status, self.msg);
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"monkit\""),
            );
        }
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        }
        r
    }
}

#[cfg(test)]
mod tests {
    /// Every page belongs to a group `Access::pages` can name.
    #[test]
    fn every_page_has_a_group() {
        for r in super::ROUTES {
            assert!(
                super::super::access::PAGE_GROUPS.contains(&r.group),
                "{:?}",
                r.paths
            );
        }
    }

    /// The crate doc's table of pages is this table's: every listed page is in it.
    #[test]
    fn the_crate_doc_lists_every_page() {
        let doc = include_str!("../lib.rs");
        for r in super::ROUTES.iter().filter(|r| r.about.is_some()) {
            let name = r.paths[0];
            assert!(
                doc.contains(&format!("`{name}`")),
                "{name} is not in the crate doc"
            );
        }
    }
}
