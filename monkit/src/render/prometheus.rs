//! Prometheus text exposition (format 0.0.4), and OpenMetrics 1.0 when asked for.
//!
//! Functions become `monkit_function_*` families labelled by `scope` and `name`; every other
//! source becomes a family named after it (sanitised), labelled by `scope` and its tags.
//! Counters end in `_total`, durations are in seconds, distributions are summaries over the
//! recent window (`quantile` labels) with cumulative `_sum` and `_count`.

use crate::reading::{FieldKind, Reading, FUNC_FIELDS};
use crate::walk::Item;
use crate::{Registry, Snapshot, Tags};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The content type of [`render`] output for `openmetrics = false`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The content type of [`render`] output for `openmetrics = true`.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Summary quantiles exposed.
const QUANTILES: [f64; 5] = [0.1, 0.5, 0.9, 0.99, 1.0];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Type {
    Counter,
    Gauge,
    Summary,
}

impl Type {
    fn as_str(self) -> &'static str {
        match self {
            Type::Counter => "counter",
            Type::Gauge => "gauge",
            Type::Summary => "summary",
        }
    }
}

struct Family {
    ty: Type,
    help: String,
    /// (sample name suffix, labels text, value), in insertion order.
    samples: Vec<(String, String, f64)>,
}

#[derive(Default)]
struct Families(BTreeMap<String, Family>);

/// A metric or label name: `[a-zA-Z_][a-zA-Z0-9_]*`, lower case (so promtool's snake_case
/// lint holds); anything else becomes `_`.
pub fn sanitize_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    for (i, c) in s.chars().enumerate() {
        let ok = c.is_ascii_alphanumeric() || c == '_';
        if i == 0 && c.is_ascii_digit() {
            out.push('_');
        }
        out.push(if ok { c.to_ascii_lowercase() } else { '_' });
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// Escapes a label value: backslash, double quote and newline.
pub fn escape_label_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Labels text `k="v",...` (without braces) from pairs; names sanitised, reserved names
/// (`scope`, `quantile`, `le`, names starting `__`) of user tags prefixed with `tag_`.
fn labels(scope: &str, tags: &Tags, extra: &[(&str, &str)]) -> String {
    let mut pairs: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in tags.iter() {
        let mut name = sanitize_name(k);
        if matches!(
            name.as_str(),
            "scope" | "quantile" | "le" | "name" | "error_name" | "kind"
        ) || name.starts_with("__")
        {
            name = format!("tag_{}", name.trim_start_matches('_'));
        }
        pairs.insert(name, v.to_owned());
    }
    pairs.insert("scope".into(), scope.to_owned());
    for (k, v) in crate::process_tags().iter() {
        pairs
            .entry(sanitize_name(k))
            .or_insert_with(|| v.to_owned());
    }
    for (k, v) in extra {
        pairs.insert((*k).to_owned(), (*v).to_owned());
    }
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"{}\"", escape_label_value(v));
    }
    out
}

impl Families {
    /// The family `name` of type `ty`; a name already used with another type gets the type
    /// as a suffix, so a family never mixes types.
    fn family(&mut self, name: &str, ty: Type, help: &str) -> (&mut Family, String) {
        let mut name = name.to_owned();
        if self.0.get(&name).is_some_and(|f| f.ty != ty) {
            name = format!("{name}_{}", ty.as_str());
        }
        let f = self.0.entry(name.clone()).or_insert_with(|| Family {
            ty,
            help: help.to_owned(),
            samples: Vec::new(),
        });
        (f, name)
    }

    fn sample(&mut self, name: &str, ty: Type, help: &str, labels: String, v: f64) {
        let (f, _) = self.family(name, ty, help);
        let suffix = if ty == Type::Counter { "_total" } else { "" };
        f.samples.push((suffix.to_owned(), labels, v));
    }

    fn summary(&mut self, name: &str, help: &str, at: Where<'_>, s: &Snapshot, unit: f64) {
        let (f, _) = self.family(name, Type::Summary, help);
        if s.window_count() > 0 {
            for q in QUANTILES {
                let qs = format!("{q}");
                let mut e: Vec<(&str, &str)> = at.extra.to_vec();
                e.push(("quantile", &qs));
                let v = s.quantile(q).unwrap_or(0.0) / unit;
                f.samples
                    .push((String::new(), labels(at.scope, at.tags, &e), v));
            }
        }
        let l = labels(at.scope, at.tags, at.extra);
        f.samples.push(("_sum".into(), l.clone(), s.sum / unit));
        f.samples.push(("_count".into(), l, s.count as f64));
    }
}

/// Where a summary's samples belong: scope, user tags, and labels of our own.
#[derive(Clone, Copy)]
struct Where<'a> {
    scope: &'a str,
    tags: &'a Tags,
    extra: &'a [(&'a str, &'a str)],
}

fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn function(fam: &mut Families, scope: &str, f: crate::Func, s: &crate::FuncStats) {
    // The function's own tags are labels beside `scope` and `name`.
    let none = f.tags();
    let l = labels(scope, none, &[("name", f.name())]);
    for field in &FUNC_FIELDS {
        let ty = match field.kind {
            FieldKind::Gauge => Type::Gauge,
            FieldKind::Counter => Type::Counter,
        };
        let name = format!("monkit_function_{}", field.metric);
        fam.sample(&name, ty, field.help, l.clone(), (field.get)(s) as f64);
    }
    for (kind, n) in &s.errors {
        let l = labels(scope, none, &[("name", f.name()), ("error_name", kind)]);
        fam.sample(
            "monkit_function_errors",
            Type::Counter,
            "Calls of the function that returned an error, by error kind.",
            l,
            *n as f64,
        );
    }
    let help = "Duration of calls of the function in seconds, by outcome (quantiles over the recent window).";
    for (kind, times) in [("success", &s.success_times), ("failure", &s.failure_times)] {
        let at = Where {
            scope,
            tags: none,
            extra: &[("name", f.name()), ("kind", kind)],
        };
        fam.summary("monkit_function_duration_seconds", help, at, times, 1e9);
    }
}

#[rustfmt::skip]
fn source(fam: &mut Families, sname: &str, name: &str, tags: &Tags, r: &Reading) {
    let base = sanitize_name(name);
    let l = labels(sname, tags, &[]);
    match r {
        Reading::Meter { rate, total } => {
            fam.sample(&base, Type::Counter, "Events marked on a monkit meter.", l.clone(), *total as f64);
            fam.sample(&format!("{base}_rate"), Type::Gauge, "Events per second over the last minute.", l, *rate);
        }
        Reading::Counter { value, high, low } => {
            fam.sample(&base, Type::Gauge, "A monkit counter's value.", l.clone(), *value as f64);
            fam.sample(&format!("{base}_high"), Type::Gauge, "Highest value the counter held.", l.clone(), *high as f64);
            fam.sample(&format!("{base}_low"), Type::Gauge, "Lowest value the counter held.", l, *low as f64);
        }
        Reading::Values(s) => {
            fam.summary(&base, "A monkit value distribution (quantiles over the recent window).", Where { scope: sname, tags, extra: &[] }, s, 1.0);
        }
        Reading::Durations(s) => {
            let n = if base.ends_with("_seconds") { base.clone() } else { format!("{base}_seconds") };
            fam.summary(&n, "A monkit duration distribution in seconds (quantiles over the recent window).", Where { scope: sname, tags, extra: &[] }, s, 1e9);
        }
        Reading::Bools { trues, falses, .. } => {
            fam.sample(&format!("{base}_true"), Type::Counter, "Observations of true.", l.clone(), *trues as f64);
            fam.sample(&format!("{base}_false"), Type::Counter, "Observations of false.", l, *falses as f64);
        }
        Reading::Gauge(v) => fam.sample(&base, Type::Gauge, "A monkit gauge.", l, *v),
        Reading::Raw(fields) => {
            for (f, v) in fields {
                let ty = if *f == "count" { Type::Counter } else { Type::Gauge };
                fam.sample(&format!("{base}_{f}"), ty, "An aggregate of a monkit raw value.", l.clone(), *v);
            }
        }
        Reading::Custom(stats) => {
            for (key, field, v) in stats {
                let n = sanitize_name(&format!("{}_{field}", key.measurement));
                let l = labels(sname, &key.tags, &[]);
                fam.sample(&n, Type::Gauge, "A value of a custom monkit stat source.", l, *v);
            }
        }
    }
}

/// Renders every stat of `registry`; `openmetrics` selects OpenMetrics 1.0 text.
pub fn render(registry: &Registry, openmetrics: bool) -> String {
    let mut fam = Families::default();
    registry.read(|scope, item| match item {
        Item::Func(f, s) => function(&mut fam, scope, f, s),
        Item::Source {
            name,
            tags,
            reading,
        } => source(&mut fam, scope, name, tags, reading),
    });
    // Sized up front: growing by doubling would hold up to twice the page while it copies.
    let size: usize = fam
        .0
        .iter()
        .map(|(name, f)| {
            2 * (name.len() + 24)
                + f.help.len()
                + 8
                + f.samples
                    .iter()
                    .map(|(suffix, labels, _)| name.len() + suffix.len() + labels.len() + 28)
                    .sum::<usize>()
        })
        .sum();
    let mut out = String::with_capacity(size + 8);
    for (name, f) in &fam.0 {
        // In 0.0.4 a counter's family is named like its sample (`x_total`); in OpenMetrics
        // the family is `x` and the sample `x_total`.
        let family = if f.ty == Type::Counter && !openmetrics {
            format!("{name}_total")
        } else {
            name.clone()
        };
        let _ = writeln!(out, "# HELP {family} {}", escape_help(&f.help));
        let _ = writeln!(out, "# TYPE {family} {}", f.ty.as_str());
        for (suffix, labels, v) in &f.samples {
            let _ = writeln!(out, "{name}{suffix}{{{labels}}} {}", fmt_value(*v));
        }
    }
    if openmetrics {
        out.push_str("# EOF\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values() {
        assert_eq!(sanitize_name("http.requests-Total"), "http_requests_total");
        assert_eq!(sanitize_name("9lives"), "_9lives");
        assert_eq!(sanitize_name(""), "_");
        assert_eq!(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let l = labels("s", &Tags::new(&[("quantile", "x"), ("a b", "1")]), &[]);
        assert_eq!(l, "a_b=\"1\",scope=\"s\",tag_quantile=\"x\"");
    }
}
