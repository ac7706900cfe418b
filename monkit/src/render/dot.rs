//! The call graph in Graphviz dot: a box per function labelled with its stats, an edge per
//! caller → callee, and an `entry` node pointing at every entry point.

use crate::registry::{Func, FuncStats};
use crate::render::format;
use std::collections::HashSet;
use std::fmt::Write;

/// Escapes text for a double-quoted dot string. What XML does not allow becomes U+FFFD, so
/// `dot -Tsvg` writes well-formed SVG whatever a client put in a name.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c if !format::xml_allowed(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn dur(ns: Option<f64>) -> String {
    ns.map_or_else(|| "-".to_owned(), format::duration)
}

/// The dot graph of `funcs`. Functions never called appear as grey boxes.
pub fn dot(funcs: &[(Func, FuncStats)]) -> String {
    let ids: HashSet<u32> = funcs.iter().map(|(f, _)| f.id()).collect();
    let mut out = String::from("digraph G {\n  node [shape=box, fontname=\"monospace\"];\n");
    for (f, s) in funcs {
        let mut label = format!(
            "{}\n{}",
            f.full_name(),
            super::funcs::counts(s).replace(", highwater", ",\nhighwater")
        );
        for (kind, n) in &s.errors {
            let _ = write!(label, "\nerror {kind}: {n}");
        }
        for (kind, t) in [("success", &s.success_times), ("failure", &s.failure_times)] {
            if t.window_count() > 0 {
                let (p50, p99) = (dur(t.quantile(0.5)), dur(t.quantile(0.99)));
                let _ = write!(label, "\n{kind} p50: {p50}, p99: {p99}");
            }
        }
        let style = if s.total() == 0 {
            ", style=filled, fillcolor=\"#eeeeee\""
        } else {
            ""
        };
        let _ = writeln!(out, "  f{} [label=\"{}\"{style}];", f.id(), escape(&label));
        if s.entry {
            let _ = writeln!(
                out,
                "  r{0} [label=\"entry\", shape=ellipse];\n  r{0} -> f{0};",
                f.id()
            );
        }
        for p in &s.parents {
            if ids.contains(p) {
                let _ = writeln!(out, "  f{p} -> f{};", f.id());
            }
        }
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes() {
        assert_eq!(super::escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(super::escape("x\u{fffe}\u{ffff}y"), "x\u{fffd}\u{fffd}y");
    }
}
