//! Collecting the spans of a piece of work: a new recorded trace, and a span observer that
//! keeps that trace's spans until the work returns.

use crate::observe::{FinishedSpan, SpanObserver};
use crate::registry::Registry;
use crate::site::default_registry;
use crate::span::{enter_ctx, new_trace_id, FutureExt, SpanRef, RECORDED};
use parking_lot::Mutex;
use std::future::Future;
use std::sync::Arc;

/// Keeps the finished spans of one trace.
struct Collector {
    trace_id: u128,
    spans: Mutex<Vec<FinishedSpan>>,
}

impl SpanObserver for Collector {
    fn finish(&self, span: &FinishedSpan) {
        if span.trace_id == self.trace_id {
            self.spans.lock().push(span.clone());
        }
    }
}

/// A running collection: removed from the registry's observers when dropped (also when the
/// work panics).
struct Collecting {
    collector: Arc<Collector>,
    handle: Option<crate::hub::ObserverHandle>,
}

impl Collecting {
    fn start(registry: &Registry) -> (Collecting, SpanRef) {
        let trace_id = new_trace_id();
        let collector = Arc::new(Collector {
            trace_id,
            spans: Mutex::new(Vec::new()),
        });
        let handle = registry.observe(collector.clone());
        let root = SpanRef {
            trace_id,
            span_id: 0,
            func: 0,
            flags: RECORDED,
        };
        (
            Collecting {
                collector,
                handle: Some(handle),
            },
            root,
        )
    }

    fn finish(mut self) -> Vec<FinishedSpan> {
        if let Some(h) = self.handle.take() {
            h.remove();
        }
        let mut spans = std::mem::take(&mut *self.collector.spans.lock());
        // Keys are unique, so an unstable sort gives the same order, swapping in place
        // where a stable one would copy these large records about.
        spans.sort_unstable_by_key(|s| (s.start_unix_ns, s.span_id));
        spans
    }
}

impl Drop for Collecting {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.remove();
        }
    }
}

impl Registry {
    /// Runs `work` as a new trace and returns its result with every span of this registry's
    /// functions it finished (sorted by start), including spans of threads and tasks it
    /// parented explicitly that finished in time.
    pub fn collect_trace<R>(&self, work: impl FnOnce() -> R) -> (R, Vec<FinishedSpan>) {
        let (c, root) = Collecting::start(self);
        let r = {
            let _ctx = enter_ctx(Some(root));
            work()
        };
        (r, c.finish())
    }

    /// The async twin of [`Registry::collect_trace`].
    pub async fn collect_trace_async<F: Future>(&self, work: F) -> (F::Output, Vec<FinishedSpan>) {
        let (c, root) = Collecting::start(self);
        let r = work.in_span(root).await;
        (r, c.finish())
    }
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
/// assert_eq!(spans[1].parent_id, Some(spans[0].span_id));
/// ```
pub fn collect_trace<R>(work: impl FnOnce() -> R) -> (R, Vec<FinishedSpan>) {
    default_registry().collect_trace(work)
}

/// The async twin of [`collect_trace`]: awaits `work` as a new trace and returns its output
/// with every span it finished.
pub async fn collect_trace_async<F: Future>(work: F) -> (F::Output, Vec<FinishedSpan>) {
    default_registry().collect_trace_async(work).await
}
