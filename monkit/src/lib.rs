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
//! bound; [`set_exact_highwater`](stats::set_exact_highwater) trades that scaling for an exact one.
//!
//! # Map
//! The source folders are the architecture, each using only those above it:
//!
//! | folder | holds | public as |
//! |---|---|---|
//! | `util/` | plumbing that knows nothing of monkit: clock, slots, shards, the settings reader | [`settings`] |
//! | `stats/` | the numbers a call or a source writes: running counts, histograms, distributions, meters, counters, values, readings, tags | [`stats`] |
//! | `trace/` | spans and who sees them: ids and context, annotations, trace values, observers, sampler, watchers, propagation | [`trace`] |
//! | `call/` | the hot path: a function's record, one call from begin to end, the `#[task]` shells, the `/ps` slots | through [`registry`] |
//! | `registry/` | the model: registries, scopes, caps, `#[task]` sites and the default registry, process tags, the walk | [`registry`] |
//! | `render/` | the read side: the field table, formatting, every format | [`render`] |
//!
//! and add-ons over all of them: [`env`](mod@env) (process stats), [`export`] (what exporters need),
//! `bridge` (the `tracing` layer, feature `tracing`). A call's whole life is in
//! `call/lifecycle.rs`: ids, context, sampling, watchers, `/ps`, the stats update and the
//! hand-off of recorded spans to [`SpanObserver`]s. Renderers read through one walk
//! ([`Registry::read`], [`Registry::stats`]) and one list of a function's fields
//! ([`FuncStats::fields`](registry::FuncStats::fields)).
//!
//! # Recent window
//! Quantiles (`rmin r10 r50 r90 r99 rmax ravg`) cover the last one to two epochs of
//! [`recent_window`](stats::recent_window) (default 2^35 ns ≈ 34 s, so 34–69 s); count, sum, min and max are
//! cumulative and exact.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

// The layers, in dependency order: each uses only those before it (`layering.rs` checks).
// `util` and `call` are the crate's own; the others are public modules of chosen names.
// A blank line between each keeps rustfmt from sorting them.
mod util; // plumbing

pub mod stats; // the numbers

pub mod trace; // spans and who sees them

mod call; // the hot path

pub mod registry; // the model

#[cfg(feature = "render")]
pub mod render; // the read side

// Add-ons over everything.
#[cfg(any(feature = "tracing", feature = "log"))]
pub mod bridge;
pub mod env;
pub mod export;
pub mod slo;
pub use trace::propagation;

#[cfg(test)]
mod layering;
#[cfg(all(test, loom))]
mod loom_tests;

// What a user touches daily; the rest is in `stats`, `trace` and `registry`.
pub use call::flight;
pub use call::polls;
pub use registry::{
    collect_trace, collect_trace_async, default_registry, Func, FuncGuard, OpenCall, Registry,
    Scope,
};
pub use stats::{ErrorKind, Outcome, TimerGuard};
pub use trace::{annotate, current_span, FinishedSpan, SpanObserver, SpanRef, SpanStart};
pub use util::settings;

/// The names most code wants, in one glob: `use monkit::prelude::*;`.
///
/// ```
/// use monkit::prelude::*;
///
/// static MON: Scope = scope!();
///
/// #[task]
/// async fn work() -> u32 { 2 }
///
/// let parent = current_span();
/// let _fut = work().in_span_opt(parent);
/// MON.meter("hits").mark(1);
/// ```
pub mod prelude {
    pub use crate::scope;
    pub use crate::task;
    pub use crate::trace::InSpanExt;
    pub use crate::{annotate, current_span, default_registry, ErrorKind, Scope};
}

/// Instruments a function: see the crate documentation.
///
/// `#[monkit::task]` works on sync and async functions and methods; `#[monkit::task(name =
/// "custom")]` overrides the name. A `Result` return counts `Err` as an error of the kind
/// [`ErrorKind`] names (or the error's type name); a panic is counted and goes on unwinding;
/// a future dropped before it completes counts as `canceled`.
///
/// An async call begins at its future's first poll and ends when the future completes. Inside
/// an `#[async_trait]` impl (tonic's included) the method's boxed future is the call, as it is
/// for any `fn` that ends by returning its future (`async move { .. }` under `-> impl Future`,
/// or `Box::pin(async move { .. })`), the statements before it running when it is called. An
/// `async fn` with no lifetime, reference, receiver or `Self` in its signature becomes a `fn`
/// returning `impl Future` (one generator fewer a poll), its arguments moved into the future
/// as an `async fn` moves them.
///
/// ```
/// #[async_trait::async_trait]
/// trait Store {
///     async fn get(&self, key: u64) -> Result<u64, std::io::Error>;
/// }
///
/// struct Memory;
///
/// #[async_trait::async_trait]
/// impl Store for Memory {
///     #[monkit::task] // timed to the end of the boxed future, `Err` counted by its kind
///     async fn get(&self, key: u64) -> Result<u64, std::io::Error> {
///         Ok(key)
///     }
/// }
/// ```
pub use monkit_macros::task;

#[doc(hidden)]
pub mod __private {
    pub use crate::call::task::{
        no_text, Classify, Describe, TaskFuture, TaskGuard, ViaAny, ViaDisplay, ViaDynError,
        ViaErrorKind, ViaNoText, ViaStdError, ViaTypeName,
    };
    pub use crate::registry::site::{FuncSite, SiteRef};
    pub use crate::stats::outcome::Outcome;
    pub use crate::trace::annotate::record_args;
    pub use inventory;
}
