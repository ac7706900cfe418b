//! Scopes: named groups of stat sources, usually one per module.

use crate::counter::Counter;
use crate::func::{FuncInner, Location};
use crate::meter::Meter;
use crate::registry::default_registry;
use crate::series::{SeriesKey, Tags};
use crate::val::{BoolVal, DurationVal, FloatVal, IntVal, Timer};
use crate::Func;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

type GaugeFn = Arc<dyn Fn() -> f64 + Send + Sync>;
type FieldSink<'a> = dyn FnMut(&str, f64) + 'a;

/// One series of a stats walk, with its key text for sorting.
struct Series {
    key: SeriesKey,
    text: String,
    fields: Vec<(String, f64)>,
}

struct Lines<'a> {
    scope: &'a str,
    out: Vec<Series>,
}

impl Lines<'_> {
    fn add(&mut self, measurement: &str, tags: &Tags, fill: &mut dyn FnMut(&mut FieldSink<'_>)) {
        let mut t = tags.clone();
        t.set("scope", self.scope);
        let key = SeriesKey::new(measurement, t);
        let mut fields = Vec::new();
        fill(&mut |f: &str, v: f64| fields.push((f.to_owned(), v)));
        let text = key.to_string();
        self.out.push(Series { key, text, fields });
    }

    /// One stat of a custom source; consecutive stats of one series share it.
    fn add_field(&mut self, key: &SeriesKey, field: &str, v: f64) {
        let mut key = key.clone();
        key.tags.set("scope", self.scope);
        match self.out.last_mut() {
            Some(last) if last.key == key => last.fields.push((field.to_owned(), v)),
            _ => {
                let text = key.to_string();
                self.out.push(Series {
                    key,
                    text,
                    fields: vec![(field.to_owned(), v)],
                })
            }
        }
    }
}

#[derive(Clone)]
enum Source {
    Meter(Meter),
    Counter(Counter),
    Int(IntVal),
    Float(FloatVal),
    Duration(DurationVal),
    Timer(Timer),
    Bool(BoolVal),
    Gauge(GaugeFn),
    Custom(Arc<dyn crate::StatSource>),
}

/// A source's values, read for a renderer.
pub(crate) enum Reading {
    Meter { rate: f64, total: u64 },
    Counter { value: i64, high: i64, low: i64 },
    Values(crate::Snapshot),
    Durations(crate::Snapshot),
    Bools { trues: u64, falses: u64 },
    Gauge(f64),
    Custom(Vec<(SeriesKey, String, f64)>),
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
enum Kind {
    Meter,
    Counter,
    Int,
    Float,
    Duration,
    Timer,
    Bool,
    Gauge,
    Custom,
}

type SourceKey = (String, Tags, Kind);

pub(crate) struct ScopeInner {
    name: String,
    sources: RwLock<BTreeMap<SourceKey, Source>>,
    /// Tag sets per source name and kind, for the cardinality cap.
    tag_sets: RwLock<std::collections::HashMap<(String, Kind), usize>>,
    funcs: RwLock<BTreeMap<String, &'static FuncInner>>,
}

impl ScopeInner {
    pub(crate) fn new(name: &str) -> Self {
        ScopeInner {
            name: name.to_owned(),
            sources: RwLock::new(BTreeMap::new()),
            tag_sets: RwLock::new(std::collections::HashMap::new()),
            funcs: RwLock::new(BTreeMap::new()),
        }
    }

    pub(crate) fn func_inner(&self, name: &str, location: Option<Location>) -> &'static FuncInner {
        if let Some(f) = self.funcs.read().get(name) {
            return f;
        }
        self.funcs
            .write()
            .entry(name.to_owned())
            .or_insert_with(|| FuncInner::create(&self.name, name, location))
    }

    /// The sources, copied out so no lock is held while they are read (gauges call user code).
    fn sources_now(&self) -> Vec<(SourceKey, Source)> {
        self.sources
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn source(
        &self,
        name: &str,
        tags: &[(&str, &str)],
        kind: Kind,
        make: impl FnOnce() -> Source,
    ) -> Source {
        let key = (name.to_owned(), Tags::new(tags), kind);
        if let Some(s) = self.sources.read().get(&key) {
            return s.clone();
        }
        let mut all = self.sources.write();
        if let Some(s) = all.get(&key) {
            return s.clone();
        }
        let mut sets = self.tag_sets.write();
        let n = sets.entry((name.to_owned(), kind)).or_insert(0);
        if *n >= MAX_TAG_SETS && !tags.is_empty() {
            // Refused: the values go to one overflow series, and the refusal is counted.
            drop(sets);
            let over = (name.to_owned(), Tags::new(&[(OVERFLOW_TAG, "true")]), kind);
            let s = all.entry(over).or_insert_with(make).clone();
            drop(all);
            refused(&self.name, name);
            return s;
        }
        *n += 1;
        drop(sets);
        all.entry(key).or_insert_with(make).clone()
    }
}

/// Most tag sets one source name may have in a scope. Past it, new tag sets are refused:
/// their values go to the series tagged `monkit_overflow=true`, and each refusal marks the
/// meter `cardinality_refused{source=<scope>.<name>}` of scope `monkit`. Cardinality can never
/// grow without bound, and never silently.
pub const MAX_TAG_SETS: usize = 1000;
/// Most functions made by name (`Scope::func`) in one scope; past it, calls of new names count
/// under the function `other`, and each refusal is counted as above.
pub const MAX_FUNCS: usize = 10_000;
const OVERFLOW_TAG: &str = "monkit_overflow";

#[cold]
fn refused(scope: &str, name: &str) {
    crate::default_registry()
        .scope("monkit")
        .meter_with(
            "cardinality_refused",
            &[("source", &format!("{scope}.{name}"))],
        )
        .mark(1);
}

/// A named group of stat sources. Declare one per module as a static:
///
/// ```
/// static MON: monkit::Scope = monkit::scope!();
///
/// MON.meter("requests").mark(1);
/// MON.int_val("bytes", &[("route", "/x")]).observe(1024);
/// ```
///
/// Handles (`Meter`, `IntVal`...) are cheap to clone; hold one to skip the name lookup.
pub struct Scope {
    name: &'static str,
    inner: OnceLock<Arc<ScopeInner>>,
}

impl Clone for Scope {
    fn clone(&self) -> Self {
        Scope::resolved(self.inner().clone())
    }
}

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Scope").field(&self.name()).finish()
    }
}

/// A [`Scope`] of the default registry named after the current module (`module_path!()`).
#[macro_export]
macro_rules! scope {
    () => {
        $crate::Scope::new(::core::module_path!())
    };
    ($name:expr) => {
        $crate::Scope::new($name)
    };
}

macro_rules! dist_source {
    ($(#[$m:meta])* $fn:ident, $ty:ident, $kind:ident) => {
        $(#[$m])*
        pub fn $fn(&self, name: &str, tags: &[(&str, &str)]) -> $ty {
            match self.inner().source(name, tags, Kind::$kind, || Source::$kind($ty::new())) {
                Source::$kind(v) => v,
                _ => unreachable!("source kinds are part of the key"),
            }
        }
    };
}

impl Scope {
    /// A scope of the default registry, resolved on first use (so it can be a `static`).
    pub const fn new(name: &'static str) -> Scope {
        Scope {
            name,
            inner: OnceLock::new(),
        }
    }

    pub(crate) fn resolved(inner: Arc<ScopeInner>) -> Scope {
        let cell = OnceLock::new();
        let _ = cell.set(inner);
        Scope {
            name: "",
            inner: cell,
        }
    }

    fn inner(&self) -> &Arc<ScopeInner> {
        self.inner
            .get_or_init(|| default_registry().scope_named(self.name))
    }

    /// The scope's name.
    pub fn name(&self) -> &str {
        &self.inner().name
    }

    /// The function `name` of this scope, for code that cannot use the attribute (closures,
    /// code generated by other macros).
    ///
    /// ```
    /// static MON: monkit::Scope = monkit::scope!();
    /// let n = MON.func("parse").task(|| 2 + 2);
    /// assert_eq!(n, 4);
    /// ```
    pub fn func(&self, name: &str) -> Func {
        let inner = self.inner();
        if inner.funcs.read().len() >= MAX_FUNCS && !inner.funcs.read().contains_key(name) {
            refused(&inner.name, name);
            return Func(inner.func_inner("other", None));
        }
        Func(inner.func_inner(name, None))
    }

    /// The functions of this scope, sorted by name.
    pub fn funcs(&self) -> Vec<Func> {
        self.inner()
            .funcs
            .read()
            .values()
            .map(|&f| Func(f))
            .collect()
    }

    /// The meter `name`.
    pub fn meter(&self, name: &str) -> Meter {
        self.meter_with(name, &[])
    }

    /// The meter `name` with tags.
    pub fn meter_with(&self, name: &str, tags: &[(&str, &str)]) -> Meter {
        match self
            .inner()
            .source(name, tags, Kind::Meter, || Source::Meter(Meter::new()))
        {
            Source::Meter(m) => m,
            _ => unreachable!("source kinds are part of the key"),
        }
    }

    /// Marks one event on the meter `name`.
    pub fn event(&self, name: &str) {
        self.meter(name).mark(1)
    }

    /// The counter `name`.
    pub fn counter(&self, name: &str) -> Counter {
        self.counter_with(name, &[])
    }

    /// The counter `name` with tags.
    pub fn counter_with(&self, name: &str, tags: &[(&str, &str)]) -> Counter {
        match self.inner().source(
            name,
            tags,
            Kind::Counter,
            || Source::Counter(Counter::new()),
        ) {
            Source::Counter(c) => c,
            _ => unreachable!("source kinds are part of the key"),
        }
    }

    dist_source!(
        /// The integer distribution `name` with tags.
        int_val, IntVal, Int
    );
    dist_source!(
        /// The float distribution `name` with tags.
        float_val, FloatVal, Float
    );
    dist_source!(
        /// The duration distribution `name` with tags (reported in seconds).
        duration_val, DurationVal, Duration
    );
    dist_source!(
        /// The boolean distribution `name` with tags.
        bool_val, BoolVal, Bool
    );

    /// The timer `name` (a duration distribution fed by guards).
    pub fn timer(&self, name: &str) -> Timer {
        self.timer_with(name, &[])
    }

    /// The timer `name` with tags.
    pub fn timer_with(&self, name: &str, tags: &[(&str, &str)]) -> Timer {
        match self.inner().source(name, tags, Kind::Timer, || {
            Source::Timer(Timer(DurationVal::new()))
        }) {
            Source::Timer(t) => t,
            _ => unreachable!("source kinds are part of the key"),
        }
    }

    /// Registers a gauge: `read` is called at every stats walk and reported as `value`. A
    /// later gauge of the same name and tags replaces it.
    pub fn gauge(
        &self,
        name: &str,
        tags: &[(&str, &str)],
        read: impl Fn() -> f64 + Send + Sync + 'static,
    ) {
        let key = (name.to_owned(), Tags::new(tags), Kind::Gauge);
        self.inner()
            .sources
            .write()
            .insert(key, Source::Gauge(Arc::new(read)));
    }

    /// Every non-function source of this scope, read now, sorted by name and tags.
    pub(crate) fn each_source(&self, mut f: impl FnMut(&str, &Tags, Reading)) {
        let sources = self.inner().sources_now();
        for ((name, tags, _), src) in &sources {
            let r = match src {
                Source::Meter(m) => Reading::Meter {
                    rate: m.rate(),
                    total: m.total(),
                },
                Source::Counter(c) => Reading::Counter {
                    value: c.value(),
                    high: c.high(),
                    low: c.low(),
                },
                Source::Int(v) => Reading::Values(v.snapshot()),
                Source::Float(v) => Reading::Values(v.snapshot()),
                Source::Duration(v) => Reading::Durations(v.snapshot()),
                Source::Timer(v) => Reading::Durations(v.snapshot()),
                Source::Bool(v) => {
                    let (t, f, _) = v.counts();
                    Reading::Bools {
                        trues: t,
                        falses: f,
                    }
                }
                Source::Gauge(g) => Reading::Gauge(g()),
                Source::Custom(c) => {
                    let mut v = Vec::new();
                    c.stats(&mut |k, f, x| v.push((k.clone(), f.to_owned(), x)));
                    Reading::Custom(v)
                }
            };
            f(name, tags, r);
        }
    }

    /// Adds a custom stat source under `name` (a later source of the same name replaces it).
    /// Its series get this scope's `scope` tag.
    pub fn chain(&self, name: &str, source: impl crate::StatSource + 'static) {
        let key = (name.to_owned(), Tags::default(), Kind::Custom);
        self.inner()
            .sources
            .write()
            .insert(key, Source::Custom(Arc::new(source)));
    }

    /// A series `name` whose fields `read` reports at every walk (Go monkit's `StructVal`):
    ///
    /// ```
    /// static MON: monkit::Scope = monkit::scope!();
    /// MON.struct_val("cache", &[], |field| {
    ///     field("entries", 120.0);
    ///     field("bytes", 4096.0);
    /// });
    /// ```
    pub fn struct_val(
        &self,
        name: &str,
        tags: &[(&str, &str)],
        read: impl Fn(&mut dyn FnMut(&str, f64)) + Send + Sync + 'static,
    ) {
        self.chain(
            name,
            crate::source::StructVal {
                key: SeriesKey::new(name, Tags::new(tags)),
                read,
            },
        );
    }

    /// Calls `cb` with every stat of this scope, series sorted by key text.
    pub fn stats(&self, cb: &mut dyn FnMut(&SeriesKey, &str, f64)) {
        let inner = self.inner();
        let mut lines = Lines {
            scope: &inner.name,
            out: Vec::new(),
        };
        let funcs: Vec<&'static FuncInner> = inner.funcs.read().values().copied().collect();
        for f in funcs {
            let s = f.stats();
            let tags = Tags::new(&[("name", &f.name)]);
            lines.add("function", &tags, &mut |cb| {
                cb("current", s.current as f64);
                cb("highwater", s.highwater as f64);
                cb("successes", s.successes as f64);
                cb("errors", s.errors_total as f64);
                cb("panics", s.panics as f64);
                cb("failures", s.failures() as f64);
                cb("total", s.total() as f64);
            });
            for (kind, n) in &s.errors {
                let mut t = tags.clone();
                t.set("error_name", kind);
                lines.add("function", &t, &mut |cb| cb("count", *n as f64));
            }
            for (kind, snap) in [("success", &s.success_times), ("failure", &s.failure_times)] {
                let mut t = tags.clone();
                t.set("kind", kind);
                lines.add("function_times", &t, &mut |cb| snap.fields(1e-9, cb));
            }
        }
        let sources = inner.sources_now();
        for ((name, tags, _), src) in &sources {
            if let Source::Custom(c) = src {
                c.stats(&mut |k, f, v| lines.add_field(k, f, v));
                continue;
            }
            lines.add(name, tags, &mut |cb| match src {
                Source::Meter(m) => m.fields(cb),
                Source::Counter(c) => c.fields(cb),
                Source::Int(v) => v.snapshot().fields(1.0, cb),
                Source::Float(v) => v.snapshot().fields(1.0, cb),
                Source::Duration(v) => v.snapshot().fields(1e-9, cb),
                Source::Timer(v) => v.snapshot().fields(1e-9, cb),
                Source::Bool(v) => v.fields(cb),
                Source::Gauge(g) => cb("value", g()),
                Source::Custom(_) => {}
            });
        }
        let mut out = lines.out;
        out.sort_by(|a, b| a.text.cmp(&b.text));
        for s in &out {
            for (f, v) in &s.fields {
                cb(&s.key, f, *v);
            }
        }
    }
}
