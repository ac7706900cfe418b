//! Span observers: what a span looks like when it starts and when it finishes, and the trait
//! through which watchers, `collect_trace`, exporters and user code see them.
//!
//! Observers see the spans of *recorded* traces: traces sampled for export (by the sampler, an
//! incoming sampled flag or `/trace/sample`), traces somebody captures (a watcher,
//! [`collect_trace`](crate::collect_trace)), and traces an observer chose itself through
//! [`SpanObserver::new_trace`]. Every other call pays one flag test and is never seen here, so
//! an observer costs nothing until it asks for something.

use crate::stats::outcome::Outcome;
use crate::stats::series::{FuncName, Tags};

/// A span that has just started, as observers see it.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct SpanStart {
    /// Trace the span belongs to.
    pub trace_id: u128,
    /// The span's id.
    pub span_id: u64,
    /// The parent span's id (local or remote), or `None` for a root.
    pub parent_id: Option<u64>,
    /// The names of the span's function, held by the function for the process's life.
    pub func: &'static FuncName,
    /// Start, in nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    /// Whether the trace is sampled for export (exporters send only these).
    pub sampled: bool,
}

impl SpanStart {
    /// A span start, for code that makes spans of its own (tests of an exporter, a bridge).
    pub fn new(
        trace_id: u128,
        span_id: u64,
        parent_id: Option<u64>,
        func: &'static FuncName,
        start_unix_ns: u64,
        sampled: bool,
    ) -> SpanStart {
        SpanStart {
            trace_id,
            span_id,
            parent_id,
            func,
            start_unix_ns,
            sampled,
        }
    }

    /// Scope of the span's function.
    pub fn scope(&self) -> &'static str {
        self.func.scope()
    }

    /// Name of the span's function within its scope.
    pub fn name(&self) -> &'static str {
        self.func.name()
    }

    /// The function's own tags (empty for most functions).
    pub fn tags(&self) -> &'static Tags {
        self.func.tags()
    }

    /// `scope.name`, and `{k=v,...}` for a tagged function (as [`Func::full_name`](crate::Func::full_name)).
    pub fn full_name(&self) -> &'static str {
        self.func.full_name()
    }
}

/// A finished, recorded span: how it started, and how it ended.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FinishedSpan {
    /// Ids, function, start and sampling, as the span started.
    pub start: SpanStart,
    /// Finish, in nanoseconds since the Unix epoch.
    pub finish_unix_ns: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// Annotations made with [`annotate`](crate::annotate) while it was current, in order.
    pub annotations: Vec<(String, String)>,
    /// What the error said (its `Display`), for a call that returned one: at most
    /// [`MAX_ERROR_TEXT`] bytes, cut on a character boundary. Made only for recorded spans, and
    /// not at all once [`Registry::set_error_text`](crate::Registry::set_error_text) is off.
    pub error: Option<String>,
    /// Events and polls, when it has any ([`FinishedSpan::events`],
    /// [`FinishedSpan::polls`]): behind one shared pointer, so a span with neither carries
    /// and copies one word for them, and an exporter's copy of one with them shares them.
    pub(crate) extras: Option<std::sync::Arc<Extras>>,
}

/// What few spans have: events, an async call's polls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Extras {
    pub(crate) events: Vec<SpanEvent>,
    pub(crate) polls: Option<SpanPolls>,
}

/// A timestamped event of a span.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpanEvent {
    /// When, in nanoseconds since the Unix epoch.
    pub time_unix_ns: u64,
    /// What happened.
    pub name: String,
    /// Its attributes, in order.
    pub attributes: Vec<(String, String)>,
}

impl SpanEvent {
    /// An event, for code that makes spans of its own.
    pub fn new(time_unix_ns: u64, name: &str, attributes: Vec<(String, String)>) -> SpanEvent {
        SpanEvent {
            time_unix_ns,
            name: name.to_owned(),
            attributes,
        }
    }
}

/// Longest list of poll segments a span keeps (the first polls and the last): the others
/// still count in [`SpanPolls::count`] and [`SpanPolls::busy_ns`].
pub const MAX_POLL_SEGMENTS: usize = 256;

/// The polls of a recorded async span.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpanPolls {
    /// How many times the call was polled.
    pub count: u32,
    /// Its polls' durations together, in nanoseconds: the time it ran. The rest of the span
    /// it was waiting.
    pub busy_ns: u64,
    /// Its polls as `(offset from the span's start, length)`, in nanoseconds, in order: all of
    /// them, or past [`MAX_POLL_SEGMENTS`] the first ones and the last.
    pub segments: Vec<(u64, u64)>,
    /// The slow polls among them: longer than `slow_ns` for the call's own work (a poll that
    /// only contains an inner future's slow poll is that function's slow poll, not this one's).
    pub slow: Vec<(u64, u64)>,
    /// The slow-poll threshold when the span ended, in nanoseconds.
    pub slow_ns: u64,
}

/// Longest error text a span keeps, in bytes.
pub const MAX_ERROR_TEXT: usize = 256;

impl FinishedSpan {
    /// A finished span, for code that makes spans of its own.
    pub fn new(
        start: SpanStart,
        finish_unix_ns: u64,
        outcome: Outcome,
        annotations: Vec<(String, String)>,
    ) -> FinishedSpan {
        FinishedSpan {
            start,
            finish_unix_ns,
            outcome,
            annotations,
            error: None,
            extras: None,
        }
    }

    /// Timestamped events made while it was current ([`event`](crate::trace::event), log
    /// records through the bridges, slow polls), in time order.
    pub fn events(&self) -> &[SpanEvent] {
        self.extras.as_ref().map_or(&[], |x| &x.events)
    }

    /// An async call's polls: when it ran and when it waited. `None` for sync calls.
    pub fn polls(&self) -> Option<&SpanPolls> {
        self.extras.as_ref()?.polls.as_ref()
    }

    /// The same span with `events` (for code that makes spans of its own).
    pub fn with_events(mut self, events: Vec<SpanEvent>) -> FinishedSpan {
        let polls = self.polls().cloned();
        self.extras = Some(std::sync::Arc::new(Extras { events, polls }));
        self
    }

    /// The same span with the error's text (cut to [`MAX_ERROR_TEXT`] bytes).
    pub fn with_error(mut self, text: &str) -> FinishedSpan {
        self.error = Some(crate::trace::annotate::display_within(
            &text,
            MAX_ERROR_TEXT,
        ));
        self
    }

    /// Nanoseconds from start to finish.
    pub fn duration_ns(&self) -> u64 {
        self.finish_unix_ns.saturating_sub(self.start.start_unix_ns)
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
///         self.0.lock().unwrap().push(span.start.full_name().to_owned());
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

    /// Whether [`start`](SpanObserver::start) should be called. Read once, when the observer
    /// is registered; `true` by default. An observer that only needs finished spans (an
    /// exporter) says `false`, and while no observer wants starts, a starting span costs the
    /// instrumented thread no look at the observers.
    fn observes_starts(&self) -> bool {
        true
    }

    /// A span of a recorded trace starts.
    fn start(&self, _span: &SpanStart) {}

    /// A span of a recorded trace finishes.
    fn finish(&self, span: &FinishedSpan);
}
