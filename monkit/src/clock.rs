//! The one clock every call reads twice.
//!
//! `quanta` reads the TSC where the CPU advertises an invariant one and falls back to the OS
//! monotonic clock otherwise; that choice is made once, at first use. A call's start and end
//! readings are shared by its stats and its span, so an instrumented call reads the clock
//! exactly twice.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

struct Anchor {
    clock: quanta::Clock,
    raw: u64,
    unix_ns: u64,
}

static ANCHOR: LazyLock<Anchor> = LazyLock::new(|| {
    let clock = quanta::Clock::new();
    let raw = clock.raw();
    let unix_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    Anchor { clock, raw, unix_ns }
});

/// A raw clock reading. Only differences between two ticks, or [`Tick::unix_nanos`], mean
/// anything; a tick is not nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Tick(pub(crate) u64);

impl Tick {
    /// Reads the clock.
    #[inline(always)]
    pub fn now() -> Tick {
        Tick(ANCHOR.clock.raw())
    }

    /// Nanoseconds from `self` to `later` (0 if `later` is not later).
    #[inline(always)]
    pub fn nanos_until(self, later: Tick) -> u64 {
        ANCHOR.clock.delta_as_nanos(self.0, later.0)
    }

    /// The duration from `self` to `later`.
    pub fn until(self, later: Tick) -> Duration {
        Duration::from_nanos(self.nanos_until(later))
    }

    /// Nanoseconds since the clock was first read in this process.
    #[inline(always)]
    pub fn process_nanos(self) -> u64 {
        let a = &*ANCHOR;
        a.clock.delta_as_nanos(a.raw, self.0)
    }

    /// This reading as nanoseconds since the Unix epoch.
    pub fn unix_nanos(self) -> u64 {
        ANCHOR.unix_ns + self.process_nanos()
    }
}

/// Nanoseconds since the clock was first read in this process, read now.
pub(crate) fn process_nanos_now() -> u64 {
    Tick::now().process_nanos()
}
