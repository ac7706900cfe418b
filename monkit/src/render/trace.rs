//! A captured trace as JSON, and as an SVG timeline.

use crate::render::format::{duration as fmt_ns, fmt_in, unit_for, xml_escape};
use crate::stats::Outcome;
use crate::trace::FinishedSpan;
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
pub(crate) fn tags_json(t: &crate::stats::Tags) -> Value {
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
                    "id": format!("{:016x}", s.start.span_id),
                    "parent_id": s.start.parent_id.map(|p| format!("{p:016x}")),
                    "trace_id": format!("{:032x}", s.start.trace_id),
                    "func": {"scope": s.start.scope(), "name": s.start.name(), "tags": tags_json(s.start.tags())},
                    "start": s.start.start_unix_ns,
                    "finish": s.finish_unix_ns,
                    "duration_ns": s.finish_unix_ns.saturating_sub(s.start.start_unix_ns),
                    "outcome": outcome_json(&s.outcome),
                    "err": match s.outcome { Outcome::Error(k) => Some(k), _ => None },
                    "error_text": s.error,
                    "panicked": s.outcome == Outcome::Panic,
                    "canceled": s.outcome == Outcome::Canceled,
                    "annotations": s.annotations.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

/// A tick step of 1, 2 or 5 times a power of ten giving about eight ticks over `span_ns`.
fn tick_step(span_ns: f64) -> f64 {
    let raw = (span_ns / 8.0).max(1.0);
    let pow = 10f64.powi(raw.log10().floor() as i32);
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * pow)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * pow)
}

const WIDTH: f64 = 1200.0;
/// The narrowest bar drawn, in pixels: a 1 µs span in a 20 ms trace stays visible and clickable
/// for its tooltip, and the layout keeps that much room for it on its row.
const MIN_BAR: f64 = 4.0;
const ROW: f64 = 18.0;
/// Below the header line and the time axis.
const TOP: f64 = 58.0;

/// Rows: a span goes on the first row below its parent's where it overlaps nothing, so nested
/// spans sit under their parents and overlapping ones on separate rows. A span takes at least
/// `min_ns` of its row (what the narrowest bar covers), so no drawn bar hides another.
fn layout(spans: &[FinishedSpan], min_ns: u64) -> Vec<usize> {
    let index: HashMap<u64, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.start.span_id, i))
        .collect();
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        match s.start.parent_id.and_then(|p| index.get(&p)) {
            Some(&p) if p != i => children.entry(p).or_default().push(i),
            _ => roots.push(i),
        }
    }
    let by_start = |v: &mut Vec<usize>| {
        v.sort_by_key(|&i| (spans[i].start.start_unix_ns, spans[i].start.span_id))
    };
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
            spans[i].start.start_unix_ns,
            spans[i]
                .finish_unix_ns
                .max(spans[i].start.start_unix_ns + min_ns.max(1)),
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
    let t0 = spans
        .iter()
        .map(|s| s.start.start_unix_ns)
        .min()
        .unwrap_or(0);
    let t1 = spans
        .iter()
        .map(|s| s.finish_unix_ns)
        .max()
        .unwrap_or(t0)
        .max(t0 + 1);
    let span_ns = (t1 - t0) as f64;
    let rows = layout(spans, (span_ns * MIN_BAR / WIDTH).ceil() as u64);
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
rect.ok {{ fill: #6fa8dc; }} rect.error {{ fill: #f6a04d; stroke: #b00000; stroke-width: 2; }}
rect.canceled {{ fill: #ffe066; stroke: #8a6d00; stroke-width: 1.5; stroke-dasharray: 4 2; }}
rect.panic {{ fill: #e06666; stroke: #700000; stroke-width: 2.5; }}
g.span:hover rect.span {{ stroke: #000; stroke-width: 2; }}
rect.related {{ stroke: #000; stroke-width: 2; stroke-dasharray: 3 2; }}
text.label {{ pointer-events: none; }} text.failed {{ fill: #700000; font-weight: bold; }}
text.header {{ font-size: 13px; }}
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
    // The header: which trace, from which call, how long, how many spans, how many failed.
    let ids: std::collections::HashSet<u64> = spans.iter().map(|s| s.start.span_id).collect();
    let root = spans
        .iter()
        .filter(|s| s.start.parent_id.is_none_or(|p| !ids.contains(&p)))
        .min_by_key(|s| (s.start.start_unix_ns, s.start.span_id));
    let failed = spans.iter().filter(|s| s.outcome != Outcome::Ok).count();
    let _ = writeln!(
        out,
        r#"<text class="header" x="0" y="14">trace {} · {} · {} · {} span{}{}</text>"#,
        spans
            .first()
            .map_or_else(|| "-".to_owned(), |s| format!("{:032x}", s.start.trace_id)),
        xml_escape(root.map_or("(no spans)", |r| r.start.full_name())),
        fmt_ns((t1 - t0) as f64),
        spans.len(),
        if spans.len() == 1 { "" } else { "s" },
        match failed {
            0 => String::new(),
            n => format!(" · {n} failed"),
        },
    );
    // The time axis: ticks at round steps, all in the unit of the step.
    let step = tick_step(span_ns);
    let unit = unit_for(step);
    let ticks = (span_ns / step).floor() as u64;
    for i in 0..=ticks {
        let at = step * i as f64;
        let tx = at / span_ns * WIDTH;
        let anchor = if i == 0 {
            "start"
        } else if tx > WIDTH - 30.0 {
            "end"
        } else {
            "middle"
        };
        let label = if i == 0 {
            "0".to_owned()
        } else {
            fmt_in(at, unit)
        };
        let _ = writeln!(
            out,
            r##"<line x1="{tx:.1}" y1="40" x2="{tx:.1}" y2="{h:.1}" stroke="#dddddd"/><text x="{tx:.1}" y="34" text-anchor="{anchor}">{label}</text>"##,
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
        let (a, b) = (x(s.start.start_unix_ns), x(s.finish_unix_ns));
        let w = (b - a).max(MIN_BAR);
        let y = TOP + rows[i] as f64 * ROW;
        let name = s.start.full_name();
        let took = fmt_ns(s.finish_unix_ns.saturating_sub(s.start.start_unix_ns) as f64);
        let outcome = match s.outcome {
            Outcome::Ok => "ok".to_owned(),
            Outcome::Error(k) => format!("error {k}"),
            Outcome::Panic => "panic".to_owned(),
            Outcome::Canceled => "canceled".to_owned(),
        };
        let mut tip = format!(
            "{name}\nDuration: {took}\nStarted: +{}\nOutcome: {outcome}",
            fmt_ns((s.start.start_unix_ns - t0) as f64),
        );
        if let Some(e) = &s.error {
            let _ = write!(tip, "\nError: {e}");
        }
        for (k, v) in &s.annotations {
            let _ = write!(tip, "\n{k}: {v}");
        }
        let parent = s
            .start
            .parent_id
            .map(|p| format!("{p:016x}"))
            .unwrap_or_default();
        let _ = write!(
            out,
            r#"<g class="span" data-id="{:016x}" data-parent="{parent}" onmouseover="rel(evt, true)" onmouseout="rel(evt, false)"><title>{}</title><rect class="span {class}" x="{a:.2}" y="{y:.1}" width="{w:.2}" height="{h:.1}"/>"#,
            s.start.span_id,
            xml_escape(&tip),
            h = ROW - 2.0,
        );
        // A label where it fits (about 7 px a character): the name and duration, failures
        // marked with their outcome; as much of that as fits, the duration kept first.
        let mark = match s.outcome {
            Outcome::Ok => String::new(),
            _ => format!("✗ {outcome} "),
        };
        let full = format!("{mark}{name} {took}");
        let short = format!("{mark}{took}");
        let chars = ((w - 4.0) / 7.0) as usize;
        let label = if full.chars().count() <= chars {
            Some(full)
        } else if short.chars().count() <= chars {
            Some(short)
        } else if chars >= 1 && s.outcome != Outcome::Ok {
            Some("✗".to_owned())
        } else {
            None
        };
        if let Some(label) = label {
            let _ = write!(
                out,
                r#"<text class="label{}" x="{:.2}" y="{:.1}">{}</text>"#,
                if s.outcome == Outcome::Ok {
                    ""
                } else {
                    " failed"
                },
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

    static NAMES: std::sync::LazyLock<crate::stats::FuncName> = std::sync::LazyLock::new(|| {
        crate::stats::FuncName::new("s", "f<&>", crate::stats::Tags::default())
    });

    fn span(id: u64, parent: Option<u64>, a: u64, b: u64) -> FinishedSpan {
        FinishedSpan::new(
            crate::trace::observe::SpanStart::new(1, id, parent, &NAMES, a, false),
            b,
            Outcome::Ok,
            vec![("k".into(), "\"v\"\u{1}".into())],
        )
    }

    #[test]
    fn rows_nest_and_separate_overlaps() {
        let spans = vec![
            span(1, None, 0, 100),
            span(2, Some(1), 10, 50),
            span(3, Some(1), 20, 60), // overlaps 2
            span(4, Some(1), 70, 90), // fits beside 2
        ];
        assert_eq!(layout(&spans, 1), vec![0, 1, 2, 1]);
        let svg = svg(&spans);
        assert!(svg.contains("f&lt;&amp;&gt;"));
        assert!(!svg.contains('\u{1}'));
        assert!(
            svg.contains("· s.f&lt;&amp;&gt; · 100 ns · 4 spans</text>"),
            "{svg}"
        );
    }

    /// Every span of a trace is drawn where it can be seen: 1 µs spans inside a 20 ms root
    /// each get a bar of at least the minimum width, and no two bars of one row overlap.
    #[test]
    fn every_span_is_drawn_visibly() {
        let mut spans = vec![span(1, None, 0, 20_000_000)];
        for i in 0..40u64 {
            // One microsecond each, five microseconds apart: far narrower than a pixel.
            let at = 1_000_000 + i * 5_000;
            spans.push(span(10 + i, Some(1), at, at + 1_000));
        }
        let svg = svg(&spans);
        let bars: Vec<(f64, f64, f64)> = svg
            .split("<rect class=\"span ")
            .skip(1)
            .map(|r| {
                let attr = |name: &str| -> f64 {
                    let v = r.split(&format!("{name}=\"")).nth(1).unwrap();
                    v[..v.find('"').unwrap()].parse().unwrap()
                };
                (attr("x"), attr("y"), attr("width"))
            })
            .collect();
        assert_eq!(bars.len(), spans.len(), "a bar per span");
        assert!(bars.iter().all(|b| b.2 >= MIN_BAR), "{bars:?}");
        for (i, a) in bars.iter().enumerate() {
            for b in &bars[i + 1..] {
                let same_row = (a.1 - b.1).abs() < 0.01;
                let overlap = a.0 < b.0 + b.2 - 0.01 && b.0 < a.0 + a.2 - 0.01;
                assert!(!(same_row && overlap), "{a:?} hides {b:?}");
            }
        }
        assert!(
            svg.contains("41 spans</text>"),
            "the header counts what is drawn"
        );
    }

    #[test]
    fn durations_read_in_their_own_unit() {
        assert_eq!(fmt_ns(0.0), "0 ns");
        assert_eq!(fmt_ns(870.0), "870 ns");
        assert_eq!(fmt_ns(1_250_000.0), "1.25 ms");
        assert_eq!(fmt_ns(12_340_000_000.0), "12.3 s");
        assert_eq!(fmt_ns(1_000.0), "1 µs");
        assert_eq!(tick_step(10_000_000.0), 2_000_000.0);
        assert_eq!(tick_step(7.0), 1.0);
    }

    #[test]
    fn failures_are_marked_and_bars_say_how_long() {
        let mut spans = vec![span(1, None, 0, 1_000_000), span(2, Some(1), 0, 500_000)];
        spans[1].outcome = Outcome::Error("timeout");
        let svg = svg(&spans);
        assert!(svg.contains("s.f&lt;&amp;&gt; 1 ms</text>"), "{svg}");
        assert!(svg.contains("class=\"label failed\""), "{svg}");
        assert!(
            svg.contains("✗ error timeout s.f&lt;&amp;&gt; 500 µs"),
            "{svg}"
        );
        assert!(svg.contains("· 1 failed</text>"), "{svg}");
        assert!(!svg.contains("0.000"), "{svg}");
    }
}
