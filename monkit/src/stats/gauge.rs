//! A gauge the program sets: a float value held in one atomic, read as it is at every walk
//! (the `metrics` facade's gauges land here).

use crate::util::sync::{AtomicU64, Ordering};
use std::sync::Arc;

/// A float value the program sets, adds to or subtracts from; read as a gauge (`value`).
///
/// ```
/// static MON: monkit::Scope = monkit::scope!();
/// let load = MON.float_gauge("load");
/// load.set(0.5);
/// load.add(0.25);
/// assert_eq!(load.value(), 0.75);
/// ```
#[derive(Clone)]
pub struct FloatGauge(Arc<AtomicU64>);

impl std::fmt::Debug for FloatGauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("FloatGauge").field(&self.value()).finish()
    }
}

impl FloatGauge {
    pub(crate) fn new() -> FloatGauge {
        FloatGauge(Arc::new(AtomicU64::new(0f64.to_bits())))
    }

    /// Sets the value.
    #[inline]
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }

    /// Adds `d` (negative to subtract).
    #[inline]
    pub fn add(&self, d: f64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some((f64::from_bits(b) + d).to_bits())
            });
    }

    /// The value now.
    pub fn value(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}
