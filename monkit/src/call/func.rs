//! Per-function stats: calls running now and at most, outcomes, durations and callers.

//!
//! The stats only: how a call starts and ends (ids, context, recording) is `call.rs`.

use crate::call::lifecycle::{AsyncCall, SyncCall};
use crate::call::open::OpenCall;
use crate::call::polls::{PollShard, PollStats, PollWindows, Polled, SlowPolls};
use crate::call::task::{no_text, TaskFuture};
use crate::stats::dist::{DistShard, Snapshot};
use crate::stats::exemplar::{Exemplar, Exemplars};
use crate::stats::hist::Recent;
use crate::stats::outcome::Outcome;
use crate::stats::running::{self, Entered, Running, ShardRunning};
use crate::stats::series::{FuncName, Tags};
use crate::trace::hub::Hub;
use crate::trace::watch::Watchable;
use crate::util::clock::Tick;
use crate::util::shard::{add64, Lane, Sharded};
use crate::util::slot::OnceBox;
use crate::util::sync::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use parking_lot::RwLock;
use std::future::Future;
use std::sync::Arc;

/// Source location of a function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Location {
    /// `module_path!()` of the function.
    pub module: &'static str,
    /// `file!()` of the function.
    pub file: &'static str,
    /// `line!()` of the function.
    pub line: u32,
}

const INLINE_PARENTS: usize = 8;
const MORE_PARENTS: usize = 256;
/// Parent marker for calls with no parent function.
pub(crate) const ENTRY: u32 = u32::MAX;

/// The set of functions that called this one, lock-free: a few inline slots cover nearly every
/// function; a larger table is allocated for the rest; past that, further callers are not
/// listed (the calls still count).
#[derive(Default)]
pub(crate) struct Parents {
    inline: [AtomicU32; INLINE_PARENTS],
    more: OnceBox<[AtomicU32; MORE_PARENTS]>,
}

fn insert(slots: &[AtomicU32], p: u32) -> bool {
    for s in slots {
        let v = s.load(Ordering::Relaxed);
        if v == p {
            return true;
        }
        if v == 0 {
            match s.compare_exchange(0, p, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(x) if x == p => return true,
                Err(_) => {}
            }
        }
    }
    false
}

impl Parents {
    #[inline(always)]
    pub(crate) fn note(&self, p: u32) {
        // Fast path: the first slot is almost always the caller.
        if self.inline[0].load(Ordering::Relaxed) == p {
            return;
        }
        self.note_slow(p)
    }

    #[cold]
    fn note_slow(&self, p: u32) {
        if insert(&self.inline, p) {
            return;
        }
        let more = self
            .more
            .get_or_init(|| std::array::from_fn(|_| AtomicU32::new(0)));
        insert(more.as_slice(), p);
    }

    pub(crate) fn list(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .inline
            .iter()
            .chain(self.more.get().into_iter().flatten())
            .map(|s| s.load(Ordering::Relaxed))
            .filter(|&p| p != 0)
            .collect();
        v.sort_unstable();
        v
    }
}

const ERROR_KINDS: usize = 16;

/// Error counts by kind, lock-free, without allocating per error: a kind name takes a slot the
/// first time it is seen; past 16 kinds, errors are counted under `other`.
#[derive(Default)]
pub(crate) struct ErrorKinds {
    slots: [(AtomicPtr<&'static str>, AtomicU64); ERROR_KINDS],
    other: AtomicU64,
}

impl ErrorKinds {
    pub(crate) fn add(&self, kind: &'static str) {
        for (name, n) in &self.slots {
            let mut p = name.load(Ordering::Acquire);
            if p.is_null() {
                let fresh = Box::into_raw(Box::new(kind));
                match name.compare_exchange(
                    std::ptr::null_mut(),
                    fresh,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => p = fresh,
                    Err(other) => {
                        // SAFETY: `fresh` never escaped.
                        drop(unsafe { Box::from_raw(fresh) });
                        p = other;
                    }
                }
            }
            // SAFETY: slot pointers come from Box::into_raw and are never freed (funcs live
            // for the whole process).
            let k: &'static str = unsafe { *p };
            if std::ptr::eq(k, kind) || k == kind {
                n.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        self.other.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn list(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<_> = self
            .slots
            .iter()
            .filter_map(|(name, n)| {
                let p = name.load(Ordering::Acquire);
                // SAFETY: as in `add`.
                (!p.is_null()).then(|| (unsafe { *p }, n.load(Ordering::Relaxed)))
            })
            .filter(|x| x.1 > 0)
            .collect();
        let other = self.other.load(Ordering::Relaxed);
        if other > 0 {
            v.push(("other", other));
        }
        v.sort_unstable();
        v
    }
}

/// One thread shard of a function's stats: what its calls write on every call, in one line
/// (the histogram cells are the function's, in [`FuncInner::windows`]).
#[derive(Default)]
struct FuncShard {
    running: ShardRunning,
    success: DistShard,
    /// Made at the shard's first failure.
    failure: OnceBox<Failures>,
    /// Async calls polled once.
    polled_once: AtomicU64,
    /// Polls of the others (made at the first one to end here).
    polls: OnceBox<PollShard>,
}

// A shard is one slot of 128 bytes: what every call writes, and no more.
const _: () = assert!(std::mem::size_of::<FuncShard>() <= 128);

/// A shard's failed calls.
#[derive(Default)]
struct Failures {
    times: DistShard,
    panics: AtomicU64,
    errors: AtomicU64,
}

/// A function's histogram cells, shared by its shards: durations of successes and (made at
/// the first) failures, and of calls polled more than once.
#[derive(Default)]
struct Windows {
    ok: Recent,
    failed: OnceBox<Recent>,
    polls: OnceBox<PollWindows>,
}

/// A function's stats. Lives for the whole process.
pub(crate) struct FuncInner {
    pub(crate) id: u32,
    /// Scope, name, tags and full name, for the process's life (spans point at them).
    pub(crate) names: FuncName,
    pub(crate) location: Option<Location>,
    /// The span side of the registry the function belongs to.
    pub(crate) hub: Arc<Hub>,
    pub(crate) running: Running,
    shards: Sharded<FuncShard>,
    windows: Windows,
    errors: ErrorKinds,
    pub(crate) parents: Parents,
    /// Armed trace watchers selecting this function.
    pub(crate) watched: AtomicU32,
    /// What makes a call a candidate of the flight recorder.
    pub(crate) flight: crate::call::flight::Mark,
    /// Slow polls of its async calls, and the longest poll.
    pub(crate) slow_polls: SlowPolls,
    /// Exemplars of recorded calls: successes, failures (made at the first).
    exemplars: [OnceBox<Exemplars>; 2],
}

static FUNCS: RwLock<Vec<&'static FuncInner>> = RwLock::new(Vec::new());

/// Reads the hot path's variables (`MONKIT_EXACT_HIGHWATER`, the flight recorder's,
/// `MONKIT_SLOW_POLL`) once, where the first function is made, before any call can read
/// them. `export::configure` refuses a bad value; here, with no caller to tell, it is logged
/// and ignored.
fn read_env_once() {
    static READ: std::sync::Once = std::sync::Once::new();
    type Configure =
        fn(&crate::util::settings::Vars) -> Result<(), crate::util::settings::ConfigError>;
    READ.call_once(|| {
        let vars = crate::util::settings::Vars::env();
        let all: [Configure; 3] = [
            running::configure,
            crate::call::flight::configure,
            crate::call::polls::configure,
        ];
        for configure in all {
            if let Err(e) = configure(&vars) {
                log::warn!("monkit: ignoring {e}");
            }
        }
        crate::call::polls::init_slow_ticks();
    });
}

/// A function by id.
pub(crate) fn func_by_id(id: u32) -> Option<&'static FuncInner> {
    FUNCS.read().get(id as usize).copied()
}

impl FuncInner {
    /// Makes a function with a fresh id, in the registry whose span side is `hub`. Functions
    /// are never freed: ids and names stay valid for the whole process.
    pub(crate) fn create(
        hub: &Arc<Hub>,
        scope: &str,
        name: &str,
        tags: Tags,
        location: Option<Location>,
    ) -> &'static Self {
        read_env_once();
        let mut all = FUNCS.write();
        let f: &'static FuncInner = Box::leak(Box::new(FuncInner {
            id: all.len() as u32,
            names: FuncName::new(scope, name, tags),
            location,
            hub: hub.clone(),
            running: Running::default(),
            shards: Sharded::new(),
            windows: Windows::default(),
            errors: ErrorKinds::default(),
            parents: Parents::default(),
            watched: AtomicU32::new(0),
            flight: Default::default(),
            slow_polls: SlowPolls::default(),
            exemplars: Default::default(),
        }));
        all.push(f);
        drop(all);
        hub.on_new_func(f.watchable());
        f
    }

    pub(crate) fn watchable(&'static self) -> Watchable {
        Watchable {
            id: self.id,
            full_name: self.names.full_name(),
            watched: &self.watched,
            flight_watchers: &self.flight.watchers,
        }
    }

    /// A call begins: counts it running, and says where, for [`FuncInner::finish`].
    #[inline(always)]
    pub(crate) fn enter(&self) -> Entered {
        if running::exact_mode() {
            return self.enter_exact();
        }
        let (shard, lane) = self.shards.local();
        self.running
            .enter(&shard.running, lane, || self.shard_counts())
    }

    #[cold]
    #[inline(never)]
    fn enter_exact(&self) -> Entered {
        self.running.enter_exact();
        running::EXACT
    }

    /// Notes a recorded call of `ns` nanoseconds as its bucket's exemplar.
    pub(crate) fn note_exemplar(
        &self,
        outcome: Outcome,
        ns: u64,
        trace_id: u128,
        span_id: u64,
        unix_nanos: u64,
    ) {
        let i = usize::from(outcome.is_failure());
        self.exemplars[i]
            .get_or_init(Exemplars::default)
            .note(ns, trace_id, span_id, unix_nanos);
    }

    /// A call counted by [`FuncInner::enter`] ended at `t1`: takes it off the running count
    /// and records its duration and outcome, and for a future's call (`POLLED`) its polls.
    /// Always inlined: a call of its own costs every call of every function ~20 instructions.
    #[inline(always)]
    pub(crate) fn finish<const POLLED: bool>(
        &self,
        entered: Entered,
        t0: Tick,
        t1: Tick,
        outcome: Outcome,
        p: Polled,
    ) -> bool {
        let (shard, lane) = self.shards.local();
        if lane.idx == running::shard_of(entered) {
            self.running
                .before_exit(entered, &shard.running, lane, || self.shard_counts());
            shard.running.exit_here(lane);
        } else {
            self.exit_elsewhere(entered, &shard.running, lane);
        }
        let ns = t0.nanos_until(t1);
        if !POLLED {
            self.record(shard, lane, ns, t1, outcome);
            false
        } else if p.pending == 0 && p.in_poll {
            // Polled once: the poll is the call, its duration the busy time.
            self.record(shard, lane, ns, t1, outcome);
            add64(&shard.polled_once, 1, lane);
            t1.0.wrapping_sub(t0.0) > crate::call::polls::slow_ticks() && self.slow_poll(t0, t1)
        } else {
            self.finish_polled(shard, lane, ns, t1, outcome, p)
        }
    }

    /// An async call polled more than once (or dropped between polls) ended: its outcome
    /// counted, its duration and busy time recorded beside the others (merged when read).
    /// True when its last poll was a slow one.
    #[cold]
    #[inline(never)]
    fn finish_polled(
        &self,
        shard: &FuncShard,
        lane: Lane,
        ns: u64,
        t1: Tick,
        outcome: Outcome,
        p: Polled,
    ) -> bool {
        let last = p.running(t1);
        self.slow_polls.note_poll(last);
        let slow = last > crate::call::polls::slow_ticks() && self.slow_poll(p.last, t1);
        let busy = crate::util::clock::ticks_to_nanos(p.busy + last);
        let failed = outcome.is_failure();
        if failed {
            self.count_failure(shard, lane, outcome);
        }
        let windows = self.windows.polls.get_or_init(PollWindows::default);
        shard.polls.get_or_init(PollShard::default).many(
            windows,
            p.count(),
            ns,
            busy,
            failed,
            t1,
            lane,
        );
        slow
    }

    /// A poll from `start` to `end` ran longer than the slow-poll threshold: a slow poll of
    /// this function if its own time (less the long polls of inner futures inside it) still
    /// does; then counted, logged at most once a second, and true.
    #[cold]
    #[inline(never)]
    pub(crate) fn slow_poll(&self, start: Tick, end: Tick) -> bool {
        let own = crate::call::polls::own_ticks(start, end);
        if own <= crate::call::polls::slow_ticks() {
            return false;
        }
        if self.slow_polls.slow(end) {
            let ns = crate::util::clock::ticks_to_nanos(own);
            crate::call::polls::log_slow(self.names.full_name(), self.location, ns);
        }
        true
    }

    /// Every thread shard's running count: what a highwater check reads.
    fn shard_counts(&self) -> impl Iterator<Item = &ShardRunning> + Clone {
        self.shards.iter().map(|s| &s.running)
    }

    /// The call began on another shard (an async call resumed on another thread) or on the
    /// exact count; `here` is this thread's shard.
    #[cold]
    #[inline(never)]
    fn exit_elsewhere(&self, entered: Entered, here: &ShardRunning, lane: Lane) {
        if entered == running::EXACT {
            self.running.exit_exact();
        } else if let Some(shard) = self.shards.slot(running::shard_of(entered)) {
            self.running
                .before_exit(entered, here, lane, || self.shard_counts());
            shard.running.exit_away();
        }
    }

    #[inline(always)]
    fn record(&self, shard: &FuncShard, lane: Lane, ns: u64, now: Tick, outcome: Outcome) {
        match outcome {
            Outcome::Ok => shard.success.record(&self.windows.ok, ns, now, lane),
            failed => {
                let f = self.count_failure(shard, lane, failed);
                let window = self.windows.failed.get_or_init(Recent::default);
                f.times.record(window, ns, now, lane);
            }
        }
    }

    /// Counts a failed call by what it was: a panic, an error of a kind, a cancellation.
    #[inline(always)]
    fn count_failure<'s>(&self, shard: &'s FuncShard, lane: Lane, failed: Outcome) -> &'s Failures {
        let f = shard.failure.get_or_init(Failures::default);
        match failed {
            Outcome::Panic => add64(&f.panics, 1, lane),
            Outcome::Error(kind) => {
                self.errors.add(kind);
                add64(&f.errors, 1, lane)
            }
            _ => {
                self.errors.add("canceled");
                add64(&f.errors, 1, lane)
            }
        }
        f
    }

    pub(crate) fn stats(&self) -> FuncStats {
        let (mut current, highwater) = self.running.read();
        for sh in self.shards.iter() {
            current += sh.running.read().0;
        }
        let mut s = FuncStats {
            current: current.max(0),
            highwater: highwater.max(current),
            errors: self.errors.list(),
            ..FuncStats::default()
        };
        for p in self.parents.list() {
            if p == ENTRY {
                s.entry = true;
            } else {
                s.parents.push(p - 1);
            }
        }
        for f in self.shards.iter().filter_map(|sh| sh.failure.get()) {
            s.panics += f.panics.load(Ordering::Relaxed);
            s.errors_total += f.errors.load(Ordering::Relaxed);
        }
        let polls = || self.shards.iter().filter_map(|s| s.polls.get());
        let plain_ok = || self.shards.iter().map(|s| &s.success);
        let plain_failed = || {
            self.shards
                .iter()
                .filter_map(|s| s.failure.get().map(|f| &f.times))
        };
        let pw = self.windows.polls.get();
        let ok_windows = || std::iter::once(&self.windows.ok);
        let failed_windows = || self.windows.failed.get().into_iter();
        s.success_times = Snapshot::of::<u64>(
            plain_ok().chain(polls().filter_map(|p| p.wall(false))),
            ok_windows().chain(pw.and_then(|w| w.wall(false))),
        );
        s.failure_times = Snapshot::of::<u64>(
            plain_failed().chain(polls().filter_map(|p| p.wall(true))),
            failed_windows().chain(pw.and_then(|w| w.wall(true))),
        );
        // Every successful call's duration is in one of the merged distributions.
        s.successes = s.success_times.count;
        let once = self
            .shards
            .iter()
            .map(|s| s.polled_once.load(Ordering::Relaxed));
        s.polls = crate::call::polls::read(
            once.sum(),
            polls(),
            (plain_ok(), ok_windows()),
            (plain_failed(), failed_windows()),
            pw,
            &self.slow_polls,
        );
        let ex = |i: usize| {
            self.exemplars[i]
                .get()
                .map(Exemplars::snapshot)
                .unwrap_or_default()
        };
        s.success_exemplars = ex(0);
        s.failure_exemplars = ex(1);
        s
    }

    /// Heap bytes this function's stats use (for memory budgets).
    pub(crate) fn heap_bytes(&self) -> usize {
        let mut n =
            std::mem::size_of::<Self>() + self.names.heap_bytes() + self.shards.heap_bytes();
        for sh in self.shards.iter() {
            n += sh.failure.get().map_or(0, std::mem::size_of_val);
            n += sh.polls.get().map_or(0, PollShard::heap_bytes);
        }
        n += self.windows.ok.heap_bytes();
        if let Some(w) = self.windows.failed.get() {
            n += std::mem::size_of_val(w) + w.heap_bytes();
        }
        n += self.windows.polls.get().map_or(0, PollWindows::heap_bytes);
        if self.parents.more.get().is_some() {
            n += MORE_PARENTS * 4;
        }
        n + ERROR_KINDS * std::mem::size_of::<&str>()
    }
}

/// A point-in-time read of a function's stats.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct FuncStats {
    /// Calls running now.
    pub current: i64,
    /// Most calls ever running at once, exact even when calls move between threads (see
    /// [`set_exact_highwater`](crate::stats::set_exact_highwater) for the one race left).
    pub highwater: i64,
    /// Calls that returned successfully.
    pub successes: u64,
    /// Calls that returned an error or were canceled.
    pub errors_total: u64,
    /// Calls that panicked.
    pub panics: u64,
    /// Error counts by kind, sorted by kind (`canceled` for dropped futures).
    pub errors: Vec<(&'static str, u64)>,
    /// Ids of calling functions, sorted.
    pub parents: Vec<u32>,
    /// Whether some call had no calling function (the function is an entry point).
    pub entry: bool,
    /// Durations of successful calls, in nanoseconds.
    pub success_times: Snapshot,
    /// Durations of failed calls (errors, panics, cancellations), in nanoseconds.
    pub failure_times: Snapshot,
    /// Recorded successful calls, at most one per histogram bucket (the latest), by value.
    pub success_exemplars: Vec<Exemplar>,
    /// Recorded failed calls, likewise.
    pub failure_exemplars: Vec<Exemplar>,
    /// The polls of its async calls: polls per call, busy time, slow polls. `None` until an
    /// async call of the function ends.
    pub polls: Option<PollStats>,
}

impl FuncStats {
    /// Errors plus panics.
    pub fn failures(&self) -> u64 {
        self.errors_total + self.panics
    }

    /// Calls started: running now plus finished.
    pub fn total(&self) -> u64 {
        self.current.max(0) as u64 + self.successes + self.failures()
    }

    /// The count fields, `(name, value)`, in the order every page shows them: `current`,
    /// `highwater`, `successes`, `errors` (all kinds together), `panics`, `failures`, `total`.
    pub fn fields(&self) -> [(&'static str, u64); 7] {
        [
            ("current", self.current.max(0) as u64),
            ("highwater", self.highwater.max(0) as u64),
            ("successes", self.successes),
            ("errors", self.errors_total),
            ("panics", self.panics),
            ("failures", self.failures()),
            ("total", self.total()),
        ]
    }
}

/// A function's handle: its identity and stats. Cheap to copy.
#[derive(Clone, Copy)]
pub struct Func(pub(crate) &'static FuncInner);

impl std::fmt::Debug for Func {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Func")
            .field("id", &self.0.id)
            .field("full_name", &self.0.names.full_name())
            .finish()
    }
}

impl PartialEq for Func {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}
impl Eq for Func {}

impl Func {
    /// Process-unique id (used for parents and graph nodes).
    pub fn id(&self) -> u32 {
        self.0.id
    }

    /// The function with this id.
    pub fn by_id(id: u32) -> Option<Func> {
        func_by_id(id).map(Func)
    }

    /// Scope name.
    pub fn scope(&self) -> &'static str {
        self.0.names.scope()
    }

    /// Name within the scope (`fn` or `Type::method`).
    pub fn name(&self) -> &'static str {
        self.0.names.name()
    }

    /// `scope.name`, followed by `{k=v,...}` for a tagged function: unique in a registry.
    pub fn full_name(&self) -> &'static str {
        self.0.names.full_name()
    }

    /// The function's own tags (empty unless made tagged), sorted by key.
    pub fn tags(&self) -> &'static Tags {
        self.0.names.tags()
    }

    /// Where the function is defined, for `#[task]` functions.
    pub fn location(&self) -> Option<Location> {
        self.0.location
    }

    /// Reads the stats.
    pub fn stats(&self) -> FuncStats {
        self.0.stats()
    }

    /// Heap bytes held by this function's stats.
    pub fn heap_bytes(&self) -> usize {
        self.0.heap_bytes()
    }

    /// Runs `f` as one call of this function (success unless it panics).
    #[inline]
    pub fn task<R>(&self, f: impl FnOnce() -> R) -> R {
        let _call = SyncCall::start(self.0);
        f()
    }

    /// Runs `f` as one call, counting an `Err` as an error of the kind `E` names.
    #[inline]
    pub fn task_result<T, E: crate::stats::outcome::ErrorKind>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let call = SyncCall::start(self.0);
        let r = f();
        call.finish(match &r {
            Ok(_) => Outcome::Ok,
            Err(e) => Outcome::Error(e.error_kind()),
        });
        r
    }

    /// Starts one call, ended when the guard drops (a drop while panicking counts a panic).
    #[inline]
    pub fn guard(&self) -> FuncGuard {
        FuncGuard(SyncCall::start(self.0))
    }

    /// Begins one call that ends when its [`OpenCall`] is finished (or dropped, as
    /// `canceled`), for work whose end is not a return: a response body still streaming, a
    /// callback. Its parent is `parent` (a remote caller's span, say), or the current span
    /// when `None`; `Some(SpanRef::default())` makes it a root.
    #[inline]
    pub fn open(&self, parent: Option<crate::trace::span::SpanRef>) -> OpenCall {
        let parent = parent.unwrap_or_else(crate::trace::span::current_raw);
        OpenCall::new(AsyncCall::start(self.0, parent))
    }

    /// Wraps a future as one call of this function (canceled if dropped unfinished).
    pub fn future<F: Future>(&self, fut: F) -> impl Future<Output = F::Output> {
        TaskFuture::new(self.0, fut, |_: &F::Output| Outcome::Ok, no_text)
    }

    /// Wraps a future as one call of this function whose outcome `classify` decides from the
    /// output (canceled if dropped unfinished, panic if it panics).
    pub fn future_classified<F, C>(&self, fut: F, classify: C) -> impl Future<Output = F::Output>
    where
        F: Future,
        C: Fn(&F::Output) -> Outcome,
    {
        TaskFuture::new(self.0, fut, classify, no_text)
    }
}

/// A running call of a [`Func`], ended on drop.
#[must_use = "dropping the FuncGuard ends the call at once"]
pub struct FuncGuard(SyncCall);
impl std::fmt::Debug for FuncGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FuncGuard")
            .field("func", &self.0.func_name())
            .finish_non_exhaustive()
    }
}

impl FuncGuard {
    /// Annotates this call's span, whichever span is current (a child's, say): like
    /// [`annotate`](crate::annotate) on it.
    pub fn annotate(&self, key: &str, value: impl std::fmt::Display) {
        crate::trace::annotate::annotate_span(self.0.span_id(), key, &value);
    }

    /// Ends the call as failed with `kind`.
    pub fn fail(self, kind: &'static str) {
        self.0.finish(Outcome::Error(kind))
    }
}
