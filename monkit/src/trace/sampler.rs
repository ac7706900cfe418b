//! Which traces are sampled for export: one threshold compared with a new root's random span
//! id, so deciding costs one relaxed load and a compare; and whether a caller's sampled flag
//! decides for a trace continued from it (parent-based) or this process decides itself, so a
//! client cannot raise a service's export volume by sending sampled requests.

use crate::trace::span::{Flags, RANDOM, SAMPLED};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Which traces are sampled for export. `Always`, `Never` and `Fraction` decide every trace
/// here, a continued one too (by its trace id, so every process with the same fraction agrees),
/// whatever flag the caller sent: OpenTelemetry's `always_on`, `always_off` and `traceidratio`.
/// `ParentBased` lets the caller's sampled flag decide for a continued trace and the fraction
/// for new ones: the `parentbased_*` samplers, and a registry's default (`ParentBased(0.0)`:
/// nothing new is sampled, a sampled caller's trace stays sampled downstream).
/// `/trace/sample` forces one trace either way.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Sampler {
    /// Every trace.
    Always,
    /// No trace.
    Never,
    /// This fraction (0..=1) of traces.
    Fraction(f64),
    /// The caller's flag for a continued trace; this fraction (0..=1) of new ones.
    ParentBased(f64),
}

impl Sampler {
    /// The parent-based form of this sampler: the same fraction for new traces, the caller's
    /// flag for continued ones.
    pub fn parent_based(self) -> Sampler {
        match self {
            Sampler::Always => Sampler::ParentBased(1.0),
            Sampler::Never => Sampler::ParentBased(0.0),
            Sampler::Fraction(f) | Sampler::ParentBased(f) => Sampler::ParentBased(f),
        }
    }
}

/// A registry's sampler, as span starts read it.
#[derive(Debug)]
pub(crate) struct RootSampler {
    /// A new root is sampled when its (uniformly random) span id is at most this.
    threshold: AtomicU64,
    /// Whether a continued trace keeps the caller's sampled flag.
    trust_parent: AtomicBool,
}

impl Default for RootSampler {
    fn default() -> Self {
        RootSampler {
            threshold: AtomicU64::new(0),
            trust_parent: AtomicBool::new(true),
        }
    }
}

fn threshold(f: f64) -> u64 {
    match f {
        f if f.is_nan() || f <= 0.0 => 0,
        f if f >= 1.0 => u64::MAX,
        f => (f * u64::MAX as f64) as u64,
    }
}

impl RootSampler {
    pub(crate) fn set(&self, s: Sampler) {
        let (t, trust) = match s {
            Sampler::Always => (u64::MAX, false),
            Sampler::Never => (0, false),
            Sampler::Fraction(f) => (threshold(f), false),
            Sampler::ParentBased(f) => (threshold(f), true),
        };
        self.threshold.store(t, Ordering::Relaxed);
        self.trust_parent.store(trust, Ordering::Relaxed);
    }

    /// The flags of a trace continued from a caller whose flags were `flags`: as they came
    /// under a parent-based sampler, else sampled by this process's own decision, made from the
    /// trace id (its low half random) so that processes with one fraction agree.
    #[cold]
    pub(crate) fn continued_flags(&self, trace_id: u128, flags: Flags) -> Flags {
        if self.trust_parent.load(Ordering::Relaxed) {
            return flags;
        }
        let t = self.threshold.load(Ordering::Relaxed);
        let mine = t != 0 && (trace_id as u64) <= t;
        if mine {
            flags | SAMPLED
        } else {
            flags & !SAMPLED
        }
    }

    /// The flags a new root with this span id gets: sampled or not, and random (its trace id
    /// is, see `span.rs`).
    #[inline(always)]
    pub(crate) fn root_flags(&self, span_id: u64) -> Flags {
        let t = self.threshold.load(Ordering::Relaxed);
        if t != 0 && span_id <= t {
            SAMPLED | RANDOM
        } else {
            RANDOM
        }
    }
}
