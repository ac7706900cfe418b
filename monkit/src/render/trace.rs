//! A captured trace as JSON, and as an SVG timeline.

use crate::render::format::{duration as fmt_ns, fmt_in, unit_for, xml_escape};
use crate::stats::Outcome;
use crate::trace::FinishedSpan;
use serde_json::{json, Map, Value};
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
                    "events": s.events().iter().map(|e| json!({
                        "time": e.time_unix_ns,
                        "name": e.name,
                        "attributes": e.attributes.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<Map<String, Value>>(),
                    })).collect::<Vec<_>>(),
                    "polls": s.polls().map(polls_json),
                })
            })
            .collect(),
    )
}

/// An async span's polls: how many, busy time, each poll as `[offset from the span's start,
/// length]` in nanoseconds, and the slow ones among them.
fn polls_json(p: &crate::trace::SpanPolls) -> Value {
    json!({
        "count": p.count,
        "busy_ns": p.busy_ns,
        "segments": p.segments.iter().map(|(o, l)| json!([o, l])).collect::<Vec<_>>(),
        "slow": p.slow.iter().map(|(o, l)| json!([o, l])).collect::<Vec<_>>(),
        "slow_threshold_ns": p.slow_ns,
    })
}

/// An event as one line: when (from the span's start), its name and attributes.
fn event_text(e: &crate::trace::SpanEvent, span_start_ns: u64) -> String {
    let mut t = format!(
        "+{} {}",
        fmt_ns(e.time_unix_ns.saturating_sub(span_start_ns) as f64),
        e.name
    );
    for (k, v) in &e.attributes {
        let _ = write!(t, " {k}={v}");
    }
    t
}

/// What the flight recorder holds of `reg`'s functions (`Registry::flight_record`), as JSON:
/// one object per held call, newest first, with `why` (`slowest`, `previously_slowest`,
/// `latest_failure`) and `spans` in the shape of [`json()`].
pub fn recent_json(reg: &crate::Registry) -> Value {
    Value::Array(
        reg.flight_record()
            .iter()
            .map(|(call, spans)| {
                json!({
                    "why": call.why.as_str(),
                    "func": call.span.start.full_name(),
                    "trace_id": format!("{:032x}", call.span.start.trace_id),
                    "cut": call.cut,
                    "spans": json(spans),
                })
            })
            .collect(),
    )
}

/// The flight recorder's held calls as `/trace/recent?format=json` lists them: one object per
/// call with `func`, `why`, `duration_ns`, `outcome` (`ok`, `error`, `panic`, `canceled`),
/// `error_kind`, `age_ms` (against `now_unix_ns`), `finish_unix_ns`, `trace_id`, `span_id`,
/// `spans` and `cut`.
pub fn recent_list_json(held: &[crate::flight::HeldCall], now_unix_ns: u64) -> Value {
    Value::Array(
        held.iter()
            .map(|h| {
                let s = &h.span;
                json!({
                    "func": s.start.full_name(),
                    "why": h.why.as_str(),
                    "duration_ns": s.duration_ns(),
                    "outcome": outcome_json(&s.outcome)["kind"],
                    "error_kind": s.outcome.failure_kind(),
                    "age_ms": now_unix_ns.saturating_sub(s.finish_unix_ns) / 1_000_000,
                    "finish_unix_ns": s.finish_unix_ns,
                    "trace_id": format!("{:032x}", s.start.trace_id),
                    "span_id": format!("{:016x}", s.start.span_id),
                    "spans": h.spans,
                    "cut": h.cut,
                })
            })
            .collect(),
    )
}

/// When any thread panics, writes [`recent_json`] of `reg` to `path` (after the panic hook
/// that was set before runs), so a crash leaves the slow and failed calls of its last
/// minutes behind. The file is written at most once a second; a failure to write is
/// printed on stderr.
///
/// ```no_run
/// monkit::flight::set_enabled(true);
/// monkit::render::trace::write_recent_on_panic(
///     monkit::default_registry().clone(),
///     "/tmp/monkit-recent.json".into(),
/// );
/// ```
pub fn write_recent_on_panic(reg: crate::Registry, path: std::path::PathBuf) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let before = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        before(info);
        let now = crate::util::clock::Tick::now().process_nanos() / 1_000_000_000 + 1;
        if LAST.swap(now, Ordering::Relaxed) == now {
            return;
        }
        let text = recent_json(&reg).to_string();
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!(
                "monkit: writing the flight record to {}: {e}",
                path.display()
            );
        }
    }));
}

/// `n` with commas between thousands (`1,000`).
fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
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

/// What the layout places: an id, its parent's id, and where it starts and ends.
type Item = (u64, Option<u64>, u64, u64);

/// Rows: a span goes on the first row below its parent's where it overlaps nothing, so nested
/// spans sit under their parents and overlapping ones on separate rows. A span takes at least
/// `min_ns` of its row (what the narrowest bar covers), so no drawn bar hides another.
#[cfg(test)]
fn layout(spans: &[FinishedSpan], min_ns: u64) -> Vec<usize> {
    let items: Vec<Item> = spans
        .iter()
        .map(|s| {
            (
                s.start.span_id,
                s.start.parent_id,
                s.start.start_unix_ns,
                s.finish_unix_ns,
            )
        })
        .collect();
    layout_items(&items, min_ns)
}

/// [`layout`] of any items.
fn layout_items(items: &[Item], min_ns: u64) -> Vec<usize> {
    let index: HashMap<u64, usize> = items.iter().enumerate().map(|(i, s)| (s.0, i)).collect();
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, s) in items.iter().enumerate() {
        match s.1.and_then(|p| index.get(&p)) {
            Some(&p) if p != i => children.entry(p).or_default().push(i),
            _ => roots.push(i),
        }
    }
    let by_start = |v: &mut Vec<usize>| v.sort_by_key(|&i| (items[i].2, items[i].0));
    by_start(&mut roots);
    for c in children.values_mut() {
        by_start(c);
    }
    let mut row = vec![usize::MAX; items.len()];
    let mut busy: Vec<Vec<(u64, u64)>> = Vec::new();
    let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|&r| (r, 0)).collect();
    while let Some((i, min_row)) = stack.pop() {
        if row[i] != usize::MAX {
            continue;
        }
        let (a, b) = (items[i].2, items[i].3.max(items[i].2 + min_ns.max(1)));
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

/// Siblings of one function in a row at least this long are drawn as one band.
const BAND_MIN: usize = 50;

/// A run of similar siblings drawn as one band: its members' indexes, in start order.
struct Band {
    parent: Option<u64>,
    members: Vec<usize>,
}

/// The runs of [`BAND_MIN`] or more consecutive siblings calling one function, and for every
/// span the band it is hidden in (a member, or a member's descendant).
fn bands(spans: &[FinishedSpan]) -> (Vec<Band>, Vec<Option<usize>>) {
    let mut children: HashMap<Option<u64>, Vec<usize>> = HashMap::new();
    for (i, s) in spans.iter().enumerate() {
        children.entry(s.start.parent_id).or_default().push(i);
    }
    let mut out = Vec::new();
    for (parent, kids) in &mut children {
        kids.sort_by_key(|&i| (spans[i].start.start_unix_ns, spans[i].start.span_id));
        let mut run: Vec<usize> = Vec::new();
        let mut flush = |run: &mut Vec<usize>| {
            if run.len() >= BAND_MIN {
                out.push(Band {
                    parent: *parent,
                    members: std::mem::take(run),
                });
            }
            run.clear();
        };
        for &i in kids.iter() {
            let same = run.last().is_some_and(|&j| {
                spans[j].start.func.full_name() == spans[i].start.func.full_name()
            });
            if !same {
                flush(&mut run);
            }
            run.push(i);
        }
        flush(&mut run);
    }
    out.sort_by_key(|b| spans[b.members[0]].start.start_unix_ns);
    let mut hidden = vec![None; spans.len()];
    let index: HashMap<u64, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.start.span_id, i))
        .collect();
    for (k, b) in out.iter().enumerate() {
        for &m in &b.members {
            hidden[m] = Some(k);
        }
    }
    // Descendants of members go with them (a few passes settle any depth, in start order).
    let mut changed = true;
    while changed {
        changed = false;
        for i in 0..spans.len() {
            if hidden[i].is_none() {
                if let Some(k) = spans[i]
                    .start
                    .parent_id
                    .and_then(|p| index.get(&p))
                    .and_then(|&p| hidden[p])
                {
                    hidden[i] = Some(k);
                    changed = true;
                }
            }
        }
    }
    (out, hidden)
}

/// A self-contained SVG 1.1 timeline: a bar per span on a time axis, coloured by outcome
/// (ok blue, error orange, canceled yellow, panic red), a tooltip with name, annotations,
/// duration and start offset, a time scale, and the parent and children of the span under the
/// pointer highlighted. Every bar is at least a few pixels wide; a run of 50 or more sibling
/// calls of one function is one labelled band ("×1,000 calls of db.get, 4.2 ms total") whose
/// spans are drawn below, hidden until it is clicked.
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
    let min_ns = (span_ns * MIN_BAR / WIDTH).ceil() as u64;
    // Visible: every span not in a band, and one bar per band; a band's spans are laid out
    // below all of them, hidden until the band is opened.
    let (bands, hidden) = bands(spans);
    let band_id = |k: usize| u64::MAX - k as u64;
    let mut items: Vec<Item> = Vec::new();
    let mut item_of = vec![usize::MAX; spans.len()];
    for (i, s) in spans.iter().enumerate() {
        if hidden[i].is_none() {
            item_of[i] = items.len();
            items.push((
                s.start.span_id,
                s.start.parent_id,
                s.start.start_unix_ns,
                s.finish_unix_ns,
            ));
        }
    }
    let band_item = items.len();
    for (k, b) in bands.iter().enumerate() {
        let first = &spans[b.members[0]];
        let last = b
            .members
            .iter()
            .map(|&m| spans[m].finish_unix_ns)
            .max()
            .unwrap_or(0);
        items.push((band_id(k), b.parent, first.start.start_unix_ns, last));
    }
    let vis_rows = layout_items(&items, min_ns);
    let nrows = vis_rows.iter().copied().max().map_or(1, |r| r + 1);
    let hidden_items: Vec<usize> = (0..spans.len()).filter(|&i| hidden[i].is_some()).collect();
    let hid: Vec<Item> = hidden_items
        .iter()
        .map(|&i| {
            let s = &spans[i];
            (
                s.start.span_id,
                s.start.parent_id,
                s.start.start_unix_ns,
                s.finish_unix_ns,
            )
        })
        .collect();
    let hid_rows = layout_items(&hid, min_ns);
    let mut rows = vec![0usize; spans.len()];
    for (i, r) in rows.iter_mut().enumerate() {
        if item_of[i] != usize::MAX {
            *r = vis_rows[item_of[i]];
        }
    }
    for (j, &i) in hidden_items.iter().enumerate() {
        rows[i] = nrows + hid_rows[j];
    }
    let all_rows = nrows + hid_rows.iter().copied().max().map_or(0, |r| r + 1);
    let height = TOP + nrows as f64 * ROW + 20.0;
    let full_height = TOP + all_rows as f64 * ROW + 20.0;
    let x = |t: u64| (t.saturating_sub(t0)) as f64 / span_ns * WIDTH;
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{w}" height="{height}" viewBox="0 0 {w} {height}" data-full-height="{full_height}" font-family="monospace" font-size="11">
<style type="text/css"><![CDATA[
rect.span {{ stroke: #333; stroke-width: 0.5; }}
rect.ok {{ fill: #6fa8dc; }} rect.error {{ fill: #f6a04d; stroke: #b00000; stroke-width: 2; }}
rect.canceled {{ fill: #ffe066; stroke: #8a6d00; stroke-width: 1.5; stroke-dasharray: 4 2; }}
rect.panic {{ fill: #e06666; stroke: #700000; stroke-width: 2.5; }}
g.span:hover rect.span {{ stroke: #000; stroke-width: 2; }}
rect.related {{ stroke: #000; stroke-width: 2; stroke-dasharray: 3 2; }}
text.label {{ pointer-events: none; }} text.failed {{ fill: #700000; font-weight: bold; }}
text.header {{ font-size: 13px; }}
rect.band {{ fill: #b4a7d6; stroke: #351c75; stroke-width: 1; cursor: pointer; }}
rect.band.failed {{ stroke: #b00000; stroke-width: 2; }}
rect.poll {{ fill: #1c4587; pointer-events: none; }} rect.poll.slow {{ fill: #cc0000; }}
path.event {{ fill: #ffffff; stroke: #000000; stroke-width: 1; }}
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
function band(evt) {{
  var k = evt.currentTarget.getAttribute('data-band'), svg = document.documentElement;
  var all = document.getElementsByTagName('g'), show = null;
  for (var i = 0; i < all.length; i++) {{
    if (all[i].getAttribute('data-member') === k) {{
      if (show === null) show = all[i].getAttribute('visibility') === 'hidden';
      all[i].setAttribute('visibility', show ? 'visible' : 'hidden');
    }}
  }}
  var h = svg.getAttribute('data-full-height');
  svg.setAttribute('height', h);
  svg.setAttribute('viewBox', '0 0 {w} ' + h);
}}
]]></script>
<rect x="0" y="0" width="{w}" height="{full_height}" fill="#ffffff"/>
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
        for e in s.events().iter().take(10) {
            let _ = write!(tip, "\n{}", event_text(e, s.start.start_unix_ns));
        }
        if s.events().len() > 10 {
            let _ = write!(tip, "\n(+{} more events)", s.events().len() - 10);
        }
        if let Some(p) = s.polls() {
            let slow: Vec<String> = p
                .slow
                .iter()
                .map(|&(o, l)| format!("{} at +{}", fmt_ns(l as f64), fmt_ns(o as f64)))
                .collect();
            let _ = write!(
                tip,
                "\nBusy: {} in {} poll{} (waiting {})",
                fmt_ns(p.busy_ns as f64),
                p.count,
                if p.count == 1 { "" } else { "s" },
                fmt_ns(s.duration_ns().saturating_sub(p.busy_ns) as f64),
            );
            if !slow.is_empty() {
                let _ = write!(tip, "\nSlow polls: {}", slow.join(", "));
            }
        }
        let parent = s
            .start
            .parent_id
            .map(|p| format!("{p:016x}"))
            .unwrap_or_default();
        let member = match hidden[i] {
            Some(k) => format!(r#" data-member="{k}" visibility="hidden""#),
            None => String::new(),
        };
        let _ = write!(
            out,
            r#"<g class="span" data-id="{:016x}" data-parent="{parent}"{member} onmouseover="rel(evt, true)" onmouseout="rel(evt, false)"><title>{}</title><rect class="span {class}" x="{a:.2}" y="{y:.1}" width="{w:.2}" height="{h:.1}"/>"#,
            s.start.span_id,
            xml_escape(&tip),
            h = ROW - 2.0,
        );
        // The polls inside the bar, on its lower part: when the call ran; slow ones in red.
        if let Some(p) = s.polls() {
            let (py, ph) = (y + (ROW - 2.0) * 0.6, (ROW - 2.0) * 0.4);
            for &(o, l) in &p.segments {
                let pa = x(s.start.start_unix_ns + o);
                let pw = (x(s.start.start_unix_ns + o + l) - pa).max(0.5);
                let slow = if p.slow.contains(&(o, l)) {
                    " slow"
                } else {
                    ""
                };
                let _ = write!(
                    out,
                    r#"<rect class="poll{slow}" x="{pa:.2}" y="{py:.1}" width="{pw:.2}" height="{ph:.1}"/>"#
                );
            }
        }
        // Events: a diamond at the top of the bar where each happened, its own tooltip.
        for e in s.events() {
            let ex = x(e
                .time_unix_ns
                .clamp(s.start.start_unix_ns, s.finish_unix_ns));
            let _ = write!(
                out,
                r#"<g class="event"><title>{}</title><path class="event" d="M{ex:.2},{y:.1} l4,4 l-4,4 l-4,-4 z"/></g>"#,
                xml_escape(&event_text(e, s.start.start_unix_ns)),
            );
        }
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
    for (k, band) in bands.iter().enumerate() {
        let (_, _, a0, b0) = items[band_item + k];
        let (a, b) = (x(a0), x(b0));
        let w = (b - a).max(MIN_BAR);
        let y = TOP + vis_rows[band_item + k] as f64 * ROW;
        let n = band.members.len();
        let name = spans[band.members[0]].start.full_name();
        let total: u64 = band
            .members
            .iter()
            .map(|&m| {
                spans[m]
                    .finish_unix_ns
                    .saturating_sub(spans[m].start.start_unix_ns)
            })
            .sum();
        let failed = band
            .members
            .iter()
            .filter(|&&m| spans[m].outcome != Outcome::Ok)
            .count();
        let mut label = format!(
            "×{} calls of {name}, {} total",
            group_thousands(n),
            fmt_ns(total as f64)
        );
        if failed > 0 {
            let _ = write!(label, ", {failed} failed");
        }
        let _ = writeln!(
            out,
            r#"<g class="band" data-band="{k}" onclick="band(evt)"><title>{} (click to show them)</title><rect class="band{}" x="{a:.2}" y="{y:.1}" width="{w:.2}" height="{h:.1}"/><text class="label" x="{:.2}" y="{:.1}">{}</text></g>"#,
            xml_escape(&label),
            if failed > 0 { " failed" } else { "" },
            a + 2.0,
            y + ROW - 6.0,
            xml_escape(&label),
            h = ROW - 2.0,
        );
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

    /// 2,000 sibling calls of one function are one labelled band; every span is still in the
    /// SVG (drawn hidden below, shown when the band is clicked), counted in the header.
    #[test]
    fn runs_of_similar_siblings_are_one_band() {
        let mut spans = vec![span(1, None, 0, 30_000_000)];
        for i in 0..2000u64 {
            let at = 1_000 + i * 10_000;
            spans.push(span(10 + i, Some(1), at, at + 2_000));
        }
        let svg = svg(&spans);
        assert_eq!(svg.matches("<rect class=\"span ").count(), spans.len());
        assert_eq!(svg.matches(r#"visibility="hidden""#).count(), 2000);
        assert_eq!(svg.matches(r#"<g class="band""#).count(), 1);
        assert!(
            svg.contains("×2,000 calls of s.f&lt;&amp;&gt;, 4 ms total</text>"),
            "{}",
            &svg[svg.len() - 800..]
        );
        assert!(svg.contains("2001 spans</text>"));
        // Collapsed, the picture is two rows high; opened, tall enough for the members.
        let h = |attr: &str| -> f64 {
            let v = svg.split(&format!(" {attr}=\"")).nth(1).unwrap();
            v[..v.find('"').unwrap()].parse().unwrap()
        };
        assert!(h("height") < 120.0 && h("data-full-height") > h("height"));
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
