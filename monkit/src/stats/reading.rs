//! One model of a stat source: what every source reads as ([`Reading`]) and the line-format
//! fields of each reading. Every renderer (text, JSON, Prometheus) reads sources through it,
//! so adding a source kind touches one place.

use crate::stats::counter::Counter;
use crate::stats::dist::Snapshot;
use crate::stats::meter::Meter;
use crate::stats::series::SeriesKey;
use crate::stats::source::StatSource;
use crate::stats::val::{BoolVal, DurationVal, FloatVal, IntVal, Timer};
use std::any::Any;
use std::sync::Arc;

/// A source's values, read at one moment.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Reading {
    /// A [`Meter`]: events per second over the last minute, and the total.
    Meter {
        /// Events per second.
        rate: f64,
        /// Events ever marked.
        total: u64,
    },
    /// A [`Counter`]: its value and the highest and lowest it held.
    Counter {
        /// Value now.
        value: i64,
        /// Highest value held.
        high: i64,
        /// Lowest value held.
        low: i64,
    },
    /// An [`IntVal`] or [`FloatVal`] distribution.
    Values(Snapshot),
    /// A [`HistogramVal`](crate::stats::HistogramVal): values exposed as histogram buckets.
    Histogram(Snapshot),
    /// A [`DurationVal`] or [`Timer`] distribution, in nanoseconds.
    Durations(Snapshot),
    /// A [`BoolVal`]: counts of each value and the most recent one.
    Bools {
        /// Observations of `true`.
        trues: u64,
        /// Observations of `false`.
        falses: u64,
        /// The most recent observation (`None` before the first).
        recent: Option<bool>,
    },
    /// A gauge's value.
    Gauge(f64),
    /// A [`RawVal`](crate::stats::RawVal)'s chosen aggregates: `(field, value)`.
    Raw(Vec<(&'static str, f64)>),
    /// A custom source's stats: `(series key, field, value)`.
    Custom(Vec<(SeriesKey, String, f64)>),
}

impl Reading {
    /// The line-format fields of this reading, in order (durations in seconds). Custom
    /// readings have their own keys and are not listed here.
    pub fn fields(&self, cb: &mut dyn FnMut(&str, f64)) {
        match self {
            Reading::Meter { rate, total } => {
                cb("rate", *rate);
                cb("total", *total as f64);
            }
            Reading::Counter { value, high, low } => {
                cb("high", *high as f64);
                cb("low", *low as f64);
                cb("value", *value as f64);
            }
            Reading::Values(s) | Reading::Histogram(s) => s.fields(1.0, cb),
            Reading::Durations(s) => s.fields(1e9, cb),
            Reading::Bools {
                trues,
                falses,
                recent,
            } => {
                cb("disposition", *trues as f64 - *falses as f64);
                cb("false", *falses as f64);
                cb("true", *trues as f64);
                if let Some(r) = recent {
                    cb("recent", if *r { 1.0 } else { 0.0 });
                }
            }
            Reading::Gauge(v) => cb("value", *v),
            Reading::Raw(fields) => {
                for (f, v) in fields {
                    cb(f, *v);
                }
            }
            Reading::Custom(_) => {}
        }
    }
}

/// Anything a scope holds as a source: it can be read, and cloned out of the scope's map as
/// its concrete handle type.
pub(crate) trait Readable: Any + Send + Sync {
    fn read(&self) -> Reading;
    fn as_any(&self) -> &dyn Any;
}

macro_rules! readable {
    ($ty:ty, |$s:ident| $read:expr) => {
        impl Readable for $ty {
            fn read(&self) -> Reading {
                let $s = self;
                $read
            }
            fn as_any(&self) -> &dyn Any {
                self
            }
        }
    };
}

readable!(Meter, |m| Reading::Meter {
    rate: m.rate(),
    total: m.total()
});
readable!(Counter, |c| Reading::Counter {
    value: c.value(),
    high: c.high(),
    low: c.low()
});
readable!(crate::stats::gauge::FloatGauge, |g| Reading::Gauge(
    g.value()
));
readable!(IntVal, |v| Reading::Values(v.snapshot()));
readable!(crate::stats::raw::RawVal, |v| Reading::Raw(v.fields()));
readable!(FloatVal, |v| Reading::Values(v.snapshot()));
readable!(crate::stats::val::HistogramVal, |v| Reading::Histogram(
    v.snapshot()
));
readable!(DurationVal, |v| Reading::Durations(v.snapshot()));
readable!(Timer, |v| Reading::Durations(v.snapshot()));
readable!(BoolVal, |v| {
    let (trues, falses, recent) = v.counts();
    Reading::Bools {
        trues,
        falses,
        recent: (trues + falses > 0).then_some(recent),
    }
});

/// A gauge: a function read at every walk.
#[derive(Clone)]
pub(crate) struct Gauge(pub(crate) Arc<dyn Fn() -> f64 + Send + Sync>);
readable!(Gauge, |g| Reading::Gauge((g.0)()));

/// A custom source chained into a scope.
#[derive(Clone)]
pub(crate) struct Custom(pub(crate) Arc<dyn StatSource>);
readable!(Custom, |c| {
    let mut v = Vec::new();
    c.0.stats(&mut |k, f, x| v.push((k.clone(), f.to_owned(), x)));
    Reading::Custom(v)
});
