//! Plumbing that knows nothing of monkit: the clock, once-published slots, per-thread
//! shards, the atomics loom swaps in, and the error of a setting that could not be used.
//!
//! Uses: nothing of the crate.

pub(crate) mod clock;
pub(crate) mod settings;
pub(crate) mod shard;
pub(crate) mod slot;
pub(crate) mod sync;
