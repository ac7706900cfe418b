//! The core's folders are layers: each uses only the layers below it. This reads every
//! file's `crate::` paths (a root name re-exported by lib.rs counts as the layer it comes
//! from) and fails on any path that points sideways or up, naming it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, lowest first. Names on one rank may not use each other.
const LAYERS: &[&[&str]] = &[
    &["util"],
    &["stats"],
    &["trace"],
    &["call"],
    &["registry"],
    &["render"],
    &["bridge", "env", "export", "slo"],
];

/// Layer -> the layers it names through `crate::`, each with one file that does.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

/// The first segments of the `crate::` paths in `src`, outside comments.
fn heads(src: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in src.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                group[..end]
                    .split(',')
                    .map(|p| p.trim().split("::").next().unwrap_or(""))
                    .collect()
            } else {
                vec![rest
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or("")]
            };
            out.extend(
                names
                    .into_iter()
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned),
            );
        }
    }
    out
}

/// The names `src` re-exports, each with the layer it comes from: in lib.rs,
/// `pub use stats::counter::Counter;` maps `Counter` to `stats`; in a folder's mod.rs,
/// `pub use crate::call::func::Func;` maps `Func` to `call` and `pub use counter::Counter;`
/// to the folder itself (`here`).
fn reexports(src: &str, layers: &BTreeSet<String>, here: Option<&str>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    // Join each `pub use` statement onto one line first: rustfmt wraps long groups.
    let mut stmt = String::new();
    for line in src.lines() {
        let t = line.trim();
        if stmt.is_empty() && !t.starts_with("pub use ") {
            continue;
        }
        stmt.push_str(t);
        stmt.push(' ');
        if !t.ends_with(';') {
            continue;
        }
        let full = stmt["pub use ".len()..]
            .trim()
            .trim_end_matches(';')
            .to_owned();
        stmt.clear();
        let body = full.strip_prefix("crate::").unwrap_or(&full).to_owned();
        let first = body.split("::").next().unwrap_or("");
        let layer = if layers.contains(first) {
            first
        } else if let Some(h) = here.filter(|_| !full.starts_with("crate::")) {
            h
        } else {
            continue;
        };
        let tail = body.rsplit_once("::").map_or(body.as_str(), |(_, t)| t);
        let names = tail.trim_start_matches('{').trim_end_matches('}');
        // With a group, the tail split above cut inside it: take the group whole.
        let names = match body.find('{') {
            Some(i) => body[i + 1..].trim_end_matches('}'),
            None => names,
        };
        for item in names.split(',') {
            let item = item.trim();
            let name = item.rsplit(" as ").next().unwrap_or(item).trim();
            let name = name.rsplit("::").next().unwrap_or(name);
            if !name.is_empty() && name != "self" {
                out.insert(name.to_owned(), layer.to_owned());
            }
        }
    }
    out
}

/// Every `.rs` file under `dir`, with its text.
fn files(dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push((
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            ));
        }
    }
}

/// Every layer's name.
fn layer_names() -> BTreeSet<String> {
    LAYERS
        .iter()
        .flat_map(|r| r.iter().map(|s| s.to_string()))
        .collect()
}

/// The crate root's names, each with the layer that defines it: lib.rs says which layer a
/// name comes through, and that layer's mod.rs, where it re-exports, says where it lives.
fn root_names(src_dir: &Path, layers: &BTreeSet<String>) -> BTreeMap<String, String> {
    let lib = std::fs::read_to_string(src_dir.join("lib.rs")).unwrap();
    let mut roots = reexports(&lib, layers, None);
    let facades: BTreeMap<String, BTreeMap<String, String>> = layers
        .iter()
        .filter_map(|l| {
            let m = std::fs::read_to_string(src_dir.join(l).join("mod.rs")).ok()?;
            Some((l.clone(), reexports(&m, layers, Some(l))))
        })
        .collect();
    for (name, layer) in roots.iter_mut() {
        if let Some(home) = facades.get(layer.as_str()).and_then(|f| f.get(name)) {
            *layer = home.clone();
        }
    }
    roots
}

/// The layer graph of the crate in `src_dir`.
fn graph(src_dir: &Path) -> Graph {
    let layers = layer_names();
    let roots = root_names(src_dir, &layers);
    let mut g = Graph::new();
    for layer in &layers {
        let mut all = Vec::new();
        let dir = src_dir.join(layer);
        if dir.is_dir() {
            files(&dir, &mut all);
        } else {
            let f = dir.with_extension("rs");
            all.push((
                f.display().to_string(),
                std::fs::read_to_string(&f).unwrap(),
            ));
        }
        let uses = g.entry(layer.clone()).or_default();
        for (file, src) in &all {
            for h in heads(src) {
                let to = if layers.contains(&h) {
                    Some(&h)
                } else {
                    roots.get(&h)
                };
                if let Some(to) = to.filter(|t| *t != layer) {
                    uses.entry(to.clone()).or_insert_with(|| file.clone());
                }
            }
        }
    }
    g
}

fn rank(layer: &str) -> usize {
    LAYERS.iter().position(|r| r.contains(&layer)).unwrap()
}

/// Every use of a layer that is not below the user: `(user, used, a file that does it)`.
fn upward(g: &Graph) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (from, uses) in g {
        for (to, file) in uses {
            if rank(to) >= rank(from) {
                out.push((from.clone(), to.clone(), file.clone()));
            }
        }
    }
    out
}

#[test]
fn each_layer_uses_only_the_layers_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = graph(&src);
    assert!(
        g["call"].contains_key("trace") && g["render"].contains_key("registry"),
        "the reader misses edges: {g:?}"
    );
    // `crate::Func` (a root name, through the `registry` facade) is found where it lives.
    let roots = root_names(&src, &layer_names());
    assert!(roots.len() > 15, "read too few root names: {roots:?}");
    assert_eq!(roots["Func"], "call", "{roots:?}");
    assert_eq!(roots["Scope"], "registry", "{roots:?}");
    let bad = upward(&g);
    assert!(
        bad.is_empty(),
        "layers used from below or beside (user -> used, in file): {bad:#?}"
    );
}

#[test]
fn the_check_finds_upward_and_cyclic_uses() {
    let layers: BTreeSet<String> = ["util", "stats", "trace"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let roots = reexports(
        "pub use trace::span::{current_span, SpanRef};\npub use stats::counter::Counter as C;",
        &layers,
        None,
    );
    assert_eq!(roots["SpanRef"], "trace");
    assert_eq!(roots["C"], "stats");
    let facade = reexports(
        "pub use crate::util::x::Y;\npub use counter::{Counter, Meter};",
        &layers,
        Some("stats"),
    );
    assert_eq!(facade["Y"], "util");
    assert_eq!(facade["Meter"], "stats");
    assert_eq!(
        heads("use crate::{stats::X, SpanRef}; fn f() { crate::util::g() } // crate::trace"),
        ["SpanRef", "stats", "util"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    // A planted cycle: stats reaches trace through a root name, trace uses stats.
    let mut g = Graph::new();
    for (from, src) in [
        ("stats", "use crate::SpanRef;"),
        ("trace", "use crate::stats::x;"),
    ] {
        let uses = g.entry(from.to_owned()).or_default();
        for h in heads(src) {
            let to = if layers.contains(&h) {
                Some(&h)
            } else {
                roots.get(&h)
            };
            if let Some(to) = to {
                uses.insert(to.clone(), format!("{from}.rs"));
            }
        }
    }
    let bad = upward(&g);
    assert_eq!(bad, [("stats".into(), "trace".into(), "stats.rs".into())]);
    g.get_mut("stats").unwrap().clear();
    assert!(upward(&g).is_empty());
}
