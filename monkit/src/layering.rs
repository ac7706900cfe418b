//! The core's modules form layers: no module reaches, directly or through others, back into
//! itself. This reads every module's `crate::` paths and fails on a cycle, naming it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module name -> modules it names through `crate::`.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// The `crate::x` module names in `src`, outside comments.
fn refs(src: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
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
            for n in names {
                if modules.contains(n) {
                    out.insert(n.to_owned());
                }
            }
        }
    }
    out
}

fn graph(src_dir: &Path) -> Graph {
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for entry in std::fs::read_dir(src_dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            // A folder module counts as one node: all of its files together.
            let mut all = String::new();
            for f in std::fs::read_dir(&path).unwrap() {
                all += &std::fs::read_to_string(f.unwrap().path()).unwrap();
            }
            *files.entry(name).or_default() += &all;
        } else if name != "lib" && name != "layering" && name != "loom_tests" {
            *files.entry(name).or_default() += &std::fs::read_to_string(&path).unwrap();
        }
    }
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    files
        .iter()
        .map(|(m, src)| {
            let mut r = refs(src, &modules);
            r.remove(m);
            (m.clone(), r)
        })
        .collect()
}

/// A cycle of `g`, if it has one, as the path of modules around it.
fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        g: &Graph,
        m: &str,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(m) {
            Some(2) => return None,
            Some(1) => {
                let at = path.iter().position(|p| p == m).unwrap();
                let mut c = path[at..].to_vec();
                c.push(m.to_owned());
                return Some(c);
            }
            _ => {}
        }
        state.insert(m.to_owned(), 1);
        path.push(m.to_owned());
        for n in g.get(m).into_iter().flatten() {
            if let Some(c) = visit(g, n, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(m.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in g.keys() {
        if let Some(c) = visit(g, m, &mut state, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

#[test]
fn the_core_has_no_import_cycle() {
    let g = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(g.len() > 20, "read too few modules: {g:?}");
    assert!(
        g["call"].contains("func"),
        "the reader misses edges: {:?}",
        g["call"]
    );
    if let Some(c) = find_cycle(&g) {
        panic!("import cycle among the core's modules: {}", c.join(" -> "));
    }
}

#[test]
fn the_check_finds_cycles() {
    let mods: BTreeSet<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let mut g = Graph::new();
    g.insert("a".into(), refs("use crate::b::X;", &mods));
    g.insert("b".into(), refs("use crate::{c::Y, Z};", &mods));
    g.insert(
        "c".into(),
        refs("fn f() { crate::a::g() } // crate::b", &mods),
    );
    assert_eq!(find_cycle(&g).unwrap(), ["a", "b", "c", "a"]);
    g.get_mut("c").unwrap().clear();
    assert_eq!(find_cycle(&g), None);
}
