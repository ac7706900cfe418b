//! Exemplars: per bucket of a function's duration histogram, the most recent recorded call
//! that landed there, so a latency number leads to a trace.
//!
//! Only a call whose span is recorded (sampled for export, captured, or chosen by an observer)
//! is noted, on its span's hand-off to observers, which is already off the hot path; an
//! unrecorded call pays nothing.

use crate::stats::hist::{Bucketed, Slot};
use parking_lot::Mutex;

/// Most buckets one histogram keeps an exemplar for; past it, the oldest goes.
pub const MAX_EXEMPLARS: usize = 128;

/// One recorded call, as a histogram bucket remembers it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Exemplar {
    /// The call's trace.
    pub trace_id: u128,
    /// The call's span.
    pub span_id: u64,
    /// Its duration, in seconds.
    pub value: f64,
    /// When it ended, in nanoseconds since the Unix epoch.
    pub unix_nanos: u64,
}

/// The exemplars of one histogram, by native bucket key.
#[derive(Default)]
pub(crate) struct Exemplars {
    by_bucket: Mutex<Vec<(Slot, Exemplar)>>,
}

impl Exemplars {
    /// Notes a call of `ns` nanoseconds.
    pub(crate) fn note(&self, ns: u64, trace_id: u128, span_id: u64, unix_nanos: u64) {
        let slot = ns.slot();
        let e = Exemplar {
            trace_id,
            span_id,
            value: ns as f64 / 1e9,
            unix_nanos,
        };
        let mut all = self.by_bucket.lock();
        if let Some(x) = all.iter_mut().find(|(s, _)| *s == slot) {
            x.1 = e;
            return;
        }
        if all.len() >= MAX_EXEMPLARS {
            if let Some(oldest) = all
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, x))| x.unix_nanos)
                .map(|(i, _)| i)
            {
                all.swap_remove(oldest);
            }
        }
        all.push((slot, e));
    }

    /// Every exemplar, by value.
    pub(crate) fn snapshot(&self) -> Vec<Exemplar> {
        let mut v: Vec<Exemplar> = self.by_bucket.lock().iter().map(|x| x.1).collect();
        v.sort_by(|a, b| a.value.total_cmp(&b.value));
        v
    }
}

/// The exemplar of a classic bucket `(below, le]`: the most recent of `all` in it.
pub fn in_bucket(all: &[Exemplar], below: f64, le: f64) -> Option<&Exemplar> {
    all.iter()
        .filter(|e| e.value > below && e.value <= le)
        .max_by_key(|e| e.unix_nanos)
}
