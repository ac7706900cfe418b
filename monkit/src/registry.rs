//! The registry: its scopes (each with its functions and sources, under cardinality caps) and
//! its span side ([`Hub`]: sampler, observers, watchers). A registry owns all of its state, so
//! two registries never see each other's scopes, sources, refusals, observers or watchers.
//! Function ids and `/ps` listings are process-wide (see `func.rs`, `live.rs`).

use crate::func::{Func, FuncInner, Location};
use crate::hub::{Hub, ObserverHandle, Sampler, TraceWatcher};
use crate::live::LiveSpan;
use crate::meter::Meter;
use crate::observe::SpanObserver;
use crate::reading::Readable;
use crate::series::{SeriesKey, Tags};
use crate::watch::{WatchError, WatchSpec};
use parking_lot::RwLock;
use std::any::TypeId;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};

/// Most tag sets one source name may have in a scope. Past it, new tag sets are refused:
/// their values go to the series tagged `monkit_overflow=true`, and each refusal marks the
/// meter `cardinality_refused{source=<scope>.<name>}` of scope `monkit`. Cardinality can never
/// grow without bound, and never silently.
pub const MAX_TAG_SETS: usize = 1000;
/// Most functions made by name (`Scope::func`) in one scope; past it, calls of new names count
/// under the function `other`, and each refusal is counted as above.
pub const MAX_FUNCS: usize = 10_000;
const OVERFLOW_TAG: &str = "monkit_overflow";
/// Scope and meter that count refusals. Recording a refusal never goes through a cap: past
/// [`MAX_TAG_SETS`] refusing sources, refusals count under `source=other`.
const REFUSALS_SCOPE: &str = "monkit";
const REFUSALS: &str = "cardinality_refused";

type SourceKey = (String, Tags, TypeId);

/// A scope's functions and sources.
pub(crate) struct ScopeInner {
    pub(crate) name: String,
    registry: Weak<RegistryInner>,
    hub: Arc<Hub>,
    sources: RwLock<BTreeMap<SourceKey, Arc<dyn Readable>>>,
    /// Tag sets per source name and type, for the cardinality cap.
    tag_sets: RwLock<HashMap<(String, TypeId), usize>>,
    /// By name and tags (most functions have none).
    funcs: RwLock<BTreeMap<(String, Tags), &'static FuncInner>>,
    /// The same functions by a hash of name and tags that needs no allocation to compute, so
    /// `func_with` finds an existing function without building its key.
    by_hash: RwLock<HashMap<u64, Vec<&'static FuncInner>>>,
}

/// A hash of a function's name and tags, the same whatever the order of the tags.
fn func_hash<'a>(name: &str, tags: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    use std::hash::{Hash, Hasher};
    // Word-at-a-time: this runs on every `func_with`, and the keys are not attacker-chosen
    // in a way that matters (a collision only lengthens one bucket's scan).
    let mut sum = 0u64;
    for (k, v) in tags {
        let mut h = rustc_hash::FxHasher::default();
        (k, v).hash(&mut h);
        sum = sum.wrapping_add(h.finish());
    }
    let mut h = rustc_hash::FxHasher::default();
    (name, sum).hash(&mut h);
    h.finish()
}

/// Whether `f` is the function `name` with exactly the tags `pairs` (given without repeats).
fn is_func(f: &FuncInner, name: &str, pairs: &[(&str, &str)]) -> bool {
    f.name == name
        && f.tags.len() == pairs.len()
        && pairs.iter().all(|(k, v)| f.tags.get(k) == Some(*v))
}

impl ScopeInner {
    /// The function `name` with `tags`, made on first use.
    pub(crate) fn func_inner(
        &self,
        name: &str,
        tags: Tags,
        location: Option<Location>,
    ) -> &'static FuncInner {
        let key = (name.to_owned(), tags);
        if let Some(f) = self.funcs.read().get(&key) {
            return f;
        }
        let mut funcs = self.funcs.write();
        let mut made = false;
        let f = *funcs.entry(key).or_insert_with_key(|(name, tags)| {
            made = true;
            FuncInner::create(&self.hub, &self.name, name, tags.clone(), location)
        });
        if made {
            self.by_hash
                .write()
                .entry(func_hash(&f.name, f.tags.iter()))
                .or_default()
                .push(f);
        }
        f
    }

    /// The function `name` with `tags`, under the caps: past [`MAX_FUNCS`] functions in the
    /// scope a new one counts as `other`, and past [`MAX_TAG_SETS`] tag sets of one name a new
    /// tag set counts as the name tagged `monkit_overflow=true`. Each refusal is counted.
    pub(crate) fn func_capped(&self, name: &str, tags: &[(&str, &str)]) -> &'static FuncInner {
        // Found again without allocating (a repeated key makes the lookup miss, and the slow
        // path below sorts it out).
        let h = func_hash(name, tags.iter().copied());
        if let Some(fs) = self.by_hash.read().get(&h) {
            if let Some(f) = fs.iter().find(|f| is_func(f, name, tags)) {
                return f;
            }
        }
        let tags = Tags::new(tags);
        let key = (name.to_owned(), tags);
        let funcs = self.funcs.read();
        if let Some(f) = funcs.get(&key) {
            return f;
        }
        let (name, tags) = key;
        if funcs.len() >= MAX_FUNCS {
            drop(funcs);
            self.refused(&name);
            return self.func_inner("other", Tags::default(), None);
        }
        if !tags.is_empty() {
            let sets = funcs
                .range((name.clone(), Tags::default())..)
                .take_while(|((n, _), _)| *n == name)
                .count();
            if sets >= MAX_TAG_SETS {
                drop(funcs);
                self.refused(&name);
                return self.func_inner(&name, Tags::new(&[(OVERFLOW_TAG, "true")]), None);
            }
        }
        drop(funcs);
        self.func_inner(&name, tags, None)
    }

    /// The untagged function `name`, if the scope has it.
    pub(crate) fn find_func(&self, name: &str) -> Option<&'static FuncInner> {
        self.funcs
            .read()
            .get(&(name.to_owned(), Tags::default()))
            .copied()
    }

    pub(crate) fn func_count(&self) -> usize {
        self.funcs.read().len()
    }

    /// The registry's transformers (none once the registry is gone).
    pub(crate) fn transformers(&self) -> Vec<Transformer> {
        self.registry
            .upgrade()
            .map(|r| r.transformers.read().clone())
            .unwrap_or_default()
    }

    /// The functions, sorted by name, then tags.
    pub(crate) fn funcs(&self) -> Vec<&'static FuncInner> {
        self.funcs.read().values().copied().collect()
    }

    /// The sources, copied out so no lock is held while they are read (gauges call user code).
    pub(crate) fn sources(&self) -> Vec<(String, Tags, Arc<dyn Readable>)> {
        self.sources
            .read()
            .iter()
            .map(|((n, t, _), v)| (n.clone(), t.clone(), v.clone()))
            .collect()
    }

    /// The source `name` with `tags` of type `T`, made on first use, under the tag-set cap.
    pub(crate) fn source<T: Readable + Clone>(
        &self,
        name: &str,
        tags: &[(&str, &str)],
        make: impl FnOnce() -> T,
    ) -> T {
        let ty = TypeId::of::<T>();
        let key = (name.to_owned(), Tags::new(tags), ty);
        let cast = |s: &Arc<dyn Readable>| -> T {
            match s.as_any().downcast_ref::<T>() {
                Some(t) => t.clone(),
                None => unreachable!("the source's type is part of its key"),
            }
        };
        if let Some(s) = self.sources.read().get(&key) {
            return cast(s);
        }
        let mut all = self.sources.write();
        if let Some(s) = all.get(&key) {
            return cast(s);
        }
        let mut sets = self.tag_sets.write();
        let n = sets.entry((name.to_owned(), ty)).or_insert(0);
        if *n >= MAX_TAG_SETS && !tags.is_empty() {
            // Refused: the values go to one overflow series, and the refusal is counted.
            drop(sets);
            let over = (name.to_owned(), Tags::new(&[(OVERFLOW_TAG, "true")]), ty);
            let s = cast(all.entry(over).or_insert_with(|| Arc::new(make())));
            drop(all);
            self.refused(name);
            return s;
        }
        *n += 1;
        drop(sets);
        cast(all.entry(key).or_insert_with(|| Arc::new(make())))
    }

    /// Sets the source `name` with `tags`, replacing one of the same type (gauges, chains).
    pub(crate) fn replace<T: Readable>(&self, name: &str, tags: Tags, source: T) {
        let key = (name.to_owned(), tags, TypeId::of::<T>());
        self.sources.write().insert(key, Arc::new(source));
    }

    #[cold]
    fn refused(&self, name: &str) {
        if let Some(reg) = self.registry.upgrade() {
            let source = format!("{}.{name}", self.name);
            reg.scope_named(REFUSALS_SCOPE)
                .refusal_meter(&source)
                .mark(1);
        }
    }

    /// The refusal meter of `source`: made without the cap (so counting a refusal can never
    /// refuse), falling back to `source=other` past [`MAX_TAG_SETS`] sources.
    fn refusal_meter(&self, source: &str) -> Meter {
        let ty = TypeId::of::<Meter>();
        let key = |s: &str| (REFUSALS.to_owned(), Tags::new(&[("source", s)]), ty);
        let as_meter = |s: &Arc<dyn Readable>| match s.as_any().downcast_ref::<Meter>() {
            Some(m) => m.clone(),
            None => unreachable!("the source's type is part of its key"),
        };
        // A source refused over and over (an attack) finds its meter under the read lock.
        if let Some(s) = self.sources.read().get(&key(source)) {
            return as_meter(s);
        }
        let mut all = self.sources.write();
        let known = all.contains_key(&key(source));
        let mut sets = self.tag_sets.write();
        let n = sets.entry((REFUSALS.to_owned(), ty)).or_insert(0);
        let k = if known || *n < MAX_TAG_SETS {
            key(source)
        } else {
            key("other")
        };
        let s = all.entry(k).or_insert_with(|| {
            *n += 1;
            Arc::new(Meter::new())
        });
        as_meter(s)
    }
}

/// A registry-wide transformer of stats: gets each `(series key, field, value)` of a walk and
/// passes on what it wants to the next transformer (or the reader) through the callback: the
/// same stat, a changed one, several, or none. See [`Registry::add_transformer`].
pub type Transformer =
    Arc<dyn Fn(&SeriesKey, &str, f64, &mut dyn FnMut(&SeriesKey, &str, f64)) + Send + Sync>;

pub(crate) struct RegistryInner {
    scopes: RwLock<BTreeMap<String, Arc<ScopeInner>>>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) transformers: RwLock<Vec<Transformer>>,
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
                Arc::new(ScopeInner {
                    name: name.to_owned(),
                    registry: Arc::downgrade(self),
                    hub: self.hub.clone(),
                    sources: RwLock::new(BTreeMap::new()),
                    tag_sets: RwLock::new(HashMap::new()),
                    funcs: RwLock::new(BTreeMap::new()),
                    by_hash: RwLock::new(HashMap::new()),
                })
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
    /// A new, empty registry (for tests and embedding; most code wants
    /// [`default_registry`](crate::default_registry)).
    pub fn new() -> Registry {
        Registry(Arc::new(RegistryInner {
            scopes: RwLock::new(BTreeMap::new()),
            hub: Arc::new(Hub::default()),
            transformers: RwLock::new(Vec::new()),
        }))
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
    /// reg.add_transformer(std::sync::Arc::new(|key: &monkit::SeriesKey, field: &str, v: f64,
    ///     next: &mut dyn FnMut(&monkit::SeriesKey, &str, f64)| {
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
    ///     .watch(monkit::WatchSpec::regex("handle_http"))
    ///     .unwrap();
    /// std::thread::spawn(handle_http);
    /// let Some(monkit::Captured::Trace(spans)) = w.wait(std::time::Duration::from_secs(10))
    /// else { panic!("no trace") };
    /// assert_eq!(spans.len(), 2);
    /// ```
    pub fn watch(&self, spec: WatchSpec) -> Result<TraceWatcher, WatchError> {
        let funcs = self.funcs().iter().map(|f| f.0.watchable()).collect();
        self.0.hub.watch(&spec, funcs)
    }

    /// The spans of this registry's functions running now, sync and async, in no particular
    /// order (for `/ps`).
    pub fn running_spans(&self) -> Vec<LiveSpan> {
        let mut v = crate::live::running_spans();
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

    /// Number of observers registered (watchers' capture side not included).
    pub fn observers(&self) -> usize {
        self.0.hub.observers()
    }

    /// Sets which new traces of this registry's functions are sampled for export (default:
    /// [`Sampler::Never`]).
    pub fn set_sampler(&self, s: Sampler) {
        self.0.hub.set_sampler(s)
    }
}
