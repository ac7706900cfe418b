//! A registry's span side: the sampler for new traces, the span observers, the trace
//! watchers, and the one counter span starts read to know whether any of them needs a look.
//!
//! The observer list is read on every recorded span and changed only when an observer comes
//! or goes, so it is an `ArcSwap` of an immutable list: readers never lock or contend.

use crate::trace::observe::{FinishedSpan, SpanObserver, SpanStart};
use crate::trace::span::{SpanRef, RECORDED, SAMPLED};
use crate::trace::watch::{Captured, Entry, WatchError, WatchSpec, Watchable, Watchers};
use arc_swap::ArcSwap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Which new traces are sampled for export. A trace continued from another process keeps the
/// sampled flag it came with (parent-based), and `/trace/sample` forces one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampler {
    /// Every new trace.
    Always,
    /// No new trace.
    Never,
    /// This fraction (0..=1) of new traces.
    Fraction(f64),
}

#[derive(Clone)]
struct Registered {
    id: u64,
    observer: Arc<dyn SpanObserver>,
    chooses: bool,
}

pub(crate) struct Hub {
    /// Armed watchers plus observers that choose traces: when zero (nearly always), a span
    /// start looks no further than its parent's flags.
    pub(crate) hot: AtomicUsize,
    /// A new root is sampled when its (uniformly random) span id is at most this.
    threshold: AtomicU64,
    observers: ArcSwap<Vec<Registered>>,
    pub(crate) watchers: Arc<Watchers>,
    next_id: AtomicU64,
    /// Observer hooks that panicked (each was caught; the call went on).
    observer_panics: AtomicU64,
}

impl Default for Hub {
    fn default() -> Self {
        let watchers = Arc::new(Watchers::default());
        Hub {
            hot: AtomicUsize::new(0),
            threshold: AtomicU64::new(0),
            observers: ArcSwap::from_pointee(vec![Registered {
                id: 0,
                observer: watchers.clone(),
                chooses: false,
            }]),
            watchers,
            next_id: AtomicU64::new(1),
            observer_panics: AtomicU64::new(0),
        }
    }
}

impl Hub {
    pub(crate) fn set_sampler(&self, s: Sampler) {
        let t = match s {
            Sampler::Always => u64::MAX,
            Sampler::Never => 0,
            Sampler::Fraction(f) if f.is_nan() || f <= 0.0 => 0,
            Sampler::Fraction(f) if f >= 1.0 => u64::MAX,
            Sampler::Fraction(f) => (f * u64::MAX as f64) as u64,
        };
        self.threshold.store(t, Ordering::Relaxed);
    }

    /// Whether a new root with this span id is sampled.
    #[inline(always)]
    pub(crate) fn sample_root(&self, span_id: u64) -> bool {
        let t = self.threshold.load(Ordering::Relaxed);
        t != 0 && span_id <= t
    }

    /// A span starts while `hot` is non-zero: the flags watchers and trace-choosing observers
    /// add to its trace.
    #[cold]
    #[inline(never)]
    pub(crate) fn on_start(
        &self,
        func_id: u32,
        watched: bool,
        span: &SpanRef,
        root: bool,
        start: impl FnOnce() -> SpanStart,
    ) -> u8 {
        let mut flags = 0;
        if self.watchers.armed.load(Ordering::Relaxed) > 0 {
            flags |= self.watchers.on_start(func_id, watched, span, &self.hot);
        }
        if root && self.hot.load(Ordering::Relaxed) > self.watchers.armed.load(Ordering::Relaxed) {
            let start = start();
            for r in self.observers.load().iter() {
                if r.chooses && self.shielded(|| r.observer.new_trace(&start)) == Some(true) {
                    flags |= RECORDED;
                }
            }
        }
        flags
    }

    /// A span of a recorded trace started.
    #[cold]
    pub(crate) fn started(&self, span: &SpanStart) {
        for r in self.observers.load().iter() {
            self.shielded(|| r.observer.start(span));
        }
    }

    /// A span of a recorded trace finished.
    #[cold]
    pub(crate) fn finished(&self, span: &FinishedSpan) {
        for r in self.observers.load().iter() {
            self.shielded(|| r.observer.finish(span));
        }
    }

    /// Runs an observer's hook on the instrumented program's thread, so that a panicking
    /// observer costs a count, not the program's call (or, while the call itself unwinds, an
    /// abort). The other observers still run.
    fn shielded<R>(&self, hook: impl FnOnce() -> R) -> Option<R> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(hook)) {
            Ok(r) => Some(r),
            Err(_) => {
                self.observer_panics.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    pub(crate) fn observer_panics(&self) -> u64 {
        self.observer_panics.load(Ordering::Relaxed)
    }

    pub(crate) fn observe(self: &Arc<Self>, observer: Arc<dyn SpanObserver>) -> ObserverHandle {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let chooses = observer.chooses_traces();
        self.observers.rcu(|list| {
            let mut v: Vec<Registered> = list.to_vec();
            v.push(Registered {
                id,
                observer: observer.clone(),
                chooses,
            });
            v
        });
        if chooses {
            self.hot.fetch_add(1, Ordering::Relaxed);
        }
        ObserverHandle {
            hub: self.clone(),
            id,
        }
    }

    fn unobserve(&self, id: u64) {
        let mut removed_chooser = false;
        self.observers.rcu(|list| {
            removed_chooser = list.iter().any(|r| r.id == id && r.chooses);
            list.iter()
                .filter(|r| r.id != id)
                .cloned()
                .collect::<Vec<_>>()
        });
        if removed_chooser {
            self.hot.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn observers(&self) -> usize {
        self.observers.load().len() - 1
    }

    pub(crate) fn watch(
        self: &Arc<Self>,
        spec: &WatchSpec,
        funcs: Vec<Watchable>,
    ) -> Result<TraceWatcher, WatchError> {
        let entry = self.watchers.arm(spec, funcs, &self.hot)?;
        Ok(TraceWatcher {
            hub: self.clone(),
            entry,
        })
    }

    pub(crate) fn on_new_func(&self, f: Watchable) {
        self.watchers.on_new_func(f)
    }

    pub(crate) fn armed_watchers(&self) -> usize {
        self.watchers.armed.load(Ordering::Relaxed)
    }

    /// The flags a root started under no context gets from sampling.
    #[inline(always)]
    pub(crate) fn root_flags(&self, span_id: u64) -> u8 {
        if self.sample_root(span_id) {
            SAMPLED
        } else {
            0
        }
    }
}

/// A registered observer; [`remove`](ObserverHandle::remove) unregisters it. Dropping the
/// handle leaves the observer registered (removal is explicit).
pub struct ObserverHandle {
    hub: Arc<Hub>,
    id: u64,
}

impl std::fmt::Debug for ObserverHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObserverHandle")
            .field("id", &self.id)
            .finish()
    }
}

impl ObserverHandle {
    /// Unregisters the observer: it sees no span that finishes after this returns.
    pub fn remove(self) {
        self.hub.unobserve(self.id);
    }
}

/// A waiting watcher. Await it, or [`TraceWatcher::wait`]; dropping it cancels the watch.
pub struct TraceWatcher {
    hub: Arc<Hub>,
    entry: Arc<Entry>,
}

impl std::fmt::Debug for TraceWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceWatcher")
            .field("id", &self.entry.id)
            .finish()
    }
}

impl TraceWatcher {
    /// Blocks until the capture is ready or `timeout` passes.
    pub fn wait(&self, timeout: Duration) -> Option<Captured> {
        let deadline = Instant::now() + timeout;
        let shared = &self.entry.shared;
        let mut r = shared.result.lock();
        while r.is_none() {
            if shared.cv.wait_until(&mut r, deadline).timed_out() {
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
        self.hub.watchers.cancel(&self.entry, &self.hub.hot);
    }
}
