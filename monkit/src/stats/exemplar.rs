//! Exemplars: per bucket of a function's duration histogram, the most recent recorded call
//! that landed there, so a latency number leads to a trace.
//!
//! Only a call whose span is recorded (sampled for export, captured, or chosen by an observer)
//! is noted, on its span's hand-off to observers, which is already off the hot path; an
//! unrecorded call pays nothing.

use crate::stats::hist::{Bucketed, Slot};
use parking_lot::Mutex;

/// Most exemplars one histogram keeps (one per cell of its table).
pub const MAX_EXEMPLARS: usize = 256;

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

/// Cells of the exemplar table: a power of two, indexed by bucket key.
const CELLS: usize = 256;

/// How often one cell takes a newer call: at most once a millisecond, so threads recording
/// every span of a function do not meet on the table's lock (an exemplar a millisecond old is
/// as good as the latest to whoever scrapes every few seconds).
const REFRESH_NS: u64 = 1_000_000;

/// The exemplars of one histogram: a direct-mapped table of the latest call per native
/// bucket, so noting one is a lock and a store whatever the table holds. Buckets whose keys
/// differ by a multiple of 256 (durations a factor of 16 apart) share a cell, the later call
/// winning. Each cell's time of writing is kept outside the lock too: a call finding its cell
/// written within [`REFRESH_NS`] reads one shared word and leaves (the cell keeps the call
/// before it).
pub(crate) struct Exemplars {
    cells: Mutex<Box<Table>>,
    written: Box<[std::sync::atomic::AtomicU64; CELLS]>,
}

/// The cells: the bucket each holds and its latest call.
type Table = [Option<(Slot, Exemplar)>; CELLS];

impl Default for Exemplars {
    fn default() -> Self {
        Exemplars {
            cells: Mutex::new(Box::new([None; CELLS])),
            written: Box::new([const { std::sync::atomic::AtomicU64::new(0) }; CELLS]),
        }
    }
}

impl Exemplars {
    /// Notes a call of `ns` nanoseconds.
    pub(crate) fn note(&self, ns: u64, trace_id: u128, span_id: u64, unix_nanos: u64) {
        let slot = ns.slot();
        let key = match slot {
            Slot::Pos(k) | Slot::Neg(k) => k,
            Slot::Zero => 0,
        };
        let cell = key.rem_euclid(CELLS as i32) as usize;
        let written = &self.written[cell];
        let last = written.load(std::sync::atomic::Ordering::Relaxed);
        if last != 0 && unix_nanos.saturating_sub(last) < REFRESH_NS {
            return;
        }
        let e = Exemplar {
            trace_id,
            span_id,
            value: ns as f64 / 1e9,
            unix_nanos,
        };
        written.store(unix_nanos, std::sync::atomic::Ordering::Relaxed);
        self.cells.lock()[cell] = Some((slot, e));
    }

    /// Every exemplar, by value.
    pub(crate) fn snapshot(&self) -> Vec<Exemplar> {
        let mut v: Vec<Exemplar> = self.cells.lock().iter().flatten().map(|x| x.1).collect();
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
