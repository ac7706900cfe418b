//! Raw values (Go monkit's `RawVal`): no distribution, only the aggregates asked for, each
//! kept in one atomic, for values where the quantiles of a distribution would be noise.

use crate::util::sync::{AtomicU64, Ordering};
use std::sync::Arc;

/// What a [`RawVal`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Aggregate {
    /// The last value observed (field `recent`).
    Recent,
    /// How many values were observed (`count`).
    Count,
    /// Their sum (`sum`).
    Sum,
    /// The least (`min`).
    Min,
    /// The greatest (`max`).
    Max,
    /// Their mean (`avg`).
    Average,
}

impl Aggregate {
    /// The field name in the line format.
    pub fn field(self) -> &'static str {
        match self {
            Aggregate::Recent => "recent",
            Aggregate::Count => "count",
            Aggregate::Sum => "sum",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::Average => "avg",
        }
    }
}

pub(crate) struct RawInner {
    aggregates: Vec<Aggregate>,
    count: AtomicU64,
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
    recent: AtomicU64,
}

/// A value reported as the aggregates chosen when it was made, nothing more. Made by
/// [`Scope::raw_val`](crate::Scope::raw_val).
///
/// ```
/// use monkit::stats::Aggregate::*;
/// static MON: monkit::Scope = monkit::scope!();
/// let queue = MON.raw_val("queue_depth", &[Recent, Max]);
/// queue.observe(3.0);
/// queue.observe(9.0);
/// queue.observe(4.0);
/// assert_eq!(queue.fields(), vec![("recent", 4.0), ("max", 9.0)]);
/// ```
#[derive(Clone)]
pub struct RawVal(pub(crate) Arc<RawInner>);
impl std::fmt::Debug for RawVal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawVal").finish_non_exhaustive()
    }
}

/// Folds `v` into `a` (f64 bits) with `pick`, lock-free.
fn fold(a: &AtomicU64, v: f64, pick: impl Fn(f64, f64) -> f64) {
    let mut cur = a.load(Ordering::Relaxed);
    loop {
        let next = pick(f64::from_bits(cur), v).to_bits();
        if next == cur {
            return;
        }
        match a.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(x) => cur = x,
        }
    }
}

impl RawVal {
    pub(crate) fn new(aggregates: &[Aggregate]) -> RawVal {
        let mut aggs: Vec<Aggregate> = Vec::new();
        for a in aggregates {
            if !aggs.contains(a) {
                aggs.push(*a);
            }
        }
        if aggs.is_empty() {
            aggs.push(Aggregate::Recent);
        }
        RawVal(Arc::new(RawInner {
            aggregates: aggs,
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0f64.to_bits()),
            min: AtomicU64::new(f64::INFINITY.to_bits()),
            max: AtomicU64::new(f64::NEG_INFINITY.to_bits()),
            recent: AtomicU64::new(0f64.to_bits()),
        }))
    }

    /// Records a value (a NaN is ignored).
    pub fn observe(&self, v: f64) {
        if v.is_nan() {
            return;
        }
        let r = &self.0;
        r.recent.store(v.to_bits(), Ordering::Relaxed);
        r.count.fetch_add(1, Ordering::Relaxed);
        for a in &r.aggregates {
            match a {
                Aggregate::Sum | Aggregate::Average => fold(&r.sum, v, |s, v| s + v),
                Aggregate::Min => fold(&r.min, v, f64::min),
                Aggregate::Max => fold(&r.max, v, f64::max),
                _ => {}
            }
        }
    }

    /// The chosen aggregates, in the order asked for (none before the first value).
    pub fn fields(&self) -> Vec<(&'static str, f64)> {
        let r = &self.0;
        let n = r.count.load(Ordering::Relaxed);
        if n == 0 {
            return Vec::new();
        }
        let get = |a: &AtomicU64| f64::from_bits(a.load(Ordering::Relaxed));
        r.aggregates
            .iter()
            .map(|a| {
                let v = match a {
                    Aggregate::Recent => get(&r.recent),
                    Aggregate::Count => n as f64,
                    Aggregate::Sum => get(&r.sum),
                    Aggregate::Min => get(&r.min),
                    Aggregate::Max => get(&r.max),
                    Aggregate::Average => get(&r.sum) / n as f64,
                };
                (a.field(), v)
            })
            .collect()
    }
}
