//! A lock-free log-linear histogram for the recent window of a distribution.
//!
//! Buckets follow the HDR layout: every power of two is split into 64 equal sub-buckets, so a
//! bucket's midpoint is within 1/128 (0.78%) of any value in it. Values are bucketed by the bits
//! of their `f64` magnitude, which makes the same code serve nanoseconds, integers and floats.
//! Recording is one relaxed `fetch_add` on a counter; a power of two's 64 counters are
//! allocated the first time a value lands in it, so a latency spread over a few octaves costs a
//! few hundred bytes, and steady state allocates nothing.
//!
//! `hdrhistogram` itself needs `&mut` to record, which would put a lock on every call; this
//! module keeps its bucket layout and makes recording atomic instead.

use crate::shard::{add32, Lane};
use crate::slot::OnceBox;
use crate::sync::{AtomicU32, AtomicU64, Ordering};

const SUB_BITS: u32 = 6;
const SUB: usize = 1 << SUB_BITS;
/// Smallest magnitude kept apart from zero: 2^-32.
const EXP_MIN: i32 = -32;
/// Largest octave: [2^63, 2^64); larger magnitudes land in its top bucket.
const EXP_MAX: i32 = 63;
const OCTAVES: usize = (EXP_MAX - EXP_MIN + 1) as usize;

type Chunk = [AtomicU32; SUB];
type Table = [OnceBox<Chunk>; OCTAVES];

fn new_table() -> Table {
    std::array::from_fn(|_| OnceBox::default())
}

fn new_chunk() -> Chunk {
    std::array::from_fn(|_| AtomicU32::new(0))
}

/// Where a value lands.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Slot {
    Zero,
    Pos(usize, usize),
    Neg(usize, usize),
}

#[inline(always)]
fn slot_of(v: f64) -> Slot {
    let bits = v.to_bits();
    let neg = bits >> 63 == 1;
    let exp = ((bits >> 52) & 0x7ff) as i32 - 1023;
    if exp < EXP_MIN || v.is_nan() {
        return Slot::Zero;
    }
    let (oct, sub) = if exp > EXP_MAX {
        (OCTAVES - 1, SUB - 1)
    } else {
        (
            (exp - EXP_MIN) as usize,
            ((bits >> (52 - SUB_BITS)) as usize) & (SUB - 1),
        )
    };
    if neg {
        Slot::Neg(oct, sub)
    } else {
        Slot::Pos(oct, sub)
    }
}

/// The same slot as `slot_of(v as f64)` for a positive integer, without the float conversion
/// (the hot path of every duration).
#[inline(always)]
fn slot_of_u64(v: u64) -> Slot {
    if v == 0 {
        return Slot::Zero;
    }
    let exp = 63 - v.leading_zeros();
    // The 6 bits after the leading one, as the f64 mantissa would hold them.
    let sub = if exp >= SUB_BITS {
        (v >> (exp - SUB_BITS)) as usize
    } else {
        (v << (SUB_BITS - exp)) as usize
    } & (SUB - 1);
    Slot::Pos((exp as i32 - EXP_MIN) as usize, sub)
}

/// Midpoint of a bucket's magnitude range.
fn midpoint(oct: usize, sub: usize) -> f64 {
    let base = 2f64.powi(oct as i32 + EXP_MIN);
    base * (1.0 + (sub as f64 + 0.5) / SUB as f64)
}

/// A value that knows its bucket.
pub(crate) trait Bucketed: Copy {
    fn slot(self) -> Slot;
}

impl Bucketed for f64 {
    #[inline(always)]
    fn slot(self) -> Slot {
        slot_of(self)
    }
}

impl Bucketed for u64 {
    #[inline(always)]
    fn slot(self) -> Slot {
        slot_of_u64(self)
    }
}

impl Bucketed for i64 {
    #[inline(always)]
    fn slot(self) -> Slot {
        slot_of(self as f64)
    }
}

/// One window of counts: 64 counters per octave, allocated on demand.
pub(crate) struct Window {
    epoch: AtomicU64,
    zero: AtomicU32,
    pos: Table,
    neg: OnceBox<Table>,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            epoch: AtomicU64::new(u64::MAX),
            zero: AtomicU32::new(0),
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

impl Window {
    #[inline(always)]
    fn add(&self, slot: Slot, lane: Lane) {
        let counter = match slot {
            Slot::Zero => &self.zero,
            Slot::Pos(o, s) => &self.pos[o].get_or_init(new_chunk)[s],
            Slot::Neg(o, s) => &self.neg.get_or_init(new_table)[o].get_or_init(new_chunk)[s],
        };
        add32(counter, 1, lane);
    }

    /// Empties the window after its epoch moved on. Only a shared shard (threads beyond the
    /// exclusive shards) can see a value recorded by another thread as the window turns lost,
    /// or counted in the neighbouring epoch; only in the recent window, never in the
    /// cumulative count, sum, min or max.
    #[cold]
    fn clear(&self) {
        self.zero.store(0, Ordering::Relaxed);
        let tables = std::iter::once(&self.pos).chain(self.neg.get());
        for table in tables {
            for (_, c) in chunks(table) {
                for b in c.iter() {
                    b.store(0, Ordering::Relaxed);
                }
            }
        }
    }

    fn merge_into(&self, out: &mut Counts) {
        out.add(0, self.zero.load(Ordering::Relaxed));
        for (o, c) in chunks(&self.pos) {
            for (s, b) in c.iter().enumerate() {
                out.add(1 + (o * SUB + s) as i32, b.load(Ordering::Relaxed));
            }
        }
        if let Some(t) = self.neg.get() {
            for (o, c) in chunks(t) {
                for (s, b) in c.iter().enumerate() {
                    out.add(-1 - (o * SUB + s) as i32, b.load(Ordering::Relaxed));
                }
            }
        }
    }

    fn heap_bytes(&self) -> usize {
        let mut n = chunks(&self.pos).count() * std::mem::size_of::<Chunk>();
        if let Some(t) = self.neg.get() {
            n += std::mem::size_of::<Table>() + chunks(t).count() * std::mem::size_of::<Chunk>();
        }
        n
    }
}

/// Two windows taking turns: the one for the current epoch fills while the other holds the
/// previous epoch, so a reader always sees between one and two epochs of recent values.
#[derive(Default)]
pub(crate) struct Recent {
    windows: [Window; 2],
}

impl Recent {
    #[inline(always)]
    pub(crate) fn record<V: Bucketed>(&self, v: V, epoch: u64, lane: Lane) {
        let w = &self.windows[(epoch & 1) as usize];
        let seen = w.epoch.load(Ordering::Relaxed);
        if seen != epoch && !self.turn(w, seen, epoch) {
            return;
        }
        w.add(v.slot(), lane);
    }

    /// Moves `w` on to `epoch`, or says the sample is too old to keep: a window never moves
    /// back to an older epoch (a thread that read the clock long ago must not wipe a newer
    /// window).
    #[cold]
    fn turn(&self, w: &Window, mut seen: u64, epoch: u64) -> bool {
        loop {
            if seen == epoch {
                return true;
            }
            if seen != u64::MAX && epoch < seen {
                return false;
            }
            match w
                .epoch
                .compare_exchange(seen, epoch, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    w.clear();
                    return true;
                }
                // Another thread turned it meanwhile: look again (never give up a newer epoch).
                Err(now) => seen = now,
            }
        }
    }

    /// Adds the counts of the windows of `epoch` and the one before it.
    pub(crate) fn merge_into(&self, epoch: u64, out: &mut Counts) {
        for w in &self.windows {
            let e = w.epoch.load(Ordering::Acquire);
            if e == epoch || e.wrapping_add(1) == epoch {
                w.merge_into(out);
            }
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.windows.iter().map(Window::heap_bytes).sum()
    }
}

/// Merged bucket counts of any number of windows, ready for quantile queries. Sparse, so a
/// snapshot costs what the recorded octaves cost, not the whole range.
#[derive(Default)]
pub(crate) struct Counts {
    // Key orders buckets by value: negatives below zero below positives.
    map: std::collections::BTreeMap<i32, u64>,
}

impl Counts {
    pub(crate) fn new() -> Self {
        Counts::default()
    }

    fn add(&mut self, key: i32, n: u32) {
        if n > 0 {
            *self.map.entry(key).or_insert(0) += u64::from(n);
        }
    }

    /// Values in ascending order, as (bucket midpoint, count).
    pub(crate) fn into_sorted(self) -> Vec<(f64, u64)> {
        self.map
            .into_iter()
            .map(|(k, n)| {
                let i = k.unsigned_abs() as usize - usize::from(k != 0);
                let m = if k == 0 {
                    0.0
                } else {
                    midpoint(i / SUB, i % SUB)
                };
                (if k < 0 { -m } else { m }, n)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn midpoints_are_within_one_percent() {
        for v in [1.0, 3.0, 7.5, 1e-6, 123456.0, 9.99e12, 2f64.powi(62)] {
            let Slot::Pos(o, s) = slot_of(v) else {
                panic!("{v} not positive")
            };
            let m = midpoint(o, s);
            assert!(((m - v) / v).abs() <= 1.0 / 128.0 + 1e-12, "{v} -> {m}");
            let Slot::Neg(o2, s2) = slot_of(-v) else {
                panic!()
            };
            assert_eq!((o, s), (o2, s2));
        }
        assert_eq!(slot_of(0.0), Slot::Zero);
        for v in (0..5000u64).chain([1 << 40, u64::MAX, 123_456_789]) {
            assert_eq!(slot_of_u64(v), slot_of(v as f64), "{v}");
        }
        assert_eq!(slot_of(f64::NAN), Slot::Zero);
        assert_eq!(slot_of(f64::INFINITY), Slot::Pos(OCTAVES - 1, SUB - 1));
    }

    #[test]
    fn reset_clears_old_epoch() {
        let r = Recent::default();
        let lane = crate::shard::lane();
        r.record(5.0, 10, lane);
        r.record(5.0, 11, lane);
        let mut c = Counts::new();
        r.merge_into(11, &mut c);
        assert_eq!(c.into_sorted().iter().map(|x| x.1).sum::<u64>(), 2);
        r.record(5.0, 12, lane); // reuses epoch 10's window
        let mut c = Counts::new();
        r.merge_into(12, &mut c);
        assert_eq!(c.into_sorted().iter().map(|x| x.1).sum::<u64>(), 2);
        let mut c = Counts::new();
        r.merge_into(14, &mut c);
        assert!(c.into_sorted().is_empty());
    }
}
