//! The registry: its scopes (each with its functions and sources, under cardinality caps) and
//! its span side ([`Hub`]: sampler, observers, watchers), and the default registry where
//! `#[monkit::task]` functions live. A registry owns all of its state, so
//! two registries never see each other's scopes, sources, refusals, observers or watchers.
//! Function ids and `/ps` listings are process-wide (see `func.rs`, `live.rs`).

use crate::call::func::Func;
use crate::call::live::LiveSpan;
use crate::registry::scope::{Scope, ScopeInner};
use crate::registry::site::SiteRef;
use crate::registry::walk::{self, Item};
use crate::stats::series::{SeriesKey, Tags};
use crate::trace::collect::Collecting;
use crate::trace::hub::{Hub, ObserverHandle, TraceWatcher};
use crate::trace::observe::{FinishedSpan, SpanObserver};
use crate::trace::sampler::Sampler;
use crate::trace::span::{enter_ctx, InSpanExt};
use crate::trace::watch::{WatchError, WatchSpec};
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, LazyLock};

/// A registry-wide transformer of stats: gets each `(series key, field, value)` of a walk and
/// passes on what it wants to the next transformer (or the reader) through the callback: the
/// same stat, a changed one, several, or none. See [`Registry::add_transformer`].
pub type Transformer =
    Arc<dyn Fn(&SeriesKey, &str, f64, &mut dyn FnMut(&SeriesKey, &str, f64)) + Send + Sync>;

pub(crate) struct RegistryInner {
    scopes: RwLock<BTreeMap<String, Arc<ScopeInner>>>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) transformers: RwLock<Vec<Transformer>>,
    /// Help text by source name, as a program described its series.
    descriptions: RwLock<std::collections::HashMap<String, String>>,
}

impl RegistryInner {
    pub(crate) fn scope_named(self: &Arc<Self>, name: &str) -> Arc<ScopeInner> {
        if let Some(s) = self.scopes.read().get(name) {
            return s.clone();
        }
        self.scopes
            .write()
            .entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(ScopeInner::new(
                    name,
                    Arc::downgrade(self),
                    self.hub.clone(),
                ))
            })
            .clone()
    }
}

/// Scopes of functions and sources, and the span side that goes with them (sampler,
/// observers, watchers). Most programs use the process-wide
/// [`default_registry`](crate::default_registry); a private one (`Registry::new()`) is fully
/// separate from it, except that `#[monkit::task]` functions always live in the default one.
#[derive(Clone)]
pub struct Registry(pub(crate) Arc<RegistryInner>);

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("scopes", &self.0.scopes.read().len())
            .finish()
    }
}

impl Registry {
    /// Runs `work` as a new trace and returns its result with every span of this registry's
    /// functions it finished (sorted by start), including spans of threads and tasks it
    /// parented explicitly that finished in time.
    pub fn collect_trace<R>(&self, work: impl FnOnce() -> R) -> (R, Vec<FinishedSpan>) {
        let (c, root) = Collecting::start(&self.0.hub);
        let r = {
            let _ctx = enter_ctx(Some(root));
            work()
        };
        (r, c.finish())
    }

    /// The async twin of [`Registry::collect_trace`].
    pub async fn collect_trace_async<F: Future>(&self, work: F) -> (F::Output, Vec<FinishedSpan>) {
        let (c, root) = Collecting::start(&self.0.hub);
        let r = work.in_span(root).await;
        (r, c.finish())
    }

    /// The scope called `name`, created on first use.
    pub fn scope(&self, name: &str) -> Scope {
        Scope::resolved(self.scope_named(name))
    }

    /// Every scope, sorted by name.
    pub fn scopes(&self) -> Vec<Scope> {
        self.scope_list().into_iter().map(Scope::resolved).collect()
    }

    /// Calls `cb` with every function and source, scope by scope (sorted by name), each
    /// read once, now.
    pub fn read(&self, mut cb: impl FnMut(&str, Item<'_>)) {
        for scope in self.scope_list() {
            walk::read_scope(&scope, &mut cb);
        }
    }

    /// Calls `cb` with every stat: series key, field and value. Series come out sorted by
    /// scope, then by key text; a series' fields in the order its source defines.
    pub fn stats(&self, mut cb: impl FnMut(&SeriesKey, &str, f64)) {
        for scope in self.scope_list() {
            walk::emit(&scope, &mut cb);
        }
    }

    /// A new, empty registry (for tests and embedding; most code wants
    /// [`default_registry`](crate::default_registry)).
    pub fn new() -> Registry {
        Registry(Arc::new(RegistryInner {
            scopes: RwLock::new(BTreeMap::new()),
            hub: Arc::new(Hub::default()),
            transformers: RwLock::new(Vec::new()),
            descriptions: RwLock::new(std::collections::HashMap::new()),
        }))
    }

    /// Says what the sources named `name` (in any scope) measure: the help text `/metrics`
    /// gives their families instead of a generic one (the `metrics` facade's `describe_*`
    /// lands here). A later description replaces an earlier one.
    ///
    /// ```
    /// let reg = monkit::Registry::new();
    /// reg.scope("app").counter("queue_depth").inc(3);
    /// reg.describe("queue_depth", "Jobs waiting for a worker.");
    /// let text = monkit::render::prometheus::render(&reg, false);
    /// assert!(text.contains("# HELP queue_depth Jobs waiting for a worker."), "{text}");
    /// ```
    pub fn describe(&self, name: &str, help: &str) {
        self.0
            .descriptions
            .write()
            .insert(name.to_owned(), help.to_owned());
    }

    /// What [`Registry::describe`] said of `name`.
    pub fn description(&self, name: &str) -> Option<String> {
        self.0.descriptions.read().get(name).cloned()
    }

    /// Adds a transformer applied, after those added before it, to every stat of this
    /// registry's line-format walks ([`Registry::stats`], [`Scope::stats`](crate::Scope::stats):
    /// `/stats` and the pushes built on them). Typed readers (`/metrics`, [`Registry::read`])
    /// see the stats as they are.
    ///
    /// ```
    /// let reg = monkit::Registry::new();
    /// reg.scope("app").meter("hits").mark(3);
    /// // Drop rates, rename totals.
    /// reg.add_transformer(std::sync::Arc::new(|key: &monkit::stats::SeriesKey, field: &str, v: f64,
    ///     next: &mut dyn FnMut(&monkit::stats::SeriesKey, &str, f64)| {
    ///     match field {
    ///         "rate" => {}
    ///         "total" => next(key, "count", v),
    ///         f => next(key, f, v),
    ///     }
    /// }));
    /// let mut seen = Vec::new();
    /// reg.stats(|k, f, v| seen.push((k.measurement.clone(), f.to_owned(), v)));
    /// assert_eq!(seen, vec![("hits".to_owned(), "count".to_owned(), 3.0)]);
    /// ```
    pub fn add_transformer(&self, t: Transformer) {
        self.0.transformers.write().push(t);
    }

    pub(crate) fn scope_named(&self, name: &str) -> Arc<ScopeInner> {
        self.0.scope_named(name)
    }

    /// Every scope's data, sorted by name.
    pub(crate) fn scope_list(&self) -> Vec<Arc<ScopeInner>> {
        self.0.scopes.read().values().cloned().collect()
    }

    /// Every function, sorted by full name.
    pub fn funcs(&self) -> Vec<Func> {
        let mut v: Vec<Func> = self
            .scope_list()
            .iter()
            .flat_map(|s| s.funcs())
            .map(Func)
            .collect();
        v.sort_by(|a, b| a.full_name().cmp(b.full_name()));
        v
    }

    /// The function with this full name (`scope.name`).
    pub fn func_by_name(&self, full_name: &str) -> Option<Func> {
        self.funcs()
            .into_iter()
            .find(|f| f.full_name() == full_name)
    }

    /// Sets up a watcher over this registry's functions: see [`WatchSpec`].
    ///
    /// ```
    /// #[monkit::task]
    /// fn handle_http() { inner() }
    /// #[monkit::task]
    /// fn inner() {}
    ///
    /// let w = monkit::default_registry()
    ///     .watch(monkit::trace::WatchSpec::regex("handle_http"))
    ///     .unwrap();
    /// std::thread::spawn(handle_http);
    /// let Some(monkit::trace::Captured::Trace(spans)) = w.wait(std::time::Duration::from_secs(10))
    /// else { panic!("no trace") };
    /// assert_eq!(spans.len(), 2);
    /// ```
    pub fn watch(&self, spec: WatchSpec) -> Result<TraceWatcher, WatchError> {
        let funcs = self.funcs().iter().map(|f| f.0.watchable()).collect();
        // A watcher for a slow or failed call looks back at what the flight recorder holds,
        // and otherwise waits for the recorder's next qualifying call: no call is recorded
        // for it.
        let flight = spec.condition.is_some() && !spec.sample;
        let w = self.0.hub.watch(&spec, funcs, flight)?;
        if flight {
            let ids = w.funcs();
            crate::call::flight::lower_thresholds(&ids, &spec);
            let held = crate::call::flight::find(&spec, |f| ids.contains(&f.id))?;
            if let Some(spans) = held {
                w.deliver_now(spans);
            }
        }
        Ok(w)
    }

    /// What the flight recorder holds of this registry's functions, newest first: each
    /// function's slowest call of the recent window and of the one before, and its latest
    /// failure (see [`flight`](crate::flight)).
    pub fn recent_calls(&self) -> Vec<crate::flight::HeldCall> {
        crate::call::flight::held(|f| Arc::ptr_eq(&f.hub, &self.0.hub))
    }

    /// Everything the flight recorder holds of this registry's functions, newest first, each
    /// call with its subtree (the call first): evidence to write out when something goes wrong
    /// (see `monkit::render::trace::write_recent_on_panic`).
    pub fn flight_record(&self) -> Vec<(crate::flight::HeldCall, Vec<crate::FinishedSpan>)> {
        crate::call::flight::held_trees(|f| Arc::ptr_eq(&f.hub, &self.0.hub))
    }

    /// The held call `spec` asks for, with its subtree (the call first, then by start): of
    /// the calls held for functions matching its regex, in its trace and meeting its
    /// condition, the slowest when the condition sets a `min_duration`, else the latest.
    /// `Ok(None)` when nothing held matches; an error for a bad regex or an empty spec.
    ///
    /// ```
    /// use monkit::trace::WatchSpec;
    /// use std::time::Duration;
    /// monkit::flight::set_enabled(true);
    /// let reg = monkit::Registry::new();
    /// let f = reg.scope("app").func("slow");
    /// f.task(|| std::thread::sleep(Duration::from_millis(5)));
    /// let spec = WatchSpec::regex("app\\.slow").min_duration(Duration::from_millis(5));
    /// let spans = reg.recent_trace(&spec).unwrap().expect("held");
    /// assert_eq!(spans[0].start.full_name(), "app.slow");
    /// ```
    pub fn recent_trace(
        &self,
        spec: &WatchSpec,
    ) -> Result<Option<Vec<crate::FinishedSpan>>, WatchError> {
        crate::call::flight::find(spec, |f| Arc::ptr_eq(&f.hub, &self.0.hub))
    }

    /// The spans of this registry's functions running now, sync and async, in no particular
    /// order (for `/ps`).
    pub fn running_spans(&self) -> Vec<LiveSpan> {
        let mut v = crate::call::live::all_running_spans();
        v.retain(|s| s.func().is_some_and(|f| Arc::ptr_eq(&f.0.hub, &self.0.hub)));
        v
    }

    /// Number of this registry's watchers waiting for a match right now.
    pub fn armed_watchers(&self) -> usize {
        self.0.hub.armed_watchers()
    }

    /// Registers a span observer; any number may be registered at once, and each sees every
    /// span of every recorded trace of this registry's functions. See [`SpanObserver`].
    pub fn observe(&self, observer: Arc<dyn SpanObserver>) -> ObserverHandle {
        self.0.hub.observe(observer)
    }

    /// How many times an observer's hook panicked. Each panic is caught where the hook ran:
    /// the instrumented call goes on, and the other observers still see the span.
    pub fn observer_panics(&self) -> u64 {
        self.0.hub.observer_panics()
    }

    /// What monkit counted and let go, for this registry and the process: see [`Losses`].
    pub fn losses(&self) -> Losses {
        Losses {
            annotations_dropped: crate::trace::annotations_dropped(),
            events_dropped: crate::trace::events_dropped(),
            contexts_dropped: crate::trace::contexts_dropped(),
            observer_panics: self.observer_panics(),
            flight_evicted: crate::flight::evicted(),
            flight_skipped: crate::flight::skipped(),
            flight_threads_without_ring: crate::flight::threads_without_ring(),
        }
    }

    /// Puts [`Registry::losses`] among this registry's stats, read at every walk: the series
    /// `monkit,scope=monkit` with `annotations_dropped_total`, `events_dropped_total`,
    /// `contexts_dropped_total`,
    /// `observer_panics_total`, `flight_evicted_total`,
    /// `flight_skipped_total` and `flight_threads_without_ring_total`, on `/metrics` as
    /// `monkit_annotations_dropped_total` and so on; beside them the gauge `shards`
    /// (`monkit_shards`), the per-thread shards in use ([`crate::stats::shards`]). The pages
    /// do this for the registry they serve; calling it again changes nothing.
    ///
    /// ```
    /// let reg = monkit::Registry::new();
    /// reg.expose_losses();
    /// let text = monkit::render::prometheus::render(&reg, false);
    /// assert!(text.contains("monkit_annotations_dropped_total{scope=\"monkit\"} "), "{text}");
    /// assert!(text.contains("# TYPE monkit_shards gauge"), "{text}");
    /// ```
    pub fn expose_losses(&self) {
        let weak = Arc::downgrade(&self.0);
        self.scope("monkit").chain(
            "monkit",
            LossSource {
                registry: weak,
                key: SeriesKey::new("monkit", Tags::default()),
            },
        );
    }

    /// Number of observers registered (watchers' capture side not included).
    pub fn observers(&self) -> usize {
        self.0.hub.observers()
    }

    /// Whether recorded spans keep the text of the error a call returned (`FinishedSpan::error`,
    /// shown in traces and sent by exporters). On by default; turn it off for a program whose
    /// errors may hold secrets. Unrecorded calls never format their errors either way.
    pub fn set_error_text(&self, on: bool) {
        self.0
            .hub
            .error_text
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sets which traces of this registry's functions are sampled for export (default:
    /// [`Sampler::ParentBased`]`(0.0)`: none of its own, a sampled caller's stays sampled).
    pub fn set_sampler(&self, s: Sampler) {
        self.0.hub.set_sampler(s)
    }
}

static DEFAULT: LazyLock<Registry> = LazyLock::new(|| {
    let r = Registry::new();
    for s in inventory::iter::<SiteRef> {
        s.0.register_in(&r);
    }
    r
});

/// The process-wide registry: `#[monkit::task]` functions and [`scope!`](crate::scope!)
/// scopes live here.
pub fn default_registry() -> &'static Registry {
    &DEFAULT
}

/// [`Registry::collect_trace`] on the default registry, where `#[monkit::task]` functions
/// live.
///
/// ```
/// #[monkit::task]
/// fn child() {}
/// #[monkit::task]
/// fn parent() { child() }
///
/// let ((), spans) = monkit::collect_trace(parent);
/// assert_eq!(spans.len(), 2);
/// assert_eq!(spans[1].start.parent_id, Some(spans[0].start.span_id));
/// ```
pub fn collect_trace<R>(work: impl FnOnce() -> R) -> (R, Vec<FinishedSpan>) {
    default_registry().collect_trace(work)
}

/// The async twin of [`collect_trace`]: awaits `work` as a new trace and returns its output
/// with every span it finished.
pub async fn collect_trace_async<F: Future>(work: F) -> (F::Output, Vec<FinishedSpan>) {
    default_registry().collect_trace_async(work).await
}

/// Number of the default registry's watchers waiting for a match right now.
pub fn armed_watchers() -> usize {
    default_registry().armed_watchers()
}

/// What monkit counted and let go rather than grow without bound: each a bound doing its job,
/// worth an operator's look when it moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Losses {
    /// Annotations not kept because their span held the most it may.
    pub annotations_dropped: u64,
    /// Span events not kept because their span held the most it may.
    pub events_dropped: u64,
    /// Incoming trace contexts (`tracestate`, `baggage`) not kept because the most traces
    /// held one already.
    pub contexts_dropped: u64,
    /// Times a span observer's hook panicked (caught; the call went on).
    pub observer_panics: u64,
    /// Calls the flight recorder held and let go to stay within its bytes (process-wide).
    pub flight_evicted: u64,
    /// Calls the flight recorder would have held but let go, having put together the most
    /// subtrees a second it may (process-wide).
    pub flight_skipped: u64,
    /// Threads whose calls leave no flight record: the recorder's bytes went to other
    /// threads' rings (process-wide).
    pub flight_threads_without_ring: u64,
}

/// [`Registry::losses`] as a stat source; it holds its registry weakly, as the registry holds it.
struct LossSource {
    registry: std::sync::Weak<RegistryInner>,
    key: SeriesKey,
}

impl crate::stats::StatSource for LossSource {
    fn stats(&self, cb: &mut dyn FnMut(&SeriesKey, &str, f64)) {
        let Some(inner) = self.registry.upgrade() else {
            return;
        };
        let l = Registry(inner).losses();
        cb(
            &self.key,
            "annotations_dropped_total",
            l.annotations_dropped as f64,
        );
        cb(&self.key, "events_dropped_total", l.events_dropped as f64);
        cb(
            &self.key,
            "contexts_dropped_total",
            l.contexts_dropped as f64,
        );
        cb(&self.key, "observer_panics_total", l.observer_panics as f64);
        cb(&self.key, "flight_evicted_total", l.flight_evicted as f64);
        cb(&self.key, "flight_skipped_total", l.flight_skipped as f64);
        cb(
            &self.key,
            "flight_threads_without_ring_total",
            l.flight_threads_without_ring as f64,
        );
        cb(&self.key, "shards", crate::stats::shards() as f64);
    }
}
