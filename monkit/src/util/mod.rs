//! Plumbing that knows nothing of monkit: the clock, once-published slots, per-thread
//! shards, the atomics loom swaps in, percent escapes, the settings reader, and the
//! reading of `type_name`s.
//!
//! Uses: nothing of the crate.

pub(crate) mod clock;
pub(crate) mod percent;
pub mod settings;
pub(crate) mod shard;
pub(crate) mod slot;
pub(crate) mod sync;
pub(crate) mod type_name;
