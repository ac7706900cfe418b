//! The one walk over a registry: every function and source of a registry, read now, as typed
//! [`Item`]s (for renderers that keep types, like Prometheus) or as line-format series (for
//! text and JSON). Nothing here runs on the instrumented path.

use crate::call::func::{Func, FuncStats};
use crate::registry::registry::Transformer;
use crate::registry::scope::ScopeInner;
use crate::stats::reading::Reading;
use crate::stats::series::{SeriesKey, Tags};

/// One thing a walk finds in a scope.
#[derive(Debug)]
#[non_exhaustive]
pub enum Item<'a> {
    /// A function and its stats.
    Func(Func, &'a FuncStats),
    /// A source: its name, tags and reading.
    Source {
        /// The source's name.
        name: &'a str,
        /// Its tags (without `scope`).
        tags: &'a Tags,
        /// Its values now.
        reading: &'a Reading,
    },
}

pub(crate) fn read_scope(scope: &ScopeInner, cb: &mut dyn FnMut(&str, Item<'_>)) {
    for f in scope.funcs() {
        let s = f.stats();
        cb(&scope.name, Item::Func(Func(f), &s));
    }
    for (name, tags, source) in scope.sources() {
        let reading = source.read();
        cb(
            &scope.name,
            Item::Source {
                name: &name,
                tags: &tags,
                reading: &reading,
            },
        );
    }
}

/// Adds the process-wide tags a series does not have itself.
fn with_process_tags(t: &mut Tags) {
    for (k, v) in crate::registry::process_tags::process_tags().iter() {
        if t.get(k).is_none() {
            t.set(k, v);
        }
    }
}

/// One series of the line format, with its key text for sorting.
struct Series {
    key: SeriesKey,
    text: String,
    fields: Vec<(String, f64)>,
}

/// Something that lists `(field, value)` pairs to a callback.
type FieldsOf<'a> = dyn FnMut(&mut dyn FnMut(&str, f64)) + 'a;

/// The line-format series of one item, pushed onto `out`.
fn series_of(scope: &str, item: Item<'_>, out: &mut Vec<Series>) {
    let mut push = |measurement: &str, tags: &Tags, fields: Vec<(String, f64)>| {
        let mut t = tags.clone();
        t.set("scope", scope);
        with_process_tags(&mut t);
        let key = SeriesKey::new(measurement, t);
        let text = key.to_string();
        out.push(Series { key, text, fields });
    };
    let collect = |f: &mut FieldsOf<'_>| {
        let mut v = Vec::new();
        f(&mut |k: &str, x: f64| v.push((k.to_owned(), x)));
        v
    };
    match item {
        Item::Func(f, s) => {
            let mut tags = f.tags().clone();
            tags.set("name", f.name());
            let fields = s
                .fields()
                .iter()
                .map(|(name, v)| ((*name).to_owned(), *v as f64))
                .collect();
            push("function", &tags, fields);
            for (kind, n) in &s.errors {
                let mut t = tags.clone();
                t.set("error_name", kind);
                push("function", &t, vec![("count".to_owned(), *n as f64)]);
            }
            for (kind, snap) in [("success", &s.success_times), ("failure", &s.failure_times)] {
                let mut t = tags.clone();
                t.set("kind", kind);
                push(
                    "function_times",
                    &t,
                    collect(&mut |cb| snap.fields(1e9, cb)),
                );
            }
            if let Some(p) = &s.polls {
                let fields = [
                    ("polls", p.polls as f64),
                    ("busy", p.busy_ns() / 1e9),
                    ("slow_polls", p.slow_polls as f64),
                    ("max_poll", p.max_poll_ns as f64 / 1e9),
                ];
                let fields = fields.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
                push("function_polls", &tags, fields);
                for (kind, snap) in [("success", &p.busy_success), ("failure", &p.busy_failure)] {
                    let mut t = tags.clone();
                    t.set("kind", kind);
                    push(
                        "function_busy_times",
                        &t,
                        collect(&mut |cb| snap.fields(1e9, cb)),
                    );
                }
            }
        }
        Item::Source {
            reading: Reading::Custom(stats),
            ..
        } => {
            // A custom source names its own series; consecutive stats of one series share it.
            for (key, field, v) in stats {
                let mut key = key.clone();
                key.tags.set("scope", scope);
                with_process_tags(&mut key.tags);
                match out.last_mut() {
                    Some(last) if last.key == key => last.fields.push((field.clone(), *v)),
                    _ => {
                        let text = key.to_string();
                        out.push(Series {
                            key,
                            text,
                            fields: vec![(field.clone(), *v)],
                        })
                    }
                }
            }
        }
        Item::Source {
            name,
            tags,
            reading,
        } => push(name, tags, collect(&mut |cb| reading.fields(cb))),
    }
}

/// Passes one stat through `ts` in order, then to `cb`.
fn transform(
    ts: &[Transformer],
    key: &SeriesKey,
    field: &str,
    v: f64,
    cb: &mut dyn FnMut(&SeriesKey, &str, f64),
) {
    match ts.split_first() {
        None => cb(key, field, v),
        Some((t, rest)) => t(key, field, v, &mut |k, f, v| transform(rest, k, f, v, cb)),
    }
}

pub(crate) fn emit(scope: &ScopeInner, cb: &mut dyn FnMut(&SeriesKey, &str, f64)) {
    let mut out = Vec::new();
    read_scope(scope, &mut |s, item| series_of(s, item, &mut out));
    out.sort_by(|a, b| a.text.cmp(&b.text));
    let ts = scope.transformers();
    for s in &out {
        for (f, v) in &s.fields {
            transform(&ts, &s.key, f, *v, cb);
        }
    }
}
