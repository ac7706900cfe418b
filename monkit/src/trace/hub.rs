//! A registry's span side: its sampler, its observers and its trace watchers, and the one
//! count (`hot`) a span start reads to know whether any of them needs a look. The handles
//! here ([`ObserverHandle`], [`TraceWatcher`]) undo what they armed when removed or dropped.

use crate::trace::observe::{FinishedSpan, SpanObserver, SpanStart};
use crate::trace::observers::Observers;
use crate::trace::sampler::{RootSampler, Sampler};
use crate::trace::span::{SpanRef, RECORDED};
use crate::trace::watch::{Captured, Entry, WatchError, WatchSpec, Watchable, Watchers};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

pub(crate) struct Hub {
    /// Armed watchers plus observers that choose traces: when zero (nearly always), a span
    /// start looks no further than its parent's flags.
    pub(crate) hot: AtomicUsize,
    pub(crate) sampler: RootSampler,
    observers: Observers,
    pub(crate) watchers: Arc<Watchers>,
    /// Whether recorded spans keep their error's text.
    pub(crate) error_text: AtomicBool,
}

impl Default for Hub {
    fn default() -> Self {
        let watchers = Arc::new(Watchers::default());
        Hub {
            hot: AtomicUsize::new(0),
            sampler: RootSampler::default(),
            observers: Observers::with(watchers.clone()),
            watchers,
            error_text: AtomicBool::new(true),
        }
    }
}

impl Hub {
    pub(crate) fn set_sampler(&self, s: Sampler) {
        self.sampler.set(s)
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
    ) -> crate::trace::span::Flags {
        let mut flags = 0;
        let armed = self.watchers.armed.load(Ordering::Relaxed);
        if armed > 0 {
            flags |= self.watchers.on_start(func_id, watched, span, &self.hot);
        }
        if root && self.hot.load(Ordering::Relaxed) > armed && self.observers.chosen(&start()) {
            flags |= RECORDED;
        }
        flags
    }

    /// Whether some observer wants span starts (else [`Hub::started`] need not be called).
    pub(crate) fn want_starts(&self) -> bool {
        self.observers.want_starts()
    }

    /// A span of a recorded trace started.
    #[cold]
    pub(crate) fn started(&self, span: &SpanStart) {
        self.observers.started(span)
    }

    /// A span of a recorded trace finished.
    #[cold]
    pub(crate) fn finished(&self, span: &FinishedSpan) {
        self.observers.finished(span)
    }

    pub(crate) fn observer_panics(&self) -> u64 {
        self.observers.panics()
    }

    pub(crate) fn observers(&self) -> usize {
        self.observers.count()
    }

    pub(crate) fn observe(self: &Arc<Self>, observer: Arc<dyn SpanObserver>) -> ObserverHandle {
        let (id, chooses) = self.observers.add(observer);
        if chooses {
            self.hot.fetch_add(1, Ordering::Relaxed);
        }
        ObserverHandle {
            hub: self.clone(),
            id,
        }
    }

    fn unobserve(&self, id: u64) {
        if self.observers.remove(id) {
            self.hot.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Arms a watcher; `flight` when the flight recorder serves it (see [`Watchers::arm`]).
    pub(crate) fn watch(
        self: &Arc<Self>,
        spec: &WatchSpec,
        funcs: Vec<Watchable>,
        flight: bool,
    ) -> Result<TraceWatcher, WatchError> {
        let entry = self.watchers.arm(spec, funcs, &self.hot, flight)?;
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
            + self.watchers.flight_armed.load(Ordering::Relaxed)
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
#[must_use = "dropping a TraceWatcher cancels the watch"]
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
    /// The functions it watches (ids), and whether the flight recorder serves it.
    pub(crate) fn funcs(&self) -> Vec<u32> {
        self.entry.func_ids()
    }

    /// Hands it `spans` at once, unless it got a call already.
    pub(crate) fn deliver_now(&self, spans: Vec<crate::trace::observe::FinishedSpan>) -> bool {
        self.hub.watchers.deliver_now(&self.entry, spans)
    }

    /// Blocks until the capture is ready or `timeout` passes.
    pub fn wait(&self, timeout: Duration) -> Option<Captured> {
        self.entry.wait(timeout)
    }
}

impl Future for TraceWatcher {
    type Output = Captured;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Captured> {
        self.entry.poll(cx)
    }
}

impl Drop for TraceWatcher {
    fn drop(&mut self) {
        self.hub.watchers.cancel(&self.entry, &self.hub.hot);
    }
}
