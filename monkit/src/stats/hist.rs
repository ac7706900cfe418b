//! A lock-free exponential histogram for the recent window of a distribution, and its
//! cumulative twin for histograms a fleet can add up.
//!
//! Buckets are those of Prometheus native histograms at schema 6: bucket `k` holds the
//! magnitudes in `(2^((k-1)/64), 2^(k/64)]`, so every power of two is split into 64 buckets
//! of equal ratio (each about 1.09% wide; its midpoint is within 0.55% of any value in it), and
//! the counts map onto a native histogram exactly, bucket for bucket. Durations are bucketed
//! by their value in seconds, the unit Prometheus uses, so that mapping stays exact for them
//! too. Magnitudes up to 2^-32 count as zero (the zero bucket's width).
//!
//! Recording is one relaxed add on a counter, found from the value's bits with a table
//! lookup and one comparison; an octave's 64 counters are allocated the first time a value
//! lands in it, so a latency spread over a few octaves costs a few hundred bytes, and steady
//! state allocates nothing. The cells are not per thread shard: a distribution shares one set
//! and hands a few more to its hottest shards ([`Recent`]), so its memory does not grow with
//! the shard count. `hdrhistogram` needs `&mut` to record, which would put a lock on
//! every call, and has linear sub-buckets that no native histogram schema can represent.

use crate::util::shard::{add32, Lane};
use crate::util::slot::OnceBox;
use crate::util::sync::{AtomicU32, AtomicU64, Ordering};

/// Buckets per power of two: Prometheus schema 6.
const SUB: usize = 64;
/// The native histogram schema the buckets are.
pub(crate) const SCHEMA: i32 = 6;
/// Magnitudes at or below 2^-32 are zero.
pub(crate) const ZERO_THRESHOLD: f64 = 1.0 / 4_294_967_296.0;
/// The octaves kept apart: magnitudes in (2^EXP_LOW, 2^EXP_HIGH]. Under loom the range is a
/// few octaves, so a model's every read of the tables stays small enough to explore.
const EXP_LOW: i32 = if cfg!(loom) { -2 } else { -32 };
const EXP_HIGH: i32 = if cfg!(loom) { 2 } else { 64 };
/// Lowest and highest bucket keys: (2^-32, 2^(-32+1/64)] and (.., 2^64] (larger magnitudes
/// land in the top bucket).
const KEY_MIN: i32 = EXP_LOW * 64 + 1;
const KEY_MAX: i32 = EXP_HIGH * 64;
const OCTAVES: usize = ((KEY_MAX - KEY_MIN) as usize) / SUB + 1;

use super::hist_cells::{NS_CELLS, VALUE_CELLS};

const MANTISSA: u64 = (1 << 52) - 1;

/// The key within its octave of a mantissa, from a cell table: one load, one comparison.
#[inline(always)]
fn key_in_octave(cells: &[u64; 256], m: u64) -> i32 {
    let cell = cells[(m >> 44) as usize];
    (cell >> 52) as i32 + i32::from(m > cell & MANTISSA)
}

/// An octave's counters, for each half of a set of cells.
type Chunk = [[AtomicU32; SUB]; 2];
type Table = [OnceBox<Chunk>; OCTAVES];

fn new_table() -> Table {
    std::array::from_fn(|_| OnceBox::default())
}

fn new_chunk() -> Chunk {
    std::array::from_fn(|_| std::array::from_fn(|_| AtomicU32::new(0)))
}

/// Where a value lands: a bucket key (see the module doc) of its magnitude, by sign.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Slot {
    Zero,
    Pos(i32),
    Neg(i32),
}

/// Octave and bucket within it of a key, for the tables.
#[inline(always)]
fn place(key: i32) -> (usize, usize) {
    #[cfg(loom)]
    let key = key.clamp(KEY_MIN, KEY_MAX);
    let i = (key - KEY_MIN) as usize;
    (i / SUB, i % SUB)
}

fn key_at(octave: usize, sub: usize) -> i32 {
    (octave * SUB + sub) as i32 + KEY_MIN
}

#[inline(always)]
fn slot_of(v: f64) -> Slot {
    let bits = v.to_bits();
    let mag = bits & !(1 << 63);
    let exp = (mag >> 52) as i32 - 1023;
    let m = mag & ((1 << 52) - 1);
    if v.is_nan() || exp < EXP_LOW || (exp == EXP_LOW && m == 0) {
        return Slot::Zero;
    }
    let key = if exp >= EXP_HIGH {
        KEY_MAX
    } else {
        exp * SUB as i32 + key_in_octave(&VALUE_CELLS, m)
    };
    if bits >> 63 == 1 {
        Slot::Neg(key)
    } else {
        Slot::Pos(key)
    }
}

/// The upper bound of bucket `key`: 2^(key/64).
pub(crate) fn upper_bound(key: i32) -> f64 {
    (f64::from(key) / SUB as f64).exp2()
}

/// The midpoint of bucket `key`.
fn midpoint(key: i32) -> f64 {
    upper_bound(key) * (1.0 + (-1.0 / SUB as f64).exp2()) / 2.0
}

/// A value that knows its bucket.
pub(crate) trait Bucketed: Copy {
    /// Units of the value per unit of bucket magnitude: durations, kept in nanoseconds, are
    /// bucketed in seconds (1e9).
    const PER_BUCKET_UNIT: f64;
    fn slot(self) -> Slot;
}

impl Bucketed for f64 {
    const PER_BUCKET_UNIT: f64 = 1.0;
    #[inline(always)]
    fn slot(self) -> Slot {
        slot_of(self)
    }
}

/// Nanoseconds of a duration, bucketed by their value in seconds without leaving integers:
/// the bounds 1e9 * 2^(k/64) ns fall at the same 64 mantissas in every octave of nanoseconds.
impl Bucketed for u64 {
    const PER_BUCKET_UNIT: f64 = 1e9;
    #[inline(always)]
    fn slot(self) -> Slot {
        if self == 0 {
            return Slot::Zero;
        }
        let e = 63 - self.leading_zeros();
        // The 52 bits after the leading one, as the f64 mantissa would hold them.
        let m = if e >= 52 {
            self >> (e - 52)
        } else {
            self << (52 - e)
        } & MANTISSA;
        Slot::Pos(e as i32 * SUB as i32 + key_in_octave(&NS_CELLS, m) - 2048)
    }
}

impl Bucketed for i64 {
    const PER_BUCKET_UNIT: f64 = 1.0;
    #[inline(always)]
    fn slot(self) -> Slot {
        slot_of(self as f64)
    }
}

/// Two halves of histogram cells, one for each of the two epochs taking turns.
trait Halves {
    fn epoch(&self, half: usize) -> &AtomicU64;

    /// Every (bucket, counter) of one half.
    fn each(&self, half: usize, f: impl FnMut(Slot, &AtomicU32));

    /// Moves one half's counts into `into` as its epoch moves on, emptying it. Each counter
    /// is swapped out, so a value added meanwhile stays either in what moved or in the half
    /// (then counted in the new epoch): in the cumulative counts exactly once.
    #[cold]
    fn fold_into(&self, half: usize, into: &Cumulative) {
        self.each(half, |slot, b| {
            into.add_n(slot, u64::from(b.swap(0, Ordering::Relaxed)))
        });
    }

    fn merge_into(&self, half: usize, out: &mut Counts) {
        self.each(half, |slot, b| {
            out.add(&slot, u64::from(b.load(Ordering::Relaxed)))
        });
    }
}

/// A distribution's shared histogram cells: for each half, 64 counters per octave (an
/// octave's counters of both halves allocated together, on demand), any value.
pub(crate) struct Cells {
    /// The epoch each half holds; `u64::MAX` before its first.
    epochs: [AtomicU64; 2],
    zero: [AtomicU32; 2],
    pos: Table,
    neg: OnceBox<Table>,
}

impl Default for Cells {
    fn default() -> Self {
        Cells {
            epochs: [AtomicU64::new(u64::MAX), AtomicU64::new(u64::MAX)],
            zero: [AtomicU32::new(0), AtomicU32::new(0)],
            pos: new_table(),
            neg: OnceBox::default(),
        }
    }
}

fn chunks(table: &Table) -> impl Iterator<Item = (usize, &Chunk)> {
    table
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.get().map(|c| (i, c)))
}

impl Cells {
    #[inline(always)]
    fn add(&self, half: usize, slot: Slot, lane: Lane) {
        let counter = match slot {
            Slot::Zero => &self.zero[half],
            Slot::Pos(k) => {
                let (o, s) = place(k);
                &self.pos[o].get_or_init(new_chunk)[half][s]
            }
            Slot::Neg(k) => {
                let (o, s) = place(k);
                &self.neg.get_or_init(new_table)[o].get_or_init(new_chunk)[half][s]
            }
        };
        add32(counter, 1, lane);
    }

    fn heap_bytes(&self) -> usize {
        let mut n = chunks(&self.pos).count() * std::mem::size_of::<Chunk>();
        if let Some(t) = self.neg.get() {
            n += std::mem::size_of::<Table>() + chunks(t).count() * std::mem::size_of::<Chunk>();
        }
        n
    }
}

impl Halves for Cells {
    fn epoch(&self, half: usize) -> &AtomicU64 {
        &self.epochs[half]
    }

    fn each(&self, half: usize, mut f: impl FnMut(Slot, &AtomicU32)) {
        f(Slot::Zero, &self.zero[half]);
        for (o, c) in chunks(&self.pos) {
            for (s, b) in c[half].iter().enumerate() {
                f(Slot::Pos(key_at(o, s)), b);
            }
        }
        if let Some(t) = self.neg.get() {
            for (o, c) in chunks(t) {
                for (s, b) in c[half].iter().enumerate() {
                    f(Slot::Neg(key_at(o, s)), b);
                }
            }
        }
    }
}

/// Buckets a hot shard's cells hold: four octaves, a factor of 16.
const HOT_KEYS: usize = 4 * SUB;

/// A hot shard's own cells: the four octaves around where its values fall, inline, so a
/// value's counter is found with a subtraction and a comparison, no pointer to follow. The
/// rest (zero, negative values, outliers) go to the shared cells.
pub(crate) struct HotCells {
    epochs: [AtomicU64; 2],
    /// The lowest bucket key held.
    lo: i32,
    counts: [[AtomicU32; HOT_KEYS]; 2],
}

impl HotCells {
    /// Cells for positive values from one octave below `key`'s bucket to three above.
    fn around(key: i32) -> Self {
        HotCells {
            epochs: [AtomicU64::new(u64::MAX), AtomicU64::new(u64::MAX)],
            lo: (key - SUB as i32).clamp(KEY_MIN, KEY_MAX + 1 - HOT_KEYS as i32),
            counts: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU32::new(0))),
        }
    }
}

impl Halves for HotCells {
    fn epoch(&self, half: usize) -> &AtomicU64 {
        &self.epochs[half]
    }

    fn each(&self, half: usize, mut f: impl FnMut(Slot, &AtomicU32)) {
        for (i, b) in self.counts[half].iter().enumerate() {
            f(Slot::Pos(self.lo + i as i32), b);
        }
    }
}

/// Cells a distribution hands to hot shards, at most: what bounds its memory whatever the
/// number of shards (see [`Recent`]).
const HOT_CELLS: usize = 4;
/// A shard is hot once it has recorded this many values (a power of two).
pub(crate) const HOT_VALUES: u64 = 256;

/// The recent window of a distribution and its counts since the start, for all its shards.
///
/// Shards write the shared [`Cells`] with locked adds until they have recorded
/// [`HOT_VALUES`]; then the first [`HOT_CELLS`] such shards get [`HotCells`] of their own,
/// written with plain stores by a shard's only thread, and later ones go on sharing (threads
/// take the lowest free shard, so a pool's new thread takes up the hot shard of one gone). So
/// a distribution holds at most one shared set (about 0.8 KB and 0.5 KB an octave in use)
/// and four hot ones (2 KB each) however many shards write it, and the shards themselves hold
/// only their exact aggregates. Each half of a set turns to the next epoch on its own; its
/// counts move to `folded` as it turns, so the counts since the start are `folded` plus every
/// set's halves, and recording stays one add.
#[derive(Default)]
pub(crate) struct Recent {
    shared: Cells,
    hot: [OnceBox<HotCells>; HOT_CELLS],
    /// Hot cells handed out (may run past `HOT_CELLS`: those asked too late get none).
    handed: AtomicU32,
    folded: Cumulative,
    /// Odd while a fold moves counts, so a reader of the cumulative counts can tell it saw
    /// them mid-move (a seqlock; folds happen once an epoch per set).
    folding: AtomicU64,
}

impl Recent {
    /// Records into the shared cells, with locked adds.
    #[inline]
    pub(crate) fn record(&self, slot: Slot, epoch: u64) {
        let half = (epoch & 1) as usize;
        if self.current(&self.shared, half, epoch) {
            self.shared.add(half, slot, Lane::SHARED);
        } else {
            self.folded.add_n(slot, 1);
        }
    }

    /// Records into a hot shard's cells (handed out by [`Recent::hand_out`]), written as
    /// `lane` says; what they do not hold goes to the shared cells.
    #[inline(always)]
    pub(crate) fn record_hot(&self, hot: &HotCells, slot: Slot, epoch: u64, lane: Lane) {
        if let Slot::Pos(k) = slot {
            let i = k.wrapping_sub(hot.lo) as u32 as usize;
            if i < HOT_KEYS {
                let half = (epoch & 1) as usize;
                if self.current(hot, half, epoch) {
                    add32(&hot.counts[half][i], 1, lane);
                } else {
                    self.folded.add_n(slot, 1);
                }
                return;
            }
        }
        self.record(slot, epoch);
    }

    /// Whether a half holds `epoch`, turning it there if it holds an older one; false when
    /// the value is too old for the recent window (then it counts since the start only).
    #[inline(always)]
    fn current(&self, cells: &impl Halves, half: usize, epoch: u64) -> bool {
        let seen = cells.epoch(half).load(Ordering::Relaxed);
        seen == epoch || self.turn(cells, half, seen, epoch)
    }

    /// Cells of their own for a hot shard whose values fall around `slot`, while any are
    /// left.
    #[cold]
    pub(crate) fn hand_out(&self, slot: Slot) -> Option<&HotCells> {
        let Slot::Pos(key) = slot else { return None };
        if self.handed.load(Ordering::Relaxed) as usize >= HOT_CELLS {
            return None;
        }
        let i = self.handed.fetch_add(1, Ordering::Relaxed) as usize;
        Some(self.hot.get(i)?.get_or_init(|| HotCells::around(key)))
    }

    fn hot_sets(&self) -> impl Iterator<Item = &HotCells> {
        self.hot.iter().filter_map(OnceBox::get)
    }

    /// The first hot cells handed out (for the models).
    #[cfg(loom)]
    pub(crate) fn first_hot(&self) -> Option<&HotCells> {
        self.hot_sets().next()
    }

    /// Adds the counts since the start: folded ones and every half, read consistently.
    pub(crate) fn cumulative_into(&self, out: &mut Counts) {
        loop {
            let before = self.folding.load(Ordering::Acquire);
            if before & 1 == 1 {
                crate::util::sync::yield_now();
                continue;
            }
            let mut c = Counts::new();
            self.folded.merge_into(&mut c);
            for half in 0..2 {
                self.shared.merge_into(half, &mut c);
                for hot in self.hot_sets() {
                    hot.merge_into(half, &mut c);
                }
            }
            crate::util::sync::fence(Ordering::Acquire);
            if self.folding.load(Ordering::Relaxed) == before {
                out.merge(c);
                return;
            }
        }
    }

    /// Moves a half of `cells` on to `epoch`, or says the sample is too old to keep: a half
    /// never moves back to an older epoch (a thread that read the clock long ago must not
    /// wipe a newer one).
    #[cold]
    fn turn(&self, cells: &impl Halves, half: usize, mut seen: u64, epoch: u64) -> bool {
        loop {
            if seen == epoch {
                return true;
            }
            if seen != u64::MAX && epoch < seen {
                return false;
            }
            match cells.epoch(half).compare_exchange(
                seen,
                epoch,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.folding.fetch_add(1, Ordering::Relaxed);
                    // A reader that sees any count the fold moved also sees the odd number
                    // (a seqlock's writer side; loom found the reader summing mid-move).
                    crate::util::sync::fence(Ordering::Release);
                    cells.fold_into(half, &self.folded);
                    self.folding.fetch_add(1, Ordering::Release);
                    return true;
                }
                // Another thread turned it meanwhile: look again (never give up a newer epoch).
                Err(now) => seen = now,
            }
        }
    }

    /// Adds the counts of the halves of `epoch` and the one before it.
    pub(crate) fn merge_into(&self, epoch: u64, out: &mut Counts) {
        let recent = |e: u64| e == epoch || e.wrapping_add(1) == epoch;
        for half in 0..2 {
            if recent(self.shared.epochs[half].load(Ordering::Acquire)) {
                self.shared.merge_into(half, out);
            }
            for hot in self.hot_sets() {
                if recent(hot.epochs[half].load(Ordering::Acquire)) {
                    hot.merge_into(half, out);
                }
            }
        }
    }

    /// Heap bytes beyond the value itself: octaves in use, cells handed out.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.shared.heap_bytes()
            + self.hot_sets().count() * std::mem::size_of::<HotCells>()
            + self.folded.heap_bytes()
    }
}

/// Merged bucket counts, ready for quantile queries or export. Sparse, so a snapshot costs
/// what the recorded octaves cost, not the whole range.
#[derive(Default, Clone, Debug, PartialEq)]
pub(crate) struct Counts {
    pub(crate) zero: u64,
    /// By bucket key.
    pub(crate) pos: std::collections::BTreeMap<i32, u64>,
    pub(crate) neg: std::collections::BTreeMap<i32, u64>,
}

impl Counts {
    pub(crate) fn new() -> Self {
        Counts::default()
    }

    pub(crate) fn merge(&mut self, other: Counts) {
        self.zero += other.zero;
        for (k, n) in other.pos {
            *self.pos.entry(k).or_insert(0) += n;
        }
        for (k, n) in other.neg {
            *self.neg.entry(k).or_insert(0) += n;
        }
    }

    fn add(&mut self, slot: &Slot, n: u64) {
        if n == 0 {
            return;
        }
        match *slot {
            Slot::Zero => self.zero += n,
            Slot::Pos(k) => *self.pos.entry(k).or_insert(0) += n,
            Slot::Neg(k) => *self.neg.entry(k).or_insert(0) += n,
        }
    }

    /// Values in ascending order, as (bucket midpoint, count), in bucket units.
    pub(crate) fn sorted(&self) -> Vec<(f64, u64)> {
        let neg = self.neg.iter().rev().map(|(&k, &n)| (-midpoint(k), n));
        let zero = (self.zero > 0).then_some((0.0, self.zero));
        let pos = self.pos.iter().map(|(&k, &n)| (midpoint(k), n));
        neg.chain(zero).chain(pos).collect()
    }
}

/// Counts moved out of the cells' halves as their epochs turn, never cleared: with the halves'
/// own, what a cumulative (Prometheus, OTLP) histogram reports. 64-bit counters, as a process
/// may run long.
pub(crate) struct Cumulative {
    zero: AtomicU64,
    pos: [OnceBox<[AtomicU64; SUB]>; OCTAVES],
    neg: OnceBox<[OnceBox<[AtomicU64; SUB]>; OCTAVES]>,
}

impl Default for Cumulative {
    fn default() -> Self {
        Cumulative {
            zero: AtomicU64::new(0),
            pos: std::array::from_fn(|_| OnceBox::default()),
            neg: OnceBox::default(),
        }
    }
}

fn new_chunk64() -> [AtomicU64; SUB] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

impl Cumulative {
    /// Adds `n` (off the hot path: folds and late values).
    fn add_n(&self, slot: Slot, n: u64) {
        if n == 0 {
            return;
        }
        let counter = match slot {
            Slot::Zero => &self.zero,
            Slot::Pos(k) => {
                let (o, s) = place(k);
                &self.pos[o].get_or_init(new_chunk64)[s]
            }
            Slot::Neg(k) => {
                let (o, s) = place(k);
                &self
                    .neg
                    .get_or_init(|| std::array::from_fn(|_| OnceBox::default()))[o]
                    .get_or_init(new_chunk64)[s]
            }
        };
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn merge_into(&self, out: &mut Counts) {
        out.zero += self.zero.load(Ordering::Relaxed);
        let mut table = |t: &[OnceBox<[AtomicU64; SUB]>; OCTAVES], neg: bool| {
            for (o, c) in t.iter().enumerate() {
                let Some(c) = c.get() else { continue };
                for (s, b) in c.iter().enumerate() {
                    let k = key_at(o, s);
                    let slot = if neg { Slot::Neg(k) } else { Slot::Pos(k) };
                    out.add(&slot, b.load(Ordering::Relaxed));
                }
            }
        };
        table(&self.pos, false);
        if let Some(t) = self.neg.get() {
            table(t, true);
        }
    }

    fn heap_bytes(&self) -> usize {
        let chunk = std::mem::size_of::<[AtomicU64; SUB]>();
        let mut n = self.pos.iter().filter(|c| c.get().is_some()).count() * chunk;
        if let Some(t) = self.neg.get() {
            n += std::mem::size_of_val(t) + t.iter().filter(|c| c.get().is_some()).count() * chunk;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_native_schema_6() {
        for v in [
            1.0,
            3.0,
            7.5,
            1e-6,
            123456.0,
            9.99e12,
            2f64.powi(62),
            0.004,
            1.5e-9,
        ] {
            let Slot::Pos(k) = slot_of(v) else {
                panic!("{v} not positive")
            };
            // (2^((k-1)/64), 2^(k/64)]: the native histogram bucket of index k at schema 6.
            assert!(
                upper_bound(k - 1) < v && v <= upper_bound(k) * (1.0 + 1e-15),
                "{v}: {k}"
            );
            let m = midpoint(k);
            assert!(((m - v) / v).abs() <= 0.0055, "{v} -> {m}");
            assert_eq!(slot_of(-v), Slot::Neg(k));
        }
        // Powers of two are upper bounds, inclusive.
        assert_eq!(slot_of(1.0), Slot::Pos(0));
        assert_eq!(slot_of(2.0), Slot::Pos(64));
        assert_eq!(slot_of(0.5), Slot::Pos(-64));
        assert_eq!(slot_of(1.0 + f64::EPSILON), Slot::Pos(1));
        assert_eq!(slot_of(0.0), Slot::Zero);
        assert_eq!(slot_of(ZERO_THRESHOLD), Slot::Zero);
        assert_eq!(slot_of(ZERO_THRESHOLD * 1.0001), Slot::Pos(KEY_MIN));
        assert_eq!(slot_of(f64::NAN), Slot::Zero);
        assert_eq!(slot_of(f64::INFINITY), Slot::Pos(KEY_MAX));
        // Every bound is the upper end of its bucket, and the next double starts the next.
        for k in -200..200 {
            let b = upper_bound(k);
            assert_eq!(slot_of(b), Slot::Pos(k), "{k}");
            assert_eq!(
                slot_of(f64::from_bits(b.to_bits() + 1)),
                Slot::Pos(k + 1),
                "{k}"
            );
        }
        // Durations: nanoseconds bucketed in seconds.
        assert_eq!(1_000_000_000u64.slot(), Slot::Pos(0));
    }

    #[test]
    fn reset_clears_old_epoch() {
        let r = Recent::default();
        r.record(5.0.slot(), 10);
        r.record(5.0.slot(), 11);
        let mut c = Counts::new();
        r.merge_into(11, &mut c);
        assert_eq!(c.sorted().iter().map(|x| x.1).sum::<u64>(), 2);
        r.record(5.0.slot(), 12); // reuses epoch 10's half
        let mut c = Counts::new();
        r.merge_into(12, &mut c);
        assert_eq!(c.sorted().iter().map(|x| x.1).sum::<u64>(), 2);
        let mut c = Counts::new();
        r.merge_into(14, &mut c);
        assert!(c.sorted().is_empty());
    }
}
