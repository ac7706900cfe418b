//! Counters: a value that goes up and down, with its extremes.

use crate::util::sync::{AtomicI64, Ordering};
use std::sync::Arc;

pub(crate) struct CounterInner {
    value: AtomicI64,
    high: AtomicI64,
    low: AtomicI64,
}

/// A value that goes up and down; reports `high`, `low` and `value`. The extremes are exact,
/// so the value is one shared atomic.
///
/// ```
/// static MON: monkit::Scope = monkit::scope!();
/// let conns = MON.counter("connections");
/// conns.inc(3);
/// conns.dec(1);
/// assert_eq!((conns.value(), conns.high(), conns.low()), (2, 3, 0));
/// ```
#[derive(Clone)]
pub struct Counter(pub(crate) Arc<CounterInner>);
impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counter")
            .field("value", &self.value())
            .finish()
    }
}

impl Counter {
    pub(crate) fn new() -> Counter {
        Counter(Arc::new(CounterInner {
            value: AtomicI64::new(0),
            high: AtomicI64::new(0),
            low: AtomicI64::new(0),
        }))
    }

    /// Adds `delta` and returns the new value.
    #[inline]
    pub fn inc(&self, delta: i64) -> i64 {
        let c = &self.0;
        let v = c
            .value
            .fetch_add(delta, Ordering::Relaxed)
            .wrapping_add(delta);
        if v > c.high.load(Ordering::Relaxed) {
            c.high.fetch_max(v, Ordering::Relaxed);
        }
        if v < c.low.load(Ordering::Relaxed) {
            c.low.fetch_min(v, Ordering::Relaxed);
        }
        v
    }

    /// Subtracts `delta` and returns the new value.
    #[inline]
    pub fn dec(&self, delta: i64) -> i64 {
        self.inc(delta.wrapping_neg())
    }

    /// Sets the value.
    pub fn set(&self, v: i64) {
        let c = &self.0;
        c.value.store(v, Ordering::Relaxed);
        c.high.fetch_max(v, Ordering::Relaxed);
        c.low.fetch_min(v, Ordering::Relaxed);
    }

    /// Sets the value, and the highest and lowest, to 0; returns the value it had (Go
    /// monkit's `Counter.Reset`).
    pub fn reset(&self) -> i64 {
        let c = &self.0;
        let v = c.value.swap(0, Ordering::Relaxed);
        c.high.store(0, Ordering::Relaxed);
        c.low.store(0, Ordering::Relaxed);
        v
    }

    /// The current value.
    pub fn value(&self) -> i64 {
        self.0.value.load(Ordering::Relaxed)
    }

    /// The highest value ever held (at least 0, the starting value).
    pub fn high(&self) -> i64 {
        self.0.high.load(Ordering::Relaxed)
    }

    /// The lowest value ever held (at most 0, the starting value).
    pub fn low(&self) -> i64 {
        self.0.low.load(Ordering::Relaxed)
    }
}
