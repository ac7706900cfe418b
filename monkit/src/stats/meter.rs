//! Meters: a total and a rate of events.

use crate::util::clock::process_nanos_now;
use crate::util::shard::{add64, Sharded};
use crate::util::sync::{AtomicU64, Ordering};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;

/// How far back a meter's rate looks.
const RATE_WINDOW_NS: u64 = 60_000_000_000;

#[derive(Default)]
struct Cell(AtomicU64);

pub(crate) struct MeterInner {
    total: Sharded<Cell>,
    /// What `reset`/`set_total` took off the shards' sum: the total is the sum less this, so
    /// the hot path's plain per-thread stores never race with a reset.
    base: AtomicU64,
    /// Serialises resets (never taken by `mark`).
    resetting: Mutex<()>,
    // (time, total) readings taken by readers; the hot path never touches them.
    readings: Mutex<VecDeque<(u64, u64)>>,
    /// (time, total) the rate counts from when no reading is old enough: creation, or the
    /// last reset.
    origin: Mutex<(u64, u64)>,
}

/// Counts events; reports their `total` and their `rate` per second over the last minute (or
/// since creation, for a younger meter, so the rate is right immediately).
///
/// ```
/// static MON: monkit::Scope = monkit::scope!();
/// let requests = MON.meter("requests");
/// requests.mark(1);
/// assert_eq!(requests.total(), 1);
/// ```
#[derive(Clone)]
pub struct Meter(pub(crate) Arc<MeterInner>);
impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("total", &self.total())
            .finish()
    }
}

impl Meter {
    pub(crate) fn new() -> Meter {
        Meter(Arc::new(MeterInner {
            total: Sharded::new(),
            base: AtomicU64::new(0),
            resetting: Mutex::new(()),
            readings: Mutex::new(VecDeque::new()),
            origin: Mutex::new((process_nanos_now(), 0)),
        }))
    }

    /// Records `n` events.
    #[inline]
    pub fn mark(&self, n: u64) {
        let (cell, lane) = self.0.total.local();
        add64(&cell.0, n, lane);
    }

    fn sum(&self) -> u64 {
        self.0
            .total
            .iter()
            .map(|c| c.0.load(Ordering::Relaxed))
            .fold(0u64, u64::wrapping_add)
    }

    /// Events since creation (or since the last [`reset`](Meter::reset)).
    pub fn total(&self) -> u64 {
        self.sum().wrapping_sub(self.0.base.load(Ordering::Relaxed))
    }

    /// Sets the total to 0 and returns what it was (Go monkit's `Meter.Reset`). Events marked
    /// meanwhile count on one side or the other, never both. The rate starts over.
    ///
    /// ```
    /// static MON: monkit::Scope = monkit::scope!();
    /// let m = MON.meter("batches");
    /// m.mark(5);
    /// assert_eq!(m.reset(), 5);
    /// assert_eq!(m.total(), 0);
    /// m.set_total(40);
    /// assert_eq!(m.total(), 40);
    /// ```
    pub fn reset(&self) -> u64 {
        self.set_total(0)
    }

    /// Sets the total to `n` and returns what it was. The rate starts over.
    pub fn set_total(&self, n: u64) -> u64 {
        let _one = self.0.resetting.lock();
        let sum = self.sum();
        let before = sum.wrapping_sub(self.0.base.load(Ordering::Relaxed));
        self.0.base.store(sum.wrapping_sub(n), Ordering::Relaxed);
        self.0.readings.lock().clear();
        *self.0.origin.lock() = (process_nanos_now(), n);
        before
    }

    /// Events per second over the last minute (since creation if younger).
    pub fn rate(&self) -> f64 {
        let now = process_nanos_now();
        let total = self.total();
        let mut r = self.0.readings.lock();
        while r
            .front()
            .is_some_and(|&(t, _)| now.saturating_sub(t) > RATE_WINDOW_NS)
        {
            r.pop_front();
        }
        // Baseline: the oldest reading of the last minute that is at least a second old;
        // without one, the average since creation (or the last reset).
        let (t0, n0) = r
            .front()
            .copied()
            .filter(|&(t, _)| now.saturating_sub(t) >= 1_000_000_000)
            .unwrap_or_else(|| *self.0.origin.lock());
        if r.back()
            .is_none_or(|&(t, _)| now.saturating_sub(t) >= 1_000_000_000)
        {
            r.push_back((now, total));
        }
        let secs = now.saturating_sub(t0) as f64 / 1e9;
        if secs <= 0.0 {
            0.0
        } else {
            total.saturating_sub(n0) as f64 / secs
        }
    }
}
