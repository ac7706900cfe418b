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
