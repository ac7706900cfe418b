//! The trace pages: their query, their share of the budget, and the wait for the call.

use super::routes::{bad, Refusal};
use super::{error, response, Page, Pages, RecentFormat, Shared, TraceFormat, HTML, JSON, SVG};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use monkit::render;
use monkit::{trace::Captured, trace::WatchSpec};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long a trace page waits for a matching call unless told otherwise.
const DEFAULT_TRACE_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest wait a client may ask for.
pub(super) const MAX_TRACE_TIMEOUT: Duration = Duration::from_secs(3600);

/// A trace page's `timeout=`, at most [`MAX_TRACE_TIMEOUT`].
pub(super) fn parse_duration(v: &str) -> Option<Duration> {
    super::duration::parse(v, MAX_TRACE_TIMEOUT)
}

/// A parameter every trace page takes (`regex`, `trace_id`, `min_duration`, `outcome`),
/// applied to `spec`; `Ok(false)` for one it does not know.
fn spec_param(spec: &mut WatchSpec, k: &str, v: &str) -> Result<bool, Refusal> {
    match k {
        "regex" => spec.regex = Some(v.to_owned()),
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
        "min_duration" => {
            let d = parse_duration(v).ok_or_else(|| {
                bad(format!(
                    "min_duration expected to be a duration such as 50ms or 2s: {v:?}"
                ))
            })?;
            *spec = std::mem::take(spec).min_duration(d);
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
            *spec = std::mem::take(spec).outcome(monkit::trace::OutcomeMatch::parse(v));
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The query of a trace page.
pub(super) fn trace_params(query: Option<&str>, format: TraceFormat) -> Result<Page, Refusal> {
    let mut spec = WatchSpec::default().with_preselect(true);
    spec.sample = format == TraceFormat::Sample;
    let mut timeout = DEFAULT_TRACE_TIMEOUT;
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if spec_param(&mut spec, &k, &v)? {
            continue;
        }
        match k.as_ref() {
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

/// The query of a `/trace/recent` page: what to pick among the held calls (the tree
/// pages), or the list's format.
pub(super) fn recent_params(query: Option<&str>, format: RecentFormat) -> Result<Page, Refusal> {
    let mut spec = WatchSpec::default();
    let mut format = format;
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let known = match format {
            // The list takes its format; a tree page, what picks the call.
            RecentFormat::List(_) if k == "format" => {
                format = match v.as_ref() {
                    "json" => RecentFormat::List(true),
                    "html" => RecentFormat::List(false),
                    _ => return Err(bad(format!("format expected to be html or json: {v:?}"))),
                };
                true
            }
            RecentFormat::List(_) => false,
            _ => spec_param(&mut spec, &k, &v)?,
        };
        if !known {
            return Err(bad(format!(
                "unknown query parameter {k:?} for a /trace/recent page"
            )));
        }
    }
    if !matches!(format, RecentFormat::List(_))
        && spec.regex.is_none()
        && spec.trace_id.is_none()
        && spec.condition.is_none()
    {
        return Err(bad(
            "at least one of regex, trace_id, min_duration or outcome is needed".to_owned(),
        ));
    }
    Ok(Page::Recent { spec, format })
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
    pub(super) async fn trace(
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

impl Pages {
    /// Answers at once from what the flight recorder holds: the matching call's tree, or the
    /// list of what is held.
    pub(super) async fn recent(
        &self,
        spec: WatchSpec,
        format: RecentFormat,
    ) -> Response<Full<Bytes>> {
        let held = match format {
            RecentFormat::List(json) => return self.recent_list(json),
            _ => self.registry.recent_trace(&spec),
        };
        let spans =
            match held {
                Ok(Some(spans)) => spans,
                Ok(None) if !monkit::flight::enabled() => {
                    return error(
                        StatusCode::NOT_FOUND,
                        "nothing held: the flight recorder is off (MONKIT_FLIGHT_RECORDER)",
                    )
                }
                Ok(None) => return error(
                    StatusCode::NOT_FOUND,
                    "no held call matches: the recorder keeps each function's slowest calls of \
                     the last two windows and its latest failure (see /trace/recent)",
                ),
                Err(e) => return error(StatusCode::BAD_REQUEST, e),
            };
        match format {
            RecentFormat::Json => response(
                StatusCode::OK,
                JSON,
                render::trace::json(&spans).to_string(),
            ),
            _ => match tokio::task::spawn_blocking(move || render::trace::svg(&spans)).await {
                Ok(svg) => response(StatusCode::OK, SVG, svg),
                Err(e) => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("rendering failed: {e}"),
                ),
            },
        }
    }

    /// What the flight recorder holds of this registry's functions, newest first.
    fn recent_list(&self, json: bool) -> Response<Full<Bytes>> {
        let held = self.registry.recent_calls();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        if json {
            let list = render::trace::recent_list_json(&held, now);
            return response(StatusCode::OK, JSON, list.to_string());
        }
        response(
            StatusCode::OK,
            HTML,
            super::console::recent_html(&held, now),
        )
    }
}
