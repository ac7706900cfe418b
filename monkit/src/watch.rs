//! Trace watchers: wait for the next call of a matching function (or of a given trace) and
//! capture its whole span tree, or mark its trace as sampled for export.
//!
//! Matching is decided off the hot path: a watcher's regex is matched once against every
//! registered function (which, with link-time registration, includes functions that never ran)
//! and each selected function's `watched` count is raised. A span start then pays one relaxed
//! load of the number of armed watchers when there are none, and one more load (its function's
//! count, or a scan of a small array of watched trace ids) when there are some. No regex runs
//! and no lock is taken unless the span matches.

use crate::func::FuncInner;
use crate::span::{SpanRef, RECORDED, SAMPLED};
use crate::trace::FinishedSpan;
use crate::Registry;
use parking_lot::{Condvar, Mutex, RwLock};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Number of armed watchers: the one load every span start pays for this feature.
pub(crate) static ARMED: AtomicUsize = AtomicUsize::new(0);

const TRACE_SLOTS: usize = 64;
/// Trace ids watched for, as (high, low) halves; (0, 0) is free.
static TRACE_IDS: [(AtomicU64, AtomicU64); TRACE_SLOTS] =
    [const { (AtomicU64::new(0), AtomicU64::new(0)) }; TRACE_SLOTS];
static TRACE_WATCHERS: AtomicUsize = AtomicUsize::new(0);

static WATCHERS: RwLock<Vec<Arc<Entry>>> = RwLock::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Longest regex accepted, and the compiled size limit: patterns are user input.
const MAX_REGEX_LEN: usize = 4096;
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// What a watcher waits for.
#[derive(Clone, Debug, Default)]
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
}

/// Why a watcher could not be set up. The texts follow Go monkit's.
#[derive(Clone, Debug, PartialEq, Eq)]
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

struct Entry {
    id: u64,
    armed: AtomicBool,
    funcs: Mutex<Vec<&'static FuncInner>>,
    regex: Option<regex::Regex>,
    /// Watch functions registered after the watcher too.
    late: bool,
    trace: Option<(u128, usize)>,
    sample: bool,
    shared: Arc<Shared>,
}

impl Entry {
    fn matches(&self, func: &FuncInner, trace_id: u128) -> bool {
        let func_ok = self.regex.is_none() || self.funcs.lock().iter().any(|f| f.id == func.id);
        let trace_ok = self.trace.is_none_or(|(t, _)| t == trace_id);
        func_ok && trace_ok
    }

    /// Disarms; true for the one caller that did it.
    fn disarm(&self) -> bool {
        if self
            .armed
            .compare_exchange(true, false, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        for f in self.funcs.lock().iter() {
            f.watched.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some((_, slot)) = self.trace {
            TRACE_IDS[slot].0.store(0, Ordering::Relaxed);
            TRACE_IDS[slot].1.store(0, Ordering::Relaxed);
            TRACE_WATCHERS.fetch_sub(1, Ordering::Relaxed);
        }
        ARMED.fetch_sub(1, Ordering::Relaxed);
        true
    }
}

/// A waiting watcher. Await it, or [`TraceWatcher::wait`]; dropping it cancels the watch.
pub struct TraceWatcher {
    entry: Arc<Entry>,
}

impl std::fmt::Debug for TraceWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceWatcher")
            .field("id", &self.entry.id)
            .finish()
    }
}

/// Number of watchers waiting for a match right now.
pub fn armed_watchers() -> usize {
    ARMED.load(Ordering::Relaxed)
}

impl Registry {
    /// Sets up a watcher: see [`WatchSpec`].
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
        if spec.regex.is_none() && spec.trace_id.is_none() {
            return Err(WatchError::NothingToWatch);
        }
        let regex = match &spec.regex {
            None => None,
            Some(r) if r.len() > MAX_REGEX_LEN => {
                return Err(WatchError::InvalidRegex {
                    regex: r.chars().take(64).collect::<String>() + "...",
                    reason: format!("longer than {MAX_REGEX_LEN} bytes"),
                })
            }
            Some(r) => Some(
                regex::RegexBuilder::new(r)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| WatchError::InvalidRegex {
                        regex: r.clone(),
                        reason: e.to_string(),
                    })?,
            ),
        };
        let funcs: Vec<&'static FuncInner> = match &regex {
            Some(re) => self
                .funcs()
                .into_iter()
                .filter(|f| re.is_match(f.full_name()))
                .map(|f| f.0)
                .collect(),
            None => Vec::new(),
        };
        if spec.preselect && regex.is_some() && funcs.is_empty() {
            return Err(WatchError::MatchesNothing {
                regex: spec.regex.clone().unwrap_or_default(),
            });
        }
        let trace = match spec.trace_id {
            None => None,
            Some(t) => Some((t, claim_trace_slot(t)?)),
        };
        let entry = Arc::new(Entry {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            armed: AtomicBool::new(true),
            funcs: Mutex::new(Vec::new()),
            regex,
            late: !spec.preselect,
            trace,
            sample: spec.sample,
            shared: Arc::default(),
        });
        {
            // Under the write lock, so a function registered meanwhile is seen exactly once.
            let mut all = WATCHERS.write();
            for f in &funcs {
                f.watched.fetch_add(1, Ordering::Relaxed);
            }
            *entry.funcs.lock() = funcs;
            all.push(entry.clone());
            ARMED.fetch_add(1, Ordering::Relaxed);
        }
        Ok(TraceWatcher { entry })
    }
}

fn claim_trace_slot(t: u128) -> Result<usize, WatchError> {
    let (hi, lo) = ((t >> 64) as u64, t as u64);
    for (i, (h, l)) in TRACE_IDS.iter().enumerate() {
        // Claim by the low half first; a slot is in use once either half is non-zero.
        if h.load(Ordering::Relaxed) == 0
            && l.compare_exchange(0, lo | 1 << 63, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            h.store(hi | 1, Ordering::Relaxed);
            l.store(lo, Ordering::Relaxed);
            h.store(hi, Ordering::Relaxed);
            TRACE_WATCHERS.fetch_add(1, Ordering::Relaxed);
            return Ok(i);
        }
    }
    Err(WatchError::TooManyTraceWatchers)
}

/// A new function: watchers without preselect whose regex matches it watch it too.
pub(crate) fn on_new_func(f: &'static FuncInner) {
    if ARMED.load(Ordering::Relaxed) == 0 {
        return;
    }
    for e in WATCHERS.read().iter() {
        if e.late && e.armed.load(Ordering::Relaxed) {
            if let Some(re) = &e.regex {
                if re.is_match(&f.full_name) {
                    f.watched.fetch_add(1, Ordering::Relaxed);
                    e.funcs.lock().push(f);
                }
            }
        }
    }
}

/// A span starts while some watcher is armed: decide whether it is the one somebody waits
/// for, and return its flags.
#[cold]
#[inline(never)]
pub(crate) fn on_start(func: &'static FuncInner, span: &SpanRef) -> u8 {
    let mut flags = span.flags;
    let func_hit = func.watched.load(Ordering::Relaxed) > 0;
    let trace_hit = TRACE_WATCHERS.load(Ordering::Relaxed) > 0 && {
        let (hi, lo) = ((span.trace_id >> 64) as u64, span.trace_id as u64);
        TRACE_IDS
            .iter()
            .any(|(h, l)| l.load(Ordering::Relaxed) == lo && h.load(Ordering::Relaxed) == hi)
    };
    if !func_hit && !trace_hit {
        return flags;
    }
    let hits: Vec<Arc<Entry>> = WATCHERS
        .read()
        .iter()
        .filter(|e| e.armed.load(Ordering::Relaxed) && e.matches(func, span.trace_id))
        .cloned()
        .collect();
    for e in hits {
        if !e.disarm() {
            continue;
        }
        if e.sample {
            flags |= SAMPLED;
            e.shared.deliver(Captured::Sampled(span.trace_id));
        } else {
            flags |= RECORDED;
            crate::trace::start_capture(span.trace_id, span.span_id, e.shared.clone());
        }
    }
    flags
}

impl TraceWatcher {
    /// Blocks until the capture is ready or `timeout` passes.
    pub fn wait(&self, timeout: Duration) -> Option<Captured> {
        let deadline = Instant::now() + timeout;
        let mut r = self.entry.shared.result.lock();
        while r.is_none() {
            if self
                .entry
                .shared
                .cv
                .wait_until(&mut r, deadline)
                .timed_out()
            {
                break;
            }
        }
        r.take()
    }
}

impl Future for TraceWatcher {
    type Output = Captured;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Captured> {
        let shared = &self.entry.shared;
        // Register the waker before looking, so a delivery in between is not missed.
        *shared.waker.lock() = Some(cx.waker().clone());
        match shared.result.lock().take() {
            Some(c) => Poll::Ready(c),
            None => Poll::Pending,
        }
    }
}

impl Drop for TraceWatcher {
    fn drop(&mut self) {
        self.entry.disarm();
        let id = self.entry.id;
        WATCHERS.write().retain(|e| e.id != id);
    }
}
