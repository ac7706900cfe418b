//! Collecting the spans of a piece of work: a new recorded trace, and a span observer that
//! keeps that trace's spans until the work returns ([`Registry::collect_trace`](crate::Registry::collect_trace)).

use crate::trace::hub::Hub;
use crate::trace::observe::{FinishedSpan, SpanObserver};
use crate::trace::span::{new_trace_id, SpanRef, RANDOM, RECORDED};
use parking_lot::Mutex;
use std::sync::Arc;

/// Keeps the finished spans of one trace.
struct Collector {
    trace_id: u128,
    spans: Mutex<Vec<FinishedSpan>>,
}

impl SpanObserver for Collector {
    fn observes_starts(&self) -> bool {
        false
    }

    fn finish(&self, span: &FinishedSpan) {
        if span.start.trace_id == self.trace_id {
            self.spans.lock().push(span.clone());
        }
    }
}

/// A running collection: removed from the registry's observers when dropped (also when the
/// work panics).
pub(crate) struct Collecting {
    collector: Arc<Collector>,
    handle: Option<crate::trace::hub::ObserverHandle>,
}

impl Collecting {
    /// Starts collecting a new trace of `hub`'s registry: the collection, and the context to
    /// run the work under.
    pub(crate) fn start(hub: &Arc<Hub>) -> (Collecting, SpanRef) {
        let trace_id = new_trace_id();
        let collector = Arc::new(Collector {
            trace_id,
            spans: Mutex::new(Vec::new()),
        });
        let handle = hub.observe(collector.clone());
        let root = SpanRef {
            trace_id,
            span_id: 0,
            func: 0,
            flags: RECORDED | RANDOM,
        };
        (
            Collecting {
                collector,
                handle: Some(handle),
            },
            root,
        )
    }

    /// Ends the collection: the trace's finished spans, sorted by start.
    pub(crate) fn finish(mut self) -> Vec<FinishedSpan> {
        if let Some(h) = self.handle.take() {
            h.remove();
        }
        let mut spans = std::mem::take(&mut *self.collector.spans.lock());
        // Keys are unique, so an unstable sort gives the same order, swapping in place
        // where a stable one would copy these large records about.
        spans.sort_unstable_by_key(|s| (s.start.start_unix_ns, s.start.span_id));
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
