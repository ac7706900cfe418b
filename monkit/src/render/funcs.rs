//! The functions page: every function with its callers, counts and time quantiles.

use crate::polls::PollStats;
use crate::registry::{Func, FuncStats, Registry};
use crate::render::format::exact_duration as dur;
use crate::stats::Snapshot;
use serde_json::{json, Map, Value};
use std::fmt::Write;

/// Quantiles shown for success and failure times.
pub const QUANTILES: [f64; 8] = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 1.0];

/// Every function of `registry` with its stats, sorted by full name (read once).
pub fn read(registry: &Registry) -> Vec<(Func, FuncStats)> {
    registry
        .funcs()
        .into_iter()
        .map(|f| (f, f.stats()))
        .collect()
}

/// How `/funcs` lists functions (`sort=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Order {
    /// By full name (the default).
    #[default]
    Name,
    /// Most slow polls first: where an async function blocks its worker thread.
    SlowPolls,
    /// Most busy time first (the sum of the polls of async calls, the duration of sync ones).
    Busy,
    /// Longest single poll first.
    MaxPoll,
}

impl Order {
    /// The order a `sort=` value names: `name`, `slow_polls`, `busy`, `max_poll`.
    pub fn parse(s: &str) -> Option<Order> {
        Some(match s {
            "name" => Order::Name,
            "slow_polls" => Order::SlowPolls,
            "busy" => Order::Busy,
            "max_poll" => Order::MaxPoll,
            _ => return None,
        })
    }

    /// Puts `funcs` in this order (ties by full name).
    pub fn sort(self, funcs: &mut [(Func, FuncStats)]) {
        let key = |s: &FuncStats| -> f64 {
            let p = s.polls.as_ref();
            match self {
                Order::Name => 0.0,
                Order::SlowPolls => p.map_or(0.0, |p| p.slow_polls as f64),
                Order::Busy => p.map_or(0.0, |p| p.busy_ns()),
                Order::MaxPoll => p.map_or(0.0, |p| p.max_poll_ns as f64),
            }
        };
        funcs.sort_by(|a, b| {
            key(&b.1)
                .total_cmp(&key(&a.1))
                .then_with(|| a.0.full_name().cmp(b.0.full_name()))
        });
    }
}

fn polls_text(out: &mut String, p: &PollStats) {
    let _ = writeln!(
        out,
        "  polls: {} ({:.2} per call, p50 {}, p99 {}), busy: {}, slow_polls: {}, max_poll: {}",
        p.polls,
        p.mean_polls(),
        p.polls_quantile(0.5),
        p.polls_quantile(0.99),
        dur(p.busy_ns()),
        p.slow_polls,
        dur(p.max_poll_ns as f64)
    );
}

/// An async function's polls as `/funcs/json` shows them: `polls` the count with its spread
/// per call, `busy` the busy time in nanoseconds (as `success_times`), `slow_polls`,
/// `max_poll` in nanoseconds.
fn polls_json(p: &PollStats) -> [(&'static str, Value); 6] {
    [
        ("polls", json!(p.polls)),
        (
            "polls_per_call",
            json!({
                "mean": p.mean_polls(),
                "p50": p.polls_quantile(0.5),
                "p99": p.polls_quantile(0.99),
                "buckets": p.per_call.iter().map(|(le, n)| json!({"le": le, "count": n})).collect::<Vec<_>>(),
            }),
        ),
        ("busy", json!(p.busy_ns().round() as u64)),
        (
            "busy_times",
            json!({"success": times_json(&p.busy_success), "failure": times_json(&p.busy_failure)}),
        ),
        ("slow_polls", json!(p.slow_polls)),
        ("max_poll", json!(p.max_poll_ns)),
    ]
}

fn times_text(out: &mut String, title: &str, s: &Snapshot) {
    if s.count == 0 {
        return;
    }
    let _ = writeln!(out, "  {title}:");
    for q in QUANTILES {
        if let Some(v) = s.quantile(q) {
            let _ = writeln!(out, "    {q:.2}: {}", dur(v));
        }
    }
    let _ = writeln!(
        out,
        "    avg: {}, ravg: {}, recent: {}, sum: {}, count: {}",
        dur(s.avg()),
        dur(s.window_avg().unwrap_or(0.0)),
        dur(s.recent),
        dur(s.sum),
        s.count
    );
}

/// The function's counts, `name: value` for every field of [`FuncStats::fields`].
pub fn counts(s: &FuncStats) -> String {
    let mut out = String::new();
    for (i, (name, v)) in s.fields().iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(out, "{sep}{name}: {v}");
    }
    out
}

/// The Go `/funcs` text: `[id] scope.name`, parents or `entry`, counts, errors by kind and
/// time quantiles (over the recent window), one block per function.
pub fn text(funcs: &[(Func, FuncStats)]) -> String {
    let mut out = String::new();
    for (f, s) in funcs {
        let _ = writeln!(out, "[{}] {}", f.id(), f.full_name());
        let mut parents: Vec<String> = s.parents.iter().map(u32::to_string).collect();
        if s.entry {
            parents.push("entry".into());
        }
        if parents.is_empty() {
            parents.push("none (never called)".into());
        }
        let _ = writeln!(out, "  parents: {}", parents.join(", "));
        let _ = writeln!(out, "  {}", counts(s));
        for (kind, n) in &s.errors {
            let _ = writeln!(out, "  error {kind}: {n}");
        }
        if let Some(p) = &s.polls {
            polls_text(&mut out, p);
        }
        times_text(&mut out, "success times", &s.success_times);
        times_text(&mut out, "failure times", &s.failure_times);
        out.push('\n');
    }
    out
}

/// The JSON page's quantiles: Go monkit's, and p99 (the console's tail column).
const JSON_QUANTILES: [f64; 9] = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0];

/// Exemplars as `/funcs/json` lists them: ids in hex, the value in nanoseconds.
fn exemplars_json(all: &[crate::stats::Exemplar]) -> Value {
    all.iter()
        .map(|e| {
            json!({
                "trace_id": format!("{:032x}", e.trace_id),
                "span_id": format!("{:016x}", e.span_id),
                "value_ns": (e.value * 1e9).round(),
                "unix_nanos": e.unix_nanos,
            })
        })
        .collect()
}

fn times_json(s: &Snapshot) -> Value {
    let mut q = Map::new();
    for p in JSON_QUANTILES {
        if let Some(v) = s.quantile(p) {
            q.insert(format!("{p:.2}"), json!(v.round() as u64));
        }
    }
    json!({
        "count": s.count,
        "sum": s.sum.round() as u64,
        "min": s.min.round() as u64,
        "max": s.max.round() as u64,
        "average": s.avg().round() as u64,
        "recent": s.recent.round() as u64,
        "window_count": s.window_count(),
        "quantiles": q,
    })
}

/// Every function as JSON; durations in nanoseconds.
pub fn json(funcs: &[(Func, FuncStats)]) -> Value {
    let window_s = crate::stats::recent_window_span().as_secs_f64();
    Value::Array(
        funcs
            .iter()
            .map(|(f, s)| {
                let loc = f.location();
                let errors: Map<String, Value> = s
                    .errors
                    .iter()
                    .map(|(k, n)| ((*k).to_owned(), json!(n)))
                    .collect();
                let mut fields = Map::new();
                for (name, v) in s.fields() {
                    fields.insert(name.to_owned(), json!(v));
                }
                let mut v = json!({
                    "id": f.id(),
                    "package": f.scope(),
                    "name": f.name(),
                    "full_name": f.full_name(),
                    "tags": crate::render::trace::tags_json(f.tags()),
                    "file": loc.map(|l| l.file),
                    "line": loc.map(|l| l.line),
                    "parent_ids": s.parents,
                    "entry": s.entry,
                    "errors_total": s.errors_total,
                    "success_times": times_json(&s.success_times),
                    "failure_times": times_json(&s.failure_times),
                    "success_exemplars": exemplars_json(&s.success_exemplars),
                    "failure_exemplars": exemplars_json(&s.failure_exemplars),
                    // Calls finished in the recent window (about the last minute), per second.
                    "calls_per_second": (s.success_times.window_count()
                        + s.failure_times.window_count()) as f64
                        / window_s,
                });
                if let Value::Object(m) = &mut v {
                    m.extend(fields);
                    // `errors` is the count by kind here (as in Go monkit); the sum is
                    // `errors_total`.
                    m.insert("errors".to_owned(), Value::Object(errors));
                    for (k, v) in s.polls.as_ref().map(polls_json).into_iter().flatten() {
                        m.insert(k.to_owned(), v);
                    }
                }
                v
            })
            .collect(),
    )
}
