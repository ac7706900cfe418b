//! Inside async calls: how many times each call was polled, how long its polls ran together
//! (busy time; the rest of its duration it was waiting), and slow polls: a poll longer than
//! [`slow_poll`] (`MONKIT_SLOW_POLL`, 10 ms by default) held its worker thread that long, and
//! every other task on that worker waited.
//!
//! A call polled once costs one more counter and one comparison: its one poll is its duration
//! (the call's two clock readings bound it), so its busy time is the duration already
//! recorded. A call polled more reads the clock at the start and end of each later poll (the
//! end of one poll cannot be the start of the next: the time between is waiting), and at its
//! end records its duration and busy time in distributions of their own, merged with the
//! function's durations when read.

use crate::stats::dist::{DistShard, Snapshot};
use crate::stats::hist::Recent;
use crate::util::clock::{nanos_to_ticks, ticks_to_nanos, Tick};
use crate::util::shard::{add64, Lane};
use crate::util::slot::OnceBox;
use crate::util::sync::{AtomicU64, Ordering};
use std::time::Duration;

/// The name of the span event a slow poll of a recorded call makes.
pub const SLOW_POLL_EVENT: &str = "slow poll";
/// Its attribute: the poll's length in nanoseconds.
pub const SLOW_POLL_NS: &str = "monkit.poll_ns";

/// The slow-poll threshold by default.
pub const DEFAULT_SLOW_POLL: Duration = Duration::from_millis(10);

/// The threshold in clock ticks (0: not read yet), and as set, in nanoseconds (what is shown).
/// Std atomics: statics, outside loom's models.
static SLOW_TICKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static SLOW_NS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

crate::util::settings::declare! {
    MONKIT_SLOW_POLL: Duration, "10ms", "a poll of an async #[task] call longer than this is a slow poll: counted, kept on the span, logged at most once a second per function";
}

/// Sets how long a poll may run before it counts as slow (`MONKIT_SLOW_POLL`, default
/// [`DEFAULT_SLOW_POLL`]; at least 1 µs).
pub fn set_slow_poll(threshold: Duration) {
    let ns = u64::try_from(threshold.as_nanos())
        .unwrap_or(u64::MAX)
        .max(1_000);
    SLOW_NS.store(ns, Ordering::Relaxed);
    SLOW_TICKS.store(nanos_to_ticks(ns).max(1), Ordering::Relaxed);
}

/// How long a poll may run before it counts as slow.
pub fn slow_poll() -> Duration {
    init_slow_ticks();
    Duration::from_nanos(SLOW_NS.load(Ordering::Relaxed))
}

/// The threshold in ticks. Set before any call can end: the first function's creation reads
/// the settings first.
#[inline(always)]
pub(crate) fn slow_ticks() -> u64 {
    SLOW_TICKS.load(Ordering::Relaxed)
}

/// Sets the default threshold unless one is set.
pub(crate) fn init_slow_ticks() {
    if SLOW_TICKS.load(Ordering::Relaxed) == 0 {
        set_slow_poll(DEFAULT_SLOW_POLL);
    }
}

/// Applies `MONKIT_SLOW_POLL` of `vars`.
pub(crate) fn configure(
    vars: &crate::util::settings::Vars,
) -> Result<(), crate::util::settings::ConfigError> {
    if let Some(d) = vars.duration("MONKIT_SLOW_POLL")? {
        set_slow_poll(d);
    }
    Ok(())
}

/// What a call polled so far carries between its polls.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Polled {
    /// Polls that ended pending.
    pub(crate) pending: u32,
    /// Their ticks together.
    pub(crate) busy: u64,
    /// When the last poll began.
    pub(crate) last: Tick,
    /// Whether that poll is still running (the call ends in it, not dropped between polls).
    pub(crate) in_poll: bool,
}

impl Polled {
    /// Polls of the call, the one running included.
    pub(crate) fn count(&self) -> u32 {
        self.pending.saturating_add(u32::from(self.in_poll))
    }

    /// Ticks of the poll running at `t1` (0 if none is).
    pub(crate) fn running(&self, t1: Tick) -> u64 {
        if self.in_poll {
            t1.0.saturating_sub(self.last.0)
        } else {
            0
        }
    }
}

/// Buckets of polls per call for calls not counted by `once`: exact from 1 to 8 (most calls
/// wait a few times), then `9..=16`, `17..=32`, ... the last holding everything past 1,024.
const PER_CALL: usize = 16;

/// The bucket of a call polled `polls` times.
fn per_call_bucket(polls: u32) -> usize {
    match polls {
        0..=8 => polls.max(1) as usize - 1,
        // (2^(k-1), 2^k] is bucket k + 4.
        _ => ((32 - (polls - 1).leading_zeros()) as usize + 4).min(PER_CALL - 1),
    }
}

/// The most polls bucket `i` holds.
fn per_call_at_most(i: usize) -> u64 {
    match i {
        0..=7 => i as u64 + 1,
        _ if i + 1 == PER_CALL => u64::MAX,
        _ => 1 << (i - 4),
    }
}

/// One thread shard's poll counts of a function (made at the first call there polled more
/// than once; calls polled once are counted in the shard itself).
#[derive(Default)]
pub(crate) struct PollShard {
    /// Polls of the other calls.
    polls: AtomicU64,
    /// Other calls (polled more than once, or dropped between polls), by polls per call.
    per_call: [AtomicU64; PER_CALL],
    /// Durations and busy times of those calls: successes, failures.
    many: OnceBox<Many>,
}

/// Durations and busy times, `[wall, busy]`, of successes and (made at the first) failures:
/// a shard's aggregates ([`Many`]), the function's histogram cells ([`PollWindows`]).
#[derive(Default)]
struct Split<T> {
    ok: [T; 2],
    failed: OnceBox<[T; 2]>,
}

impl<T: Default> Split<T> {
    fn of(&self, failed: bool) -> Option<&[T; 2]> {
        if failed {
            self.failed.get()
        } else {
            Some(&self.ok)
        }
    }

    fn made(&self, failed: bool) -> &[T; 2] {
        if failed {
            self.failed.get_or_init(Default::default)
        } else {
            &self.ok
        }
    }
}

type Many = Split<DistShard>;

/// The histogram cells of a function's calls polled more than once, shared by its shards.
#[derive(Default)]
pub(crate) struct PollWindows(Split<Recent>);

impl PollWindows {
    /// The window of their durations: successes, failures.
    pub(crate) fn wall(&self, failed: bool) -> Option<&Recent> {
        Some(&self.0.of(failed)?[0])
    }

    /// Of their busy times.
    fn busy(&self, failed: bool) -> Option<&Recent> {
        Some(&self.0.of(failed)?[1])
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        let each = |w: &[Recent; 2]| {
            std::mem::size_of_val(w) + w.iter().map(Recent::heap_bytes).sum::<usize>()
        };
        each(&self.0.ok) + self.0.failed.get().map_or(0, each)
    }
}

impl PollShard {
    /// A call polled `polls` times (not by the `once` path) ended, `wall` and `busy`
    /// nanoseconds long.
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn many(
        &self,
        windows: &PollWindows,
        polls: u32,
        wall: u64,
        busy: u64,
        failed: bool,
        now: Tick,
        lane: Lane,
    ) {
        add64(&self.polls, u64::from(polls), lane);
        add64(&self.per_call[per_call_bucket(polls)], 1, lane);
        let [w, b] = self.many.get_or_init(Many::default).made(failed);
        let [ww, bw] = windows.0.made(failed);
        w.record(ww, wall, now, lane);
        b.record(bw, busy.min(wall), now, lane);
    }

    /// The durations of this shard's calls polled more than once: successes, failures.
    pub(crate) fn wall(&self, failed: bool) -> Option<&DistShard> {
        Some(&self.many.get()?.of(failed)?[0])
    }

    /// Their busy times.
    fn busy(&self, failed: bool) -> Option<&DistShard> {
        Some(&self.many.get()?.of(failed)?[1])
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.many.get().map_or(0, |m| {
                std::mem::size_of::<Many>() + m.failed.get().map_or(0, std::mem::size_of_val)
            })
    }
}

/// A function's slow polls, shared by its shards (they are rare).
#[derive(Default)]
pub(crate) struct SlowPolls {
    count: AtomicU64,
    /// Ticks of the longest poll of a call polled more than once (a call polled once has its
    /// duration as its poll, kept by the durations' max).
    longest: AtomicU64,
    /// When one was last logged (ticks; 0: never).
    logged_at: AtomicU64,
}

impl SlowPolls {
    /// A poll of `ticks` of a call polled more than once ended; slow or not, it may be the
    /// longest.
    #[inline(always)]
    pub(crate) fn note_poll(&self, ticks: u64) {
        if ticks > self.longest.load(Ordering::Relaxed) {
            self.longest.fetch_max(ticks, Ordering::Relaxed);
        }
    }

    /// Counts one slow poll ending at `end`; true if it is to be logged (at most once a
    /// second per function).
    pub(crate) fn slow(&self, end: Tick) -> bool {
        self.count.fetch_add(1, Ordering::Relaxed);
        let last = self.logged_at.load(Ordering::Relaxed);
        let second = nanos_to_ticks(1_000_000_000);
        (last == 0 || end.0.wrapping_sub(last) >= second)
            && self
                .logged_at
                .compare_exchange(last, end.0.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// Long polls that ended on this thread lately, as `(start, ticks)`, for the polls around
/// them: an outer future's poll contains its inner futures' polls, so it is slow only for its
/// own time. Only polls over the threshold come here (a cold path); eight cover any nesting
/// that blocks, the oldest making room.
const CLAIMS: usize = 8;

std::thread_local! {
    static LONG: std::cell::Cell<[(u64, u64); CLAIMS]> =
        const { std::cell::Cell::new([(0, 0); CLAIMS]) };
}

/// The ticks of a long poll from `start` to `end` that are its own: its length less the long
/// polls that ended inside it on this thread (those count for their own functions).
pub(crate) fn own_ticks(start: Tick, end: Tick) -> u64 {
    let len = end.0.saturating_sub(start.0);
    LONG.with(|cell| {
        let mut long = cell.get();
        let mut nested = 0u64;
        for e in long.iter_mut() {
            if e.1 != 0 && e.0 >= start.0 {
                nested += e.1;
                *e = (0, 0);
            }
        }
        // This one stands for all of them now, for the polls around it.
        if let Some(slot) = long.iter_mut().min_by_key(|e| (e.1 != 0, e.0)) {
            *slot = (start.0, len);
        }
        cell.set(long);
        len.saturating_sub(nested)
    })
}

/// The polls of a function's async calls, as read.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct PollStats {
    /// Async calls that ended (polled at least once).
    pub calls: u64,
    /// Their polls together.
    pub polls: u64,
    /// Calls by polls per call: `(at most, calls)`, exact from 1 (polled once) to 8, then in
    /// powers of two; buckets with no calls left out.
    pub per_call: Vec<(u64, u64)>,
    /// Busy time of successful calls (the sum of each call's polls), in nanoseconds; a sync
    /// call of the same function counts its duration.
    pub busy_success: Snapshot,
    /// Busy time of failed calls, likewise.
    pub busy_failure: Snapshot,
    /// Polls longer than the slow-poll threshold.
    pub slow_polls: u64,
    /// The longest poll, in nanoseconds (a call polled once counts its duration).
    pub max_poll_ns: u64,
}

impl PollStats {
    /// Mean polls per call.
    pub fn mean_polls(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.polls as f64 / self.calls as f64
        }
    }

    /// Busy time of every call together, in nanoseconds.
    pub fn busy_ns(&self) -> f64 {
        self.busy_success.sum + self.busy_failure.sum
    }

    /// Polls per call at quantile `q` (0-1): exact up to 8, past that the upper bound of its
    /// power-of-two bucket.
    pub fn polls_quantile(&self, q: f64) -> u64 {
        let want = (q.clamp(0.0, 1.0) * self.calls as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for &(at_most, n) in &self.per_call {
            seen += n;
            if seen >= want {
                return at_most;
            }
        }
        self.per_call.last().map_or(0, |b| b.0)
    }
}

/// Reads a function's poll stats: `once` its calls polled once, `shards` its poll shards and
/// `windows` their cells, `plain_ok` and `plain_failed` its shards' durations of everything
/// else with their windows (sync calls and calls polled once: their busy time is their
/// duration, their one poll as long).
pub(crate) fn read<'a>(
    once: u64,
    shards: impl Iterator<Item = &'a PollShard> + Clone,
    plain_ok: (
        impl Iterator<Item = &'a DistShard> + Clone,
        impl Iterator<Item = &'a Recent>,
    ),
    plain_failed: (
        impl Iterator<Item = &'a DistShard> + Clone,
        impl Iterator<Item = &'a Recent>,
    ),
    windows: Option<&'a PollWindows>,
    slow: &SlowPolls,
) -> Option<PollStats> {
    let mut s = PollStats::default();
    let mut per_call = [0u64; PER_CALL];
    let mut any = once > 0;
    for sh in shards.clone() {
        any = true;
        s.polls += sh.polls.load(Ordering::Relaxed);
        for (acc, b) in per_call.iter_mut().zip(&sh.per_call) {
            *acc += b.load(Ordering::Relaxed);
        }
    }
    if !any {
        return None;
    }
    s.polls += once;
    s.calls = once + per_call.iter().sum::<u64>();
    per_call[0] += once;
    for (i, n) in per_call.into_iter().enumerate() {
        if n > 0 {
            s.per_call.push((per_call_at_most(i), n));
        }
    }
    let busy = |failed: bool| shards.clone().filter_map(move |sh| sh.busy(failed));
    // The longest one-poll call: the shards' maxima, read without merging their buckets.
    let plain_max = plain_ok
        .0
        .clone()
        .chain(plain_failed.0.clone())
        .map(DistShard::max_key)
        .max()
        .unwrap_or(0);
    let busy_window = |failed: bool| windows.and_then(|w| w.busy(failed));
    s.busy_success = Snapshot::of::<u64>(
        plain_ok.0.chain(busy(false)),
        plain_ok.1.chain(busy_window(false)),
    );
    s.busy_failure = Snapshot::of::<u64>(
        plain_failed.0.chain(busy(true)),
        plain_failed.1.chain(busy_window(true)),
    );
    s.slow_polls = slow.count.load(Ordering::Relaxed);
    s.max_poll_ns = plain_max.max(ticks_to_nanos(slow.longest.load(Ordering::Relaxed)));
    Some(s)
}

/// A slow poll to log.
struct SlowLine {
    func: String,
    location: Option<crate::call::func::Location>,
    ns: u64,
}

/// Logs a slow poll of `func` lasting `ns` nanoseconds, on a thread of its own: the logger may
/// write to a file or a terminal, and the caller's thread has waited long enough. Past 64
/// lines waiting, lines are let go.
#[cold]
#[inline(never)]
pub(crate) fn log_slow(func: &str, location: Option<crate::call::func::Location>, ns: u64) {
    use std::sync::mpsc::{sync_channel, SyncSender};
    static LOGGER: std::sync::OnceLock<Option<SyncSender<SlowLine>>> = std::sync::OnceLock::new();
    if cfg!(loom) || !log::log_enabled!(log::Level::Warn) {
        return;
    }
    let tx = LOGGER.get_or_init(|| {
        let (tx, rx) = sync_channel::<SlowLine>(64);
        std::thread::Builder::new()
            .name("monkit-slow-polls".into())
            .spawn(move || {
                for l in rx {
                    let at = l
                        .location
                        .map(|w| format!(" at {}:{}", w.file, w.line))
                        .unwrap_or_default();
                    log::warn!(
                        "monkit: slow poll: {} held its thread for {:.1} ms{at} (threshold {:?}); a blocking call in an async fn?",
                        l.func,
                        l.ns as f64 / 1e6,
                        slow_poll()
                    );
                }
            })
            .ok()
            .map(|_| tx)
    });
    if let Some(tx) = tx {
        let _ = tx.try_send(SlowLine {
            func: func.to_owned(),
            location,
            ns,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_call_buckets_hold_what_they_say() {
        for polls in 1..5000u32 {
            let b = per_call_bucket(polls);
            assert!(u64::from(polls) <= per_call_at_most(b), "{polls} in {b}");
            if b > 0 {
                assert!(u64::from(polls) > per_call_at_most(b - 1), "{polls} in {b}");
            }
        }
        assert_eq!(per_call_bucket(u32::MAX), PER_CALL - 1);
    }
}
