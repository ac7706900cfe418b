//! The functions page: every function with its callers, counts and time quantiles.

use crate::{Func, FuncStats, Registry, Snapshot};
use serde_json::{json, Map, Value};
use std::fmt::Write;
use std::time::Duration;

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

fn dur(ns: f64) -> String {
    format!("{:?}", Duration::from_nanos(ns.max(0.0).round() as u64))
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
        let _ = writeln!(
            out,
            "  current: {}, highwater: {}, success: {}, errors: {}, panics: {}",
            s.current, s.highwater, s.successes, s.errors_total, s.panics
        );
        for (kind, n) in &s.errors {
            let _ = writeln!(out, "  error {kind}: {n}");
        }
        times_text(&mut out, "success times", &s.success_times);
        times_text(&mut out, "failure times", &s.failure_times);
        out.push('\n');
    }
    out
}

fn times_json(s: &Snapshot) -> Value {
    let mut q = Map::new();
    for p in QUANTILES {
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
        "quantiles": q,
    })
}

/// Every function as JSON; durations in nanoseconds.
pub fn json(funcs: &[(Func, FuncStats)]) -> Value {
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
                json!({
                    "id": f.id(),
                    "package": f.scope(),
                    "name": f.name(),
                    "full_name": f.full_name(),
                    "file": loc.map(|l| l.file),
                    "line": loc.map(|l| l.line),
                    "parent_ids": s.parents,
                    "entry": s.entry,
                    "current": s.current,
                    "highwater": s.highwater,
                    "success": s.successes,
                    "errors": errors,
                    "errors_total": s.errors_total,
                    "panics": s.panics,
                    "total": s.total(),
                    "success_times": times_json(&s.success_times),
                    "failure_times": times_json(&s.failure_times),
                })
            })
            .collect(),
    )
}
