//! A recorder for the [`metrics`] facade, so the libraries that record through
//! `counter!`, `gauge!` and `histogram!` (HTTP clients, database pools, job queues) land in
//! monkit's scopes beside the program's own functions: in `/stats`, `/metrics` (native and
//! classic histograms), the console, Graphite, and every other reader of the registry.
//!
//! ```
//! monkit_metrics::Recorder::new(monkit::default_registry()).install().ok();
//! metrics::counter!("sqlx.queries", "db" => "users").increment(1);
//! metrics::histogram!("sqlx.query_seconds").record(0.004);
//! metrics::gauge!("pool_connections").set(8.0);
//! ```
//!
//! - **Where**: a name with a dot is split at its first one into scope and name
//!   (`sqlx.queries` is `queries` in scope `sqlx`); any other name goes to the recorder's scope
//!   (`metrics` by default, [`Recorder::scope`]). Labels are tags.
//! - **What**: a counter is a monkit [`Meter`] (total and rate), a gauge a
//!   [`FloatGauge`], a histogram a
//!   [`HistogramVal`]: a distribution with the core's native
//!   buckets, shown in `/metrics` as a histogram (native buckets exact, classic at the
//!   configured bounds) and with its quantiles in `/stats` and every push.
//! - **Bounds**: label sets are under the registry's tag-set cap; past it, values go to the
//!   `overflow` series and the refusal is counted, as for the core's own sources.
//! - **Help**: `describe_*` text is kept ([`Recorder::description`]) for the pages to show.
//!
//! Handles are found by the facade's prehashed keys in `metrics-util`'s sharded registry, so a
//! macro that looks its metric up on every call costs one hashed read, and a kept handle costs
//! only the update.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata,
    SharedString, Unit,
};
use metrics_util::registry::{Registry as Handles, Storage};
use monkit::stats::{FloatGauge, HistogramVal, Meter};
use monkit::Registry;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;

/// The scope a name without a dot goes to, unless [`Recorder::scope`] says otherwise.
pub const DEFAULT_SCOPE: &str = "metrics";

/// A counter: a monkit meter.
#[derive(Clone)]
struct MeterFn(Meter);

impl CounterFn for MeterFn {
    fn increment(&self, v: u64) {
        self.0.mark(v);
    }
    fn absolute(&self, v: u64) {
        // The facade's absolute counters only go up.
        if v > self.0.total() {
            self.0.set_total(v);
        }
    }
}

/// A gauge: a monkit float gauge.
#[derive(Clone)]
struct GaugeCell(FloatGauge);

impl GaugeFn for GaugeCell {
    fn increment(&self, v: f64) {
        self.0.add(v);
    }
    fn decrement(&self, v: f64) {
        self.0.add(-v);
    }
    fn set(&self, v: f64) {
        self.0.set(v);
    }
}

/// A histogram: a monkit float distribution.
#[derive(Clone)]
struct ValFn(HistogramVal);

impl HistogramFn for ValFn {
    fn record(&self, v: f64) {
        self.0.observe(v);
    }
}

/// Makes the monkit source of a key the first time the facade asks for it.
struct Sources {
    registry: Registry,
    scope: String,
}

impl Sources {
    /// The scope, name and tags of `key`.
    fn place<'k>(&'k self, key: &'k Key) -> (&'k str, &'k str, Vec<(&'k str, &'k str)>) {
        let tags = key.labels().map(|l| (l.key(), l.value())).collect();
        match key.name().split_once('.') {
            Some((scope, name)) if !scope.is_empty() && !name.is_empty() => (scope, name, tags),
            _ => (&self.scope, key.name(), tags),
        }
    }
}

impl Storage<Key> for Sources {
    type Counter = Arc<MeterFn>;
    type Gauge = Arc<GaugeCell>;
    type Histogram = Arc<ValFn>;

    fn counter(&self, key: &Key) -> Self::Counter {
        let (scope, name, tags) = self.place(key);
        Arc::new(MeterFn(self.registry.scope(scope).meter_with(name, &tags)))
    }

    fn gauge(&self, key: &Key) -> Self::Gauge {
        let (scope, name, tags) = self.place(key);
        Arc::new(GaugeCell(
            self.registry.scope(scope).float_gauge_with(name, &tags),
        ))
    }

    fn histogram(&self, key: &Key) -> Self::Histogram {
        let (scope, name, tags) = self.place(key);
        Arc::new(ValFn(
            self.registry.scope(scope).histogram_val_with(name, &tags),
        ))
    }
}

/// What `describe_*` said of a metric name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Description {
    /// The help text.
    pub text: String,
    /// The unit, if one was given.
    pub unit: Option<Unit>,
}

/// The `metrics` recorder that writes into a monkit registry. See the crate doc. Clones share
/// one recorder (keep one to read descriptions after installing another).
#[derive(Clone)]
pub struct Recorder(Arc<Inner>);

struct Inner {
    handles: Handles<Key, Sources>,
    descriptions: RwLock<HashMap<String, Description>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("scope", &self.0.handles.storage().scope)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// A recorder writing into `registry`, names without a dot in scope [`DEFAULT_SCOPE`].
    pub fn new(registry: &Registry) -> Recorder {
        Recorder::with_scope(registry, DEFAULT_SCOPE)
    }

    fn with_scope(registry: &Registry, scope: &str) -> Recorder {
        Recorder(Arc::new(Inner {
            handles: Handles::new(Sources {
                registry: registry.clone(),
                scope: scope.to_owned(),
            }),
            descriptions: RwLock::new(HashMap::new()),
        }))
    }

    /// A recorder like this one that puts names without a dot in scope `scope` instead (what
    /// this one recorded stays where it is).
    pub fn scope(self, scope: &str) -> Recorder {
        Recorder::with_scope(&self.0.handles.storage().registry, scope)
    }

    /// Makes this the process's global `metrics` recorder; an error when one is set already.
    pub fn install(self) -> Result<(), metrics::SetRecorderError<Recorder>> {
        metrics::set_global_recorder(self)
    }

    /// What `describe_counter!`, `describe_gauge!` or `describe_histogram!` said of `name`.
    pub fn description(&self, name: &str) -> Option<Description> {
        self.0.descriptions.read().get(name).cloned()
    }

    fn describe(&self, key: KeyName, unit: Option<Unit>, text: SharedString) {
        // The pages show it as the series' help, with its unit.
        // A dotted name is `scope.name` (see `place`); the description is the source name's.
        let full = key.as_str();
        let name = match full.split_once('.') {
            Some((scope, name)) if !scope.is_empty() && !name.is_empty() => name,
            _ => full,
        };
        let help = match unit {
            Some(u) => format!("{text} (unit: {})", u.as_str()),
            None => text.to_string(),
        };
        self.0.handles.storage().registry.describe(name, &help);
        self.0.descriptions.write().insert(
            key.as_str().to_owned(),
            Description {
                text: text.into_owned(),
                unit,
            },
        );
    }
}

impl metrics::Recorder for Recorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.0
            .handles
            .get_or_create_counter(key, |c| Counter::from_arc(c.clone()))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.0
            .handles
            .get_or_create_gauge(key, |g| Gauge::from_arc(g.clone()))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.0
            .handles
            .get_or_create_histogram(key, |h| Histogram::from_arc(h.clone()))
    }
}
