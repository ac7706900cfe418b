//! Meters: a total and a rate of events.

use crate::clock::process_nanos_now;
use crate::shard::{add64, Sharded};
use crate::sync::{AtomicU64, Ordering};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;

/// How far back a meter's rate looks.
const RATE_WINDOW_NS: u64 = 60_000_000_000;

#[repr(align(128))]
#[derive(Default)]
struct Cell(AtomicU64);

pub(crate) struct MeterInner {
    total: Sharded<Cell>,
    created_ns: u64,
    // (time, total) readings taken by readers; the hot path never touches them.
    readings: Mutex<VecDeque<(u64, u64)>>,
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

impl Meter {
    pub(crate) fn new() -> Meter {
        Meter(Arc::new(MeterInner {
            total: Sharded::new(),
            created_ns: process_nanos_now(),
            readings: Mutex::new(VecDeque::new()),
        }))
    }

    /// Records `n` events.
    #[inline]
    pub fn mark(&self, n: u64) {
        let (cell, lane) = self.0.total.local();
        add64(&cell.0, n, lane);
    }

    /// Events since creation.
    pub fn total(&self) -> u64 {
        self.0
            .total
            .iter()
            .map(|c| c.0.load(Ordering::Relaxed))
            .sum()
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
        // without one, the average since creation.
        let (t0, n0) = r
            .front()
            .copied()
            .filter(|&(t, _)| now.saturating_sub(t) >= 1_000_000_000)
            .unwrap_or((self.0.created_ns, 0));
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
