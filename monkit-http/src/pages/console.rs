//! The console at `/`: one HTML page for a person in a browser. The page itself is a plain
//! table of every function, the running spans as a tree and links to every plain page, so it
//! works with JavaScript off. With JavaScript its script (`console/console.js`, inlined with
//! the stylesheet: nothing is fetched from outside the process) makes the table sortable and
//! filterable, refreshes it and the span tree from `/funcs/json` and `/ps/json` every few
//! seconds, and shows "trace next call" results from `/trace/svg` in place.
//!
//! The markup is written here alone: the first rendering and every refresh
//! (`/console/fragment`, which the script swaps in) come from the same functions over the
//! same JSON values, so the page and its refreshes cannot disagree.

// Durations and numbers read as in the trace SVG; the script's `fmtNs` and `sig3` say the same.
use monkit::render::format::{duration as fmt_ns, significant as sig3, xml_escape as esc};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Write;

const STYLE: &str = include_str!("console/console.css");
const SCRIPT: &str = include_str!("console/console.js");

/// Seconds a "trace next call" waits by default (the page offers others up to the budget).
pub(crate) const TRACE_TIMEOUT: &str = "30s";

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn tags_text(tags: &Value) -> String {
    tags.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The href that waits for the next call of exactly the function `full_name`.
pub(crate) fn trace_href(full_name: &str, format: &str) -> String {
    let re = format!("^{}$", regex::escape(full_name));
    let q: String = form_urlencoded::byte_serialize(re.as_bytes()).collect();
    format!("/trace/{format}?regex={q}&timeout={TRACE_TIMEOUT}")
}

/// The exemplar of `exemplars` in the same histogram bucket as `q_ns` (within a bucket's
/// width, 1.1%), if any: the call that stands for that quantile.
fn exemplar_at(exemplars: &Value, q_ns: f64) -> Option<&Value> {
    exemplars.as_array()?.iter().find(|e| {
        let v = num(&e["value_ns"]);
        v > 0.0 && q_ns > 0.0 && (v / q_ns).log2().abs() <= 1.0 / 64.0
    })
}

/// A quantile cell: linked to its exemplar's trace when there is one (through `link`, an
/// outside viewer's URL template, or else the ids on hover).
fn quantile_cell(out: &mut String, v: Option<f64>, exemplars: &Value, link: Option<&str>) {
    let Some(q) = v else {
        cell(out, "n", None, fmt_ns);
        return;
    };
    let Some(e) = exemplar_at(exemplars, q) else {
        cell(out, "n", Some(q), fmt_ns);
        return;
    };
    let trace = e["trace_id"].as_str().unwrap_or_default();
    let title = format!(
        "exemplar: trace {trace}, span {}, {}",
        e["span_id"].as_str().unwrap_or_default(),
        fmt_ns(num(&e["value_ns"]))
    );
    let inner = match link {
        Some(t) => format!(
            r#"<a class="exemplar" href="{}" title="{}">{}</a>"#,
            esc(&t.replace("{trace_id}", trace)),
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
        esc(trace)
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

fn quantile(times: &Value, q: &str) -> Option<f64> {
    times.get("quantiles")?.get(q)?.as_f64()
}

fn errors_text(f: &Value) -> String {
    let mut parts: Vec<String> = f
        .get("errors")
        .and_then(Value::as_object)
        .map(|m| {
            let mut v: Vec<(&String, u64)> = m
                .iter()
                .map(|(k, n)| (k, n.as_u64().unwrap_or(0)))
                .collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            v.into_iter().map(|(k, n)| format!("{k} {n}")).collect()
        })
        .unwrap_or_default();
    let panics = num(&f["panics"]);
    if panics > 0.0 {
        parts.push(format!("panic {panics}"));
    }
    if parts.is_empty() {
        "0".to_owned()
    } else {
        parts.join(" · ")
    }
}

/// The callers' and callees' names of each function, by id, from the parent ids.
fn graph(funcs: &[Value]) -> (HashMap<u64, &str>, HashMap<u64, Vec<u64>>) {
    let names: HashMap<u64, &str> = funcs
        .iter()
        .filter_map(|f| Some((f["id"].as_u64()?, f["full_name"].as_str()?)))
        .collect();
    let mut callees: HashMap<u64, Vec<u64>> = HashMap::new();
    for f in funcs {
        let Some(id) = f["id"].as_u64() else { continue };
        for p in f["parent_ids"].as_array().into_iter().flatten() {
            if let Some(p) = p.as_u64() {
                callees.entry(p).or_default().push(id);
            }
        }
    }
    (names, callees)
}

fn name_list(out: &mut String, ids: &[u64], names: &HashMap<u64, &str>, entry: bool) {
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

fn func_rows(out: &mut String, funcs: &[Value], link: Option<&str>) {
    let (names, callees) = graph(funcs);
    let mut sorted: Vec<&Value> = funcs.iter().collect();
    sorted.sort_by(|a, b| {
        a["full_name"]
            .as_str()
            .unwrap_or_default()
            .cmp(b["full_name"].as_str().unwrap_or_default())
    });
    for f in sorted {
        let id = f["id"].as_u64().unwrap_or(0);
        let full = f["full_name"].as_str().unwrap_or_default();
        let _ = write!(
            out,
            r#"<tr data-id="{id}" data-full="{}"><td class="name"><details><summary>{}</summary><div class="detail"><h3>Called by</h3><ul>"#,
            esc(full),
            esc(f["name"].as_str().unwrap_or_default()),
        );
        let parents: Vec<u64> = f["parent_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .collect();
        name_list(out, &parents, &names, f["entry"].as_bool().unwrap_or(false));
        out.push_str("</ul><h3>Calls</h3><ul>");
        name_list(
            out,
            callees.get(&id).map_or(&[][..], Vec::as_slice),
            &names,
            false,
        );
        let next = trace_href(full, "svg");
        // The next call slower than the current p99 (of successes), and the next failure.
        let slow = quantile(&f["success_times"], "0.99")
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
        let _ = write!(
            out,
            r#"</ul><p>Trace <a class="trace" href="{}">next call</a>{slow} · <a class="trace" href="{}">next failure</a> (each waits up to {TRACE_TIMEOUT})</p></div></details></td>"#,
            esc(&next),
            esc(&format!("{next}&outcome=failure")),
        );
        let _ = write!(
            out,
            r#"<td class="scope">{}</td><td class="tags">{}</td>"#,
            esc(f["package"].as_str().unwrap_or_default()),
            esc(&tags_text(&f["tags"])),
        );
        cell(out, "n", f["calls_per_second"].as_f64(), sig3);
        cell(out, "n", f["current"].as_f64(), |v| format!("{v}"));
        cell(out, "n", f["highwater"].as_f64(), |v| format!("{v}"));
        let failed = num(&f["errors_total"]) + num(&f["panics"]);
        let _ = write!(
            out,
            r#"<td class="errors{}" data-v="{failed}">{}</td>"#,
            if failed > 0.0 { " bad" } else { "" },
            esc(&errors_text(f)),
        );
        for (times, exemplars) in [
            ("success_times", "success_exemplars"),
            ("failure_times", "failure_exemplars"),
        ] {
            cell(out, "n", quantile(&f[times], "0.50"), fmt_ns);
            for q in ["0.90", "0.99"] {
                quantile_cell(out, quantile(&f[times], q), &f[exemplars], link);
            }
        }
        out.push_str("</tr>\n");
    }
}

/// The running spans as nested lists, longest-running first.
fn ps_tree(out: &mut String, spans: &[Value]) {
    let mut sorted: Vec<&Value> = spans.iter().collect();
    sorted.sort_by(|a, b| num(&b["elapsed_ns"]).total_cmp(&num(&a["elapsed_ns"])));
    out.push_str("<ul>");
    for s in sorted {
        let name = s["func"]["full_name"]
            .as_str()
            .unwrap_or("(unknown function)");
        let mut label = format!(
            r#"<span class="fn">{}</span> <span class="el">{}</span>"#,
            esc(name),
            esc(&fmt_ns(num(&s["elapsed_ns"])))
        );
        if s["orphaned"].as_bool() == Some(true) {
            label.push_str(r#" <span class="tag">orphaned</span>"#);
        }
        if s["remote_parent"].as_bool() == Some(true) {
            label.push_str(r#" <span class="tag">remote parent</span>"#);
        }
        for a in s["annotations"].as_array().into_iter().flatten() {
            let _ = write!(
                label,
                r#" <span class="note">{}={}</span>"#,
                esc(a[0].as_str().unwrap_or_default()),
                esc(a[1].as_str().unwrap_or_default())
            );
        }
        let id = esc(s["id"].as_str().unwrap_or_default());
        match s["children"].as_array().filter(|c| !c.is_empty()) {
            Some(kids) => {
                let _ = write!(
                    out,
                    r#"<li data-id="{id}"><details open><summary>{label}</summary>"#
                );
                ps_tree(out, kids);
                out.push_str("</details></li>");
            }
            None => {
                let _ = write!(out, r#"<li data-id="{id}" class="leaf">{label}</li>"#);
            }
        }
    }
    out.push_str("</ul>");
}

fn count_spans(spans: &[Value]) -> usize {
    spans
        .iter()
        .map(|s| 1 + count_spans(s["children"].as_array().map_or(&[][..], Vec::as_slice)))
        .sum()
}

/// The running spans' part of the page: their tree, or a line saying there are none.
fn running(out: &mut String, ps: &[Value]) {
    if ps.is_empty() {
        out.push_str("<p><em>No spans running.</em></p>");
    } else {
        ps_tree(out, ps);
    }
}

fn status(funcs: &[Value], ps: &[Value]) -> String {
    format!(
        "{} functions, {} spans running",
        funcs.len(),
        count_spans(ps)
    )
}

/// The parts of the page that change, rendered as the page renders them, for the script's
/// refresh: `{"rows": <tbody rows>, "running": <span tree>, "status": <text>}`. The script
/// only swaps them in, so every row and span is written here alone.
pub(crate) fn fragment(funcs: &Value, ps: &Value, link: Option<&str>) -> Value {
    let funcs = funcs.as_array().map_or(&[][..], Vec::as_slice);
    let ps = ps.as_array().map_or(&[][..], Vec::as_slice);
    let mut rows = String::with_capacity(funcs.len() * 1024);
    func_rows(&mut rows, funcs, link);
    let mut tree = String::new();
    running(&mut tree, ps);
    serde_json::json!({"rows": rows, "running": tree, "status": status(funcs, ps)})
}

/// The console page, from `/funcs/json`'s and `/ps/json`'s values; `links` are the plain
/// pages (path, what).
pub(crate) fn page(
    funcs: &Value,
    ps: &Value,
    links: &[(&str, &str)],
    trace_link: Option<&str>,
) -> String {
    let funcs = funcs.as_array().map_or(&[][..], Vec::as_slice);
    let ps = ps.as_array().map_or(&[][..], Vec::as_slice);
    let mut out = String::with_capacity(8192 + funcs.len() * 1024);
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>monkit console</title>
<style>
{STYLE}</style>
</head>
<body>
<header>
<h1>monkit</h1>
<p aria-live="polite"><span id="status">{}.</span> <noscript>Static view: reload the page for fresh numbers.</noscript></p>
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
<tr><th scope="col" rowspan="2" data-type="s">Function</th><th scope="col" rowspan="2" data-type="s">Scope</th><th scope="col" rowspan="2" data-type="s">Tags</th><th scope="col" rowspan="2" title="calls finished per second over the recent window (about the last minute)">Rate/s</th><th scope="col" rowspan="2">Current</th><th scope="col" rowspan="2">Highwater</th><th scope="col" rowspan="2">Errors</th><th scope="colgroup" colspan="3">Successes</th><th scope="colgroup" colspan="3">Failures</th></tr>
<tr><th scope="col">p50</th><th scope="col">p90</th><th scope="col">p99</th><th scope="col">p50</th><th scope="col">p90</th><th scope="col">p99</th></tr>
</thead>
<tbody>
"#,
    );
    func_rows(&mut out, funcs, trace_link);
    out.push_str(
        r#"</tbody>
</table>
</div>
</section>
<section id="trace" aria-labelledby="trace-h" hidden>
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantiles_link_to_their_exemplars_and_rows_offer_conditional_traces() {
        let funcs = json!([{
            "id": 0, "package": "s", "name": "f", "full_name": "s.f",
            "tags": {}, "parent_ids": [], "entry": true, "calls_per_second": 1.0,
            "current": 0, "highwater": 1, "errors_total": 0, "panics": 0, "errors": {},
            "success_times": {"quantiles": {"0.50": 1000, "0.90": 2_000_000, "0.99": 40_000_000}},
            "success_exemplars": [
                {"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331",
                 "value_ns": 40_100_000, "unix_nanos": 1},
                {"trace_id": "ffffffffffffffffffffffffffffffff", "span_id": "0000000000000001",
                 "value_ns": 9_000_000, "unix_nanos": 2}
            ],
            "failure_times": {}
        }]);
        let html = page(
            &funcs,
            &json!([]),
            &[],
            Some("https://tempo.example/trace/{trace_id}"),
        );
        assert!(
            html.contains(r#"<a class="exemplar" href="https://tempo.example/trace/0af7651916cd43dd8448eb211c80319c""#),
            "the p99 cell links its exemplar: {html}"
        );
        assert!(
            !html.contains("tempo.example/trace/ffff"),
            "an exemplar of another bucket is not the p90's"
        );
        let plain = page(&funcs, &json!([]), &[], None);
        assert!(plain.contains(
            r#"<span class="exemplar" title="exemplar: trace 0af7651916cd43dd8448eb211c80319c"#
        ));
        assert!(
            plain.contains("&amp;min_duration=40000us"),
            "next slower than p99: {plain}"
        );
        assert!(plain.contains("&amp;outcome=failure"), "next failure");
    }

    #[test]
    fn escapes_and_formats() {
        let funcs = json!([{
            "id": 0, "package": "s", "name": "f<b>", "full_name": "s.f<b>{k=v}",
            "tags": {"k": "v"}, "parent_ids": [], "entry": true, "calls_per_second": 1.5,
            "current": 0, "highwater": 1, "errors_total": 2, "panics": 0,
            "errors": {"timeout": 2},
            "success_times": {"quantiles": {"0.50": 1500, "0.90": 2_000_000, "0.99": 3_000_000_000u64}},
            "failure_times": {}
        }]);
        let html = page(&funcs, &json!([]), &[("/stats", "stats")], None);
        assert!(html.contains("<summary>f&lt;b&gt;</summary>"));
        assert!(html.contains(r#"data-v="1500">1.5 µs<"#), "{html}");
        assert!(html.contains(r#"data-v="2000000">2 ms<"#));
        assert!(html.contains(r#"data-v="3000000000">3 s<"#));
        assert!(html.contains(r#"class="errors bad" data-v="2">timeout 2<"#));
        assert!(
            html.contains("regex=%5Es%5C.f%3Cb%3E%5C%7Bk%3Dv%5C%7D%24"),
            "{html}"
        );
        assert!(html.contains("No spans running"));
    }

    #[test]
    fn refreshes_carry_the_page_markup() {
        let funcs = json!([{
            "id": 3, "package": "s", "name": "f", "full_name": "s.f{a=1,b=2}",
            "tags": {"a": "1", "b": "2"}, "parent_ids": [], "entry": true,
            "current": 1, "highwater": 1, "errors_total": 0, "panics": 0, "errors": {},
            "success_times": {}, "failure_times": {}
        }]);
        let ps = json!([{
            "id": "00000000000000aa", "elapsed_ns": 1000, "children": [],
            "func": {"scope": "s", "name": "f", "tags": {"a": "1", "b": "2"},
                     "full_name": "s.f{a=1,b=2}"}
        }]);
        let html = page(&funcs, &ps, &[], None);
        let part = fragment(&funcs, &ps, None);
        for key in ["rows", "running"] {
            let piece = part[key].as_str().unwrap();
            assert!(html.contains(piece), "{key} differs from the page: {piece}");
        }
        // The span tree names a tagged function as the core does.
        assert!(part["running"].as_str().unwrap().contains(">s.f{a=1,b=2}<"));
        assert_eq!(part["status"], "1 functions, 1 spans running");
    }
}
