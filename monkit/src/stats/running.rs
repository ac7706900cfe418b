//! How many calls of a function run now, and the most that ever ran at once (highwater).
//!
//! Two ways to count, chosen per process and remembered per call:
//!
//! - **Per shard** (the default). Each thread's shard keeps its own count: the calls it began
//!   less the calls that ended on it, and the calls begun on it that ended on another thread
//!   (an async call resumed elsewhere) in a separate counter the other thread adds to. A call
//!   on one thread writes only lines that thread owns, with plain stores, so a hot function
//!   called from many threads scales with them. The running count (the sum over shards) is
//!   exact. The highwater is the sum of the shards' own peaks: never below the true maximum,
//!   and equal to it while a function's calls stay on one thread; a function called one at a
//!   time from four threads reads a highwater of up to four.
//! - **Exact** ([`set_exact_highwater`], or `MONKIT_EXACT_HIGHWATER=1`). One shared count per
//!   function, on its own cache line: every call writes it twice with locked instructions, so
//!   the highwater is the true maximum, at the price of threads queueing on that line.
//!
//! Written here rather than taken from a crate: the shard counters share a cache line with the
//! function's other per-thread stats, which a general-purpose sharded counter cannot do.

use crate::util::shard::Lane;
use crate::util::sync::{AtomicI64, Ordering};
use std::sync::atomic::AtomicBool;

/// Where a call was counted: a shard index, or [`EXACT`] for the shared count.
pub(crate) type Entered = u32;
/// The call was counted on the function's shared (exact) line.
pub(crate) const EXACT: Entered = u32::MAX;

static EXACT_MODE: AtomicBool = AtomicBool::new(false);

/// Chooses how calls are counted from now on: `true` keeps one exact count per function, which
/// makes the highwater the true maximum but has every thread calling a function write one
/// shared cache line; `false` (the default) counts per thread, which scales with threads and
/// reports a highwater that may be above the true maximum when a function's calls move
/// between threads. Calls already running end the way they began. `MONKIT_EXACT_HIGHWATER=1`
/// in the environment sets `true` when the first function is registered.
///
/// ```
/// monkit::stats::set_exact_highwater(true);
/// # monkit::stats::set_exact_highwater(false);
/// ```
pub fn set_exact_highwater(exact: bool) {
    EXACT_MODE.store(exact, Ordering::Relaxed);
}

/// Reads `MONKIT_EXACT_HIGHWATER` once (called where functions are created, off the hot path).
pub(crate) fn read_env_once() {
    static READ: std::sync::Once = std::sync::Once::new();
    READ.call_once(|| {
        if let Ok(v) = std::env::var("MONKIT_EXACT_HIGHWATER") {
            if matches!(v.trim(), "1" | "true" | "yes" | "on") {
                set_exact_highwater(true);
            }
        }
    });
}

#[inline(always)]
pub(crate) fn exact_mode() -> bool {
    EXACT_MODE.load(Ordering::Relaxed)
}

/// The shared count of exact mode, on its own cache line.
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct Running {
    current: AtomicI64,
    highwater: AtomicI64,
}

impl Running {
    /// A call starts; returns how many run now, this one included. Every value a call sees is
    /// folded into the highwater, so the highwater is the true maximum of `current`.
    #[inline(always)]
    pub(crate) fn enter(&self) -> i64 {
        let now = self.current.fetch_add(1, Ordering::Relaxed) + 1;
        if now > self.highwater.load(Ordering::Relaxed) {
            self.highwater.fetch_max(now, Ordering::Relaxed);
        }
        now
    }

    #[inline(always)]
    pub(crate) fn exit(&self) {
        self.current.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn read(&self) -> (i64, i64) {
        (
            self.current.load(Ordering::Relaxed),
            self.highwater.load(Ordering::Relaxed),
        )
    }
}

/// One shard's count, kept in the function's per-thread shard.
#[derive(Default)]
pub(crate) struct ShardRunning {
    /// Calls begun here less calls ended here; written by the shard's owner only (or with
    /// locked instructions on the shared shard).
    here: AtomicI64,
    /// Calls begun here that ended on another shard; any thread adds to it.
    away: AtomicI64,
    /// The most `here - away` has been, as seen when calls begin.
    peak: AtomicI64,
}

impl ShardRunning {
    /// A call begins on this shard.
    #[inline(always)]
    pub(crate) fn enter(&self, lane: Lane) {
        let here = if lane.exclusive {
            let n = self.here.load(Ordering::Relaxed) + 1;
            self.here.store(n, Ordering::Relaxed);
            n
        } else {
            self.here.fetch_add(1, Ordering::Relaxed) + 1
        };
        // A stale `away` only makes `now` larger: the peak stays an upper bound.
        let now = here - self.away.load(Ordering::Relaxed);
        if now > self.peak.load(Ordering::Relaxed) {
            if lane.exclusive {
                self.peak.store(now, Ordering::Relaxed);
            } else {
                self.peak.fetch_max(now, Ordering::Relaxed);
            }
        }
    }

    /// A call begun on this shard ends on it (`lane` is this shard's).
    #[inline(always)]
    pub(crate) fn exit_here(&self, lane: Lane) {
        if lane.exclusive {
            let n = self.here.load(Ordering::Relaxed) - 1;
            self.here.store(n, Ordering::Relaxed);
        } else {
            self.here.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// A call begun on this shard ends on another thread's.
    #[cold]
    #[inline(never)]
    pub(crate) fn exit_away(&self) {
        self.away.fetch_add(1, Ordering::Relaxed);
    }

    /// (running now, peak) of this shard.
    pub(crate) fn read(&self) -> (i64, i64) {
        let here = self.here.load(Ordering::Relaxed);
        let away = self.away.load(Ordering::Relaxed);
        (here - away, self.peak.load(Ordering::Relaxed))
    }
}
