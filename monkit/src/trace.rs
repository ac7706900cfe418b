//! Recorded spans: what a finished span looks like to collectors, and how a piece of work's
//! spans are collected.
//!
//! Recording is decided per trace and inherited by every span of it, so unrecorded calls pay
//! one flag test. Recorded spans take a lock when they finish; only traces somebody asked for
//! are recorded.

use crate::clock::Tick;
use crate::func::FuncInner;
use crate::span::{current_raw, enter_ctx, new_trace_id, SpanRef, RECORDED};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, LazyLock};

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Returned successfully.
    Ok,
    /// Returned an error of this kind.
    Error(&'static str),
    /// Panicked (the panic continued to unwind).
    Panic,
    /// A future dropped before it completed.
    Canceled,
}

impl Outcome {
    /// Whether the call failed (error, panic or cancellation).
    pub fn is_failure(&self) -> bool {
        !matches!(self, Outcome::Ok)
    }
}

/// A finished, recorded span.
#[derive(Clone, Debug)]
pub struct FinishedSpan {
    /// Trace the span belongs to.
    pub trace_id: u128,
    /// The span's id.
    pub span_id: u64,
    /// The parent span's id, or `None` for a root.
    pub parent_id: Option<u64>,
    /// Scope of the span's function.
    pub scope: &'static str,
    /// Name of the span's function within its scope.
    pub name: &'static str,
    /// Start, in nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    /// Finish, in nanoseconds since the Unix epoch.
    pub finish_unix_ns: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// Annotations made with [`annotate`] while it was current, in order.
    pub annotations: Vec<(String, String)>,
}

impl FinishedSpan {
    /// `scope.name`.
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.scope, self.name)
    }
}

type Sink = Arc<Mutex<Vec<FinishedSpan>>>;

#[derive(Default)]
struct Recorder {
    sinks: HashMap<u128, Sink>,
    annotations: HashMap<u64, Vec<(String, String)>>,
}

static RECORDER: LazyLock<Mutex<Recorder>> = LazyLock::new(Default::default);

/// Adds a key/value annotation to the current span. Annotations are kept for recorded spans
/// (a captured trace, an exported one); for the rest this is one thread-local read, and
/// `value` is not even formatted.
pub fn annotate(key: &str, value: impl std::fmt::Display) {
    let cur = current_raw();
    if cur.flags & RECORDED == 0 || cur.span_id == 0 {
        return;
    }
    RECORDER
        .lock()
        .annotations
        .entry(cur.span_id)
        .or_default()
        .push((key.to_owned(), value.to_string()));
}

/// Hands a finished recorded span to whoever collects its trace.
#[cold]
pub(crate) fn finish_recorded(
    func: &'static FuncInner,
    span: SpanRef,
    parent_id: u64,
    t0: Tick,
    t1: Tick,
    outcome: Outcome,
) {
    let mut rec = RECORDER.lock();
    let annotations = rec.annotations.remove(&span.span_id).unwrap_or_default();
    let Some(sink) = rec.sinks.get(&span.trace_id).cloned() else {
        return;
    };
    drop(rec);
    sink.lock().push(FinishedSpan {
        trace_id: span.trace_id,
        span_id: span.span_id,
        parent_id: (parent_id != 0).then_some(parent_id),
        scope: &func.scope,
        name: &func.name,
        start_unix_ns: t0.unix_nanos(),
        finish_unix_ns: t1.unix_nanos(),
        outcome,
        annotations,
    });
}

struct Collecting {
    trace_id: u128,
    sink: Sink,
}

impl Collecting {
    fn start() -> (Collecting, SpanRef) {
        let trace_id = new_trace_id();
        let sink = Sink::default();
        RECORDER.lock().sinks.insert(trace_id, sink.clone());
        let root = SpanRef {
            trace_id,
            span_id: 0,
            func: 0,
            flags: RECORDED,
        };
        (Collecting { trace_id, sink }, root)
    }

    fn finish(self) -> Vec<FinishedSpan> {
        RECORDER.lock().sinks.remove(&self.trace_id);
        let mut spans = std::mem::take(&mut *self.sink.lock());
        spans.sort_by_key(|s| (s.start_unix_ns, s.span_id));
        spans
    }
}

impl Drop for Collecting {
    fn drop(&mut self) {
        RECORDER.lock().sinks.remove(&self.trace_id);
    }
}

/// Runs `work` as a new trace and returns its result with every span it finished (sorted by
/// start), including spans of threads and tasks it parented explicitly that finished in time.
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
    let (c, root) = Collecting::start();
    let r = {
        let _ctx = enter_ctx(Some(root));
        work()
    };
    (r, c.finish())
}

/// The async twin of [`collect_trace`]: awaits `work` as a new trace and returns its output
/// with every span it finished.
pub async fn collect_trace_async<F: Future>(work: F) -> (F::Output, Vec<FinishedSpan>) {
    use crate::span::FutureExt;
    let (c, root) = Collecting::start();
    let r = work.in_span(root).await;
    (r, c.finish())
}
