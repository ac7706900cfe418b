//! Spans and who sees them: span identity and the current-span context, annotations, trace
//! values, the observer trait and what it is shown, a registry's span side (sampler,
//! observers, watchers), and propagation over carriers.
//!
//! Uses: `util`, `stats`.

pub(crate) mod annotate;
pub(crate) mod collect;
pub(crate) mod hub;
pub(crate) mod observe;
pub(crate) mod observers;
pub mod propagation;
pub(crate) mod sampler;
pub(crate) mod span;
pub(crate) mod values;
pub(crate) mod watch;
