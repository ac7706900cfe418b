//! Which new traces are sampled for export: one threshold compared with a new root's random
//! span id, so deciding costs one relaxed load and a compare.

use crate::trace::span::{RANDOM, SAMPLED};
use std::sync::atomic::{AtomicU64, Ordering};

/// Which new traces are sampled for export. A trace continued from another process keeps the
/// sampled flag it came with (parent-based), and `/trace/sample` forces one.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Sampler {
    /// Every new trace.
    Always,
    /// No new trace.
    Never,
    /// This fraction (0..=1) of new traces.
    Fraction(f64),
}

/// A registry's sampler, as span starts read it.
#[derive(Debug, Default)]
pub(crate) struct RootSampler {
    /// A new root is sampled when its (uniformly random) span id is at most this.
    threshold: AtomicU64,
}

impl RootSampler {
    pub(crate) fn set(&self, s: Sampler) {
        let t = match s {
            Sampler::Always => u64::MAX,
            Sampler::Never => 0,
            Sampler::Fraction(f) if f.is_nan() || f <= 0.0 => 0,
            Sampler::Fraction(f) if f >= 1.0 => u64::MAX,
            Sampler::Fraction(f) => (f * u64::MAX as f64) as u64,
        };
        self.threshold.store(t, Ordering::Relaxed);
    }

    /// The flags a new root with this span id gets: sampled or not, and random (its trace id
    /// is, see `span.rs`).
    #[inline(always)]
    pub(crate) fn root_flags(&self, span_id: u64) -> u8 {
        let t = self.threshold.load(Ordering::Relaxed);
        if t != 0 && span_id <= t {
            SAMPLED | RANDOM
        } else {
            RANDOM
        }
    }
}
