//! Annotations: key/value notes on the current span, kept until the span finishes.
//!
//! The store is process-wide and keyed by span id (span ids are unique in the process, and an
//! annotation must find its span whichever thread or registry it runs in). Only spans of
//! recorded traces keep annotations, so for every other call `annotate` is one thread-local
//! read and the value is never formatted.

use crate::span::{current_raw, RECORDED, SAMPLED};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::LazyLock;

/// Span ids are random already: hashing them again (SipHash) would only cost time.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }
}

type Notes = HashMap<u64, Vec<(String, String)>, std::hash::BuildHasherDefault<IdHasher>>;

static NOTES: LazyLock<Mutex<Notes>> = LazyLock::new(Default::default);

/// Adds a key/value annotation to the current span. Annotations are kept for recorded spans
/// (a captured trace, an exported one); for the rest this is one thread-local read, and
/// `value` is not even formatted.
pub fn annotate(key: &str, value: impl std::fmt::Display) {
    let cur = current_raw();
    if cur.flags & (RECORDED | SAMPLED) == 0 || cur.span_id == 0 {
        return;
    }
    NOTES
        .lock()
        .entry(cur.span_id)
        .or_default()
        .push((key.to_owned(), value.to_string()));
}

/// The annotations of a finishing span, in order.
pub(crate) fn take(span_id: u64) -> Vec<(String, String)> {
    let mut notes = NOTES.lock();
    if notes.is_empty() {
        return Vec::new();
    }
    notes.remove(&span_id).unwrap_or_default()
}
