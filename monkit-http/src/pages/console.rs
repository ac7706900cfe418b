//! The console at `/`: one HTML page for a person in a browser. The page itself is a plain
//! table of every function, the running spans as a tree and links to every plain page, so it
//! works with JavaScript off. With JavaScript its script (`console/console.js`, inlined with
//! the stylesheet: nothing is fetched from outside the process) makes the table sortable and
//! filterable, refreshes it and the span tree from `/funcs/json` and `/ps/json` every few
//! seconds, and shows "trace next call" results from `/trace/svg` in place.
//!
//! The markup is written here alone, from the typed rows the JSON pages are made from too
//! (`monkit::render::funcs::read`, `monkit::render::ps::tree`): the first rendering and every
//! refresh (`/console/fragment`, which the script swaps in) come from the same functions, so
//! the page and its refreshes cannot disagree.

// Durations and numbers read as in the trace SVG; the script's `fmtNs` and `sig3` say the same.
use monkit::registry::{Func, FuncStats, LiveSpan};
use monkit::render::format::{duration as fmt_ns, significant as sig3, xml_escape as esc};
use monkit::render::ps::Node;
use monkit::slo::Report;
use monkit::stats::{Exemplar, Snapshot};
use std::collections::HashMap;
use std::fmt::Write;

const STYLE: &str = include_str!("console/console.css");
const SCRIPT: &str = include_str!("console/console.js");

/// Seconds a "trace next call" waits by default (the page offers others up to the budget).
pub(crate) const TRACE_TIMEOUT: &str = "30s";

/// A function and its stats, as `monkit::render::funcs::read` gives them.
type Row = (Func, FuncStats);

/// What the flight recorder holds, by function: its slowest recent call (duration, trace)
/// and its latest failure (end, trace).
#[derive(Default)]
pub(crate) struct Recent(
    HashMap<&'static str, (Option<HeldRef>, Option<HeldRef>)>,
    /// Every held call's trace, so an exemplar of one opens it.
    std::collections::HashSet<u128>,
);

/// A held call as a row links it: a number (its duration, or its end) and its trace.
type HeldRef = (u64, u128);

impl Recent {
    pub(crate) fn of(reg: &monkit::Registry) -> Recent {
        let mut by = Recent::default();
        for h in reg.recent_calls() {
            let s = &h.span;
            by.1.insert(s.start.trace_id);
            let e = by.0.entry(s.start.full_name()).or_default();
            let took = s.finish_unix_ns.saturating_sub(s.start.start_unix_ns);
            match h.why {
                monkit::flight::Why::LatestFailure => {
                    if e.1.is_none_or(|(end, _)| s.finish_unix_ns > end) {
                        e.1 = Some((s.finish_unix_ns, s.start.trace_id));
                    }
                }
                _ => {
                    if e.0.is_none_or(|(d, _)| took > d) {
                        e.0 = Some((took, s.start.trace_id));
                    }
                }
            }
        }
        by
    }
}

fn tags_text(f: &Func) -> String {
    f.tags()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The href that waits for the next call of exactly the function `full_name`.
pub(crate) fn trace_href(full_name: &str, format: &str) -> String {
    let re = format!("^{}$", regex::escape(full_name));
    let q: String = form_urlencoded::byte_serialize(re.as_bytes()).collect();
    format!("/trace/{format}?regex={q}&timeout={TRACE_TIMEOUT}")
}

/// An exemplar's duration in nanoseconds, whole, as `/funcs/json` gives it.
fn value_ns(e: &Exemplar) -> f64 {
    (e.value * 1e9).round()
}

/// The exemplar of `exemplars` in the same histogram bucket as `q_ns` (within a bucket's
/// width, 1.1%), if any: the call that stands for that quantile.
fn exemplar_at(exemplars: &[Exemplar], q_ns: f64) -> Option<&Exemplar> {
    exemplars.iter().find(|e| {
        let v = value_ns(e);
        v > 0.0 && q_ns > 0.0 && (v / q_ns).log2().abs() <= 1.0 / 64.0
    })
}

/// A quantile cell: linked to its exemplar's trace when there is one (through `link`, an
/// outside viewer's URL template, or else the ids on hover).
fn quantile_cell(
    out: &mut String,
    v: Option<f64>,
    exemplars: &[Exemplar],
    recent: &Recent,
    link: Option<&str>,
) {
    let Some(q) = v else {
        cell(out, "n", None, fmt_ns);
        return;
    };
    let Some(e) = exemplar_at(exemplars, q) else {
        cell(out, "n", Some(q), fmt_ns);
        return;
    };
    let trace = format!("{:032x}", e.trace_id);
    let title = format!(
        "exemplar: trace {trace}, span {:016x}, {}",
        e.span_id,
        fmt_ns(value_ns(e))
    );
    let inner = match link {
        // Without an outside viewer, an exemplar the flight recorder holds opens in place.
        None if recent.1.contains(&e.trace_id) => format!(
            r#"<a class="exemplar trace recent" href="/trace/recent/svg?trace_id={trace}" title="{}">{}</a>"#,
            esc(&title),
            esc(&fmt_ns(q))
        ),
        Some(t) => format!(
            r#"<a class="exemplar" href="{}" title="{}">{}</a>"#,
            esc(&t.replace("{trace_id}", &trace)),
            esc(&title),
            esc(&fmt_ns(q))
        ),
        None => format!(
            r#"<span class="exemplar" title="{}">{}</span>"#,
            esc(&title),
            esc(&fmt_ns(q))
        ),
    };
    let _ = write!(
        out,
        r#"<td class="n" data-v="{q}" data-trace="{}">{inner}</td>"#,
        esc(&trace)
    );
}

/// One numeric cell: the JSON value in `data-v` (what sorting and the tests read), formatted
/// text inside.
fn cell(out: &mut String, class: &str, v: Option<f64>, text: impl FnOnce(f64) -> String) {
    match v {
        Some(v) => {
            let _ = write!(
                out,
                r#"<td class="{class}" data-v="{v}">{}</td>"#,
                esc(&text(v))
            );
        }
        None => {
            let _ = write!(out, r#"<td class="{class}" data-v="">–</td>"#);
        }
    }
}

/// A quantile in whole nanoseconds, as `/funcs/json` gives it.
fn quantile(times: &Snapshot, q: f64) -> Option<f64> {
    times.quantile(q).map(f64::round)
}

fn errors_text(s: &FuncStats) -> String {
    let mut v: Vec<(&str, u64)> = s.errors.clone();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut parts: Vec<String> = v.into_iter().map(|(k, n)| format!("{k} {n}")).collect();
    if s.panics > 0 {
        parts.push(format!("panic {}", s.panics));
    }
    if parts.is_empty() {
        "0".to_owned()
    } else {
        parts.join(" · ")
    }
}

/// The callers' and callees' names of each function, by id, from the parent ids.
fn graph(funcs: &[Row]) -> (HashMap<u32, &str>, HashMap<u32, Vec<u32>>) {
    let names: HashMap<u32, &str> = funcs.iter().map(|(f, _)| (f.id(), f.full_name())).collect();
    let mut callees: HashMap<u32, Vec<u32>> = HashMap::new();
    for (f, s) in funcs {
        for p in &s.parents {
            callees.entry(*p).or_default().push(f.id());
        }
    }
    (names, callees)
}

fn name_list(out: &mut String, ids: &[u32], names: &HashMap<u32, &str>, entry: bool) {
    let mut shown: Vec<&str> = ids.iter().filter_map(|i| names.get(i).copied()).collect();
    shown.sort_unstable();
    if entry {
        out.push_str("<li><em>(entry point)</em></li>");
    }
    if shown.is_empty() && !entry {
        out.push_str("<li><em>none seen</em></li>");
    }
    for n in shown {
        let _ = write!(out, "<li>{}</li>", esc(n));
    }
}

fn func_rows(out: &mut String, funcs: &[Row], recent: &Recent, link: Option<&str>) {
    let (names, callees) = graph(funcs);
    let window_s = monkit::stats::recent_window_span().as_secs_f64();
    let mut sorted: Vec<&Row> = funcs.iter().collect();
    sorted.sort_by(|a, b| a.0.full_name().cmp(b.0.full_name()));
    for (f, s) in sorted {
        let id = f.id();
        let full = f.full_name();
        let _ = write!(
            out,
            r#"<tr data-id="{id}" data-full="{}"><td class="name"><details><summary>{}</summary><div class="detail"><h3>Called by</h3><ul>"#,
            esc(full),
            esc(f.name()),
        );
        name_list(out, &s.parents, &names, s.entry);
        out.push_str("</ul><h3>Calls</h3><ul>");
        name_list(
            out,
            callees.get(&id).map_or(&[][..], Vec::as_slice),
            &names,
            false,
        );
        let next = trace_href(full, "svg");
        // The next call slower than the current p99 (of successes), and the next failure.
        let slow = quantile(&s.success_times, 0.99)
            .filter(|p| *p > 0.0)
            .map(|p| {
                format!(
                    r#" · <a class="trace" href="{}">next slower than p99 ({})</a>"#,
                    esc(&format!(
                        "{next}&min_duration={}us",
                        (p / 1e3).ceil() as u64
                    )),
                    esc(&fmt_ns(p))
                )
            })
            .unwrap_or_default();
        // What already happened, opened at once from the flight recorder.
        let mut held = String::new();
        if let Some((slowest, failure)) = recent.0.get(full) {
            if let Some((took, t)) = slowest {
                let _ = write!(
                    held,
                    r#"<a class="trace recent" href="/trace/recent/svg?trace_id={t:032x}">slowest recent call ({})</a>"#,
                    esc(&fmt_ns(*took as f64))
                );
            }
            if let Some((_, t)) = failure {
                if !held.is_empty() {
                    held.push_str(" · ");
                }
                let _ = write!(
                    held,
                    r#"<a class="trace recent" href="/trace/recent/svg?trace_id={t:032x}">latest failure</a>"#
                );
            }
            if !held.is_empty() {
                held = format!("<p>Held: {held}</p>");
            }
        }
        let _ = write!(
            out,
            r#"</ul>{held}<p>Trace <a class="trace" href="{}">next call</a>{slow} · <a class="trace" href="{}">next failure</a> (each waits up to {TRACE_TIMEOUT})</p></div></details></td>"#,
            esc(&next),
            esc(&format!("{next}&outcome=failure")),
        );
        let _ = write!(
            out,
            r#"<td class="scope">{}</td><td class="tags">{}</td>"#,
            esc(f.scope()),
            esc(&tags_text(f)),
        );
        // Calls finished in the recent window (about the last minute), per second.
        let rate =
            (s.success_times.window_count() + s.failure_times.window_count()) as f64 / window_s;
        cell(out, "n", Some(rate), sig3);
        cell(out, "n", Some(s.current as f64), |v| format!("{v}"));
        cell(out, "n", Some(s.highwater as f64), |v| format!("{v}"));
        let failed = (s.errors_total + s.panics) as f64;
        let _ = write!(
            out,
            r#"<td class="errors{}" data-v="{failed}">{}</td>"#,
            if failed > 0.0 { " bad" } else { "" },
            esc(&errors_text(s)),
        );
        busy_cells(out, s);
        for (times, exemplars) in [
            (&s.success_times, &s.success_exemplars),
            (&s.failure_times, &s.failure_exemplars),
        ] {
            cell(out, "n", quantile(times, 0.5), fmt_ns);
            for q in [0.9, 0.99] {
                quantile_cell(out, quantile(times, q), exemplars, recent, link);
            }
        }
        out.push_str("</tr>\n");
    }
}

/// An async function's share of its time spent running (the rest it waited), and its slow
/// polls, marked: a poll that long held a worker thread. A sync function has neither.
fn busy_cells(out: &mut String, s: &FuncStats) {
    let Some(p) = &s.polls else {
        out.push_str(r#"<td class="n busy" data-v="">–</td><td class="n slow" data-v="">–</td>"#);
        return;
    };
    let wall = s.success_times.sum + s.failure_times.sum;
    let busy = p.busy_ns();
    let share = if wall > 0.0 {
        (busy / wall).min(1.0)
    } else {
        0.0
    };
    let _ = write!(
        out,
        r#"<td class="n busy" data-v="{share}" title="{}">{:.0}%</td>"#,
        esc(&format!(
            "running {} · waiting {} · {} polls, {:.1} per call",
            fmt_ns(busy),
            fmt_ns((wall - busy).max(0.0)),
            p.polls,
            p.mean_polls()
        )),
        share * 100.0
    );
    let slow = p.slow_polls;
    let _ = write!(
        out,
        r#"<td class="n slow{}" data-v="{slow}" title="{}">{}</td>"#,
        if slow > 0 { " bad" } else { "" },
        esc(&format!(
            "polls longer than {:?}; longest poll {}",
            monkit::polls::slow_poll(),
            fmt_ns(p.max_poll_ns as f64)
        )),
        if slow > 0 {
            format!("⚠ {slow}")
        } else {
            "0".to_owned()
        }
    );
}

/// The running spans as nested lists, longest-running first.
fn ps_tree(out: &mut String, spans: &[Node<'_>]) {
    let mut sorted: Vec<&Node<'_>> = spans.iter().collect();
    sorted.sort_by_key(|n| std::cmp::Reverse(n.span.elapsed()));
    out.push_str("<ul>");
    for n in sorted {
        let s = n.span;
        let name = s.func().map_or("(unknown function)", |f| f.full_name());
        let mut label = format!(
            r#"<span class="fn">{}</span> <span class="el">{}</span>"#,
            esc(name),
            esc(&fmt_ns(s.elapsed().as_nanos() as f64))
        );
        if n.orphaned {
            label.push_str(r#" <span class="tag">orphaned</span>"#);
        }
        if s.has_remote_parent() {
            label.push_str(r#" <span class="tag">remote parent</span>"#);
        }
        for (k, v) in s.annotations() {
            let _ = write!(
                label,
                r#" <span class="note">{}={}</span>"#,
                esc(&k),
                esc(&v)
            );
        }
        let id = format!("{:016x}", s.span_id);
        if n.children.is_empty() {
            let _ = write!(out, r#"<li data-id="{id}" class="leaf">{label}</li>"#);
        } else {
            let _ = write!(
                out,
                r#"<li data-id="{id}"><details open><summary>{label}</summary>"#
            );
            ps_tree(out, &n.children);
            out.push_str("</details></li>");
        }
    }
    out.push_str("</ul>");
}

fn count_spans(spans: &[Node<'_>]) -> usize {
    spans.iter().map(|n| 1 + count_spans(&n.children)).sum()
}

/// The running spans' part of the page: their tree, or a line saying there are none.
fn running(out: &mut String, ps: &[Node<'_>]) {
    if ps.is_empty() {
        out.push_str("<p><em>No spans running.</em></p>");
    } else {
        ps_tree(out, ps);
    }
}

fn status(funcs: &[Row], ps: &[Node<'_>]) -> String {
    format!(
        "{} functions, {} spans running",
        funcs.len(),
        count_spans(ps)
    )
}

/// The parts of the page that change, rendered as the page renders them, for the script's
/// refresh: `{"rows": <tbody rows>, "running": <span tree>, "status": <text>}`. The script
/// only swaps them in, so every row and span is written here alone.
pub(crate) fn fragment(
    funcs: &[Row],
    spans: &[LiveSpan],
    recent: &Recent,
    objectives: &[Report],
    link: Option<&str>,
) -> String {
    let ps = monkit::render::ps::tree(spans);
    let ps = ps.as_slice();
    let mut rows = String::with_capacity(funcs.len() * 1024);
    func_rows(&mut rows, funcs, recent, link);
    let mut tree = String::new();
    running(&mut tree, ps);
    let mut slo = String::new();
    objective_rows(&mut slo, objectives);
    serde_json::json!({"rows": rows, "running": tree, "objectives": slo, "status": status(funcs, ps)})
        .to_string()
}

/// One row per objective and indicator: the target, the budget left (marked when spent), the
/// burn rates over 5m, 1h and 6h, the alerts burning, and the functions eating the budget.
fn objective_rows(out: &mut String, reports: &[Report]) {
    for r in reports {
        let what = match r.threshold {
            Some(t) => format!("latency ≤ {}", fmt_ns(t.as_nanos() as f64)),
            None => "success".to_owned(),
        };
        let _ = write!(
            out,
            r#"<tr data-objective="{}" data-sli="{}"><th scope="row">{}</th><td>{}</td>"#,
            esc(&r.name),
            r.sli.as_str(),
            esc(&r.name),
            esc(&what),
        );
        cell(out, "n", Some(r.target), |v| {
            format!("{}%", sig3(v * 100.0))
        });
        let spent = if r.budget_remaining < 0.0 { " bad" } else { "" };
        cell(
            out,
            &format!("n budget{spent}"),
            Some(r.budget_remaining),
            |v| format!("{}%", sig3(v * 100.0)),
        );
        for want in ["5m", "1h", "6h"] {
            let rate = r
                .burn_rates
                .iter()
                .find(|b| monkit::slo::rules::window_text(b.0) == want)
                .map(|b| b.1);
            cell(out, "n", rate, |v| format!("{}×", sig3(v)));
        }
        let alerts = if r.alerts.is_empty() {
            "–".to_owned()
        } else {
            let mut a: Vec<&str> = r.alerts.clone();
            a.dedup();
            format!("⚠ {}", a.join(", "))
        };
        let _ = write!(
            out,
            r#"<td class="alerts{}">{}</td><td>{}</td></tr>"#,
            if r.alerts.is_empty() { "" } else { " bad" },
            esc(&alerts),
            esc(&r
                .eaters
                .iter()
                .take(3)
                .map(|(f, n)| format!("{f} {n}"))
                .collect::<Vec<_>>()
                .join(" · ")),
        );
        out.push('\n');
    }
}

/// The console page, from the functions with their stats and the running spans; `links` are
/// the plain pages (path, what).
pub(crate) fn page(
    funcs: &[Row],
    spans: &[LiveSpan],
    recent: &Recent,
    objectives: &[Report],
    links: &[(&str, &str)],
    trace_link: Option<&str>,
) -> String {
    let ps = monkit::render::ps::tree(spans);
    let ps = ps.as_slice();
    let mut out = String::with_capacity(8192 + funcs.len() * 1024);
    head(&mut out, "monkit console");
    let _ = write!(
        out,
        r#"<p aria-live="polite"><span id="status">{}.</span> <noscript>Static view: reload the page for fresh numbers.</noscript></p>
<nav aria-label="Plain pages"><ul>"#,
        esc(&status(funcs, ps)),
    );
    for (path, what) in links {
        let _ = write!(
            out,
            r#"<li><a href="{}" title="{}">{}</a></li>"#,
            esc(path),
            esc(what),
            esc(path.split('?').next().unwrap_or(path)),
        );
    }
    out.push_str(
        r#"</ul></nav>
</header>
<main>
<section id="functions" aria-labelledby="functions-h">
<h2 id="functions-h">Functions</h2>
<div class="tools" hidden><label for="filter">Filter</label> <input id="filter" type="search" placeholder="name, scope or tag" autocomplete="off"> <span id="shown"></span></div>
<div class="scroll">
<table id="funcs">
<thead>
<tr><th scope="col" rowspan="2" data-type="s">Function</th><th scope="col" rowspan="2" data-type="s">Scope</th><th scope="col" rowspan="2" data-type="s">Tags</th><th scope="col" rowspan="2" title="calls finished per second over the recent window (about the last minute)">Rate/s</th><th scope="col" rowspan="2">Current</th><th scope="col" rowspan="2">Highwater</th><th scope="col" rowspan="2">Errors</th><th scope="col" rowspan="2" title="async functions: share of their time spent running (polled); the rest they waited">Busy</th><th scope="col" rowspan="2" title="async functions: polls longer than the slow-poll threshold (MONKIT_SLOW_POLL), each holding a worker thread">Slow polls</th><th scope="colgroup" colspan="3">Successes</th><th scope="colgroup" colspan="3">Failures</th></tr>
<tr><th scope="col">p50</th><th scope="col">p90</th><th scope="col">p99</th><th scope="col">p50</th><th scope="col">p90</th><th scope="col">p99</th></tr>
</thead>
<tbody>
"#,
    );
    func_rows(&mut out, funcs, recent, trace_link);
    out.push_str(
        r#"</tbody>
</table>
</div>
</section>
"#,
    );
    if !objectives.is_empty() {
        out.push_str(
            r#"<section id="objectives" aria-labelledby="objectives-h">
<h2 id="objectives-h">Objectives</h2>
<div class="scroll">
<table id="slo">
<thead>
<tr><th scope="col">Objective</th><th scope="col">Indicator</th><th scope="col">Target</th><th scope="col" title="of the error budget, over the process's life">Budget left</th><th scope="col" title="the bad share over 5 minutes divided by the share allowed">Burn 5m</th><th scope="col">Burn 1h</th><th scope="col">Burn 6h</th><th scope="col" title="the multi-window burn-rate alerts burning now">Alerts</th><th scope="col">Eating the budget</th></tr>
</thead>
<tbody>
"#,
        );
        objective_rows(&mut out, objectives);
        out.push_str("</tbody>\n</table>\n</div>\n</section>\n");
    }
    out.push_str(
        r#"<section id="trace" aria-labelledby="trace-h" hidden>
<h2 id="trace-h">Trace</h2>
<div class="tools"><span id="trace-status" aria-live="polite"></span> <label for="trace-timeout">Wait up to</label> <select id="trace-timeout"><option>10s</option><option selected>30s</option><option>1m</option><option>5m</option></select> <button type="button" id="trace-cancel" disabled>Cancel</button></div>
<div id="trace-view"></div>
</section>
<section id="running" aria-labelledby="running-h">
<h2 id="running-h">Running now</h2>
<div id="ps" class="tree">"#,
    );
    running(&mut out, ps);
    let _ = write!(
        out,
        r#"</div>
</section>
</main>
<script>
{SCRIPT}</script>
</body>
</html>
"#
    );
    out
}

/// A page's start, up to its header's first line: the document head with the stylesheet.
fn head(out: &mut String, title: &str) {
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{}</title>
<style>
{STYLE}</style>
</head>
<body>
<header>
<h1>monkit</h1>
"#,
        esc(title)
    );
}

/// The `/trace/recent` page: what the flight recorder holds, newest first, each linked to its
/// tree; ages against `now_unix_ns`.
pub(crate) fn recent_html(held: &[monkit::flight::HeldCall], now_unix_ns: u64) -> String {
    let mut out = String::with_capacity(2048 + held.len() * 512);
    head(&mut out, "monkit: recent calls");
    out.push_str(
        r#"<p>The slowest calls of each function over the last two windows and its latest failure, held by the flight recorder, newest first. <a href="/">Console</a> · <a href="/trace/recent?format=json">JSON</a></p>
</header>
<main>
<section aria-labelledby="recent-h">
<h2 id="recent-h">Recent calls</h2>
<div class="scroll">
<table id="recent">
<thead><tr><th scope="col">Function</th><th scope="col">Held as</th><th scope="col">Duration</th><th scope="col">Outcome</th><th scope="col">Age</th><th scope="col">Spans</th><th scope="col">Trace</th></tr></thead>
<tbody>
"#,
    );
    if held.is_empty() {
        out.push_str(r#"<tr><td colspan="7">Nothing held yet.</td></tr>"#);
    }
    for h in held {
        let s = &h.span;
        let trace = format!("{:032x}", s.start.trace_id);
        let outcome = match s.outcome {
            monkit::Outcome::Ok => "ok".to_owned(),
            monkit::Outcome::Error(k) => format!("error: {k}"),
            o => o.failure_kind().unwrap_or("failure").to_owned(),
        };
        let _ = writeln!(
            out,
            r#"<tr><th scope="row">{}</th><td>{}</td><td class="num">{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td><a href="/trace/recent/svg?trace_id={trace}">svg</a> <a href="/trace/recent/json?trace_id={trace}">json</a> <code>{trace}</code></td></tr>"#,
            esc(s.start.full_name()),
            esc(&h.why.as_str().replace('_', " ")),
            esc(&fmt_ns(s.duration_ns() as f64)),
            esc(&outcome),
            esc(&fmt_ns(now_unix_ns.saturating_sub(s.finish_unix_ns) as f64)),
            h.spans,
        );
    }
    out.push_str("</tbody>\n</table>\n</div>\n</section>\n</main>\n</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use monkit::{trace::Sampler, Registry};
    use std::time::Duration;

    fn rows(reg: &Registry) -> Vec<Row> {
        monkit::render::funcs::read(reg)
    }

    #[test]
    fn quantiles_link_to_their_exemplars_and_rows_offer_conditional_traces() {
        let reg = Registry::new();
        reg.set_sampler(Sampler::Always);
        let f = reg.scope("s").func("f");
        let g = f.guard();
        let span = monkit::current_span().unwrap();
        std::thread::sleep(Duration::from_millis(3));
        drop(g);
        let trace = format!("{:032x}", span.trace_id());
        let html = page(
            &rows(&reg),
            &[],
            &Recent::default(),
            &[],
            &[],
            Some("https://tempo.example/trace/{trace_id}"),
        );
        assert!(
            html.contains(&format!(
                r#"<a class="exemplar" href="https://tempo.example/trace/{trace}""#
            )),
            "the p99 cell links its exemplar: {html}"
        );
        let plain = page(&rows(&reg), &[], &Recent::default(), &[], &[], None);
        assert!(plain.contains(&format!(
            r#"<span class="exemplar" title="exemplar: trace {trace}"#
        )));
        assert!(
            plain.contains("&amp;min_duration="),
            "next slower than p99: {plain}"
        );
        assert!(plain.contains("&amp;outcome=failure"), "next failure");
    }

    #[test]
    fn escapes_and_formats() {
        let reg = Registry::new();
        let f = reg.scope("s").func_with("f<b>", &[("k", "v")]);
        f.guard().fail("timeout");
        f.guard().fail("timeout");
        f.task(|| std::thread::sleep(Duration::from_micros(50)));
        let rows = rows(&reg);
        let html = page(
            &rows,
            &[],
            &Recent::default(),
            &[],
            &[("/stats", "stats")],
            None,
        );
        assert!(html.contains("<summary>f&lt;b&gt;</summary>"), "{html}");
        let p50 = rows[0].1.success_times.quantile(0.5).unwrap().round();
        assert!(
            html.contains(&format!(r#"data-v="{p50}">{}<"#, fmt_ns(p50))),
            "{html}"
        );
        assert!(html.contains(r#"class="errors bad" data-v="2">timeout 2<"#));
        assert!(
            html.contains("regex=%5Es%5C.f%3Cb%3E%5C%7Bk%3Dv%5C%7D%24"),
            "{html}"
        );
        assert!(html.contains("No spans running"));
    }

    #[test]
    fn refreshes_carry_the_page_markup() {
        let reg = Registry::new();
        let f = reg.scope("s").func_with("f", &[("a", "1"), ("b", "2")]);
        let running = f.guard();
        let spans = reg.running_spans();
        let rows = rows(&reg);
        let html = page(&rows, &spans, &Recent::default(), &[], &[], None);
        let part: serde_json::Value =
            serde_json::from_str(&fragment(&rows, &spans, &Recent::default(), &[], None)).unwrap();
        let rows_part = part["rows"].as_str().unwrap();
        assert!(
            html.contains(rows_part),
            "rows differ from the page: {rows_part}"
        );
        // A running span's elapsed time moves between the two renderings; the rest is the same.
        let span = format!(r#"<li data-id="{:016x}" class="leaf">"#, spans[0].span_id);
        assert!(html.contains(&span) && part["running"].as_str().unwrap().contains(&span));
        // The span tree names a tagged function as the core does.
        assert!(part["running"].as_str().unwrap().contains(">s.f{a=1,b=2}<"));
        assert_eq!(part["status"], "1 functions, 1 spans running");
        drop(running);
    }
}
