//! Stat sources written by users: any type that can list its stats, values read from a
//! struct, the difference of two meters, and totals turned into deltas.

use crate::stats::series::{SeriesKey, Tags};
use crate::stats::Meter;
use parking_lot::Mutex;
use std::collections::HashMap;

/// Anything that can list stats: `(series key, field, value)` triples. Chain one into a scope
/// with [`Scope::chain`](crate::Scope::chain); its series get the scope's `scope` tag.
///
/// ```
/// struct Pool { size: usize }
///
/// impl monkit::stats::StatSource for Pool {
///     fn stats(&self, cb: &mut dyn FnMut(&monkit::stats::SeriesKey, &str, f64)) {
///         let key = monkit::stats::SeriesKey::new("pool", monkit::stats::Tags::default());
///         cb(&key, "size", self.size as f64);
///     }
/// }
///
/// static MON: monkit::Scope = monkit::scope!();
/// MON.chain("pool", Pool { size: 4 });
/// ```
pub trait StatSource: Send + Sync {
    /// Calls `cb` with every stat.
    fn stats(&self, cb: &mut dyn FnMut(&SeriesKey, &str, f64));
}

/// Several sources as one, in order.
#[derive(Default)]
pub struct Chain(Vec<Box<dyn StatSource>>);
impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("sources", &self.0.len())
            .finish()
    }
}

impl Chain {
    /// An empty chain.
    pub fn new() -> Chain {
        Chain::default()
    }

    /// Adds a source at the end.
    pub fn with(mut self, s: impl StatSource + 'static) -> Chain {
        self.0.push(Box::new(s));
        self
    }
}

impl StatSource for Chain {
    fn stats(&self, cb: &mut dyn FnMut(&SeriesKey, &str, f64)) {
        for s in &self.0 {
            s.stats(cb);
        }
    }
}

/// Fields of one series read by a function at every walk: Go monkit's `StructVal`, without
/// reflection. Made by [`Scope::struct_val`](crate::Scope::struct_val).
pub(crate) struct StructVal<F> {
    pub(crate) key: SeriesKey,
    pub(crate) read: F,
}

impl<F: Fn(&mut dyn FnMut(&str, f64)) + Send + Sync> StatSource for StructVal<F> {
    fn stats(&self, cb: &mut dyn FnMut(&SeriesKey, &str, f64)) {
        (self.read)(&mut |f, v| cb(&self.key, f, v));
    }
}

/// The difference of two meters, `a - b`: `rate` and `total` (for example requests started
/// minus requests finished).
pub struct DiffMeter {
    key: SeriesKey,
    a: Meter,
    b: Meter,
}

impl std::fmt::Debug for DiffMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiffMeter").finish_non_exhaustive()
    }
}

impl DiffMeter {
    /// `a - b`, reported as the series `name` with `tags`.
    pub fn new(name: &str, tags: &[(&str, &str)], a: Meter, b: Meter) -> DiffMeter {
        DiffMeter {
            key: SeriesKey::new(name, Tags::new(tags)),
            a,
            b,
        }
    }
}

impl StatSource for DiffMeter {
    fn stats(&self, cb: &mut dyn FnMut(&SeriesKey, &str, f64)) {
        cb(&self.key, "rate", self.a.rate() - self.b.rate());
        cb(
            &self.key,
            "total",
            self.a.total() as f64 - self.b.total() as f64,
        );
    }
}

/// Reports, for the chosen fields of a source, the change since the previous walk instead of
/// the cumulative value (the first walk reports the whole value). Other fields pass through.
pub struct DeltaTransform<S> {
    inner: S,
    fields: Vec<String>,
    last: Mutex<HashMap<(SeriesKey, String), f64>>,
}

impl<S> std::fmt::Debug for DeltaTransform<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeltaTransform")
            .field("fields", &self.fields)
            .finish_non_exhaustive()
    }
}

impl<S: StatSource> DeltaTransform<S> {
    /// Deltas of `fields` (for example `["total", "count"]`) of `inner`.
    pub fn new(inner: S, fields: &[&str]) -> Self {
        DeltaTransform {
            inner,
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            last: Mutex::new(HashMap::new()),
        }
    }
}

impl<S: StatSource> StatSource for DeltaTransform<S> {
    fn stats(&self, cb: &mut dyn FnMut(&SeriesKey, &str, f64)) {
        let mut last = self.last.lock();
        self.inner.stats(&mut |k, f, v| {
            if self.fields.iter().any(|x| x == f) {
                let prev = last.insert((k.clone(), f.to_owned()), v).unwrap_or(0.0);
                cb(k, f, v - prev);
            } else {
                cb(k, f, v);
            }
        });
    }
}
