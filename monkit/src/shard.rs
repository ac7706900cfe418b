//! Per-thread shards: the hot path writes to a slot no other busy thread writes to.
//!
//! Each thread is given a shard number once, round-robin, and keeps it in a thread-local. A
//! [`Sharded`] value allocates a slot the first time a thread of that number writes, so a source
//! touched by one thread costs one slot, not one per core.

use crate::slot::OnceBox;
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

static SHARDS: LazyLock<usize> = LazyLock::new(|| {
    let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
    (cpus * 2).next_power_of_two().clamp(4, 64)
});
static NEXT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Number of shards every sharded source has.
pub(crate) fn shard_count() -> usize {
    *SHARDS
}

/// This thread's shard number, in `0..shard_count()`.
#[inline(always)]
pub(crate) fn shard_index() -> usize {
    SHARD.with(|s| {
        let v = s.get();
        if v != usize::MAX {
            return v;
        }
        let v = NEXT.fetch_add(1, Ordering::Relaxed) & (shard_count() - 1);
        s.set(v);
        v
    })
}

/// One lazily allocated `T` per shard.
pub(crate) struct Sharded<T> {
    slots: Box<[OnceBox<T>]>,
}

impl<T: Default> Sharded<T> {
    pub(crate) fn new() -> Self {
        Sharded {
            slots: (0..shard_count()).map(|_| OnceBox::default()).collect(),
        }
    }

    /// This thread's slot, allocated on first use.
    #[inline(always)]
    pub(crate) fn local(&self) -> &T {
        // SAFETY-free bound check: shard_index() < shard_count() == slots.len().
        self.slots[shard_index()].get_or_init(T::default)
    }

    /// Every allocated slot.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter_map(OnceBox::get)
    }
}
