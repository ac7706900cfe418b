//! Trace watchers: wait for the next call of a matching function (or of a given trace) and
//! capture its whole span tree, or mark its trace as sampled for export.
//!
//! Matching is decided off the hot path: a watcher's regex is matched once against the
//! registry's functions (which, with link-time registration, includes functions that never
//! ran) and each selected function's `watched` count is raised. A span start then pays one
//! relaxed load when nothing is armed, and one more (its function's count, or a scan of a small
//! array of watched trace ids) when something is. No regex runs and no lock is taken unless the
//! span matches. Captured spans arrive through the table's [`SpanObserver`] side.

use crate::trace::observe::{FinishedSpan, SpanObserver};
use crate::trace::span::{SpanRef, RECORDED, SAMPLED};
use crate::util::sync::AtomicU32;
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Most trace-id watchers one registry holds at once.
pub(crate) const TRACE_SLOTS: usize = 64;

/// Longest regex accepted, and the compiled size limit: patterns are user input.
const MAX_REGEX_LEN: usize = 4096;
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Most spans one capture keeps while somebody waits for it; past this, spans are dropped (and
/// counted), so a capture whose root never finishes cannot grow without bound.
pub(crate) const MAX_SPANS_PER_TRACE: usize = 100_000;

/// What a watcher waits for.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct WatchSpec {
    /// Regex over function full names (`scope.name`).
    pub regex: Option<String>,
    /// Only spans of this trace.
    pub trace_id: Option<u128>,
    /// Match the regex once against the registered functions now (the default, `true`), and
    /// refuse a regex that matches none; `false` also watches functions registered later.
    pub preselect: bool,
    /// Mark the matching trace as sampled (for exporters) instead of capturing it.
    pub sample: bool,
    /// Only a call that ended this way qualifies: the next call that was slow enough, or
    /// failed, rather than the next call. The flight recorder serves such a watcher: a
    /// qualifying call it holds answers at once; otherwise each call of the matching functions
    /// leaves a record as it ends, and the first that qualifies is put together from the
    /// records (nothing is recorded for the watcher). Without a regex, every function is
    /// looked at for calls of its trace.
    pub condition: Option<Condition>,
}

/// Conditional watchers the flight recorder serves, waiting now in any registry: while there
/// are any, calls leave records even with the recorder off.
pub(crate) static FLIGHT_WATCHING: AtomicUsize = AtomicUsize::new(0);

/// How a call must have ended to qualify: see [`Condition::outcome`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutcomeMatch {
    /// Returned an error (of any kind).
    Error,
    /// Panicked.
    Panic,
    /// Was dropped unfinished.
    Canceled,
    /// Any of those.
    Failure,
    /// Returned an error of this kind.
    Kind(String),
}

impl OutcomeMatch {
    /// The words of `/trace/*?outcome=`: `error`, `panic`, `canceled`, `failure`, or an error
    /// kind.
    pub fn parse(s: &str) -> OutcomeMatch {
        match s {
            "error" => OutcomeMatch::Error,
            "panic" => OutcomeMatch::Panic,
            "canceled" | "cancelled" => OutcomeMatch::Canceled,
            "failure" => OutcomeMatch::Failure,
            kind => OutcomeMatch::Kind(kind.to_owned()),
        }
    }

    /// Whether `o` is such an ending.
    pub fn holds(&self, o: &crate::stats::outcome::Outcome) -> bool {
        use crate::stats::outcome::Outcome as O;
        match (self, o) {
            (OutcomeMatch::Error, O::Error(_)) => true,
            (OutcomeMatch::Panic, O::Panic) => true,
            (OutcomeMatch::Canceled, O::Canceled) => true,
            (OutcomeMatch::Failure, o) => o.is_failure(),
            (OutcomeMatch::Kind(k), O::Error(e)) => k == e,
            _ => false,
        }
    }
}

/// The predicate over a finished call of [`Condition::predicate`].
pub type SpanPredicate = Arc<dyn Fn(&FinishedSpan) -> bool + Send + Sync>;

/// What a finished call must satisfy to be captured (every part given must hold).
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct Condition {
    /// It lasted at least this long.
    pub min_duration: Option<Duration>,
    /// It ended this way.
    pub outcome: Option<OutcomeMatch>,
    /// It satisfies this (any test over the finished call's span).
    pub predicate: Option<SpanPredicate>,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Condition")
            .field("min_duration", &self.min_duration)
            .field("outcome", &self.outcome)
            .field("predicate", &self.predicate.is_some())
            .finish()
    }
}

impl Condition {
    /// Whether the finished call `span` qualifies.
    pub fn holds(&self, span: &FinishedSpan) -> bool {
        let lasted =
            Duration::from_nanos(span.finish_unix_ns.saturating_sub(span.start.start_unix_ns));
        self.min_duration.is_none_or(|d| lasted >= d)
            && self.outcome.as_ref().is_none_or(|o| o.holds(&span.outcome))
            && self.predicate.as_ref().is_none_or(|p| p(span))
    }
}

impl WatchSpec {
    /// A spec capturing the next call of a function matching `regex`.
    pub fn regex(regex: &str) -> WatchSpec {
        WatchSpec {
            regex: Some(regex.to_owned()),
            preselect: true,
            ..WatchSpec::default()
        }
    }

    /// A spec capturing the next span of the trace `trace_id`.
    pub fn trace(trace_id: u128) -> WatchSpec {
        WatchSpec {
            trace_id: Some(trace_id),
            ..WatchSpec::default()
        }
    }

    /// Only spans of the trace `trace_id` as well.
    pub fn in_trace(mut self, trace_id: u128) -> WatchSpec {
        self.trace_id = Some(trace_id);
        self
    }

    /// Whether the regex is matched once now against the registered functions (see
    /// [`WatchSpec::preselect`](#structfield.preselect)).
    pub fn with_preselect(mut self, preselect: bool) -> WatchSpec {
        self.preselect = preselect;
        self
    }

    /// Marks the matching trace as sampled for exporters instead of capturing it.
    pub fn sampling(mut self) -> WatchSpec {
        self.sample = true;
        self
    }

    /// Captures only a call that lasted at least `d`.
    pub fn min_duration(mut self, d: Duration) -> WatchSpec {
        self.condition
            .get_or_insert_with(Condition::default)
            .min_duration = Some(d);
        self
    }

    /// Captures only a call that ended as `o` says.
    pub fn outcome(mut self, o: OutcomeMatch) -> WatchSpec {
        self.condition
            .get_or_insert_with(Condition::default)
            .outcome = Some(o);
        self
    }

    /// Captures only a call for which `p` holds, given its finished span.
    pub fn matching(
        mut self,
        p: impl Fn(&FinishedSpan) -> bool + Send + Sync + 'static,
    ) -> WatchSpec {
        self.condition
            .get_or_insert_with(Condition::default)
            .predicate = Some(Arc::new(p));
        self
    }
}

/// Why a watcher could not be set up. The texts follow Go monkit's.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchError {
    /// Neither a regex nor a trace id.
    NothingToWatch,
    /// The regex does not compile.
    InvalidRegex {
        /// The regex.
        regex: String,
        /// Why.
        reason: String,
    },
    /// With preselect, the regex matches no registered function.
    MatchesNothing {
        /// The regex.
        regex: String,
    },
    /// Too many trace-id watchers at once.
    TooManyTraceWatchers,
}

impl std::fmt::Display for WatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WatchError::NothingToWatch => {
                f.write_str("at least one of 'regex' or 'trace_id' query parameters required")
            }
            WatchError::InvalidRegex { regex, reason } => {
                write!(f, "invalid regex {regex:?}: {reason}")
            }
            WatchError::MatchesNothing { regex } => {
                write!(f, "regex preselect matches 0 functions: {regex:?}")
            }
            WatchError::TooManyTraceWatchers => {
                write!(
                    f,
                    "too many trace_id watchers at once (at most {TRACE_SLOTS})"
                )
            }
        }
    }
}

impl std::error::Error for WatchError {}

/// What a watcher got.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Captured {
    /// The finished spans of the matching call's subtree, sorted by start; the first is the
    /// matching call.
    Trace(Vec<FinishedSpan>),
    /// The id of the trace marked as sampled.
    Sampled(u128),
}

/// Where a capture is handed over: to a blocking waiter or to an async one.
#[derive(Default)]
pub(crate) struct Shared {
    result: Mutex<Option<Captured>>,
    waker: Mutex<Option<Waker>>,
    cv: Condvar,
}

impl Shared {
    pub(crate) fn deliver(&self, c: Captured) {
        *self.result.lock() = Some(c);
        self.cv.notify_all();
        if let Some(w) = self.waker.lock().take() {
            w.wake();
        }
    }
}

/// A function as a watcher sees it: its id and its count of watchers.
#[derive(Clone, Copy)]
pub(crate) struct Watchable {
    pub(crate) id: u32,
    pub(crate) full_name: &'static str,
    pub(crate) watched: &'static AtomicU32,
    /// Its count of conditional watchers the flight recorder serves.
    pub(crate) flight_watchers: &'static AtomicU32,
}

impl Watchable {
    /// The count this watcher raises on the function: `watched` makes its calls recorded; the
    /// flight recorder's count (a conditional watcher's) makes it look at them as they end.
    fn count(&self, flight: bool) -> &'static AtomicU32 {
        if flight {
            self.flight_watchers
        } else {
            self.watched
        }
    }
}

pub(crate) struct Entry {
    pub(crate) id: u64,
    armed: AtomicBool,
    funcs: Mutex<Vec<Watchable>>,
    regex: Option<regex::Regex>,
    /// Watch functions registered after the watcher too.
    late: bool,
    trace: Option<(u128, usize)>,
    sample: bool,
    shared: Arc<Shared>,
    condition: Option<Condition>,
    /// A conditional watcher got its call: it records no more (its counts are given back when
    /// its handle goes).
    delivered: AtomicBool,
    /// Served by the flight recorder (a conditional watcher): its functions' calls are looked
    /// at when they end, none is recorded for it.
    flight: bool,
}

impl Entry {
    /// Blocks until the capture is ready or `timeout` passes.
    pub(crate) fn wait(&self, timeout: Duration) -> Option<Captured> {
        let deadline = Instant::now() + timeout;
        let mut r = self.shared.result.lock();
        while r.is_none() {
            if self.shared.cv.wait_until(&mut r, deadline).timed_out() {
                break;
            }
        }
        r.take()
    }

    /// The capture if it is ready; otherwise `cx` is woken when it is.
    pub(crate) fn poll(&self, cx: &mut Context<'_>) -> Poll<Captured> {
        // Register the waker before looking, so a delivery in between is not missed.
        *self.shared.waker.lock() = Some(cx.waker().clone());
        match self.shared.result.lock().take() {
            Some(c) => Poll::Ready(c),
            None => Poll::Pending,
        }
    }

    pub(crate) fn func_ids(&self) -> Vec<u32> {
        self.funcs.lock().iter().map(|f| f.id).collect()
    }

    fn matches(&self, func_id: u32, trace_id: u128) -> bool {
        if self.delivered.load(Ordering::Relaxed) {
            return false;
        }
        let func_ok = self.regex.is_none() || self.funcs.lock().iter().any(|f| f.id == func_id);
        let trace_ok = self.trace.is_none_or(|(t, _)| t == trace_id);
        func_ok && trace_ok
    }
}

/// A watcher's regex, within the limits user input gets.
pub(crate) fn compile(r: &str) -> Result<regex::Regex, WatchError> {
    if r.len() > MAX_REGEX_LEN {
        return Err(WatchError::InvalidRegex {
            regex: r.chars().take(64).collect::<String>() + "...",
            reason: format!("longer than {MAX_REGEX_LEN} bytes"),
        });
    }
    regex::RegexBuilder::new(r)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| WatchError::InvalidRegex {
            regex: r.to_owned(),
            reason: e.to_string(),
        })
}

/// The recorded spans of one trace, kept while somebody waits for a subtree of it.
#[derive(Default)]
struct Sink {
    spans: Vec<FinishedSpan>,
    /// Capture roots (span id) and who waits for each subtree.
    roots: HashMap<u64, Vec<Arc<Shared>>>,
    dropped: u64,
}

/// One registry's watchers and the captures they wait for.
pub(crate) struct Watchers {
    /// Watchers waiting for a match right now (not counting those the flight recorder serves).
    pub(crate) armed: AtomicUsize,
    /// Conditional watchers the flight recorder serves, waiting now.
    pub(crate) flight_armed: AtomicUsize,
    trace_ids: [(AtomicU64, AtomicU64); TRACE_SLOTS],
    trace_watchers: AtomicUsize,
    entries: RwLock<Vec<Arc<Entry>>>,
    next_id: AtomicU64,
    sinks: Mutex<HashMap<u128, Sink>>,
    /// How many traces are being captured now (the map's length, readable without its lock).
    capturing: AtomicUsize,
}

impl Default for Watchers {
    fn default() -> Self {
        Watchers {
            armed: AtomicUsize::new(0),
            flight_armed: AtomicUsize::new(0),
            trace_ids: std::array::from_fn(|_| (AtomicU64::new(0), AtomicU64::new(0))),
            trace_watchers: AtomicUsize::new(0),
            entries: RwLock::new(Vec::new()),
            next_id: AtomicU64::new(0),
            sinks: Mutex::new(HashMap::new()),
            capturing: AtomicUsize::new(0),
        }
    }
}

impl Watchers {
    /// Whether `trace_id` is being captured here: a span continuing it from a carrier (a
    /// message, a signal) is recorded too, though the context it came in holds no such flag.
    pub(crate) fn capturing(&self, trace_id: u128) -> bool {
        self.capturing.load(Ordering::Relaxed) > 0 && self.sinks.lock().contains_key(&trace_id)
    }

    /// Arms a watcher over `funcs` (the registry's functions now). `hot` is raised while it is
    /// armed, so span starts look here.
    ///
    /// With `flight`, a conditional watcher is served by the flight recorder: nothing is
    /// raised that makes calls recorded, only the functions' count the recorder reads.
    pub(crate) fn arm(
        &self,
        spec: &WatchSpec,
        funcs: Vec<Watchable>,
        hot: &AtomicUsize,
        flight: bool,
    ) -> Result<Arc<Entry>, WatchError> {
        if spec.regex.is_none() && spec.trace_id.is_none() {
            return Err(WatchError::NothingToWatch);
        }
        let regex = match &spec.regex {
            None => None,
            Some(r) => Some(compile(r)?),
        };
        let funcs: Vec<Watchable> = match &regex {
            Some(re) => funcs
                .into_iter()
                .filter(|f| re.is_match(f.full_name))
                .collect(),
            // A flight-served watcher of a trace looks at every function's calls.
            None if flight => funcs,
            None => Vec::new(),
        };
        if spec.preselect && regex.is_some() && funcs.is_empty() {
            return Err(WatchError::MatchesNothing {
                regex: spec.regex.clone().unwrap_or_default(),
            });
        }
        let trace = match spec.trace_id {
            None => None,
            Some(t) => Some((t, self.claim_trace_slot(t)?)),
        };
        let entry = Arc::new(Entry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            armed: AtomicBool::new(true),
            funcs: Mutex::new(Vec::new()),
            regex,
            late: !spec.preselect || (flight && spec.regex.is_none()),
            trace,
            sample: spec.sample,
            shared: Arc::default(),
            condition: spec.condition.clone().filter(|_| !spec.sample),
            delivered: AtomicBool::new(false),
            flight,
        });
        // Under the write lock, so a function registered meanwhile is seen exactly once.
        let mut all = self.entries.write();
        for f in &funcs {
            f.count(flight).fetch_add(1, Ordering::Relaxed);
        }
        *entry.funcs.lock() = funcs;
        all.push(entry.clone());
        if flight {
            self.flight_armed.fetch_add(1, Ordering::Relaxed);
            FLIGHT_WATCHING.fetch_add(1, Ordering::Relaxed);
        } else {
            self.armed.fetch_add(1, Ordering::Relaxed);
            hot.fetch_add(1, Ordering::Relaxed);
        }
        Ok(entry)
    }

    fn claim_trace_slot(&self, t: u128) -> Result<usize, WatchError> {
        let (hi, lo) = ((t >> 64) as u64, t as u64);
        for (i, (h, l)) in self.trace_ids.iter().enumerate() {
            // Claim by the low half first; a slot is in use once either half is non-zero.
            if h.load(Ordering::Relaxed) == 0
                && l.compare_exchange(0, lo | 1 << 63, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                h.store(hi | 1, Ordering::Relaxed);
                l.store(lo, Ordering::Relaxed);
                h.store(hi, Ordering::Relaxed);
                self.trace_watchers.fetch_add(1, Ordering::Relaxed);
                return Ok(i);
            }
        }
        Err(WatchError::TooManyTraceWatchers)
    }

    /// Disarms `e`; true for the one caller that did it.
    fn disarm(&self, e: &Entry, hot: &AtomicUsize) -> bool {
        if e.armed
            .compare_exchange(true, false, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        for f in e.funcs.lock().iter() {
            f.count(e.flight).fetch_sub(1, Ordering::Relaxed);
        }
        if let Some((_, slot)) = e.trace {
            self.trace_ids[slot].0.store(0, Ordering::Relaxed);
            self.trace_ids[slot].1.store(0, Ordering::Relaxed);
            self.trace_watchers.fetch_sub(1, Ordering::Relaxed);
        }
        if e.flight {
            self.flight_armed.fetch_sub(1, Ordering::Relaxed);
            FLIGHT_WATCHING.fetch_sub(1, Ordering::Relaxed);
        } else {
            self.armed.fetch_sub(1, Ordering::Relaxed);
            hot.fetch_sub(1, Ordering::Relaxed);
        }
        true
    }

    /// Cancels a watcher (its handle was dropped).
    pub(crate) fn cancel(&self, e: &Entry, hot: &AtomicUsize) {
        self.disarm(e, hot);
        self.entries.write().retain(|x| x.id != e.id);
    }

    /// A new function of the registry: watchers without preselect whose regex matches it
    /// watch it too.
    pub(crate) fn on_new_func(&self, f: Watchable) {
        if self.armed.load(Ordering::Relaxed) == 0 && self.flight_armed.load(Ordering::Relaxed) == 0
        {
            return;
        }
        for e in self.entries.read().iter() {
            if e.late
                && e.armed.load(Ordering::Relaxed)
                && e.regex.as_ref().is_none_or(|re| re.is_match(f.full_name))
            {
                f.count(e.flight).fetch_add(1, Ordering::Relaxed);
                e.funcs.lock().push(f);
            }
        }
    }

    /// A span of function `func_id` starts while some watcher is armed: decide whether it is
    /// the one somebody waits for, and return the flags to add to its trace.
    pub(crate) fn on_start(
        &self,
        func_id: u32,
        func_watched: bool,
        span: &SpanRef,
        hot: &AtomicUsize,
    ) -> crate::trace::span::Flags {
        let trace_hit = self.trace_watchers.load(Ordering::Relaxed) > 0 && {
            let (hi, lo) = ((span.trace_id >> 64) as u64, span.trace_id as u64);
            self.trace_ids
                .iter()
                .any(|(h, l)| l.load(Ordering::Relaxed) == lo && h.load(Ordering::Relaxed) == hi)
        };
        if !func_watched && !trace_hit {
            return 0;
        }
        let hits: Vec<Arc<Entry>> = self
            .entries
            .read()
            .iter()
            .filter(|e| e.armed.load(Ordering::Relaxed) && e.matches(func_id, span.trace_id))
            .cloned()
            .collect();
        let mut flags = 0;
        for e in hits {
            // A conditional watcher is served by the flight recorder when calls end.
            if e.flight || !self.disarm(&e, hot) {
                continue;
            }
            if e.sample {
                flags |= SAMPLED;
                e.shared.deliver(Captured::Sampled(span.trace_id));
            } else {
                flags |= RECORDED;
                self.wait_for(span, e.shared.clone());
            }
        }
        flags
    }

    /// A call of function `func_id` ended as `span` says: the flight-served watchers whose
    /// condition it meets, each claimed (it takes no other call).
    pub(crate) fn flight_takers(&self, func_id: u32, span: &FinishedSpan) -> Vec<Arc<Shared>> {
        self.entries
            .read()
            .iter()
            .filter(|e| {
                e.flight
                    && e.armed.load(Ordering::Relaxed)
                    && e.matches(func_id, span.start.trace_id)
                    && e.condition.as_ref().is_some_and(|c| c.holds(span))
                    && e.delivered
                        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
            })
            .map(|e| e.shared.clone())
            .collect()
    }

    /// A flight-served watcher found its call among those held already: it takes it.
    pub(crate) fn deliver_now(&self, e: &Entry, spans: Vec<FinishedSpan>) -> bool {
        if e.delivered
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        e.shared.deliver(Captured::Trace(spans));
        true
    }

    /// Keeps the spans of `span`'s trace until `span` finishes, for `w`.
    fn wait_for(&self, span: &SpanRef, w: Arc<Shared>) {
        let mut sinks = self.sinks.lock();
        let sink = sinks.entry(span.trace_id).or_default();
        sink.roots.entry(span.span_id).or_default().push(w);
        self.capturing.store(sinks.len(), Ordering::Relaxed);
    }
}

/// The spans of `all` in the subtree of `root` (root included), sorted by start.
fn subtree(all: &[FinishedSpan], root: u64) -> Vec<FinishedSpan> {
    let mut children: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut at = None;
    for (i, s) in all.iter().enumerate() {
        if s.start.span_id == root {
            at = Some(i);
        }
        if let Some(p) = s.start.parent_id {
            children.entry(p).or_default().push(i);
        }
    }
    let mut out = Vec::new();
    let mut todo: Vec<usize> = at.into_iter().collect();
    let mut seen = std::collections::HashSet::new();
    while let Some(i) = todo.pop() {
        if !seen.insert(all[i].start.span_id) {
            continue;
        }
        out.push(all[i].clone());
        if let Some(c) = children.get(&all[i].start.span_id) {
            todo.extend(c);
        }
    }
    out.sort_by_key(|s| (s.start.start_unix_ns, s.start.span_id));
    out
}

/// The capture side: keeps the spans of traces somebody waits for, and hands a subtree over
/// when its root finishes.
impl SpanObserver for Watchers {
    fn observes_starts(&self) -> bool {
        false
    }

    fn finish(&self, span: &FinishedSpan) {
        // Every recorded or sampled span comes here; with no capture under way (nearly
        // always: spans sampled for export), it must not take the lock that captures share.
        // A captured span's trace was added before the span was marked recorded, so its
        // finish sees the count.
        if self.capturing.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut sinks = self.sinks.lock();
        let Some(sink) = sinks.get_mut(&span.start.trace_id) else {
            return;
        };
        if sink.spans.len() < MAX_SPANS_PER_TRACE {
            sink.spans.push(span.clone());
        } else {
            sink.dropped += 1;
        }
        let Some(takers) = sink.roots.remove(&span.start.span_id) else {
            return;
        };
        let spans = subtree(&sink.spans, span.start.span_id);
        if sink.roots.is_empty() {
            sinks.remove(&span.start.trace_id);
            self.capturing.store(sinks.len(), Ordering::Relaxed);
        }
        drop(sinks);
        for w in takers {
            w.deliver(Captured::Trace(spans.clone()));
        }
    }
}
