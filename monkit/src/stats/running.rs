//! How many calls of a function run now, and the most that ever ran at once (highwater).
//!
//! The count is kept per thread shard, so a hot function called from many threads never
//! queues on one cache line; the highwater is exact all the same, even when calls move between
//! threads (tokio's multi-threaded runtime resumes a task anywhere). How:
//!
//! - Each shard counts the calls begun on it still running, and keeps a **ceiling**: a number
//!   its count has not passed since the ceiling was set. The function keeps, on one line that
//!   is read far more than written, the sum of the ceilings and the highwater.
//! - While the ceilings add up to no more than the highwater, no call can make a new maximum,
//!   and a call only writes its own shard with plain stores (the fast path).
//! - A call that takes its shard over the ceiling raises it; a call that begins while the
//!   ceilings add up to more than the highwater (some shard might be where it never was at the
//!   same time as the others) reads every shard after a full fence and folds the sum into the
//!   highwater. Two such calls on different threads cannot both miss each other.
//! - So that the ceilings come back down, such a check lowers its own shard's ceiling to its
//!   count and, at most once a millisecond per function, lowers to zero the ceiling of every
//!   shard on which no call has begun since the previous such pass (a thread gone, or no
//!   longer calling the function). Sequential calls that hop between threads
//!   therefore read a highwater of one, and N calls at once read N; while they keep hopping
//!   each pays for one check (a fence and a read of the other shards) rather than for raising
//!   and lowering ceilings on every hop.
//! - Every change to the ceilings bumps an epoch. A call whose epoch changed before it ended
//!   checks again at its end: that covers a call that began on the fast path at the very moment
//!   another shard raised its ceiling, whose count the raiser could not see yet.
//!
//! What remains: a new maximum made by calls that all began and ended within the nanoseconds
//! a store takes to reach another core may be missed. `set_exact_highwater(true)` keeps one
//! shared count with locked instructions instead, for those who want even that.
//!
//! Written here rather than taken from a crate: the shard counters share a cache line with the
//! function's other per-thread stats, which a general-purpose sharded counter cannot do.

use crate::util::clock::Tick;
use crate::util::shard::Lane;
use crate::util::sync::{fence, AtomicI64, AtomicU64, Ordering};
use std::sync::atomic::AtomicBool;

/// Where a call was counted (its shard index in the low byte) and the ceilings' epoch it began
/// in; or [`EXACT`] for the shared count.
pub(crate) type Entered = u32;
/// The call was counted on the function's shared (exact) line.
pub(crate) const EXACT: Entered = u32::MAX;
const SHARD_BITS: u32 = 8;
/// One change of the ceilings, in [`Running::ceilings`].
const EPOCH: u64 = 1 << 32;
/// How often, at most, a check looks for shards idle since its last look.
const IDLE_NS: u64 = 1_000_000;

static EXACT_MODE: AtomicBool = AtomicBool::new(false);

/// Chooses how calls are counted from now on. `false` (the default) counts per thread and
/// keeps the highwater exact by the ceilings described in the module; `true` keeps one shared
/// count per function, written by every call with locked instructions, which makes threads
/// calling one function queue on that cache line but is exact even for calls that overlap for
/// only nanoseconds. Calls already running end the way they began. `MONKIT_EXACT_HIGHWATER=1`
/// in the environment sets `true` when the first function is registered.
///
/// ```
/// monkit::stats::set_exact_highwater(true);
/// # monkit::stats::set_exact_highwater(false);
/// ```
pub fn set_exact_highwater(exact: bool) {
    EXACT_MODE.store(exact, Ordering::Relaxed);
}

/// The variable that turns exact mode on.
const EXACT_HIGHWATER: &str = "MONKIT_EXACT_HIGHWATER";

/// Turns exact mode on when `MONKIT_EXACT_HIGHWATER` of `vars` says so; an error naming the
/// variable if it is not a flag.
pub(crate) fn configure(
    vars: &crate::util::settings::Vars,
) -> Result<(), crate::util::settings::ConfigError> {
    if vars.flag(EXACT_HIGHWATER)? == Some(true) {
        set_exact_highwater(true);
    }
    Ok(())
}

crate::util::settings::declare! {
    MONKIT_EXACT_HIGHWATER: Flag, "off", "count running calls on one shared line: an exact highwater, at a cost when threads contend";
}

#[inline(always)]
pub(crate) fn exact_mode() -> bool {
    EXACT_MODE.load(Ordering::Relaxed)
}

/// The shard index a call was counted on.
#[inline(always)]
pub(crate) fn shard_of(entered: Entered) -> usize {
    (entered & ((1 << SHARD_BITS) - 1)) as usize
}

/// A function's shared part: the ceilings and highwater (read by every call, written rarely),
/// and the count of exact mode (written by every call of that mode) on a line of its own.
#[derive(Default)]
pub(crate) struct Running {
    peak: Peak,
    exact: Exact,
}

#[repr(align(128))]
#[derive(Default)]
struct Peak {
    /// The sum of the shards' ceilings (low 32 bits) and how often it changed (high 32).
    ceilings: AtomicU64,
    highwater: AtomicI64,
    /// When (process nanoseconds) the next check may look for idle shards.
    next_idle_pass: AtomicU64,
}

#[repr(align(128))]
#[derive(Default)]
struct Exact {
    current: AtomicI64,
}

impl Running {
    /// A call begins on `shard` (this thread's, written through `lane`); `all` lists every
    /// shard of the function. Returns where the call was counted, for
    /// [`Running::before_exit`] and the shard's exit.
    #[inline(always)]
    pub(crate) fn enter<'s, I>(
        &self,
        shard: &'s ShardRunning,
        lane: Lane,
        all: impl FnOnce() -> I,
    ) -> Entered
    where
        I: Iterator<Item = &'s ShardRunning> + Clone,
    {
        let state = self.peak.ceilings.load(Ordering::Acquire);
        let now = shard.count_in(lane);
        if now > shard.ceiling.load(Ordering::Relaxed) {
            self.raise(shard, now);
            self.check(Some(shard).filter(|_| lane.exclusive), all());
        } else if (state as u32) as i64 > self.peak.highwater.load(Ordering::Relaxed) {
            self.check(Some(shard).filter(|_| lane.exclusive), all());
        }
        lane.idx as Entered | ((state >> 32) as u32) << SHARD_BITS
    }

    /// A call counted by [`Running::enter`] as `entered` (on a shard, not [`EXACT`]) ends on
    /// `shard` (this thread's): checks again if the ceilings changed while it ran. Then the
    /// caller takes it off its shard's count.
    #[inline(always)]
    pub(crate) fn before_exit<'s, I>(
        &self,
        entered: Entered,
        shard: &'s ShardRunning,
        lane: Lane,
        all: impl FnOnce() -> I,
    ) where
        I: Iterator<Item = &'s ShardRunning> + Clone,
    {
        let epoch = (self.peak.ceilings.load(Ordering::Acquire) >> 32) as u32;
        if (epoch ^ (entered >> SHARD_BITS)) << SHARD_BITS != 0 {
            self.check(Some(shard).filter(|_| lane.exclusive), all());
        }
    }

    /// `shard`'s count reached `now`, above its ceiling: raises the ceiling to it.
    #[cold]
    #[inline(never)]
    fn raise(&self, shard: &ShardRunning, now: i64) {
        let old = shard.ceiling.fetch_max(now, Ordering::AcqRel);
        if now > old {
            self.peak
                .ceilings
                .fetch_add(EPOCH + (now - old) as u64, Ordering::SeqCst);
        }
    }

    /// Reads every shard after a full fence, folds the sum into the highwater, and brings the
    /// ceilings back toward what runs now: raised where a count passed its ceiling and, while
    /// they add up to more than the highwater, `own`'s lowered to its count and (at most once
    /// a millisecond) idle shards' to zero. `own` is this thread's shard when this thread is
    /// its only writer.
    #[cold]
    #[inline(never)]
    fn check<'s>(
        &self,
        own: Option<&ShardRunning>,
        all: impl Iterator<Item = &'s ShardRunning> + Clone,
    ) {
        fence(Ordering::SeqCst);
        // One read of each shard serves both the sum and a raise on its owner's behalf, so a
        // count this check raised a ceiling for is in the highwater it folds.
        let mut sum = 0;
        for s in all.clone() {
            let (now, ceiling) = s.read();
            if now > ceiling {
                self.raise(s, now);
            }
            sum += now.max(0);
        }
        // Read first: a locked write to the shared line on every check would bounce it
        // between the threads that check.
        let mut high = self.peak.highwater.load(Ordering::Relaxed);
        if sum > high {
            high = self
                .peak
                .highwater
                .fetch_max(sum, Ordering::Relaxed)
                .max(sum);
        }
        if (self.peak.ceilings.load(Ordering::Acquire) as u32) as i64 <= high {
            return;
        }
        let idle_pass = self.idle_pass_due();
        for s in all {
            let (now, ceiling) = s.read();
            let to = if own.is_some_and(|o| std::ptr::eq(o, s)) {
                now.max(0)
            } else if idle_pass && s.idle_since_last_pass(now) {
                0
            } else {
                continue;
            };
            if ceiling > to
                && s.ceiling
                    .compare_exchange(ceiling, to, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                self.peak
                    .ceilings
                    .fetch_add(EPOCH.wrapping_sub((ceiling - to) as u64), Ordering::SeqCst);
            }
        }
    }

    /// Whether this check is the one, at most every [`IDLE_NS`], that looks for idle shards.
    fn idle_pass_due(&self) -> bool {
        // Under loom, never: a model must take the same path every time it is run, and the
        // clock is the one input loom does not control (a loaded machine crossed the 1 ms
        // and loom stopped with "unexpected exploration state").
        if cfg!(loom) {
            return false;
        }
        let now = Tick::now().process_nanos();
        let next = self.peak.next_idle_pass.load(Ordering::Relaxed);
        now >= next
            && self
                .peak
                .next_idle_pass
                .compare_exchange(next, now + IDLE_NS, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// A call of exact mode starts; returns how many run now, this one included. Every value a
    /// call sees is folded into the highwater, so the highwater is the true maximum.
    #[inline(always)]
    pub(crate) fn enter_exact(&self) -> i64 {
        let now = self.exact.current.fetch_add(1, Ordering::Relaxed) + 1;
        if now > self.peak.highwater.load(Ordering::Relaxed) {
            self.peak.highwater.fetch_max(now, Ordering::Relaxed);
        }
        now
    }

    /// A call of exact mode ends.
    #[inline(always)]
    pub(crate) fn exit_exact(&self) {
        self.exact.current.fetch_sub(1, Ordering::Relaxed);
    }

    /// The ceilings' word, for a loom model's failure message.
    #[cfg(all(loom, test))]
    pub(crate) fn state(&self) -> u64 {
        self.peak.ceilings.load(Ordering::Relaxed)
    }

    /// (calls of exact mode running now, highwater of both modes).
    pub(crate) fn read(&self) -> (i64, i64) {
        (
            self.exact.current.load(Ordering::Relaxed),
            self.peak.highwater.load(Ordering::Relaxed),
        )
    }
}

/// One shard's count, kept in the function's per-thread shard.
#[derive(Default)]
pub(crate) struct ShardRunning {
    /// Calls begun here; written by the shard's owner only (or with locked instructions on the
    /// shared shard). Only ever grows, so a check can tell whether any call began meanwhile.
    begun: AtomicI64,
    /// Calls begun here that ended here; written like `begun`.
    done: AtomicI64,
    /// Calls begun here that ended on another shard; any thread adds to it.
    away: AtomicI64,
    /// A count `begun - done - away` has not passed since it was set: raised by the owner,
    /// lowered by any thread's check (see the module).
    ceiling: AtomicI64,
    /// `begun` as the last pass for idle shards saw it (see [`Running::idle_pass_due`]).
    begun_at_pass: AtomicI64,
}

impl ShardRunning {
    /// Counts a call begun on this shard; returns how many run here now (a stale `done` or
    /// `away` only makes it larger).
    #[inline(always)]
    fn count_in(&self, lane: Lane) -> i64 {
        let begun = if lane.exclusive {
            let n = self.begun.load(Ordering::Relaxed) + 1;
            self.begun.store(n, Ordering::Relaxed);
            n
        } else {
            self.begun.fetch_add(1, Ordering::Relaxed) + 1
        };
        begun - self.done.load(Ordering::Relaxed) - self.away.load(Ordering::Relaxed)
    }

    /// A call begun on this shard ends on it (`lane` is this shard's).
    #[inline(always)]
    pub(crate) fn exit_here(&self, lane: Lane) {
        if lane.exclusive {
            let n = self.done.load(Ordering::Relaxed) + 1;
            self.done.store(n, Ordering::Relaxed);
        } else {
            self.done.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A call begun on this shard ends on another thread's.
    #[cold]
    #[inline(never)]
    pub(crate) fn exit_away(&self) {
        self.away.fetch_add(1, Ordering::Relaxed);
    }

    /// (running now, ceiling) of this shard. The ends are read before the beginnings, so a
    /// call that ends meanwhile is never subtracted without having been added.
    pub(crate) fn read(&self) -> (i64, i64) {
        let away = self.away.load(Ordering::Relaxed);
        let done = self.done.load(Ordering::Relaxed);
        let begun = self.begun.load(Ordering::Relaxed);
        (begun - done - away, self.ceiling.load(Ordering::Relaxed))
    }

    /// Whether nothing runs here and no call has begun since the previous pass for idle
    /// shards; notes `begun` for the next pass. Written only by those passes, once a
    /// millisecond at most, so a busy owner's line is rarely written by others.
    #[cold]
    fn idle_since_last_pass(&self, running: i64) -> bool {
        let begun = self.begun.load(Ordering::Relaxed);
        let idle = running <= 0 && self.begun_at_pass.load(Ordering::Relaxed) == begun;
        if !idle {
            self.begun_at_pass.store(begun, Ordering::Relaxed);
        }
        idle
    }
}

/// A function's shared count and `N` shards, as `FuncInner` keeps them, for the tests here and
/// the loom models.
#[cfg(test)]
pub(crate) struct Counted<const N: usize> {
    pub(crate) running: Running,
    pub(crate) shards: [ShardRunning; N],
}

#[cfg(test)]
impl<const N: usize> Default for Counted<N> {
    fn default() -> Self {
        Counted {
            running: Running::default(),
            shards: std::array::from_fn(|_| ShardRunning::default()),
        }
    }
}

// The unit tests and the loom models each use part of it.
#[cfg(test)]
#[allow(dead_code)]
impl<const N: usize> Counted<N> {
    /// The lane of shard `i`'s owner.
    pub(crate) fn owner(i: usize) -> Lane {
        Lane {
            idx: i,
            exclusive: true,
        }
    }

    /// A call begins on shard `i`, written through `lane`.
    pub(crate) fn enter_on(&self, i: usize, lane: Lane) -> Entered {
        self.running
            .enter(&self.shards[i], lane, || self.shards.iter())
    }

    /// The call counted as `entered` ends on shard `i`, where it began, written through `lane`.
    pub(crate) fn exit_on(&self, i: usize, lane: Lane, entered: Entered) {
        self.running
            .before_exit(entered, &self.shards[i], lane, || self.shards.iter());
        self.shards[i].exit_here(lane);
    }

    pub(crate) fn enter(&self, i: usize) -> Entered {
        self.enter_on(i, Self::owner(i))
    }

    pub(crate) fn exit(&self, i: usize, entered: Entered) {
        self.exit_on(i, Self::owner(i), entered);
    }

    /// One whole call on shard `i`.
    pub(crate) fn call(&self, i: usize) {
        let e = self.enter(i);
        self.exit(i, e);
    }

    /// (running now, highwater), as `FuncInner::stats` reads them.
    pub(crate) fn read(&self) -> (i64, i64) {
        let now: i64 = self.shards.iter().map(|s| s.read().0).sum();
        (now, self.running.read().1)
    }

    /// The sum of the ceilings.
    pub(crate) fn ceilings(&self) -> u32 {
        self.running.peak.ceilings.load(Ordering::Relaxed) as u32
    }

    /// Every shard has run a call before, one at a time.
    pub(crate) fn warmed() -> Self {
        let c = Self::default();
        for i in 0..N {
            c.call(i);
        }
        c
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A shard that ran one call and then none keeps its ceiling only until checks have seen
    /// it idle across a pass for idle shards: calls taking turns on two other shards then stop
    /// checking (the ceilings add up to the highwater again).
    #[test]
    fn an_idle_shard_gives_its_ceiling_back() {
        let c = Counted::<3>::default();
        c.call(2);
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_millis(50) && c.shards[2].read().1 > 0 {
            c.call(0);
            c.call(1);
        }
        let all: Vec<_> = c.shards.iter().map(ShardRunning::read).collect();
        assert_eq!(
            c.shards[2].read(),
            (0, 0),
            "the idle shard's ceiling: {all:?} {}",
            c.ceilings()
        );
        // Turns on two shards: both keep their ceilings (no raising and lowering on every
        // turn), and the highwater is the truth.
        assert_eq!(c.ceilings(), 2);
        assert_eq!(c.running.read().1, 1);
        assert!(start.elapsed() >= std::time::Duration::from_millis(1));
    }
}
