//! Prometheus exposition: text (format 0.0.4), OpenMetrics 1.0 text, and the protobuf format
//! (with native histograms) when the scraper asks for it.
//!
//! Functions become `monkit_function_*` families labelled by `scope` and `name`; every other
//! source becomes a family named after it (sanitised), labelled by `scope` and its tags.
//! Counters end in `_total`, durations are in seconds.
//!
//! Durations (function times, timers, duration values) are **histograms**, cumulative over the
//! process's life, so they add up across instances (`histogram_quantile(0.99, sum by (le)
//! (rate(x_bucket[1m])))`): classic `le` buckets in every format ([`Options::buckets`]), and
//! in the protobuf format also native buckets, the core's own buckets one for one (schema 6).
//! The recent-window quantiles stay on `/stats`; [`Options::summaries`] also exposes them
//! here, as `*_recent_seconds` summaries. Other value distributions are summaries.

use crate::registry::walk::Item;
use crate::registry::Registry;
use crate::render::fields::{FieldKind, FUNC_FIELDS};
use crate::render::format;
use crate::stats::reading::Reading;
use crate::stats::{Snapshot, Tags};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The content type of [`render`] output for `openmetrics = false`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The content type of [`render`] output for `openmetrics = true`.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of [`render_protobuf`] output.
pub const PROTOBUF_CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// Summary quantiles exposed.
const QUANTILES: [f64; 5] = [0.1, 0.5, 0.9, 0.99, 1.0];

/// Prometheus's own default bucket bounds, in seconds.
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How durations are exposed.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Options {
    /// Upper bounds (seconds) of the classic `le` buckets. Default [`DEFAULT_BUCKETS`]. A
    /// bucket's count is exact when its bound is a power of 2^(1/64) (1, 2, 0.5, ...); for
    /// other bounds, values within 1.1% below the bound may count in the next bucket.
    pub buckets: Vec<f64>,
    /// Also expose the recent-window quantiles of durations as summaries named
    /// `*_recent_seconds` (default off: summaries cannot be added up across instances, and
    /// `/stats` has the same quantiles).
    pub summaries: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            buckets: DEFAULT_BUCKETS.to_vec(),
            summaries: false,
        }
    }
}

impl Options {
    /// The defaults, changed by `MONKIT_PROMETHEUS_BUCKETS` (comma-separated seconds, e.g.
    /// `0.001,0.01,0.1,1`) and `MONKIT_PROMETHEUS_SUMMARIES` (a flag) of `vars`. A value that
    /// cannot be read is an error naming it.
    pub fn from_vars(
        vars: &crate::util::settings::Vars,
    ) -> Result<Options, crate::util::settings::ConfigError> {
        let mut o = Options::default();
        if let Some(mut b) = vars.numbers("MONKIT_PROMETHEUS_BUCKETS")? {
            b.sort_by(f64::total_cmp);
            b.dedup();
            o.buckets = b;
        }
        if let Some(on) = vars.flag("MONKIT_PROMETHEUS_SUMMARIES")? {
            o.summaries = on;
        }
        Ok(o)
    }
}

crate::util::settings::declare! {
    MONKIT_PROMETHEUS_BUCKETS: Numbers, "0.005,0.01,..,10", "the classic histogram buckets of /metrics, in seconds";
    MONKIT_PROMETHEUS_SUMMARIES: Flag, "off", "also expose the recent quantiles as summaries on /metrics";
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Type {
    Counter,
    Gauge,
    Summary,
    Histogram,
}

impl Type {
    fn as_str(self) -> &'static str {
        match self {
            Type::Counter => "counter",
            Type::Gauge => "gauge",
            Type::Summary => "summary",
            Type::Histogram => "histogram",
        }
    }
}

/// One labelled value of a family.
enum Value {
    Plain(f64),
    Summary {
        quantiles: Vec<(f64, f64)>,
        sum: f64,
        count: u64,
    },
    Histogram {
        /// (upper bound in seconds, cumulative count), +Inf not included.
        classic: Vec<(f64, u64)>,
        native: crate::stats::Histogram,
        /// Recorded calls, by value (OpenMetrics text puts each on its bucket's line).
        exemplars: Vec<crate::stats::Exemplar>,
    },
}

struct Family {
    ty: Type,
    help: String,
    /// (labels, value), in insertion order.
    metrics: Vec<(Vec<(String, String)>, Value)>,
}

#[derive(Default)]
struct Families {
    map: BTreeMap<String, Family>,
    options: Options,
}

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
fn labels(scope: &str, tags: &Tags, extra: &[(&str, &str)]) -> Vec<(String, String)> {
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
    for (k, v) in crate::registry::process_tags::process_tags().iter() {
        pairs
            .entry(sanitize_name(k))
            .or_insert_with(|| v.to_owned());
    }
    for (k, v) in extra {
        pairs.insert((*k).to_owned(), (*v).to_owned());
    }
    pairs.into_iter().collect()
}

/// Labels as text, `k="v",...`, with `extra` (such as `le`) last.
fn labels_text(pairs: &[(String, String)], extra: Option<(&str, &str)>) -> String {
    let mut out = String::new();
    for (k, v) in pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(extra)
    {
        if !out.is_empty() {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"{}\"", escape_label_value(v));
    }
    out
}

impl Families {
    fn new(options: &Options) -> Families {
        Families {
            map: BTreeMap::new(),
            options: options.clone(),
        }
    }

    /// The family `name` of type `ty`; a name already used with another type gets the type
    /// as a suffix, so a family never mixes types.
    fn family(&mut self, name: &str, ty: Type, help: &str) -> &mut Family {
        let mut name = name.to_owned();
        if self.map.get(&name).is_some_and(|f| f.ty != ty) {
            name = format!("{name}_{}", ty.as_str());
        }
        self.map.entry(name).or_insert_with(|| Family {
            ty,
            help: help.to_owned(),
            metrics: Vec::new(),
        })
    }

    fn sample(&mut self, name: &str, ty: Type, help: &str, labels: Vec<(String, String)>, v: f64) {
        self.family(name, ty, help)
            .metrics
            .push((labels, Value::Plain(v)));
    }

    fn summary(&mut self, name: &str, help: &str, at: Where<'_>, s: &Snapshot, unit: f64) {
        let quantiles = if s.window_count() > 0 {
            QUANTILES
                .iter()
                .map(|&q| (q, s.quantile(q).unwrap_or(0.0) / unit))
                .collect()
        } else {
            Vec::new()
        };
        let l = labels(at.scope, at.tags, at.extra);
        self.family(name, Type::Summary, help).metrics.push((
            l,
            Value::Summary {
                quantiles,
                sum: s.sum / unit,
                count: s.count,
            },
        ));
    }

    /// A duration distribution: a histogram named `name` (`<x>_seconds`), and with
    /// summaries on, a summary of the recent window named `<x>_recent_seconds`.
    fn durations(
        &mut self,
        name: &str,
        help: &str,
        at: Where<'_>,
        s: &Snapshot,
        exemplars: &[crate::stats::Exemplar],
    ) {
        let native = s.histogram();
        let classic = self
            .options
            .buckets
            .iter()
            .map(|&le| (le, native.count_at_most(le)))
            .collect();
        let l = labels(at.scope, at.tags, at.extra);
        self.family(name, Type::Histogram, help).metrics.push((
            l,
            Value::Histogram {
                classic,
                native,
                exemplars: exemplars.to_vec(),
            },
        ));
        if self.options.summaries {
            let base = name.strip_suffix("_seconds").unwrap_or(name);
            let help = format!("{help} Quantiles over the recent window.");
            self.summary(&format!("{base}_recent_seconds"), &help, at, s, 1e9);
        }
    }
}

/// Where a summary's samples belong: scope, user tags, and labels of our own.
#[derive(Clone, Copy)]
struct Where<'a> {
    scope: &'a str,
    tags: &'a Tags,
    extra: &'a [(&'a str, &'a str)],
}

fn function(
    fam: &mut Families,
    scope: &str,
    f: crate::call::func::Func,
    s: &crate::registry::FuncStats,
) {
    // The function's own tags are labels beside `scope` and `name`.
    let none = f.tags();
    let l = labels(scope, none, &[("name", f.name())]);
    for field in &FUNC_FIELDS {
        let ty = match field.kind {
            FieldKind::Gauge => Type::Gauge,
            FieldKind::Counter => Type::Counter,
        };
        let name = format!("monkit_function_{}", field.metric);
        fam.sample(
            &name,
            ty,
            field.help,
            l.clone(),
            field.exposed_value(s) as f64,
        );
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
    if let Some(p) = &s.polls {
        polls(fam, scope, f, p);
    }
    let help = "Duration of calls of the function in seconds, by outcome.";
    for (kind, times, exemplars) in [
        ("success", &s.success_times, &s.success_exemplars),
        ("failure", &s.failure_times, &s.failure_exemplars),
    ] {
        let at = Where {
            scope,
            tags: none,
            extra: &[("name", f.name()), ("kind", kind)],
        };
        fam.durations(
            "monkit_function_duration_seconds",
            help,
            at,
            times,
            exemplars,
        );
    }
}

/// An async function's polls: counts, busy time (a counter and a histogram by outcome), the
/// longest poll.
fn polls(fam: &mut Families, scope: &str, f: crate::call::func::Func, p: &crate::polls::PollStats) {
    let none = f.tags();
    let l = labels(scope, none, &[("name", f.name())]);
    let counters = [
        ("monkit_function_polls", "Polls of the function's async calls.", p.polls as f64),
        (
            "monkit_function_busy_seconds",
            "Time the function's calls ran (the sum of their polls; a sync call's duration), in seconds.",
            p.busy_ns() / 1e9,
        ),
        (
            "monkit_function_slow_polls",
            "Polls of the function's async calls longer than the slow-poll threshold (MONKIT_SLOW_POLL): its worker thread was held that long.",
            p.slow_polls as f64,
        ),
    ];
    for (name, help, v) in counters {
        fam.sample(name, Type::Counter, help, l.clone(), v);
    }
    fam.sample(
        "monkit_function_max_poll_seconds",
        Type::Gauge,
        "Longest poll of one of the function's async calls, in seconds.",
        l,
        p.max_poll_ns as f64 / 1e9,
    );
    let help =
        "Busy time of calls of the function in seconds (the sum of each call's polls), by outcome.";
    for (kind, times) in [("success", &p.busy_success), ("failure", &p.busy_failure)] {
        let at = Where {
            scope,
            tags: none,
            extra: &[("name", f.name()), ("kind", kind)],
        };
        fam.durations(
            "monkit_function_busy_duration_seconds",
            help,
            at,
            times,
            &[],
        );
    }
}

#[rustfmt::skip]
fn source(fam: &mut Families, sname: &str, name: &str, tags: &Tags, r: &Reading, described: Option<&str>) {
    let base = sanitize_name(name);
    let l = labels(sname, tags, &[]);
    // What the program said the series measures, where it said so, for its main family.
    let help = |generic: &'static str| -> std::borrow::Cow<'static, str> {
        described.map_or(generic.into(), |d| d.to_owned().into())
    };
    match r {
        Reading::Meter { rate, total } => {
            fam.sample(&base, Type::Counter, &help("Events marked on a monkit meter."), l.clone(), *total as f64);
            fam.sample(&format!("{base}_rate"), Type::Gauge, "Events per second over the last minute.", l, *rate);
        }
        Reading::Counter { value, high, low } => {
            fam.sample(&base, Type::Gauge, &help("A monkit counter's value."), l.clone(), *value as f64);
            fam.sample(&format!("{base}_high"), Type::Gauge, "Highest value the counter held.", l.clone(), *high as f64);
            fam.sample(&format!("{base}_low"), Type::Gauge, "Lowest value the counter held.", l, *low as f64);
        }
        Reading::Values(s) => {
            fam.summary(&base, &help("A monkit value distribution (quantiles over the recent window)."), Where { scope: sname, tags, extra: &[] }, s, 1.0);
        }
        Reading::Histogram(s) => {
            fam.durations(&base, &help("A monkit histogram."), Where { scope: sname, tags, extra: &[] }, s, &[]);
        }
        Reading::Durations(s) => {
            let n = if base.ends_with("_seconds") { base.clone() } else { format!("{base}_seconds") };
            fam.durations(&n, &help("A monkit duration distribution in seconds."), Where { scope: sname, tags, extra: &[] }, s, &[]);
        }
        Reading::Bools { trues, falses, .. } => {
            fam.sample(&format!("{base}_true"), Type::Counter, "Observations of true.", l.clone(), *trues as f64);
            fam.sample(&format!("{base}_false"), Type::Counter, "Observations of false.", l, *falses as f64);
        }
        Reading::Gauge(v) => fam.sample(&base, Type::Gauge, &help("A monkit gauge."), l, *v),
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
                // A field named `x_total` counts up: a counter, its family `x`.
                match n.strip_suffix("_total") {
                    Some(base) => fam.sample(base, Type::Counter, &help("A count of a custom monkit stat source."), l, *v),
                    None => fam.sample(&n, Type::Gauge, &help("A value of a custom monkit stat source."), l, *v),
                }
            }
        }
    }
}

fn read(registry: &Registry, options: &Options) -> Families {
    let mut fam = Families::new(options);
    registry.read(|scope, item| match item {
        Item::Func(f, s) => function(&mut fam, scope, f, s),
        Item::Source {
            name,
            tags,
            reading,
        } => {
            let described = registry.description(name);
            source(&mut fam, scope, name, tags, reading, described.as_deref())
        }
    });
    fam
}

/// Renders every stat of `registry` with the default [`Options`]; `openmetrics` selects
/// OpenMetrics 1.0 text.
pub fn render(registry: &Registry, openmetrics: bool) -> String {
    render_with(registry, openmetrics, &Options::default())
}

/// Renders every stat of `registry` as text with `options`.
pub fn render_with(registry: &Registry, openmetrics: bool, options: &Options) -> String {
    let fam = read(registry, options);
    // Sized up front from the families: growing by doubling would hold up to twice the page
    // while it copies, and collecting lines first would hold it twice.
    let size: usize = fam
        .map
        .iter()
        .map(|(name, f)| {
            2 * (name.len() + 24)
                + f.help.len()
                + f.metrics
                    .iter()
                    .map(|(l, v)| {
                        let labels: usize = l.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
                        let lines = match v {
                            Value::Plain(_) => 1,
                            Value::Summary { quantiles, .. } => quantiles.len() + 2,
                            Value::Histogram { classic, .. } => classic.len() + 3,
                        };
                        lines * (name.len() + labels + 48)
                    })
                    .sum::<usize>()
        })
        .sum();
    let mut out = String::with_capacity(size + 16);
    for (name, f) in &fam.map {
        // In 0.0.4 a counter's family is named like its sample (`x_total`); in OpenMetrics
        // the family is `x` and the sample `x_total`.
        let family = if f.ty == Type::Counter && !openmetrics {
            format!("{name}_total")
        } else {
            name.clone()
        };
        let _ = writeln!(out, "# HELP {family} {}", escape_help(&f.help));
        let _ = writeln!(out, "# TYPE {family} {}", f.ty.as_str());
        let line = |out: &mut String, suffix: &str, l: &str, v: &dyn std::fmt::Display| {
            let _ = writeln!(out, "{name}{suffix}{{{l}}} {v}");
        };
        for (labels, v) in &f.metrics {
            match v {
                Value::Plain(x) => {
                    let suffix = if f.ty == Type::Counter { "_total" } else { "" };
                    line(
                        &mut out,
                        suffix,
                        &labels_text(labels, None),
                        &format::prometheus_value(*x),
                    );
                }
                Value::Summary {
                    quantiles,
                    sum,
                    count,
                } => {
                    for (q, x) in quantiles {
                        let qs = format!("{q}");
                        let l = labels_text(labels, Some(("quantile", &qs)));
                        line(&mut out, "", &l, &format::prometheus_value(*x));
                    }
                    let l = labels_text(labels, None);
                    line(&mut out, "_sum", &l, &format::prometheus_value(*sum));
                    line(&mut out, "_count", &l, count);
                }
                Value::Histogram {
                    classic,
                    native,
                    exemplars,
                } => {
                    // OpenMetrics only: each bucket's line ends with its latest exemplar.
                    let shown = |below: f64, le: f64| {
                        if !openmetrics {
                            return String::new();
                        }
                        crate::stats::in_bucket(exemplars, below, le)
                            .map(exemplar_text)
                            .unwrap_or_default()
                    };
                    let mut below = f64::NEG_INFINITY;
                    for (le, n) in classic {
                        let les = format::prometheus_value(*le);
                        let l = labels_text(labels, Some(("le", &les)));
                        let _ = writeln!(out, "{name}_bucket{{{l}}} {n}{}", shown(below, *le));
                        below = *le;
                    }
                    let l = labels_text(labels, Some(("le", "+Inf")));
                    let _ = writeln!(
                        out,
                        "{name}_bucket{{{l}}} {}{}",
                        native.count,
                        shown(below, f64::INFINITY)
                    );
                    let l = labels_text(labels, None);
                    line(&mut out, "_sum", &l, &format::prometheus_value(native.sum));
                    line(&mut out, "_count", &l, &native.count);
                }
            }
        }
    }
    if openmetrics {
        out.push_str("# EOF\n");
    }
    out
}

/// ` # {trace_id="..",span_id=".."} value timestamp`: an exemplar on an OpenMetrics line.
fn exemplar_text(e: &crate::stats::Exemplar) -> String {
    format!(
        " # {{trace_id=\"{:032x}\",span_id=\"{:016x}\"}} {} {}.{:03}",
        e.trace_id,
        e.span_id,
        format::prometheus_value(e.value),
        e.unix_nanos / 1_000_000_000,
        e.unix_nanos / 1_000_000 % 1000
    )
}

/// Renders every stat of `registry` in the protobuf exposition format (length-delimited
/// `io.prometheus.client.MetricFamily` messages), durations as histograms with both classic
/// and native buckets: what a Prometheus with native histograms enabled asks for.
pub fn render_protobuf(registry: &Registry, options: &Options) -> Vec<u8> {
    let fam = read(registry, options);
    crate::render::prometheus_pb::encode(fam.map.iter().map(|(name, f)| {
        let name = if f.ty == Type::Counter {
            format!("{name}_total")
        } else {
            name.clone()
        };
        crate::render::prometheus_pb::Family {
            name,
            help: &f.help,
            kind: match f.ty {
                Type::Counter => crate::render::prometheus_pb::Kind::Counter,
                Type::Gauge => crate::render::prometheus_pb::Kind::Gauge,
                Type::Summary => crate::render::prometheus_pb::Kind::Summary,
                Type::Histogram => crate::render::prometheus_pb::Kind::Histogram,
            },
            metrics: f
                .metrics
                .iter()
                .map(|(l, v)| {
                    let value = match v {
                        Value::Plain(x) => crate::render::prometheus_pb::Sample::Plain(*x),
                        Value::Summary {
                            quantiles,
                            sum,
                            count,
                        } => crate::render::prometheus_pb::Sample::Summary {
                            quantiles,
                            sum: *sum,
                            count: *count,
                        },
                        Value::Histogram {
                            classic,
                            native,
                            exemplars,
                        } => crate::render::prometheus_pb::Sample::Histogram {
                            classic,
                            native,
                            exemplars,
                        },
                    };
                    (l.as_slice(), value)
                })
                .collect(),
        }
    }))
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
        assert_eq!(
            labels_text(&l, None),
            "a_b=\"1\",scope=\"s\",tag_quantile=\"x\""
        );
    }
}
