//! Value distributions (int, float, duration, bool) and the timer built on durations.

use crate::stats::dist::{Dist, Snapshot};
use crate::util::clock::Tick;
use crate::util::shard::{add64, Sharded};
use crate::util::sync::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A distribution of integers: count, sum, min, max, recent and recent-window quantiles.
///
/// ```
/// static MON: monkit::Scope = monkit::scope!();
/// MON.int_val_with("bytes", &[("route", "/x")]).observe(512);
/// ```
#[derive(Clone)]
pub struct IntVal(pub(crate) Arc<Dist<i64>>);

impl IntVal {
    pub(crate) fn new() -> Self {
        IntVal(Arc::new(Dist::new()))
    }
    /// Records a value.
    #[inline]
    pub fn observe(&self, v: i64) {
        self.0.observe(v)
    }
    /// Reads the distribution.
    pub fn snapshot(&self) -> Snapshot {
        self.0.snapshot()
    }
}

/// A distribution of floats; the sum is kept as a float (never truncated).
#[derive(Clone)]
pub struct FloatVal(pub(crate) Arc<Dist<f64>>);

impl FloatVal {
    pub(crate) fn new() -> Self {
        FloatVal(Arc::new(Dist::new()))
    }
    /// Records a value.
    #[inline]
    pub fn observe(&self, v: f64) {
        self.0.observe(v)
    }
    /// Reads the distribution.
    pub fn snapshot(&self) -> Snapshot {
        self.0.snapshot()
    }
}

/// A distribution of floats exposed as a histogram: the same distribution as [`FloatVal`], but
/// `/metrics` shows its buckets (native, and classic at the configured bounds) instead of
/// quantiles, as the `metrics` facade's histograms expect.
#[derive(Clone)]
pub struct HistogramVal(pub(crate) Arc<Dist<f64>>);

impl HistogramVal {
    pub(crate) fn new() -> Self {
        HistogramVal(Arc::new(Dist::new()))
    }
    /// Records a value.
    #[inline]
    pub fn observe(&self, v: f64) {
        self.0.observe(v)
    }
    /// Reads the distribution.
    pub fn snapshot(&self) -> Snapshot {
        self.0.snapshot()
    }
}

/// A distribution of durations, kept in nanoseconds and reported in seconds.
#[derive(Clone)]
pub struct DurationVal(pub(crate) Arc<Dist<u64>>);

impl DurationVal {
    pub(crate) fn new() -> Self {
        DurationVal(Arc::new(Dist::new()))
    }
    /// Records a duration (saturating at about 584 years).
    #[inline]
    pub fn observe(&self, d: Duration) {
        self.0
            .observe(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
    /// Reads the distribution (values in nanoseconds).
    pub fn snapshot(&self) -> Snapshot {
        self.0.snapshot()
    }
}

/// Times a piece of code into a duration distribution.
///
/// ```
/// static MON: monkit::Scope = monkit::scope!();
/// let t = MON.timer("flush");
/// {
///     let _running = t.start();
///     // ... work ...
/// }
/// assert_eq!(t.snapshot().count, 1);
/// ```
#[derive(Clone)]
pub struct Timer(pub(crate) DurationVal);

impl Timer {
    /// Starts timing; the elapsed time is recorded when the guard drops (or at `stop`).
    #[inline]
    pub fn start(&self) -> TimerGuard<'_> {
        TimerGuard {
            timer: self,
            t0: Tick::now(),
        }
    }
    /// Reads the distribution (values in nanoseconds).
    pub fn snapshot(&self) -> Snapshot {
        self.0.snapshot()
    }
}

/// `Debug` for the distribution handles: the count of values seen (a snapshot's worth of
/// reading, so a `{:?}` never holds a lock for long).
macro_rules! debug_by_count {
    ($($ty:ident),*) => {$(
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("count", &self.snapshot().count)
                    .finish()
            }
        }
    )*};
}
debug_by_count!(IntVal, FloatVal, HistogramVal, DurationVal, Timer);

/// A running [`Timer`] measurement.
#[must_use = "dropping the TimerGuard records the time at once"]
pub struct TimerGuard<'a> {
    timer: &'a Timer,
    t0: Tick,
}

impl std::fmt::Debug for TimerGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimerGuard").finish_non_exhaustive()
    }
}

impl TimerGuard<'_> {
    /// Stops and records now, returning the elapsed time.
    pub fn stop(self) -> Duration {
        let ns = self.t0.nanos_until(Tick::now());
        self.timer.0 .0.observe(ns);
        std::mem::forget(self);
        Duration::from_nanos(ns)
    }
}

impl Drop for TimerGuard<'_> {
    fn drop(&mut self) {
        self.timer.0 .0.observe(self.t0.nanos_until(Tick::now()));
    }
}

#[derive(Default)]
pub(crate) struct BoolShard {
    trues: AtomicU64,
    falses: AtomicU64,
    recent: AtomicBool,
    recent_at: AtomicU64,
}

/// A distribution of booleans: `disposition` (trues − falses), `false`, `true`, `recent`.
#[derive(Clone)]
pub struct BoolVal(pub(crate) Arc<Sharded<BoolShard>>);
impl std::fmt::Debug for BoolVal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (trues, falses, _) = self.counts();
        f.debug_struct("BoolVal")
            .field("trues", &trues)
            .field("falses", &falses)
            .finish()
    }
}

impl BoolVal {
    pub(crate) fn new() -> Self {
        BoolVal(Arc::new(Sharded::new()))
    }

    /// Records a value.
    #[inline]
    pub fn observe(&self, v: bool) {
        let (s, lane) = self.0.local();
        add64(if v { &s.trues } else { &s.falses }, 1, lane);
        s.recent.store(v, Ordering::Relaxed);
        s.recent_at.store(Tick::now().0, Ordering::Relaxed);
    }

    /// (trues, falses, most recent value).
    pub fn counts(&self) -> (u64, u64, bool) {
        let (mut t, mut f, mut recent, mut at) = (0, 0, false, 0);
        for s in self.0.iter() {
            t += s.trues.load(Ordering::Relaxed);
            f += s.falses.load(Ordering::Relaxed);
            let a = s.recent_at.load(Ordering::Relaxed);
            if a >= at {
                at = a;
                recent = s.recent.load(Ordering::Relaxed);
            }
        }
        (t, f, recent)
    }
}
