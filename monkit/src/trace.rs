//! Recorded spans: what a finished span looks like to collectors, and how a piece of work's
//! spans are collected.
//!
//! Recording is decided per trace and inherited by every span of it, so unrecorded calls pay
//! one flag test. Recorded spans take a lock when they finish; only traces somebody asked for
//! are recorded.

use crate::clock::Tick;
use crate::func::FuncInner;
use crate::span::{current_raw, enter_ctx, new_trace_id, SpanRef, RECORDED, SAMPLED};
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

/// Most spans one trace keeps while somebody waits for it; past this, spans are dropped (and
/// counted), so a capture whose root never finishes cannot grow without bound.
pub(crate) const MAX_SPANS_PER_TRACE: usize = 100_000;

/// Span and trace ids are random already: hashing them again (SipHash) would only cost time.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }
    fn write_u128(&mut self, v: u128) {
        self.0 ^= (v as u64) ^ ((v >> 64) as u64);
    }
}

type IdMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;

/// The recorded spans of one trace, kept while somebody waits for them.
#[derive(Default)]
struct TraceSink {
    spans: Vec<FinishedSpan>,
    /// `collect_trace` is collecting the whole trace.
    whole: bool,
    /// Capture roots (span id) and who waits for each subtree.
    roots: IdMap<u64, Vec<Arc<crate::watch::Shared>>>,
    dropped: u64,
}

#[derive(Default)]
struct Recorder {
    traces: IdMap<u128, TraceSink>,
    annotations: IdMap<u64, Vec<(String, String)>>,
}

static RECORDER: LazyLock<Mutex<Recorder>> = LazyLock::new(Default::default);

/// Registers span `root` of `trace` as a capture root: its subtree goes to `to` when it ends.
pub(crate) fn start_capture(trace: u128, root: u64, to: Arc<crate::watch::Shared>) {
    RECORDER
        .lock()
        .traces
        .entry(trace)
        .or_default()
        .roots
        .entry(root)
        .or_default()
        .push(to);
}

/// The spans of `all` in the subtree of `root` (root included), sorted by start.
fn subtree(all: &[FinishedSpan], root: u64) -> Vec<FinishedSpan> {
    let mut children: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut at = None;
    for (i, s) in all.iter().enumerate() {
        if s.span_id == root {
            at = Some(i);
        }
        if let Some(p) = s.parent_id {
            children.entry(p).or_default().push(i);
        }
    }
    let mut out = Vec::new();
    let mut todo: Vec<usize> = at.into_iter().collect();
    let mut seen = std::collections::HashSet::new();
    while let Some(i) = todo.pop() {
        if !seen.insert(all[i].span_id) {
            continue;
        }
        out.push(all[i].clone());
        if let Some(c) = children.get(&all[i].span_id) {
            todo.extend(c);
        }
    }
    out.sort_by_key(|s| (s.start_unix_ns, s.span_id));
    out
}

/// Adds a key/value annotation to the current span. Annotations are kept for recorded spans
/// (a captured trace, an exported one); for the rest this is one thread-local read, and
/// `value` is not even formatted.
pub fn annotate(key: &str, value: impl std::fmt::Display) {
    let cur = current_raw();
    if cur.flags & (RECORDED | SAMPLED) == 0 || cur.span_id == 0 {
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
    let finished = FinishedSpan {
        trace_id: span.trace_id,
        span_id: span.span_id,
        parent_id: (parent_id != 0).then_some(parent_id),
        scope: &func.scope,
        name: &func.name,
        start_unix_ns: t0.unix_nanos(),
        finish_unix_ns: t1.unix_nanos(),
        outcome,
        annotations: Vec::new(),
    };
    let mut rec = RECORDER.lock();
    let annotations = if rec.annotations.is_empty() {
        Vec::new()
    } else {
        rec.annotations.remove(&span.span_id).unwrap_or_default()
    };
    if span.flags & RECORDED == 0 {
        drop(rec);
        crate::export::export(FinishedSpan {
            annotations,
            ..finished
        });
        return;
    }
    if span.flags & SAMPLED != 0 {
        crate::export::export(FinishedSpan {
            annotations: annotations.clone(),
            ..finished.clone()
        });
    }
    let Some(sink) = rec.traces.get_mut(&span.trace_id) else {
        return;
    };
    if sink.spans.len() < MAX_SPANS_PER_TRACE {
        sink.spans.push(FinishedSpan {
            annotations,
            ..finished
        });
    } else {
        sink.dropped += 1;
    }
    if let Some(waiting) = sink.roots.remove(&span.span_id) {
        let spans = subtree(&sink.spans, span.span_id);
        if sink.roots.is_empty() && !sink.whole {
            rec.traces.remove(&span.trace_id);
        }
        drop(rec);
        for w in waiting {
            w.deliver(crate::watch::Captured::Trace(spans.clone()));
        }
    }
}

struct Collecting {
    trace_id: u128,
}

impl Collecting {
    fn start() -> (Collecting, SpanRef) {
        let trace_id = new_trace_id();
        RECORDER.lock().traces.entry(trace_id).or_default().whole = true;
        let root = SpanRef {
            trace_id,
            span_id: 0,
            func: 0,
            flags: RECORDED,
        };
        (Collecting { trace_id }, root)
    }

    fn finish(self) -> Vec<FinishedSpan> {
        let mut rec = RECORDER.lock();
        let mut spans = match rec.traces.get_mut(&self.trace_id) {
            Some(t) if t.roots.is_empty() => rec
                .traces
                .remove(&self.trace_id)
                .map(|t| t.spans)
                .unwrap_or_default(),
            Some(t) => {
                t.whole = false;
                t.spans.clone()
            }
            None => Vec::new(),
        };
        drop(rec);
        std::mem::forget(self);
        spans.sort_by_key(|s| (s.start_unix_ns, s.span_id));
        spans
    }
}

impl Drop for Collecting {
    /// Only reached when the work panicked.
    fn drop(&mut self) {
        let mut rec = RECORDER.lock();
        if let Some(t) = rec.traces.get_mut(&self.trace_id) {
            t.whole = false;
            if t.roots.is_empty() {
                rec.traces.remove(&self.trace_id);
            }
        }
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
