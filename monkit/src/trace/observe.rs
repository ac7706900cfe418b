//! Span observers: what a span looks like when it starts and when it finishes, and the trait
//! through which watchers, `collect_trace`, exporters and user code see them.
//!
//! Observers see the spans of *recorded* traces: traces sampled for export (by the sampler, an
//! incoming sampled flag or `/trace/sample`), traces somebody captures (a watcher,
//! [`collect_trace`](crate::collect_trace)), and traces an observer chose itself through
//! [`SpanObserver::new_trace`]. Every other call pays one flag test and is never seen here, so
//! an observer costs nothing until it asks for something.

use crate::stats::outcome::Outcome;
use crate::stats::series::Tags;

/// A span that has just started, as observers see it.
#[derive(Clone, Copy, Debug)]
pub struct SpanStart {
    /// Trace the span belongs to.
    pub trace_id: u128,
    /// The span's id.
    pub span_id: u64,
    /// The parent span's id (local or remote), or `None` for a root.
    pub parent_id: Option<u64>,
    /// Scope of the span's function.
    pub scope: &'static str,
    /// Name of the span's function within its scope.
    pub name: &'static str,
    /// The function's own tags (empty for most functions).
    pub tags: &'static Tags,
    /// Start, in nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    /// Whether the trace is sampled for export.
    pub sampled: bool,
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
    /// The function's own tags (empty for most functions).
    pub tags: &'static Tags,
    /// Start, in nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    /// Finish, in nanoseconds since the Unix epoch.
    pub finish_unix_ns: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// Annotations made with [`annotate`](crate::trace::annotate) while it was current, in order.
    pub annotations: Vec<(String, String)>,
    /// Whether the trace is sampled for export (exporters send only these).
    pub sampled: bool,
}

impl FinishedSpan {
    /// `scope.name`, and `{k=v,...}` for a tagged function (as [`Func::full_name`](crate::Func::full_name)).
    pub fn full_name(&self) -> String {
        crate::stats::series::full_name(self.scope, self.name, self.tags)
    }
}

/// Sees spans start and finish. Register any number on a registry with
/// [`Registry::observe`](crate::Registry::observe); each gets every span of every recorded
/// trace of that registry's functions, on the thread that ran the span, so both hooks must
/// return at once (queue, don't send). A hook that panics is caught there and counted
/// ([`Registry::observer_panics`](crate::Registry::observer_panics)); the program's call goes on.
///
/// ```
/// use std::sync::{Arc, Mutex};
///
/// #[derive(Default)]
/// struct Names(Mutex<Vec<String>>);
///
/// impl monkit::SpanObserver for Names {
///     fn finish(&self, span: &monkit::FinishedSpan) {
///         self.0.lock().unwrap().push(span.full_name());
///     }
/// }
///
/// #[monkit::task]
/// fn step() {}
///
/// let names = Arc::new(Names::default());
/// let handle = monkit::default_registry().observe(names.clone());
/// monkit::collect_trace(step);
/// handle.remove();
/// assert!(names.0.lock().unwrap().iter().any(|n| n.ends_with("step")));
/// ```
pub trait SpanObserver: Send + Sync + 'static {
    /// Whether [`new_trace`](SpanObserver::new_trace) should be asked at every new trace.
    /// Read once, when the observer is registered; `false` by default, which keeps new traces
    /// free of any observer cost.
    fn chooses_traces(&self) -> bool {
        false
    }

    /// A trace starts (a span with no local parent). Return `true` to record every span of
    /// it, sampled or not. Only asked when [`chooses_traces`](SpanObserver::chooses_traces)
    /// is `true`.
    fn new_trace(&self, _root: &SpanStart) -> bool {
        false
    }

    /// A span of a recorded trace starts.
    fn start(&self, _span: &SpanStart) {}

    /// A span of a recorded trace finishes.
    fn finish(&self, span: &FinishedSpan);
}
