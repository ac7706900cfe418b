//! Distributions: exact cumulative count, sum, min, max and most recent value, plus quantiles
//! over a recent window.
//!
//! The recent window is two rotating epochs of `2^k` nanoseconds (default 2^35 ns ≈ 34 s; see
//! [`set_recent_window`]), so the quantiles (`rmin r10 r50 r90 r99 rmax ravg`) describe the last
//! 34–69 seconds of values: a long-running process shows today's latency, not last week's.
//! Quantiles are within 1% of the true value of the same window (they are bucket midpoints,
//! at most 1/128 off, clamped to the exact min and max).

use crate::stats::hist::{Counts, HotCells, Recent, Slot, HOT_VALUES};
use crate::util::clock::Tick;
use crate::util::shard::{add64, Lane, Sharded};
use crate::util::sync::{AtomicPtr, AtomicU64, Ordering};
use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// An epoch is `2^WINDOW_SHIFT` raw clock ticks, so the hot path finds its epoch with one
/// shift of the end reading it already has. 0 means "not set yet": the default is computed on
/// first use from the clock's calibration.
static WINDOW_SHIFT: AtomicU32 = AtomicU32::new(0);

const DEFAULT_EPOCH: Duration = Duration::from_nanos(1 << 35);

fn shift_for(epoch: Duration) -> u32 {
    let want = epoch.as_nanos().max(1_000_000) as u64;
    // The smallest power of two of ticks that lasts at least `want`.
    (1..63)
        .find(|&s| crate::util::clock::ticks_to_nanos(1u64 << s) >= want)
        .unwrap_or(63)
}

/// Sets the length of one recent-window epoch, rounded up to a power of two of clock ticks
/// (at least 1 ms). Quantiles then cover between one and two such epochs. Meant to be set
/// once at start-up; values recorded before the change may fall out of the window early.
pub fn set_recent_window(epoch: Duration) {
    WINDOW_SHIFT.store(shift_for(epoch), Ordering::Relaxed);
}

/// How long the recent window spans right now: the previous epoch and the part of the current
/// one gone by (never more than the process has run). Values in the window divided by this is
/// their rate over the window, about the last minute by default.
pub fn recent_window_span() -> Duration {
    let now = Tick::now();
    let shift = window_shift();
    let into_epoch = crate::util::clock::ticks_to_nanos(now.0 & ((1u64 << shift) - 1));
    let span = crate::util::clock::ticks_to_nanos(1u64 << shift) + into_epoch;
    Duration::from_nanos(span.min(now.process_nanos()).max(1))
}

/// The length of one recent-window epoch (default about 34 s).
pub fn recent_window() -> Duration {
    Duration::from_nanos(crate::util::clock::ticks_to_nanos(1u64 << window_shift()))
}

#[inline(always)]
fn window_shift() -> u32 {
    match WINDOW_SHIFT.load(Ordering::Relaxed) {
        0 => init_shift(),
        s => s,
    }
}

#[cold]
fn init_shift() -> u32 {
    let s = shift_for(DEFAULT_EPOCH);
    let _ = WINDOW_SHIFT.compare_exchange(0, s, Ordering::Relaxed, Ordering::Relaxed);
    WINDOW_SHIFT.load(Ordering::Relaxed)
}

#[inline(always)]
pub(crate) fn epoch_of(t: Tick) -> u64 {
    t.0 >> window_shift()
}

/// The first tick of the epoch after the one `t` falls in.
pub(crate) fn epoch_end(t: Tick) -> Tick {
    let shift = window_shift();
    Tick(((t.0 >> shift) + 1).checked_shl(shift).unwrap_or(u64::MAX))
}

/// How a distribution's value type is stored in atomics.
pub(crate) trait DistValue: crate::stats::hist::Bucketed + Send + Sync + 'static {
    /// An order-preserving `u64` image of the value (for min and max).
    fn key(self) -> u64;
    /// The value of a key, as `f64`.
    fn key_to_f64(key: u64) -> f64;
    /// Adds the value to a sum kept in `AtomicU64` bits.
    #[doc(hidden)]
    fn add_sum(sum: &AtomicU64, v: Self, lane: Lane);
    /// Reads a sum kept in `AtomicU64` bits.
    fn sum_to_f64(bits: u64) -> f64;
}

impl DistValue for u64 {
    #[inline(always)]
    fn key(self) -> u64 {
        self
    }
    fn key_to_f64(key: u64) -> f64 {
        key as f64
    }
    #[inline(always)]
    fn add_sum(sum: &AtomicU64, v: Self, lane: Lane) {
        add64(sum, v, lane);
    }
    fn sum_to_f64(bits: u64) -> f64 {
        bits as f64
    }
}

impl DistValue for i64 {
    #[inline(always)]
    fn key(self) -> u64 {
        (self as u64) ^ (1 << 63)
    }
    fn key_to_f64(key: u64) -> f64 {
        (key ^ (1 << 63)) as i64 as f64
    }
    #[inline(always)]
    fn add_sum(sum: &AtomicU64, v: Self, lane: Lane) {
        // Two's complement: wrapping adds of the bit patterns give the signed sum.
        add64(sum, v as u64, lane);
    }
    fn sum_to_f64(bits: u64) -> f64 {
        bits as i64 as f64
    }
}

impl DistValue for f64 {
    #[inline(always)]
    fn key(self) -> u64 {
        let b = self.to_bits();
        if b >> 63 == 1 {
            !b
        } else {
            b | (1 << 63)
        }
    }
    fn key_to_f64(key: u64) -> f64 {
        f64::from_bits(if key >> 63 == 1 {
            key & !(1 << 63)
        } else {
            !key
        })
    }
    #[inline(always)]
    fn add_sum(sum: &AtomicU64, v: Self, lane: Lane) {
        let add = |b: u64| (f64::from_bits(b) + v).to_bits();
        if lane.exclusive {
            sum.store(add(sum.load(Ordering::Relaxed)), Ordering::Relaxed);
        } else {
            let _ = sum.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| Some(add(b)));
        }
    }
    fn sum_to_f64(bits: u64) -> f64 {
        f64::from_bits(bits)
    }
}

/// One thread shard's exact aggregates of a distribution; its histogram cells are in the
/// distribution's [`Recent`], shared by the shards (see there), so a shard is one line.
pub(crate) struct DistShard {
    count: AtomicU64,
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
    recent: AtomicU64,
    recent_at: AtomicU64,
    /// Cells of this shard's own, handed out by its window once it is hot; null until then
    /// (it writes the shared ones).
    cells: AtomicPtr<HotCells>,
}

impl Default for DistShard {
    fn default() -> Self {
        DistShard {
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
            recent: AtomicU64::new(0),
            recent_at: AtomicU64::new(0),
            cells: AtomicPtr::new(std::ptr::null_mut()),
        }
    }
}

impl DistShard {
    /// Records `v` observed at `now`; `window` is the distribution's (always the same one
    /// for a shard: it holds the cells the shard may have been handed).
    #[inline(always)]
    pub(crate) fn record<V: DistValue>(&self, window: &Recent, v: V, now: Tick, lane: Lane) {
        add64(&self.count, 1, lane);
        V::add_sum(&self.sum, v, lane);
        let k = v.key();
        if k < self.min.load(Ordering::Relaxed) {
            self.min.fetch_min(k, Ordering::Relaxed);
        }
        if k > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(k, Ordering::Relaxed);
        }
        self.recent.store(k, Ordering::Relaxed);
        self.recent_at.store(now.0, Ordering::Relaxed);
        let cells = self.cells.load(Ordering::Acquire);
        if cells.is_null() {
            self.record_shared(window, v.slot(), epoch_of(now));
        } else {
            // SAFETY: handed out by `window.hand_out` (see `record_shared`), which keeps its
            // cells as long as the window lives, and the owner of this shard keeps the window.
            window.record_hot(unsafe { &*cells }, v.slot(), epoch_of(now), lane);
        }
    }

    /// Records into the window's shared cells; a shard that has recorded enough to be hot
    /// asks for cells of its own.
    #[inline(never)]
    fn record_shared(&self, window: &Recent, slot: Slot, epoch: u64) {
        window.record(slot, epoch);
        if self
            .count
            .load(Ordering::Relaxed)
            .is_multiple_of(HOT_VALUES)
        {
            if let Some(c) = window.hand_out(slot) {
                self.cells
                    .store(std::ptr::from_ref(c).cast_mut(), Ordering::Release);
            }
        }
    }

    /// The largest value recorded, as its order-preserving key (the value itself for `u64`;
    /// 0 when none).
    pub(crate) fn max_key(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }
}

/// A point-in-time read of a distribution.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Snapshot {
    /// Values observed since creation.
    pub count: u64,
    /// Their exact sum (durations in nanoseconds).
    pub sum: f64,
    /// Smallest value ever observed (0 while empty).
    pub min: f64,
    /// Largest value ever observed (0 while empty).
    pub max: f64,
    /// The most recently observed value.
    pub recent: f64,
    /// The recent window as (value, count) in ascending value order.
    window: Vec<(f64, u64)>,
    /// Every value since the start, by bucket.
    buckets: Counts,
    /// Units of value per bucket unit (1e9 for durations in nanoseconds, bucketed in seconds).
    per_bucket_unit: f64,
    window_count: u64,
    /// Integer values (and durations): quantiles are whole numbers too.
    integral: bool,
}

impl Snapshot {
    /// Reads and merges shards and the windows their values went to (each window once).
    pub(crate) fn of<'a, V: DistValue>(
        shards: impl Iterator<Item = &'a DistShard>,
        windows: impl Iterator<Item = &'a Recent>,
    ) -> Self {
        let epoch = epoch_of(Tick::now());
        let mut s = Snapshot {
            integral: std::any::TypeId::of::<V>() != std::any::TypeId::of::<f64>(),
            per_bucket_unit: V::PER_BUCKET_UNIT,
            ..Snapshot::default()
        };
        let (mut min, mut max, mut sum_f, mut recent_at) = (u64::MAX, 0u64, 0f64, 0u64);
        let mut sum_bits = 0u64;
        let mut counts = Counts::new();
        let mut any_float = false;
        for sh in shards {
            let c = sh.count.load(Ordering::Relaxed);
            if c == 0 {
                continue;
            }
            s.count += c;
            let bits = sh.sum.load(Ordering::Relaxed);
            // Integer sums add exactly in u64 bits; float sums add as floats.
            if std::any::TypeId::of::<V>() == std::any::TypeId::of::<f64>() {
                any_float = true;
                sum_f += f64::from_bits(bits);
            } else {
                sum_bits = sum_bits.wrapping_add(bits);
            }
            min = min.min(sh.min.load(Ordering::Relaxed));
            max = max.max(sh.max.load(Ordering::Relaxed));
            let at = sh.recent_at.load(Ordering::Relaxed);
            if at >= recent_at {
                recent_at = at;
                s.recent = V::key_to_f64(sh.recent.load(Ordering::Relaxed));
            }
        }
        if s.count == 0 {
            return s;
        }
        for w in windows {
            w.merge_into(epoch, &mut counts);
            w.cumulative_into(&mut s.buckets);
        }
        s.sum = if any_float {
            sum_f
        } else {
            V::sum_to_f64(sum_bits)
        };
        s.min = V::key_to_f64(min);
        s.max = V::key_to_f64(max);
        s.window = counts
            .sorted()
            .into_iter()
            .map(|(m, n)| (m * V::PER_BUCKET_UNIT, n))
            .collect();
        s.window_count = s.window.iter().map(|w| w.1).sum();
        s
    }

    /// Every value since the start as a native (sparse exponential) histogram: the layout of
    /// Prometheus native histograms at schema 6, in the unit Prometheus and OTLP use (seconds
    /// for durations).
    pub fn histogram(&self) -> Histogram {
        Histogram {
            count: self.count,
            // Divided, not multiplied by 1e-9: an integer of nanoseconds over 1e9 is the
            // double nearest the exact decimal.
            sum: self.sum / self.per_bucket_unit,
            zero_count: self.buckets.zero,
            positive: self.buckets.pos.iter().map(|(&k, &n)| (k, n)).collect(),
            negative: self.buckets.neg.iter().map(|(&k, &n)| (k, n)).collect(),
        }
    }

    /// Mean of all values ever observed.
    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }

    /// Values in the recent window.
    pub fn window_count(&self) -> u64 {
        self.window_count
    }

    /// The `q` quantile (0..=1) of the recent window, or `None` if it is empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.window_count == 0 {
            return None;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        // When the window holds every value ever seen, its extremes are the exact min and max.
        if self.window_count == self.count {
            if q == 0.0 {
                return Some(self.min);
            }
            if q == 1.0 {
                return Some(self.max);
            }
        }
        // Nearest rank: the smallest value with at least q of the window at or below it.
        let rank = ((q * self.window_count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        let mut at = self.window.last().map_or(0.0, |w| w.0);
        for &(v, n) in &self.window {
            seen += n;
            if seen >= rank {
                at = v;
                break;
            }
        }
        let at = if self.integral { at.round() } else { at };
        Some(at.clamp(self.min, self.max))
    }

    /// Mean of the recent window (from bucket midpoints), never outside the window's smallest
    /// and largest quantile; a whole number for integer values and durations (nanoseconds), as
    /// every other figure of theirs is, so it prints exactly.
    pub fn window_avg(&self) -> Option<f64> {
        let lo = self.quantile(0.0)?;
        let hi = self.quantile(1.0)?;
        let avg =
            self.window.iter().map(|&(v, n)| v * n as f64).sum::<f64>() / self.window_count as f64;
        let avg = if self.integral { avg.round() } else { avg };
        Some(avg.clamp(lo, hi))
    }

    /// Emits the distribution's fields in the Go monkit order, each value divided by `unit`
    /// (1e9 turns nanoseconds into seconds; dividing an integer count of nanoseconds gives the
    /// double nearest the exact decimal, which prints in its shortest exact form)
    /// (durations are kept in nanoseconds and reported in seconds).
    pub(crate) fn fields(&self, unit: f64, cb: &mut dyn FnMut(&str, f64)) {
        cb("count", self.count as f64);
        if self.count == 0 {
            return;
        }
        cb("sum", self.sum / unit);
        cb("min", self.min / unit);
        cb("max", self.max / unit);
        if self.window_count > 0 {
            let q = |x: f64| self.quantile(x).unwrap_or(0.0) / unit;
            cb("rmin", q(0.0));
            cb("ravg", self.window_avg().unwrap_or(0.0) / unit);
            cb("r10", q(0.1));
            cb("r50", q(0.5));
            cb("r90", q(0.9));
            cb("r99", q(0.99));
            cb("rmax", q(1.0));
        }
        cb("recent", self.recent / unit);
    }
}

/// A distribution's values since the start, in exponential buckets (see
/// [`Snapshot::histogram`]). Bucket `k` holds magnitudes in `(2^((k-1)/64), 2^(k/64)]`:
/// index `k` of a Prometheus native histogram of [`schema`](Histogram::SCHEMA) 6, or of an
/// OTLP exponential histogram of scale 6 at offset `k - 1`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// Values observed.
    pub count: u64,
    /// Their sum (seconds for durations).
    pub sum: f64,
    /// Values whose magnitude is at most [`ZERO_THRESHOLD`](Histogram::ZERO_THRESHOLD).
    pub zero_count: u64,
    /// `(bucket key, count)` of positive values, by key, empty buckets left out.
    pub positive: Vec<(i32, u64)>,
    /// `(bucket key, count)` of negative values by the key of their magnitude.
    pub negative: Vec<(i32, u64)>,
}

impl Histogram {
    /// The native histogram schema of the buckets.
    pub const SCHEMA: i32 = crate::stats::hist::SCHEMA;
    /// Magnitudes at or below this count as zero.
    pub const ZERO_THRESHOLD: f64 = crate::stats::hist::ZERO_THRESHOLD;

    /// The upper bound of bucket `key` (its lower bound is that of `key - 1`).
    pub fn upper_bound(key: i32) -> f64 {
        crate::stats::hist::upper_bound(key)
    }

    /// How many values are at most `le` (for classic buckets). Exact when `le` is a bucket
    /// bound (a power of 2^(1/64)); otherwise the bucket holding `le` counts as above it, so
    /// the count may miss values within 1.1% below `le`.
    pub fn count_at_most(&self, le: f64) -> u64 {
        // A negative value of magnitude bucket k lies in [-2^(k/64), -2^((k-1)/64)).
        let neg: u64 = self
            .negative
            .iter()
            .filter(|&&(k, _)| -Self::upper_bound(k - 1) <= le)
            .map(|x| x.1)
            .sum();
        let zero = if le >= 0.0 { self.zero_count } else { 0 };
        let pos: u64 = self
            .positive
            .iter()
            .take_while(|&&(k, _)| Self::upper_bound(k) <= le)
            .map(|x| x.1)
            .sum();
        neg + zero + pos
    }
}

/// A sharded distribution of `V`.
pub(crate) struct Dist<V> {
    shards: Sharded<DistShard>,
    window: Recent,
    _v: std::marker::PhantomData<fn(V)>,
}

impl<V: DistValue> Dist<V> {
    pub(crate) fn new() -> Self {
        Dist {
            shards: Sharded::new(),
            window: Recent::default(),
            _v: std::marker::PhantomData,
        }
    }

    #[inline(always)]
    pub(crate) fn observe(&self, v: V) {
        let (shard, lane) = self.shards.local();
        shard.record(&self.window, v, Tick::now(), lane);
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot::of::<V>(self.shards.iter(), std::iter::once(&self.window))
    }
}
