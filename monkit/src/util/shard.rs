//! Per-thread shards: the hot path writes to a slot no other busy thread writes to.
//!
//! Each thread is given a shard number once, the lowest no live thread holds, and keeps it in a
//! thread-local. A [`Sharded`] value allocates a slot the first time a thread of that number
//! writes, so a source touched by one thread costs one slot, not one per core; and a thread
//! that replaces one gone (a pool's) takes up its shard, with the histogram cells its stats
//! were handed when hot, instead of a cold one.
//!
//! How many shards there are is fixed the first time anything asks (the first function made,
//! the first stat recorded): `MONKIT_SHARDS`, or [`set_shards`] before then, or twice the
//! cores rounded up to a power of two, 4 to 64.

use crate::util::settings::ConfigError;
use crate::util::slot::OnceBox;
use crate::util::sync::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize};

crate::util::settings::declare! {
    MONKIT_SHARDS: Count, "2 x cores, 4 to 64", "per-thread shards of every function's stats, 1 to 64; read once, when the first stat is made";
}

/// The most shards there may be.
pub const MAX_SHARDS: usize = 64;

/// The shard count once fixed; 0 until then, [`SETTING`] while being fixed. Std atomics: a
/// static outside loom's models.
static SHARDS: AtomicUsize = AtomicUsize::new(0);
const SETTING: usize = usize::MAX;

/// Sets how many per-thread shards every function's stats are split into, 1 to
/// [`MAX_SHARDS`]: more shards let more threads write without sharing a line, and each costs
/// a little memory per function (see BENCHMARKS.md). Must come before the first stat is made
/// (the first `#[task]` call, the first function or meter registered): after that the count is
/// fixed, and this returns an error naming it. `MONKIT_SHARDS` sets it from the environment.
///
/// ```
/// // Too late here: doc tests share a process where stats were made already, or not.
/// let _ = monkit::stats::set_shards(16);
/// assert!(monkit::stats::set_shards(0).is_err());
/// assert!(monkit::stats::shards() >= 1);
/// ```
pub fn set_shards(n: usize) -> Result<(), ConfigError> {
    if !(1..=MAX_SHARDS).contains(&n) {
        return Err(ConfigError::new(
            "shards",
            n.to_string(),
            format!("1 to {MAX_SHARDS}"),
        ));
    }
    match SHARDS.compare_exchange(0, n, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Ok(()),
        Err(_) if shards() == n => Ok(()),
        Err(_) => Err(ConfigError::new(
            "shards",
            n.to_string(),
            format!(
                "to be set before the first stat is made (fixed at {})",
                shards()
            ),
        )),
    }
}

/// How many per-thread shards stats are split into (fixing the count if nothing has yet).
pub fn shards() -> usize {
    shard_count()
}

/// The default: twice the cores, a power of two, 4 to 64.
fn default_shards() -> usize {
    let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
    (cpus * 2).next_power_of_two().clamp(4, MAX_SHARDS)
}

#[cold]
fn fix_shards() -> usize {
    if SHARDS
        .compare_exchange(0, SETTING, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        let vars = crate::util::settings::Vars::env();
        let n = match vars.count("MONKIT_SHARDS") {
            Ok(Some(n)) if (1..=MAX_SHARDS as u64).contains(&n) => n as usize,
            Ok(Some(n)) => {
                log::warn!("monkit: ignoring MONKIT_SHARDS={n}: expected 1 to {MAX_SHARDS}");
                default_shards()
            }
            Ok(None) => default_shards(),
            Err(e) => {
                log::warn!("monkit: ignoring {e}");
                default_shards()
            }
        };
        SHARDS.store(n, Ordering::Release);
        return n;
    }
    // Another thread is fixing it: the environment read takes microseconds.
    loop {
        match SHARDS.load(Ordering::Acquire) {
            SETTING => std::thread::yield_now(),
            n => return n,
        }
    }
}
/// Which exclusive shards a live thread holds.
static OWNED: [AtomicBool; MAX_SHARDS] = [const { AtomicBool::new(false) }; MAX_SHARDS];

const UNSET: usize = usize::MAX;
const EXCLUSIVE: usize = 1 << 63;

thread_local! {
    /// This thread's shard, with the EXCLUSIVE bit when it is the shard's only writer.
    static SHARD: Cell<usize> = const { Cell::new(UNSET) };
    /// Gives the shard back when the thread exits.
    static CLAIM: Claim = const { Claim(Cell::new(UNSET)) };
}

struct Claim(Cell<usize>);

impl Drop for Claim {
    fn drop(&mut self) {
        let idx = self.0.get();
        if idx != UNSET {
            // Anything this thread still records (from other thread-local destructors) goes
            // to the shared shard from now on.
            SHARD.with(|s| s.set(shard_count()));
            OWNED[idx].store(false, Ordering::Release);
        }
    }
}

/// Number of exclusive shards; every sharded source has one more, shared, slot after them.
#[inline]
pub(crate) fn shard_count() -> usize {
    match SHARDS.load(Ordering::Acquire) {
        0 | SETTING => fix_shards(),
        n => n,
    }
}

/// Where this thread writes: a shard index and whether the thread is its only writer. An
/// only writer updates counters with plain load-and-store instead of locked instructions.
#[derive(Clone, Copy)]
pub(crate) struct Lane {
    pub(crate) idx: usize,
    pub(crate) exclusive: bool,
}

impl Lane {
    /// How a value many threads write is written: with locked instructions.
    pub(crate) const SHARED: Lane = Lane {
        idx: usize::MAX,
        exclusive: false,
    };
}

#[inline(always)]
pub(crate) fn lane() -> Lane {
    let v = SHARD.with(Cell::get);
    if v != UNSET {
        return Lane {
            idx: v & !EXCLUSIVE,
            exclusive: v & EXCLUSIVE != 0,
        };
    }
    claim()
}

#[cold]
fn claim() -> Lane {
    let n = shard_count();
    for (idx, owned) in OWNED.iter().enumerate().take(n) {
        if owned
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            // Registering the destructor may fail while the thread is exiting; then give the
            // shard back at once and share.
            if CLAIM.try_with(|c| c.0.set(idx)).is_ok() {
                SHARD.with(|s| s.set(idx | EXCLUSIVE));
                return Lane {
                    idx,
                    exclusive: true,
                };
            }
            owned.store(false, Ordering::Release);
            break;
        }
    }
    SHARD.with(|s| s.set(n));
    Lane {
        idx: n,
        exclusive: false,
    }
}

/// Adds to a counter of this thread's shard.
#[inline(always)]
pub(crate) fn add64(a: &AtomicU64, v: u64, lane: Lane) {
    if lane.exclusive {
        a.store(a.load(Ordering::Relaxed).wrapping_add(v), Ordering::Relaxed);
    } else {
        a.fetch_add(v, Ordering::Relaxed);
    }
}

/// Adds to a 32-bit counter of this thread's shard.
#[inline(always)]
pub(crate) fn add32(a: &AtomicU32, v: u32, lane: Lane) {
    if lane.exclusive {
        a.store(a.load(Ordering::Relaxed).wrapping_add(v), Ordering::Relaxed);
    } else {
        a.fetch_add(v, Ordering::Relaxed);
    }
}

/// A shard's slot: aligned so two shards never share a cache line (nor the pair of lines a
/// core fetches together).
#[repr(align(128))]
#[derive(Default)]
struct Padded<T>(T);

/// Slots allocated together: one allocation for four shards wastes less than four aligned
/// ones (an allocator pads each 128-byte-aligned block by about its size again), and threads
/// take the lowest free shards, so the groups they make fill up.
const GROUP: usize = 4;

type Group<T> = [Padded<T>; GROUP];

/// One lazily allocated `T` per shard, in groups of four.
pub(crate) struct Sharded<T> {
    /// Each shard's slot, once its group is made: what the hot path reads (one load, as
    /// for a slot of its own).
    slots: Box<[AtomicPtr<Padded<T>>]>,
    /// The groups, owning the slots.
    groups: Box<[OnceBox<Group<T>>]>,
}

impl<T: Default> Sharded<T> {
    pub(crate) fn new() -> Self {
        let n = shard_count() + 1;
        Sharded {
            slots: (0..n)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            groups: (0..n.div_ceil(GROUP)).map(|_| OnceBox::default()).collect(),
        }
    }

    /// This thread's slot, allocated on first use, and how to write to it.
    #[inline(always)]
    pub(crate) fn local(&self) -> (&T, Lane) {
        let lane = lane();
        let p = self.slots[lane.idx].load(Ordering::Acquire);
        if p.is_null() {
            return (self.make(lane.idx), lane);
        }
        // SAFETY: slot pointers point into `groups`, which are freed only with `self`.
        (unsafe { &(*p).0 }, lane)
    }

    /// Makes the group of slot `idx` (or finds it made) and publishes its slots.
    #[cold]
    #[inline(never)]
    fn make(&self, idx: usize) -> &T {
        let g = idx / GROUP;
        let group = self.groups[g].get_or_init(|| std::array::from_fn(|_| Padded::default()));
        for (i, slot) in group.iter().enumerate() {
            if let Some(p) = self.slots.get(g * GROUP + i) {
                p.store(std::ptr::from_ref(slot).cast_mut(), Ordering::Release);
            }
        }
        &group[idx % GROUP].0
    }

    /// Slot `idx`, if allocated.
    pub(crate) fn slot(&self, idx: usize) -> Option<&T> {
        let group = self.groups.get(idx / GROUP)?.get()?;
        Some(&group[idx % GROUP].0)
    }

    /// Every allocated slot (a slot of an allocated group no thread wrote holds defaults).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> + Clone {
        self.groups
            .iter()
            .filter_map(OnceBox::get)
            .flat_map(|g| g.iter().map(|p| &p.0))
    }

    /// Heap bytes of the slots: the table and each allocated group, padding included.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<AtomicPtr<Padded<T>>>()
            + self.groups.len() * std::mem::size_of::<OnceBox<Group<T>>>()
            + self.groups.iter().filter(|g| g.get().is_some()).count()
                * std::mem::size_of::<Group<T>>()
    }
}
