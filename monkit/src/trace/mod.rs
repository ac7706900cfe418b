//! Spans and who sees them: span identity and the current-span context, annotations, trace
//! values, the observer trait and what it is shown, a registry's span side (sampler,
//! observers, watchers), and propagation over carriers.
//!
//! Uses: `util`, `stats`.

#[cfg(feature = "ambient-parent")]
pub(crate) mod ambient;
pub(crate) mod annotate;
pub(crate) mod collect;
pub(crate) mod hub;
pub mod logs;
pub(crate) mod observe;
pub(crate) mod observers;
pub mod propagation;
pub(crate) mod sampler;
pub(crate) mod span;
pub(crate) mod values;
pub(crate) mod watch;

#[cfg(feature = "ambient-parent")]
pub use ambient::{clear_ambient_parent, set_ambient_parent};
pub use annotate::{
    annotate, dropped as annotations_dropped, event, event_with, events_dropped,
    held as annotated_spans, MAX_EVENTS, MAX_EVENT_ATTRIBUTES, MAX_KEY as MAX_NOTE_KEY, MAX_NOTES,
    MAX_VALUE as MAX_NOTE_VALUE,
};
pub use hub::{ObserverHandle, TraceWatcher};
pub use observe::{
    FinishedSpan, SpanEvent, SpanObserver, SpanPolls, SpanStart, MAX_ERROR_TEXT, MAX_POLL_SEGMENTS,
};
pub use sampler::Sampler;
pub use span::{current_span, InSpan, InSpanExt, SpanRef};
pub use values::{
    contexts_dropped, trace_get, trace_get_any, trace_set, trace_set_any, trace_values,
    MAX_TRACE_CONTEXTS, MAX_TRACE_VALUES,
};
pub use watch::{Captured, Condition, OutcomeMatch, SpanPredicate, WatchError, WatchSpec};
