//! A captured trace as JSON, and as an SVG timeline.

use crate::{FinishedSpan, Outcome};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt::Write;

fn outcome_json(o: &Outcome) -> Value {
    match o {
        Outcome::Ok => json!({"kind": "ok"}),
        Outcome::Error(k) => json!({"kind": "error", "error": k}),
        Outcome::Panic => json!({"kind": "panic"}),
        Outcome::Canceled => json!({"kind": "canceled"}),
    }
}

/// Tags as a JSON object.
pub(crate) fn tags_json(t: &crate::Tags) -> Value {
    Value::Object(
        t.iter()
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect(),
    )
}

/// The spans as JSON (schema in the README): ids in lowercase hex, times in Unix nanoseconds.
pub fn json(spans: &[FinishedSpan]) -> Value {
    Value::Array(
        spans
            .iter()
            .map(|s| {
                json!({
                    "id": format!("{:016x}", s.span_id),
                    "parent_id": s.parent_id.map(|p| format!("{p:016x}")),
                    "trace_id": format!("{:032x}", s.trace_id),
                    "func": {"scope": s.scope, "name": s.name, "tags": tags_json(s.tags)},
                    "start": s.start_unix_ns,
                    "finish": s.finish_unix_ns,
                    "duration_ns": s.finish_unix_ns.saturating_sub(s.start_unix_ns),
                    "outcome": outcome_json(&s.outcome),
                    "err": match s.outcome { Outcome::Error(k) => Some(k), _ => None },
                    "panicked": s.outcome == Outcome::Panic,
                    "canceled": s.outcome == Outcome::Canceled,
                    "annotations": s.annotations.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn fmt_ns(ns: u64) -> String {
    format!("{:.3?}", std::time::Duration::from_nanos(ns))
}

const WIDTH: f64 = 1200.0;
const ROW: f64 = 18.0;
const TOP: f64 = 40.0;

/// Rows: a span goes on the first row below its parent's where it overlaps nothing, so nested
/// spans sit under their parents and overlapping ones on separate rows.
fn layout(spans: &[FinishedSpan]) -> Vec<usize> {
    let index: HashMap<u64, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        match s.parent_id.and_then(|p| index.get(&p)) {
            Some(&p) if p != i => children.entry(p).or_default().push(i),
            _ => roots.push(i),
        }
    }
    let by_start =
        |v: &mut Vec<usize>| v.sort_by_key(|&i| (spans[i].start_unix_ns, spans[i].span_id));
    by_start(&mut roots);
    for c in children.values_mut() {
        by_start(c);
    }
    let mut row = vec![usize::MAX; spans.len()];
    let mut busy: Vec<Vec<(u64, u64)>> = Vec::new();
    let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|&r| (r, 0)).collect();
    while let Some((i, min_row)) = stack.pop() {
        if row[i] != usize::MAX {
            continue;
        }
        let (a, b) = (
            spans[i].start_unix_ns,
            spans[i].finish_unix_ns.max(spans[i].start_unix_ns + 1),
        );
        let mut r = min_row;
        loop {
            if r == busy.len() {
                busy.push(Vec::new());
            }
            if busy[r].iter().all(|&(x, y)| b <= x || y <= a) {
                break;
            }
            r += 1;
        }
        busy[r].push((a, b));
        row[i] = r;
        if let Some(c) = children.get(&i) {
            stack.extend(c.iter().rev().map(|&c| (c, r + 1)));
        }
    }
    row
}

/// A self-contained SVG 1.1 timeline: a bar per span on a time axis, coloured by outcome
/// (ok blue, error orange, canceled yellow, panic red), a tooltip with name, annotations,
/// duration and start offset, a time scale, and the parent and children of the span under the
/// pointer highlighted.
pub fn svg(spans: &[FinishedSpan]) -> String {
    let t0 = spans.iter().map(|s| s.start_unix_ns).min().unwrap_or(0);
    let t1 = spans
        .iter()
        .map(|s| s.finish_unix_ns)
        .max()
        .unwrap_or(t0)
        .max(t0 + 1);
    let span_ns = (t1 - t0) as f64;
    let rows = layout(spans);
    let nrows = rows
        .iter()
        .copied()
        .filter(|&r| r != usize::MAX)
        .max()
        .map_or(1, |r| r + 1);
    let height = TOP + nrows as f64 * ROW + 20.0;
    let x = |t: u64| (t.saturating_sub(t0)) as f64 / span_ns * WIDTH;
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{w}" height="{height}" viewBox="0 0 {w} {height}" font-family="monospace" font-size="11">
<style type="text/css"><![CDATA[
rect.span {{ stroke: #333; stroke-width: 0.5; }}
rect.ok {{ fill: #6fa8dc; }} rect.error {{ fill: #f6a04d; }}
rect.canceled {{ fill: #ffe066; }} rect.panic {{ fill: #e06666; }}
g.span:hover rect.span {{ stroke: #000; stroke-width: 2; }}
rect.related {{ stroke: #000; stroke-width: 2; stroke-dasharray: 3 2; }}
text.label {{ pointer-events: none; }}
]]></style>
<script type="text/ecmascript"><![CDATA[
function rel(evt, on) {{
  var g = evt.currentTarget, id = g.getAttribute('data-id'), p = g.getAttribute('data-parent');
  var all = document.getElementsByTagName('g');
  for (var i = 0; i < all.length; i++) {{
    var e = all[i];
    if (e.getAttribute('data-id') === p || e.getAttribute('data-parent') === id) {{
      var r = e.getElementsByTagName('rect')[0];
      var c = r.getAttribute('class').replace(' related', '');
      r.setAttribute('class', on ? c + ' related' : c);
    }}
  }}
}}
]]></script>
<rect x="0" y="0" width="{w}" height="{height}" fill="#ffffff"/>
"##,
        w = WIDTH,
    );
    // Time scale: ten ticks.
    for i in 0..=10 {
        let tx = WIDTH * i as f64 / 10.0;
        let label = fmt_ns((span_ns * i as f64 / 10.0) as u64);
        let anchor = match i {
            0 => "start",
            10 => "end",
            _ => "middle",
        };
        let _ = writeln!(
            out,
            r##"<line x1="{tx:.1}" y1="22" x2="{tx:.1}" y2="{h:.1}" stroke="#dddddd"/><text x="{tx:.1}" y="16" text-anchor="{anchor}">{label}</text>"##,
            h = height - 10.0,
        );
    }
    for (i, s) in spans.iter().enumerate() {
        let class = match s.outcome {
            Outcome::Ok => "ok",
            Outcome::Error(_) => "error",
            Outcome::Canceled => "canceled",
            Outcome::Panic => "panic",
        };
        let (a, b) = (x(s.start_unix_ns), x(s.finish_unix_ns));
        let w = (b - a).max(1.0);
        let y = TOP + rows[i] as f64 * ROW;
        let name = s.full_name();
        let mut tip = format!(
            "{name}\nDuration: {}\nStarted: +{}\nOutcome: {}",
            fmt_ns(s.finish_unix_ns.saturating_sub(s.start_unix_ns)),
            fmt_ns(s.start_unix_ns - t0),
            match s.outcome {
                Outcome::Ok => "ok".to_owned(),
                Outcome::Error(k) => format!("error {k}"),
                Outcome::Panic => "panic".to_owned(),
                Outcome::Canceled => "canceled".to_owned(),
            }
        );
        for (k, v) in &s.annotations {
            let _ = write!(tip, "\n{k}: {v}");
        }
        let parent = s.parent_id.map(|p| format!("{p:016x}")).unwrap_or_default();
        let _ = write!(
            out,
            r#"<g class="span" data-id="{:016x}" data-parent="{parent}" onmouseover="rel(evt, true)" onmouseout="rel(evt, false)"><title>{}</title><rect class="span {class}" x="{a:.2}" y="{y:.1}" width="{w:.2}" height="{h:.1}"/>"#,
            s.span_id,
            xml_escape(&tip),
            h = ROW - 2.0,
        );
        // A label where it fits (about 7 px a character).
        let chars = ((w - 4.0) / 7.0) as usize;
        if chars >= 4 {
            let label: String = if name.chars().count() > chars {
                name.chars()
                    .take(chars.saturating_sub(1))
                    .chain(['…'])
                    .collect()
            } else {
                name
            };
            let _ = write!(
                out,
                r#"<text class="label" x="{:.2}" y="{:.1}">{}</text>"#,
                a + 2.0,
                y + ROW - 6.0,
                xml_escape(&label)
            );
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    static NO_TAGS: crate::Tags = crate::Tags::empty();

    fn span(id: u64, parent: Option<u64>, a: u64, b: u64) -> FinishedSpan {
        FinishedSpan {
            trace_id: 1,
            span_id: id,
            parent_id: parent,
            scope: "s",
            name: "f<&>",
            tags: &NO_TAGS,
            start_unix_ns: a,
            finish_unix_ns: b,
            outcome: Outcome::Ok,
            annotations: vec![("k".into(), "\"v\"\u{1}".into())],
            sampled: false,
        }
    }

    #[test]
    fn rows_nest_and_separate_overlaps() {
        let spans = vec![
            span(1, None, 0, 100),
            span(2, Some(1), 10, 50),
            span(3, Some(1), 20, 60), // overlaps 2
            span(4, Some(1), 70, 90), // fits beside 2
        ];
        assert_eq!(layout(&spans), vec![0, 1, 2, 1]);
        let svg = svg(&spans);
        assert!(svg.contains("f&lt;&amp;&gt;"));
        assert!(!svg.contains('\u{1}'));
    }
}
