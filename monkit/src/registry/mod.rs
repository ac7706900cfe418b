//! The model: what exists and under which names. A registry and its scopes, the functions and
//! sources they hold under cardinality caps, the link-time sites of `#[task]` functions and
//! the default registry they live in, process tags, and the one walk that reads it all.
//!
//! Uses: `util`, `stats`, `trace`, `call`.

pub(crate) mod caps;
pub(crate) mod process_tags;
#[allow(clippy::module_inception)]
pub(crate) mod registry;
pub(crate) mod scope;
pub(crate) mod site;
pub(crate) mod walk;

pub use crate::call::func::{Func, FuncGuard, FuncStats, Location};
pub use crate::call::live::{all_running_spans, annotate_span, LiveSpan};
pub use crate::call::open::OpenCall;
pub use caps::{MAX_FUNCS, MAX_TAG_SETS};
pub use process_tags::{process_tags, set_process_tags, AlreadySet};
pub use registry::{
    armed_watchers, collect_trace, collect_trace_async, default_registry, Losses, Registry,
    Transformer,
};
pub use scope::Scope;
pub use walk::Item;
