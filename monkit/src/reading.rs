//! One model of a stat source: what every source reads as ([`Reading`]), the line-format
//! fields of each reading, and the one list of a function's fields ([`FUNC_FIELDS`]). Every
//! renderer (text, JSON, funcs, dot, Prometheus) reads through these, so adding a source kind
//! or a function field touches one place.

use crate::counter::Counter;
use crate::dist::Snapshot;
use crate::func::FuncStats;
use crate::meter::Meter;
use crate::series::SeriesKey;
use crate::source::StatSource;
use crate::val::{BoolVal, DurationVal, FloatVal, IntVal, Timer};
use std::any::Any;
use std::sync::Arc;

/// A source's values, read at one moment.
#[derive(Clone, Debug)]
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
    /// A [`RawVal`](crate::RawVal)'s chosen aggregates: `(field, value)`.
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
            Reading::Values(s) => s.fields(1.0, cb),
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
readable!(IntVal, |v| Reading::Values(v.snapshot()));
readable!(crate::raw::RawVal, |v| Reading::Raw(v.fields()));
readable!(FloatVal, |v| Reading::Values(v.snapshot()));
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

/// How a function field behaves over time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// Goes up and down.
    Gauge,
    /// Only goes up over the process's life.
    Counter,
}

/// One field of a function's stats, as every page shows it.
#[derive(Clone, Copy, Debug)]
pub struct FuncField {
    /// Field name in the line format, `/funcs` and the dot graph.
    pub name: &'static str,
    /// Name in Prometheus, after `monkit_function_` (counters also get `_total`).
    pub metric: &'static str,
    /// Gauge or counter.
    pub kind: FieldKind,
    /// One sentence for Prometheus `# HELP`.
    pub help: &'static str,
    /// Reads the field.
    pub get: fn(&FuncStats) -> u64,
    /// What Prometheus exposes where it is not `get`: a counter whose `get` adds two reads
    /// that could go backwards together (Prometheus would take a dip for a restart).
    pub exposed: Option<fn(&FuncStats) -> u64>,
}

impl FuncField {
    /// The value Prometheus exposes: [`FuncField::exposed`] if set, else [`FuncField::get`].
    pub fn exposed_value(&self, s: &FuncStats) -> u64 {
        (self.exposed.unwrap_or(self.get))(s)
    }
}

/// Every field of a function's stats, in the order pages show them.
pub const FUNC_FIELDS: [FuncField; 7] = [
    FuncField {
        name: "current",
        metric: "current",
        kind: FieldKind::Gauge,
        help: "Calls of the function running now.",
        get: |s| s.current.max(0) as u64,
        exposed: None,
    },
    FuncField {
        name: "highwater",
        metric: "highwater",
        kind: FieldKind::Gauge,
        help: "Most calls of the function ever running at once.",
        get: |s| s.highwater.max(0) as u64,
        exposed: None,
    },
    FuncField {
        name: "successes",
        metric: "successes",
        kind: FieldKind::Counter,
        help: "Calls of the function that returned successfully.",
        get: |s| s.successes,
        exposed: None,
    },
    FuncField {
        name: "errors",
        metric: "errored",
        kind: FieldKind::Counter,
        help: "Calls of the function that returned an error or were canceled, all kinds together.",
        get: |s| s.errors_total,
        exposed: None,
    },
    FuncField {
        name: "panics",
        metric: "panics",
        kind: FieldKind::Counter,
        help: "Calls of the function that panicked.",
        get: |s| s.panics,
        exposed: None,
    },
    FuncField {
        name: "failures",
        metric: "failures",
        kind: FieldKind::Counter,
        help: "Calls of the function that failed (errors, cancellations and panics).",
        get: FuncStats::failures,
        exposed: None,
    },
    FuncField {
        name: "total",
        metric: "calls",
        kind: FieldKind::Counter,
        help: "Calls of the function that finished (in any way); the running ones are monkit_function_current.",
        get: FuncStats::total,
        // Started calls are the running count plus the finished ones, read one after the
        // other: a call ending between the two reads is counted twice, then once, which a
        // counter must never show. Finished calls only grow.
        exposed: Some(|s| s.successes + s.failures()),
    },
];
