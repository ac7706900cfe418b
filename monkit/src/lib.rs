//! Function instrumentation and in-process tracing, in the spirit of Go's `monkit`.
//!
//! Put `#[monkit::task]` on a function (sync or async, free or method) and the process knows,
//! for every such function: calls running now and at most (highwater), successes, errors by
//! kind, panics, latency distributions of successes and failures, and who called whom. Every
//! annotated function registers itself at link time, so it is listed before its first call.
//!
//! ```
//! #[derive(Debug)]
//! enum DbError { NotFound }
//! impl monkit::ErrorKind for DbError {
//!     fn error_kind(&self) -> &'static str { "not_found" }
//! }
//!
//! #[monkit::task]
//! fn lookup(id: u64) -> Result<u64, DbError> {
//!     if id == 0 { Err(DbError::NotFound) } else { Ok(id * 2) }
//! }
//!
//! static MON: monkit::Scope = monkit::scope!();
//!
//! let _ = lookup(0);
//! let _ = lookup(7);
//! MON.meter("requests").mark(2);
//!
//! let funcs = monkit::default_registry().funcs();
//! let f = funcs.iter().find(|f| f.name().ends_with("lookup")).unwrap();
//! let s = f.stats();
//! assert_eq!((s.successes, s.errors_total), (1, 1));
//! assert_eq!(s.errors, vec![("not_found", 1)]);
//! print!("{}", monkit::render::text::stats(monkit::default_registry()));
//! ```
//!
//! # Cost
//! A call reads the clock twice and updates a handful of atomics, almost all on a cache line
//! of the calling thread's own shard; it takes no lock and allocates nothing in steady state.
//! Even the running count is kept per thread, so a highwater read across threads is an upper
//! bound; [`set_exact_highwater`] trades that scaling for an exact one.
//!
//! # Shape
//! A call's whole life is in one module (`call`): ids, context, sampling, watchers, `/ps`, the
//! stats update and the hand-off of recorded spans to [`SpanObserver`]s, any number of which a
//! [`Registry`] holds beside its trace watchers. A registry owns its scopes, sources, refusals,
//! sampler, observers and watchers; `#[monkit::task]` functions always live in
//! [`default_registry`]. Renderers read through one walk ([`Registry::read`],
//! [`Registry::stats`]) and one list of a function's fields ([`FUNC_FIELDS`]).
//!
//! # Recent window
//! Quantiles (`rmin r10 r50 r90 r99 rmax ravg`) cover the last one to two epochs of
//! [`recent_window`] (default 2^35 ns ≈ 34 s, so 34–69 s); count, sum, min and max are
//! cumulative and exact.
#![warn(missing_docs)]

// The data model and the hot path, leaves first: each module uses only modules above it.
mod annotate;
#[cfg(feature = "tracing")]
pub mod bridge;
mod call;
mod clock;
mod collect;
mod counter;
mod dist;
pub mod env;
mod error;
pub mod export;
mod func;
mod hist;
mod hub;
mod live;
mod meter;
mod observe;
mod process_tags;
pub mod propagation;
mod raw;
mod reading;
mod registry;
mod running;
mod scope;
mod series;
mod settings;
mod shard;
mod site;
mod slot;
mod source;
mod span;
mod sync;
mod task;
mod trace_values;
mod val;
mod watch;
// The read side: one walk over a registry, and the renderers built on it.
#[cfg(test)]
mod layering;
#[cfg(all(test, loom))]
mod loom_tests;
pub mod render;
mod walk;

pub use annotate::{
    annotate, dropped as annotations_dropped, held as annotated_spans, MAX_KEY as MAX_NOTE_KEY,
    MAX_NOTES, MAX_VALUE as MAX_NOTE_VALUE,
};
pub use clock::Tick;
pub use collect::{collect_trace, collect_trace_async};
pub use counter::Counter;
pub use dist::{recent_window, recent_window_span, set_recent_window, Histogram, Snapshot};
pub use error::{type_kind, ErrorKind};
pub use func::{Func, FuncStats, Location};
pub use hub::{ObserverHandle, Sampler, TraceWatcher};
pub use live::{running_spans, LiveSpan};
pub use meter::Meter;
pub use observe::{FinishedSpan, Outcome, SpanObserver, SpanStart};
pub use process_tags::{process_tags, set_process_tags, AlreadySet};
pub use raw::{Aggregate, RawVal};
pub use reading::{FieldKind, FuncField, Reading, FUNC_FIELDS};
pub use registry::{Registry, Transformer, MAX_FUNCS, MAX_TAG_SETS};
pub use running::set_exact_highwater;
pub use scope::Scope;
pub use series::{SeriesKey, Tags};
pub use settings::EnvError;
pub use site::default_registry;
pub use source::{Chain, DeltaTransform, DiffMeter, StatSource};
pub use span::{current_span, FutureExt, InSpan, SpanRef};
pub use task::FuncGuard;
pub use trace_values::{trace_get, trace_set, trace_values, MAX_TRACE_VALUES};
pub use val::{BoolVal, DurationVal, FloatVal, IntVal, Timer, TimerGuard};
pub use walk::Item;
pub use watch::{Captured, WatchError, WatchSpec};

/// Number of the default registry's watchers waiting for a match right now.
pub fn armed_watchers() -> usize {
    default_registry().armed_watchers()
}

/// Instruments a function: see the crate documentation.
///
/// `#[monkit::task]` works on sync and async functions and methods; `#[monkit::task(name =
/// "custom")]` overrides the name. A `Result` return counts `Err` as an error of the kind
/// [`ErrorKind`] names (or the error's type name); a panic is counted and goes on unwinding;
/// a future dropped before it completes counts as `canceled`.
pub use monkit_macros::task;

#[doc(hidden)]
pub mod __private {
    pub use crate::annotate::record_args;
    pub use crate::observe::Outcome;
    pub use crate::site::{FuncSite, SiteRef};
    pub use crate::task::{Classify, TaskFuture, TaskGuard, ViaAny, ViaErrorKind, ViaTypeName};
    pub use inventory;
}
