//! The flight recorder: every call leaves a record, so the slow and failed calls of the last
//! minutes can be looked at after they happened.
//!
//! Each thread writes its finished calls into a ring of its own: fixed-size records under a
//! per-slot sequence number, plain stores, no lock and no allocation (the way `/ps` lists
//! running calls). A call that is slower than its function's slowest of the recent window, or
//! that failed, is a *candidate*: on its own thread, off the hot path, its subtree is put
//! together from every ring (children finish before their parent, so they are there) and held
//! per function: the slowest of this window and of the last, and the latest failure, bounded in
//! bytes. Conditional trace watchers are served the same way: they lower their functions'
//! threshold to their `min_duration` and take the first qualifying subtree, so a waiting watcher
//! costs the watched functions nothing beyond the candidates it asks for, and it looks at what
//! is held first.
//!
//! Written here rather than taken from a tracing crate: the records must be the calls' own
//! (ids, function ids, clock ticks) and written in the call's end without a lock.

use crate::call::func::{func_by_id, FuncInner};
use crate::stats::outcome::Outcome;
use crate::stats::series::FuncName;
use crate::trace::observe::{FinishedSpan, SpanStart};
use crate::trace::watch::{WatchError, WatchSpec};
use crate::util::clock::{nanos_to_ticks, ticks_to_nanos, Tick};
use parking_lot::Mutex;
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Records in one thread's ring.
const RING: usize = 1024;
/// Most spans one held call keeps (its subtree, by start); the rest are cut.
pub const MAX_HELD_SPANS: usize = 4096;
/// At most one failure of a function is put together per this long (unless a watcher waits
/// for one): a function failing at a high rate costs a few candidates a second, not one per
/// call.
const FAILURE_EVERY: Duration = Duration::from_millis(100);
/// At most one new slowest call of a function is put together per this long (a call that
/// starts a window always is): while latency climbs, every call is a new slowest.
const SLOWEST_EVERY: Duration = Duration::from_millis(10);
/// What the recorder may use by default, rings and held calls together.
pub const DEFAULT_BYTES: usize = 16 << 20;

static ON: AtomicBool = AtomicBool::new(false);
static BYTES: AtomicUsize = AtomicUsize::new(DEFAULT_BYTES);

crate::util::settings::declare! {
    MONKIT_FLIGHT_RECORDER: Flag, "off", "keep the slowest and failed calls of the recent window as whole traces (/trace/recent)";
    MONKIT_FLIGHT_RECORDER_BYTES: Count, "16777216", "bytes the flight recorder may use: per-thread rings and held calls together";
}

/// Turns the recorder on or off (`MONKIT_FLIGHT_RECORDER`). Off by default: a record costs a
/// sync call about 56 instructions (383 → 457 measured, +19%), over the 15% this library
/// allows an always-on feature. Off, calls leave records only while a conditional watcher
/// waits (it is served from them) and nothing new is held; what is held stays.
pub fn set_enabled(on: bool) {
    let on = on && !cfg!(loom);
    if on && !ON.swap(true, Ordering::Relaxed) {
        // Every function starts a window at its next call.
        for f in (0..).map_while(func_by_id) {
            f.flight.until.store(0, Ordering::Relaxed);
            f.flight.min.store(0, Ordering::Relaxed);
        }
    }
    ON.store(on, Ordering::Relaxed);
}

/// Whether the recorder is on.
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Sets what the recorder may use, in bytes (`MONKIT_FLIGHT_RECORDER_BYTES`; default
/// [`DEFAULT_BYTES`]): half for the threads' rings (80 KiB each, made as threads first call;
/// a thread exiting hands its ring to the next), three eighths for held calls, an eighth for
/// the notes of calls that ended. Meant for start-up: rings already made stay.
pub fn set_bytes(bytes: usize) {
    BYTES.store(
        bytes.max(RING * std::mem::size_of::<Record>() * 2),
        Ordering::Relaxed,
    );
}

/// Applies `MONKIT_FLIGHT_RECORDER` and `MONKIT_FLIGHT_RECORDER_BYTES` of `vars`.
pub(crate) fn configure(
    vars: &crate::util::settings::Vars,
) -> Result<(), crate::util::settings::ConfigError> {
    if let Some(on) = vars.flag("MONKIT_FLIGHT_RECORDER")? {
        set_enabled(on);
    }
    if let Some(b) = vars.count("MONKIT_FLIGHT_RECORDER_BYTES")? {
        set_bytes(usize::try_from(b).unwrap_or(usize::MAX));
    }
    Ok(())
}

/// A function's thresholds: what makes one of its calls a candidate.
pub(crate) struct Mark {
    /// A call ending at or after this tick starts a new window.
    until: AtomicU64,
    /// A call lasting at least this many ticks is a candidate: the lesser of `best` and
    /// `watch_min`.
    min: AtomicU64,
    /// Ticks of the window's slowest call so far (0: none yet).
    best: AtomicU64,
    /// The least `min_duration` of the watchers waiting (`u64::MAX`: none, or not yet healed
    /// after the last went).
    watch_min: AtomicU64,
    /// A failure ending before this tick is let go (unless a watcher waits).
    fail_next: AtomicU64,
    /// A new slowest ending before this tick is let go (unless it starts a window).
    slow_next: AtomicU64,
    /// Conditional watchers served by the recorder that wait on this function (the type
    /// `Watchable` counts with, loom's in its models).
    pub(crate) watchers: crate::util::sync::AtomicU32,
}

impl Default for Mark {
    fn default() -> Mark {
        Mark {
            until: AtomicU64::new(0),
            min: AtomicU64::new(0),
            best: AtomicU64::new(0),
            watch_min: AtomicU64::new(u64::MAX),
            fail_next: AtomicU64::new(0),
            slow_next: AtomicU64::new(0),
            watchers: crate::util::sync::AtomicU32::new(0),
        }
    }
}

/// One finished call, as a ring holds it.
#[derive(Default)]
struct Record {
    /// Even: stable; odd: being written.
    seq: AtomicU64,
    trace_hi: AtomicU64,
    trace_lo: AtomicU64,
    span_id: AtomicU64,
    parent_id: AtomicU64,
    t0: AtomicU64,
    t1: AtomicU64,
    /// Function id (low 32 bits) and outcome code.
    meta: AtomicU64,
    /// An error's kind (pointer and length of a `&'static str`), for outcome code 1.
    kind_ptr: AtomicU64,
    kind_len: AtomicU64,
}

/// A record read back.
#[derive(Clone, Copy)]
struct Rec {
    trace_id: u128,
    span_id: u64,
    parent_id: u64,
    t0: u64,
    t1: u64,
    func: u32,
    outcome: Outcome,
    /// The call was annotated (its notes may be kept: [`keep_notes`]).
    noted: bool,
}

fn code(o: &Outcome) -> u64 {
    match o {
        Outcome::Ok => 0,
        Outcome::Error(_) => 1,
        Outcome::Panic => 2,
        Outcome::Canceled => 3,
    }
}

impl Record {
    /// Writes the `i`-th record of its ring (so its sequence numbers, `2i + 1` while
    /// writing and `2i + 2` after, grow without being read first).
    #[inline(always)]
    fn write(&self, i: usize, r: &Rec) {
        let s = (i as u64).wrapping_mul(2).wrapping_add(1);
        self.seq.store(s, Ordering::Relaxed);
        fence(Ordering::Release);
        self.trace_hi
            .store((r.trace_id >> 64) as u64, Ordering::Relaxed);
        self.trace_lo.store(r.trace_id as u64, Ordering::Relaxed);
        self.span_id.store(r.span_id, Ordering::Relaxed);
        self.parent_id.store(r.parent_id, Ordering::Relaxed);
        self.t0.store(r.t0, Ordering::Relaxed);
        self.t1.store(r.t1, Ordering::Relaxed);
        self.meta.store(
            u64::from(r.func) | code(&r.outcome) << 32 | u64::from(r.noted) << 40,
            Ordering::Relaxed,
        );
        if let Outcome::Error(k) = r.outcome {
            self.kind_ptr.store(k.as_ptr() as u64, Ordering::Relaxed);
            self.kind_len.store(k.len() as u64, Ordering::Relaxed);
        }
        self.seq.store(s.wrapping_add(1), Ordering::Release);
    }

    /// A consistent read of a record of `trace_lo`'s trace, or `None`.
    fn read(&self, trace_lo: u64) -> Option<Rec> {
        let s1 = self.seq.load(Ordering::Acquire);
        if s1 & 1 == 1 || s1 == 0 || self.trace_lo.load(Ordering::Relaxed) != trace_lo {
            return None;
        }
        let meta = self.meta.load(Ordering::Relaxed);
        let (kp, kl) = (
            self.kind_ptr.load(Ordering::Relaxed),
            self.kind_len.load(Ordering::Relaxed),
        );
        let r = Rec {
            trace_id: u128::from(self.trace_hi.load(Ordering::Relaxed)) << 64
                | u128::from(trace_lo),
            span_id: self.span_id.load(Ordering::Relaxed),
            parent_id: self.parent_id.load(Ordering::Relaxed),
            t0: self.t0.load(Ordering::Relaxed),
            t1: self.t1.load(Ordering::Relaxed),
            func: meta as u32,
            outcome: Outcome::Ok,
            noted: meta >> 40 & 1 == 1,
        };
        fence(Ordering::Acquire);
        if self.seq.load(Ordering::Relaxed) != s1 {
            return None;
        }
        let outcome = match meta >> 32 & 0xff {
            1 => {
                // SAFETY: the pointer and length were taken from a `&'static str` in `write`,
                // and the sequence check says both halves are from the same write.
                let k = unsafe {
                    std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                        kp as usize as *const u8,
                        kl as usize,
                    ))
                };
                Outcome::Error(k)
            }
            2 => Outcome::Panic,
            3 => Outcome::Canceled,
            _ => Outcome::Ok,
        };
        Some(Rec { outcome, ..r })
    }
}

/// One thread's ring; kept for the process's life and handed to a new thread when its
/// thread exits.
struct Ring {
    next: AtomicUsize,
    records: Box<[Record]>,
}

/// Every ring made, and those whose thread exited.
static RINGS: Mutex<Vec<&'static Ring>> = Mutex::new(Vec::new());
static FREE: Mutex<Vec<&'static Ring>> = Mutex::new(Vec::new());
/// Threads that found no ring (the byte budget was spent on others).
static WITHOUT_RING: AtomicU64 = AtomicU64::new(0);

/// A marker for "this thread has no ring": never dereferenced.
const NO_RING: *const Ring = std::ptr::dangling();

thread_local! {
    static MINE: Cell<*const Ring> = const { Cell::new(std::ptr::null()) };
    static OWNER: Owner = const { Owner(Cell::new(None)) };
}

/// Gives the thread's ring back when the thread exits.
struct Owner(Cell<Option<&'static Ring>>);

impl Drop for Owner {
    fn drop(&mut self) {
        if let Some(r) = self.0.take() {
            let _ = MINE.try_with(|m| m.set(NO_RING));
            FREE.lock().push(r);
        }
    }
}

#[cold]
#[inline(never)]
fn take_ring() -> *const Ring {
    let ring = FREE.lock().pop().or_else(|| {
        let mut all = RINGS.lock();
        let max = (BYTES.load(Ordering::Relaxed) / 2) / (RING * std::mem::size_of::<Record>());
        if all.len() >= max.max(1) {
            return None;
        }
        let r: &'static Ring = Box::leak(Box::new(Ring {
            next: AtomicUsize::new(0),
            records: (0..RING).map(|_| Record::default()).collect(),
        }));
        all.push(r);
        Some(r)
    });
    let p = match ring {
        Some(r) if OWNER.try_with(|o| o.0.set(Some(r))).is_ok() => r as *const Ring,
        Some(r) => {
            FREE.lock().push(r);
            NO_RING
        }
        None => {
            WITHOUT_RING.fetch_add(1, Ordering::Relaxed);
            NO_RING
        }
    };
    let _ = MINE.try_with(|m| m.set(p));
    p
}

/// Whether calls leave records now: the recorder is on, or a watcher is served from them.
#[inline(always)]
pub(crate) fn active() -> bool {
    ON.load(Ordering::Relaxed) || crate::trace::watch::FLIGHT_WATCHING.load(Ordering::Relaxed) != 0
}

/// A call ends: its record, and a look whether it is a candidate. (Inlined into the call's
/// end, so its many arguments are registers, not a struct built for it.)
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn record(
    func: &'static FuncInner,
    trace_id: u128,
    span_id: u64,
    parent_id: u64,
    t0: Tick,
    t1: Tick,
    outcome: &Outcome,
    noted: bool,
    error: Option<&dyn std::fmt::Display>,
) {
    if !active() {
        return;
    }
    let rec = Rec {
        trace_id,
        span_id,
        parent_id,
        t0: t0.0,
        t1: t1.0,
        func: func.id,
        outcome: *outcome,
        noted,
    };
    let mut p = MINE.with(Cell::get);
    if p.is_null() {
        p = take_ring();
    }
    if p != NO_RING {
        // SAFETY: rings are leaked, so live for the process; only this thread writes this one.
        let ring = unsafe { &*p };
        let i = ring.next.load(Ordering::Relaxed);
        ring.next.store(i.wrapping_add(1), Ordering::Relaxed);
        ring.records[i % RING].write(i, &rec);
    }
    let m = &func.flight;
    let took = t1.0.saturating_sub(t0.0);
    if t1.0 >= m.until.load(Ordering::Relaxed)
        || took >= m.min.load(Ordering::Relaxed)
        || (outcome.is_failure() && t1.0 >= m.fail_next.load(Ordering::Relaxed))
    {
        candidate(func, &rec, error);
    }
}

/// Why a call is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Why {
    /// The function's slowest call of the current recent-window epoch.
    Slowest,
    /// Its slowest call of the epoch before.
    PreviouslySlowest,
    /// Its latest failure (at most one is taken per 100 ms).
    LatestFailure,
}

impl Why {
    /// A word for pages: `slowest`, `previously_slowest`, `latest_failure`.
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Slowest => "slowest",
            Why::PreviouslySlowest => "previously_slowest",
            Why::LatestFailure => "latest_failure",
        }
    }
}

/// A call the recorder holds, with its subtree.
struct Held {
    spans: Vec<Rec>,
    /// Spans left out past [`MAX_HELD_SPANS`].
    cut: usize,
    /// The notes of its spans that had any (kept by [`keep_notes`]).
    notes: HashMap<u64, Vec<(String, String)>>,
    /// What the call's error said.
    error: Option<String>,
}

impl Held {
    fn root(&self) -> &Rec {
        &self.spans[0]
    }

    fn bytes(&self) -> usize {
        std::mem::size_of::<Held>()
            + self.spans.capacity() * std::mem::size_of::<Rec>()
            + self
                .notes
                .values()
                .map(|n| notes_bytes(n) + 48)
                .sum::<usize>()
            + self.error.as_ref().map_or(0, String::len)
    }

    fn took(&self) -> u64 {
        self.root().t1.saturating_sub(self.root().t0)
    }
}

/// What is held for one function.
#[derive(Default)]
struct FuncHeld {
    slowest: Option<std::sync::Arc<Held>>,
    previous: Option<std::sync::Arc<Held>>,
    failure: Option<std::sync::Arc<Held>>,
}

impl FuncHeld {
    /// The calls held, each with why.
    fn iter(&self) -> impl Iterator<Item = (Why, &std::sync::Arc<Held>)> {
        [
            (Why::Slowest, &self.slowest),
            (Why::PreviouslySlowest, &self.previous),
            (Why::LatestFailure, &self.failure),
        ]
        .into_iter()
        .filter_map(|(why, x)| x.as_ref().map(|x| (why, x)))
    }

    /// The place of the call held for `why`.
    fn slot(&mut self, why: Why) -> &mut Option<std::sync::Arc<Held>> {
        match why {
            Why::Slowest => &mut self.slowest,
            Why::PreviouslySlowest => &mut self.previous,
            Why::LatestFailure => &mut self.failure,
        }
    }
}

#[derive(Default)]
struct Store {
    funcs: HashMap<u32, FuncHeld>,
    bytes: usize,
}

static STORE: std::sync::LazyLock<Mutex<Store>> = std::sync::LazyLock::new(Default::default);
/// Held calls let go to stay within the byte budget.
static EVICTED: AtomicU64 = AtomicU64::new(0);

/// `Mark::watch_min` of a function whose watchers want only failures (they are looked at
/// anyway): no call is a candidate for its duration.
const FAILURES_ONLY: u64 = u64::MAX - 1;

/// Most subtrees put together a second, over the process, for holding (a watcher's are not
/// counted against it).
const ASSEMBLIES_PER_SECOND: u64 = 200;
/// This second (process seconds) and how many were put together in it.
static ASSEMBLY_SECOND: AtomicU64 = AtomicU64::new(0);
static ASSEMBLIES: AtomicU64 = AtomicU64::new(0);
/// Candidates not held because the second's assemblies were spent.
static SKIPPED: AtomicU64 = AtomicU64::new(0);

fn assembly_allowed(t1: Tick) -> bool {
    let second = t1.process_nanos() / 1_000_000_000;
    if ASSEMBLY_SECOND.swap(second, Ordering::Relaxed) != second {
        ASSEMBLIES.store(0, Ordering::Relaxed);
    }
    ASSEMBLIES.fetch_add(1, Ordering::Relaxed) < ASSEMBLIES_PER_SECOND
}

/// Candidates (a new slowest, a failure) not held because the recorder had put together the
/// most subtrees a second it may.
pub fn skipped() -> u64 {
    SKIPPED.load(Ordering::Relaxed)
}

/// Held calls let go to keep the recorder within its bytes.
pub fn evicted() -> u64 {
    EVICTED.load(Ordering::Relaxed)
}

/// Threads whose calls leave no record: the recorder's bytes went to other threads' rings.
pub fn threads_without_ring() -> u64 {
    WITHOUT_RING.load(Ordering::Relaxed)
}

/// A possible candidate: decide, put its subtree together, hold it and hand it to watchers.
#[cold]
#[inline(never)]
fn candidate(func: &'static FuncInner, root: &Rec, error: Option<&dyn std::fmt::Display>) {
    let (span_id, outcome) = (root.span_id, &root.outcome);
    let (t0, t1) = (Tick(root.t0), Tick(root.t1));
    let m = &func.flight;
    let took = t1.0.saturating_sub(t0.0);
    let watched = m.watchers.load(Ordering::Relaxed) > 0;
    let holding = ON.load(Ordering::Relaxed);
    if !watched && m.watch_min.load(Ordering::Relaxed) != u64::MAX {
        // The last watcher went: the threshold is the window's slowest again.
        m.watch_min.store(u64::MAX, Ordering::Relaxed);
        m.min
            .store(m.best.load(Ordering::Relaxed).max(1), Ordering::Relaxed);
    }
    if watched && m.watch_min.load(Ordering::Relaxed) == u64::MAX {
        // A function registered after its watcher was armed: its threshold was never
        // lowered, so every call is looked at until the watcher goes.
        m.watch_min.store(1, Ordering::Relaxed);
        m.min.store(1, Ordering::Relaxed);
    }
    if !holding {
        // Records only for watchers: their threshold, and no window kept.
        m.until.store(u64::MAX, Ordering::Relaxed);
        m.min.store(
            m.watch_min.load(Ordering::Relaxed).max(1),
            Ordering::Relaxed,
        );
    }
    let new_window = t1.0 >= m.until.load(Ordering::Relaxed);
    // A new slowest at most once per `SLOWEST_EVERY`: while latency climbs, every call is
    // slower than the last.
    let slowest = new_window
        || (took > m.best.load(Ordering::Relaxed) && t1.0 >= m.slow_next.load(Ordering::Relaxed));
    // While a watcher waits, every failure is looked at (the next may be the kind it wants);
    // otherwise one per `FAILURE_EVERY`.
    let failure_due = outcome.is_failure() && {
        let next = m.fail_next.load(Ordering::Relaxed);
        t1.0 >= next
            && !watched
            && m.fail_next
                .compare_exchange(
                    next,
                    t1.0.saturating_add(nanos_to_ticks(FAILURE_EVERY.as_nanos() as u64)),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    };
    // With the recorder off, calls are looked at only for watchers.
    let (slowest, failure_due) = (slowest && holding, failure_due && holding);
    if !slowest && !failure_due && !watched {
        // A failure another took the turn of, or a call as slow as a watcher once asked for.
        return;
    }
    // The root's record as held: its notes are held apart.
    let root = &Rec {
        noted: false,
        ..*root
    };
    // What only the call's end knows: its notes (still held for it) and its error's text.
    let root_notes = || crate::trace::annotate::peek(span_id);
    let root_error = || {
        error
            .filter(|_| outcome.is_failure() && func.hub.error_text.load(Ordering::Relaxed))
            .map(|e| {
                crate::trace::annotate::display_within(e, crate::trace::observe::MAX_ERROR_TEXT)
            })
    };
    // Watchers whose condition this call meets, claimed now.
    let takers = if watched {
        match finished(root) {
            Some(mut span) => {
                span.annotations = root_notes();
                span.error = root_error();
                func.hub.watchers.flight_takers(func.id, &span)
            }
            None => Vec::new(),
        }
    } else {
        Vec::new()
    };
    if !slowest && !failure_due && takers.is_empty() {
        return;
    }
    // Putting subtrees together costs the caller's thread a scan of every ring: at most
    // `ASSEMBLIES_PER_SECOND` a second over the process, watchers first.
    if takers.is_empty() && !assembly_allowed(t1) {
        SKIPPED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if slowest {
        m.slow_next.store(
            t1.0.saturating_add(nanos_to_ticks(SLOWEST_EVERY.as_nanos() as u64)),
            Ordering::Relaxed,
        );
    }
    let mut held = assemble(root);
    let notes = root_notes();
    if !notes.is_empty() {
        held.notes.insert(span_id, notes);
    }
    held.error = root_error();
    let held = std::sync::Arc::new(held);
    if !takers.is_empty() {
        let spans = spans_of(&held);
        for t in takers {
            t.deliver(crate::trace::watch::Captured::Trace(spans.clone()));
        }
    }
    if !slowest && !failure_due {
        return;
    }
    let mut store = STORE.lock();
    let store = &mut *store;
    let entry = store.funcs.entry(func.id).or_default();
    let mut added = 0;
    let mut freed = 0;
    if slowest {
        if new_window {
            let old = std::mem::replace(&mut entry.previous, entry.slowest.take());
            freed += old.map_or(0, |h| h.bytes());
            m.until
                .store(crate::stats::dist::epoch_end(t1).0, Ordering::Relaxed);
        }
        // Another thread may have held a slower one meanwhile.
        if entry.slowest.as_ref().is_none_or(|h| h.took() < took) {
            freed += entry.slowest.take().map_or(0, |h| h.bytes());
            entry.slowest = Some(held.clone());
            added += held.bytes();
        }
        let best = entry.slowest.as_ref().map_or(took, |h| h.took());
        m.best.store(best, Ordering::Relaxed);
        let watch_min = m.watch_min.load(Ordering::Relaxed);
        m.min.store(best.min(watch_min).max(1), Ordering::Relaxed);
    }
    if failure_due {
        freed += entry.failure.take().map_or(0, |h| h.bytes());
        entry.failure = Some(held.clone());
        added += held.bytes();
    }
    store.bytes = (store.bytes + added).saturating_sub(freed);
    // Three eighths of the recorder's bytes (rings take half, kept notes an eighth).
    let budget = BYTES.load(Ordering::Relaxed) / 8 * 3;
    while store.bytes > budget {
        // Let the oldest held call go.
        let oldest = store
            .funcs
            .iter()
            .flat_map(|(id, h)| h.iter().map(move |(why, x)| (x.root().t1, *id, why)))
            .min();
        let Some((_, id, why)) = oldest else { break };
        let Some(h) = store.funcs.get_mut(&id) else {
            break;
        };
        let gone = h.slot(why).take().map_or(0, |x| x.bytes());
        store.bytes = store.bytes.saturating_sub(gone);
        EVICTED.fetch_add(1, Ordering::Relaxed);
    }
}

/// The subtree of `root` from every ring, root first, then by start.
fn assemble(root: &Rec) -> Held {
    let rings: Vec<&'static Ring> = RINGS.lock().clone();
    let lo = root.trace_id as u64;
    let mut found: Vec<Rec> = Vec::new();
    for ring in rings {
        for rec in ring.records.iter() {
            if let Some(r) = rec.read(lo) {
                if r.trace_id == root.trace_id
                    && r.t0 >= root.t0
                    && r.t1 <= root.t1
                    && r.span_id != root.span_id
                {
                    found.push(r);
                }
            }
        }
    }
    // Parents start before their children: one pass in start order finds the subtree, and
    // further passes catch ties.
    found.sort_unstable_by_key(|r| (r.t0, r.span_id));
    let mut inside: HashSet<u64> = HashSet::from([root.span_id]);
    let mut spans = vec![*root];
    let mut taken = vec![false; found.len()];
    loop {
        let before = spans.len();
        for (i, r) in found.iter().enumerate() {
            if !taken[i] && inside.contains(&r.parent_id) && inside.insert(r.span_id) {
                taken[i] = true;
                spans.push(*r);
            }
        }
        if spans.len() == before {
            break;
        }
    }
    spans[1..].sort_unstable_by_key(|r| (r.t0, r.span_id));
    let cut = spans.len().saturating_sub(MAX_HELD_SPANS);
    spans.truncate(MAX_HELD_SPANS);
    spans.shrink_to_fit();
    let notes = recent_notes(&spans);
    Held {
        spans,
        cut,
        notes,
        error: None,
    }
}

/// A record as a finished span (no annotations or error text: the record has none).
fn finished(r: &Rec) -> Option<FinishedSpan> {
    let f: &'static FuncName = &func_by_id(r.func)?.names;
    let start_ns = Tick(r.t0).unix_nanos();
    let took = ticks_to_nanos(r.t1.saturating_sub(r.t0));
    Some(FinishedSpan {
        start: SpanStart {
            trace_id: r.trace_id,
            span_id: r.span_id,
            parent_id: (r.parent_id != 0).then_some(r.parent_id),
            func: f,
            start_unix_ns: start_ns,
            sampled: false,
        },
        finish_unix_ns: start_ns + took,
        outcome: r.outcome,
        annotations: Vec::new(),
        error: None,
        extras: None,
    })
}

fn spans_of(h: &Held) -> Vec<FinishedSpan> {
    let mut out: Vec<FinishedSpan> = h.spans.iter().filter_map(finished).collect();
    for s in &mut out {
        if let Some(n) = h.notes.get(&s.start.span_id) {
            s.annotations = n.clone();
        }
    }
    if let Some(root) = out.first_mut() {
        root.error = h.error.clone();
    }
    out
}

/// Bytes of notes' text.
fn notes_bytes(n: &[(String, String)]) -> usize {
    n.iter().map(|(k, v)| k.len() + v.len() + 48).sum()
}

/// Notes of calls that ended unrecorded, kept a while so a candidate's subtree has them:
/// sharded by span id, each shard bounded in bytes, oldest out first.
const NOTE_SHARDS: usize = 16;

#[derive(Default)]
struct NoteShard {
    kept: std::collections::VecDeque<(u64, Vec<(String, String)>)>,
    bytes: usize,
}

#[repr(align(128))]
#[derive(Default)]
struct PaddedNotes(Mutex<NoteShard>);

static NOTES: std::sync::LazyLock<[PaddedNotes; NOTE_SHARDS]> =
    std::sync::LazyLock::new(Default::default);

/// An unrecorded call that was annotated ended: its notes are kept a while (they were made
/// already; keeping them moves their freeing later, it allocates nothing).
pub(crate) fn keep_notes(span_id: u64, notes: Vec<(String, String)>) {
    if notes.is_empty() || !active() {
        return;
    }
    let mut shard = NOTES[(span_id >> 7) as usize % NOTE_SHARDS].0.lock();
    shard.bytes += notes_bytes(&notes);
    shard.kept.push_back((span_id, notes));
    // An eighth of the recorder's bytes, over all shards.
    let most = BYTES.load(Ordering::Relaxed) / 8 / NOTE_SHARDS;
    while shard.bytes > most {
        let Some((_, old)) = shard.kept.pop_front() else {
            break;
        };
        shard.bytes -= notes_bytes(&old);
    }
}

fn recent_notes(spans: &[Rec]) -> HashMap<u64, Vec<(String, String)>> {
    let mut out = HashMap::new();
    for r in spans.iter().filter(|r| r.noted) {
        let shard = NOTES[(r.span_id >> 7) as usize % NOTE_SHARDS].0.lock();
        if let Some((_, n)) = shard.kept.iter().rev().find(|(id, _)| *id == r.span_id) {
            out.insert(r.span_id, n.clone());
        }
    }
    out
}

/// A call the recorder holds, as listed on `/trace/recent`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HeldCall {
    /// Why it is held.
    pub why: Why,
    /// The call's span, as it finished.
    pub span: FinishedSpan,
    /// Spans in its subtree (itself included), as held.
    pub spans: usize,
    /// Spans of its subtree left out past [`MAX_HELD_SPANS`].
    pub cut: usize,
}

/// What is held for the functions `mine` accepts, newest first, each with its subtree.
pub(crate) fn held_trees(mine: impl Fn(&FuncInner) -> bool) -> Vec<(HeldCall, Vec<FinishedSpan>)> {
    held_with(mine)
        .into_iter()
        .map(|(c, h)| (c, spans_of(&h)))
        .collect()
}

/// What is held for the functions `mine` accepts, newest first.
pub(crate) fn held(mine: impl Fn(&FuncInner) -> bool) -> Vec<HeldCall> {
    held_with(mine).into_iter().map(|(c, _)| c).collect()
}

/// The held calls of the functions `mine` accepts, newest first, with what holds them.
fn held_with(mine: impl Fn(&FuncInner) -> bool) -> Vec<(HeldCall, std::sync::Arc<Held>)> {
    let store = STORE.lock();
    let mut out = Vec::new();
    for (id, h) in &store.funcs {
        let Some(f) = func_by_id(*id) else { continue };
        if !mine(f) {
            continue;
        }
        for (why, x) in h.iter() {
            if let Some(span) = finished(x.root()) {
                let call = HeldCall {
                    why,
                    span,
                    spans: x.spans.len(),
                    cut: x.cut,
                };
                out.push((call, x.clone()));
            }
        }
    }
    drop(store);
    out.sort_by(|(a, _), (b, _)| {
        b.span
            .finish_unix_ns
            .cmp(&a.span.finish_unix_ns)
            .then(a.why.as_str().cmp(b.why.as_str()))
    });
    out
}

/// The held call `spec` asks for among the functions `mine` accepts, with its subtree (root
/// first): of those matching its regex, trace id and condition, the slowest when it sets a
/// `min_duration`, else the latest. `Ok(None)` when nothing held matches.
pub(crate) fn find(
    spec: &WatchSpec,
    mine: impl Fn(&FuncInner) -> bool,
) -> Result<Option<Vec<FinishedSpan>>, WatchError> {
    let regex = match &spec.regex {
        Some(r) => Some(crate::trace::watch::compile(r)?),
        None => None,
    };
    if regex.is_none() && spec.trace_id.is_none() && spec.condition.is_none() {
        return Err(WatchError::NothingToWatch);
    }
    let store = STORE.lock();
    let mut best: Option<(&std::sync::Arc<Held>, FinishedSpan)> = None;
    let by_duration = spec
        .condition
        .as_ref()
        .is_some_and(|c| c.min_duration.is_some());
    for (id, h) in &store.funcs {
        let Some(f) = func_by_id(*id) else { continue };
        if !mine(f)
            || regex
                .as_ref()
                .is_some_and(|r| !r.is_match(f.names.full_name()))
        {
            continue;
        }
        for (_, x) in h.iter() {
            if spec.trace_id.is_some_and(|t| t != x.root().trace_id) {
                continue;
            }
            let Some(span) = finished(x.root()) else {
                continue;
            };
            if spec.condition.as_ref().is_some_and(|c| !c.holds(&span)) {
                continue;
            }
            let better = match &best {
                None => true,
                Some((b, _)) if by_duration => x.took() > b.took(),
                Some((b, _)) => x.root().t1 > b.root().t1,
            };
            if better {
                best = Some((x, span));
            }
        }
    }
    // A trace id held only inside another call's subtree: that subtree.
    if best.is_none() {
        if let Some(t) = spec.trace_id {
            for h in store.funcs.values() {
                for (_, x) in h.iter() {
                    if x.spans.iter().any(|s| s.trace_id == t) {
                        return Ok(Some(spans_of(x)));
                    }
                }
            }
        }
    }
    Ok(best.map(|(x, _)| spans_of(x)))
}

/// A conditional watcher served by the recorder is armed on `funcs`: calls at least as slow
/// as it asks become candidates (failures always are).
pub(crate) fn lower_thresholds(funcs: &[u32], spec: &WatchSpec) {
    let Some(c) = &spec.condition else { return };
    let min = match (c.min_duration, &c.outcome, &c.predicate) {
        (Some(d), _, _) => nanos_to_ticks(d.as_nanos().min(u128::from(u64::MAX)) as u64).max(1),
        // Only failures qualify: every one is looked at while it waits.
        (None, Some(_), None) => FAILURES_ONLY,
        // Any call may qualify.
        _ => 1,
    };
    for id in funcs {
        if let Some(f) = func_by_id(*id) {
            if c.outcome.is_some() {
                f.flight.fail_next.store(0, Ordering::Relaxed);
            }
            f.flight.watch_min.fetch_min(min, Ordering::Relaxed);
            f.flight.min.fetch_min(min, Ordering::Relaxed);
        }
    }
}
