//! The spans running now, as trees: a span whose parent is not running is a root.

use crate::LiveSpan;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::fmt::Write;

/// Running spans grouped into trees: (roots, children by parent id), each sorted by start.
fn forest(spans: &[LiveSpan]) -> (Vec<&LiveSpan>, HashMap<u64, Vec<&LiveSpan>>) {
    let ids: HashSet<u64> = spans.iter().map(|s| s.span_id).collect();
    let mut roots = Vec::new();
    let mut children: HashMap<u64, Vec<&LiveSpan>> = HashMap::new();
    for s in spans {
        if s.parent_id != 0 && ids.contains(&s.parent_id) && s.parent_id != s.span_id {
            children.entry(s.parent_id).or_default().push(s);
        } else {
            roots.push(s);
        }
    }
    roots.sort_by_key(|s| (s.start_unix_ns(), s.span_id));
    for c in children.values_mut() {
        c.sort_by_key(|s| (s.start_unix_ns(), s.span_id));
    }
    (roots, children)
}

fn name(s: &LiveSpan) -> &'static str {
    s.func().map_or("<unknown>", |f| f.full_name())
}

/// `[span_id,trace_id] scope.name (elapsed: 45µs)`, children indented under their parent.
pub fn text(spans: &[LiveSpan]) -> String {
    let (roots, children) = forest(spans);
    let mut out = String::new();
    // Depth-first with an explicit stack, so a deep tree cannot overflow ours; `seen` guards
    // against a cycle of ids, which a torn read could in theory produce.
    let mut seen = HashSet::new();
    for root in roots {
        let mut stack = vec![(root, 0usize)];
        while let Some((s, depth)) = stack.pop() {
            if !seen.insert(s.span_id) {
                continue;
            }
            let _ = writeln!(
                out,
                "{:indent$}[{:016x},{:032x}] {} (elapsed: {:?})",
                "",
                s.span_id,
                s.trace_id,
                name(s),
                s.elapsed(),
                indent = depth * 2
            );
            if let Some(c) = children.get(&s.span_id) {
                stack.extend(c.iter().rev().map(|c| (*c, depth + 1)));
            }
        }
    }
    out
}

/// Trees of running spans as JSON: `[{id, trace_id, parent_id, func, start, elapsed_ns,
/// children: [...]}]`, ids in lowercase hex.
pub fn json(spans: &[LiveSpan]) -> Value {
    let (roots, children) = forest(spans);
    fn node(s: &LiveSpan, children: &HashMap<u64, Vec<&LiveSpan>>, depth: usize) -> Value {
        let kids: Vec<Value> = if depth > 256 {
            Vec::new()
        } else {
            children
                .get(&s.span_id)
                .into_iter()
                .flatten()
                .map(|c| node(c, children, depth + 1))
                .collect()
        };
        json!({
            "id": format!("{:016x}", s.span_id),
            "trace_id": format!("{:032x}", s.trace_id),
            "parent_id": (s.parent_id != 0).then(|| format!("{:016x}", s.parent_id)),
            "func": s.func().map(|f| json!({"scope": f.scope(), "name": f.name()})),
            "start": s.start_unix_ns(),
            "elapsed_ns": s.elapsed().as_nanos() as u64,
            "children": kids,
        })
    }
    Value::Array(roots.iter().map(|r| node(r, &children, 0)).collect())
}
