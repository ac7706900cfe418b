//! The spans running now, as trees: a span whose parent is not running is a root. A root
//! whose parent was a span of this process that has finished is *orphaned* (it outlived the
//! call that started it, as a spawned task can), and is marked so.

use crate::registry::LiveSpan;
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

/// Whether `s` has a parent of this process that is no longer running.
fn orphaned(s: &LiveSpan, running: &HashSet<u64>) -> bool {
    s.parent_id != 0 && !s.has_remote_parent() && !running.contains(&s.parent_id)
}

fn running_ids(spans: &[LiveSpan]) -> HashSet<u64> {
    spans.iter().map(|s| s.span_id).collect()
}

/// `[span_id,trace_id] scope.name (elapsed: 45µs)`, children indented under their parent.
pub fn text(spans: &[LiveSpan]) -> String {
    let (roots, children) = forest(spans);
    let running = running_ids(spans);
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
            let _ = write!(
                out,
                "{:indent$}[{:016x},{:032x}] {} (elapsed: {:?})",
                "",
                s.span_id,
                s.trace_id,
                name(s),
                s.elapsed(),
                indent = depth * 2
            );
            if orphaned(s, &running) {
                let _ = write!(out, " (orphaned: parent {:016x} finished)", s.parent_id);
            }
            out.push('\n');
            for (k, v) in s.annotations() {
                let v = v.replace('\n', "\\n");
                let _ = writeln!(out, "{:indent$}  {k}: {v}", "", indent = depth * 2);
            }
            if let Some(c) = children.get(&s.span_id) {
                stack.extend(c.iter().rev().map(|c| (*c, depth + 1)));
            }
        }
    }
    out
}

/// One running span in its tree: the span, whether it is orphaned (its parent of this process
/// has finished), and its running children, sorted by start.
#[derive(Debug)]
pub struct Node<'a> {
    /// The span.
    pub span: &'a LiveSpan,
    /// Its parent, a span of this process, is no longer running.
    pub orphaned: bool,
    /// Its children that are running, sorted by start.
    pub children: Vec<Node<'a>>,
}

/// The running spans as trees, roots sorted by start; below 256 levels a tree is cut (a torn
/// read could in theory make a cycle of ids).
pub fn tree(spans: &[LiveSpan]) -> Vec<Node<'_>> {
    let (roots, children) = forest(spans);
    let running = running_ids(spans);
    fn node<'a>(
        s: &'a LiveSpan,
        children: &HashMap<u64, Vec<&'a LiveSpan>>,
        running: &HashSet<u64>,
        depth: usize,
    ) -> Node<'a> {
        let kids = if depth > 256 {
            Vec::new()
        } else {
            children
                .get(&s.span_id)
                .into_iter()
                .flatten()
                .map(|c| node(c, children, running, depth + 1))
                .collect()
        };
        Node {
            span: s,
            orphaned: orphaned(s, running),
            children: kids,
        }
    }
    roots
        .iter()
        .map(|r| node(r, &children, &running, 0))
        .collect()
}

/// Trees of running spans as JSON: `[{id, trace_id, parent_id, func: {scope, name, tags,
/// full_name}, start, elapsed_ns,
/// orphaned, remote_parent, annotations: [[k, v]...], children: [...]}]`, ids in lowercase hex.
pub fn json(spans: &[LiveSpan]) -> Value {
    fn node(n: &Node<'_>) -> Value {
        let s = n.span;
        json!({
            "id": format!("{:016x}", s.span_id),
            "trace_id": format!("{:032x}", s.trace_id),
            "parent_id": (s.parent_id != 0).then(|| format!("{:016x}", s.parent_id)),
            "func": s.func().map(|f| json!({
                "scope": f.scope(),
                "name": f.name(),
                "tags": crate::render::trace::tags_json(f.tags()),
                "full_name": f.full_name(),
            })),
            "start": s.start_unix_ns(),
            "elapsed_ns": s.elapsed().as_nanos() as u64,
            "orphaned": n.orphaned,
            "remote_parent": s.has_remote_parent(),
            "annotations": s.annotations().iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
            "children": n.children.iter().map(node).collect::<Vec<_>>(),
        })
    }
    Value::Array(tree(spans).iter().map(node).collect())
}

/// The running span trees in Graphviz dot: one node per span (function, elapsed time), an
/// edge from each parent to its children, one cluster per trace; orphaned spans dashed.
pub fn dot(spans: &[LiveSpan]) -> String {
    let running = running_ids(spans);
    let mut by_trace: std::collections::BTreeMap<u128, Vec<&LiveSpan>> = Default::default();
    for s in spans {
        by_trace.entry(s.trace_id).or_default().push(s);
    }
    let mut out =
        String::from("digraph ps {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n");
    for (trace, list) in &by_trace {
        let _ = writeln!(out, "  subgraph \"cluster_{trace:032x}\" {{");
        let _ = writeln!(out, "    label=\"trace {trace:032x}\";");
        for s in list {
            let style = if orphaned(s, &running) {
                ", style=dashed, xlabel=\"orphaned\""
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "    \"{:016x}\" [label=\"{}\\n{:?}\"{style}];",
                s.span_id,
                crate::render::dot::escape(name(s)),
                s.elapsed()
            );
        }
        for s in list {
            if s.parent_id != 0 && running.contains(&s.parent_id) && s.parent_id != s.span_id {
                let _ = writeln!(
                    out,
                    "    \"{:016x}\" -> \"{:016x}\";",
                    s.parent_id, s.span_id
                );
            }
        }
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out
}
