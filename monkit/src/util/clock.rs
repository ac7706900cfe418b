//! The one clock every call reads twice.
//!
//! `quanta` reads the TSC where the CPU advertises an invariant one and falls back to the OS
//! monotonic clock otherwise; that choice is made once, at first use. A call's start and end
//! readings are shared by its stats and its span, so an instrumented call reads the clock
//! exactly twice.

use std::sync::atomic::{AtomicU8, Ordering};
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
    Anchor {
        clock,
        raw,
        unix_ns,
    }
});

/// How `Tick::now` reads: not decided yet, the TSC directly, or through quanta.
static MODE: AtomicU8 = AtomicU8::new(MODE_UNSET);
const MODE_UNSET: u8 = 0;
const MODE_TSC: u8 = 1;
const MODE_QUANTA: u8 = 2;

/// Reads the TSC inline when quanta itself chose the TSC as its source (it checks for an
/// invariant TSC), saving a call per reading; otherwise asks quanta, which falls back to the
/// OS monotonic clock. quanta's raw TSC readings are plain `rdtsc`, so both give the same
/// ticks and quanta's calibration scales either.
#[cold]
fn read_slow() -> u64 {
    let clock = &ANCHOR.clock;
    if MODE.load(Ordering::Relaxed) == MODE_UNSET {
        let mode = tsc_mode(clock);
        MODE.store(mode, Ordering::Relaxed);
    }
    clock.raw()
}

#[cfg(target_arch = "x86_64")]
fn tsc_mode(clock: &quanta::Clock) -> u8 {
    // SAFETY: rdtsc is available on every x86_64 CPU.
    let before = unsafe { core::arch::x86_64::_rdtsc() };
    let q = clock.raw();
    // SAFETY: as above.
    let after = unsafe { core::arch::x86_64::_rdtsc() };
    if before <= q && q <= after {
        MODE_TSC
    } else {
        MODE_QUANTA
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn tsc_mode(_: &quanta::Clock) -> u8 {
    MODE_QUANTA
}

#[inline(always)]
fn read() -> u64 {
    #[cfg(target_arch = "x86_64")]
    if MODE.load(Ordering::Relaxed) == MODE_TSC {
        // SAFETY: rdtsc is available on every x86_64 CPU.
        return unsafe { core::arch::x86_64::_rdtsc() };
    }
    read_slow()
}

/// A raw clock reading. Only differences between two ticks, or [`Tick::unix_nanos`], mean
/// anything; a tick is not nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Tick(pub(crate) u64);

impl Tick {
    /// Reads the clock.
    #[inline(always)]
    pub fn now() -> Tick {
        Tick(read())
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

/// Raw clock ticks spanning at least `nanos` nanoseconds (saturating).
pub(crate) fn nanos_to_ticks(nanos: u64) -> u64 {
    // The clock's rate, measured over 2^30 ticks: exact enough for thresholds.
    const UNIT: u64 = 1 << 30;
    let per_unit = ticks_to_nanos(UNIT).max(1);
    let t = u128::from(nanos) * u128::from(UNIT) / u128::from(per_unit);
    u64::try_from(t).unwrap_or(u64::MAX)
}

/// Nanoseconds spanned by `ticks` raw clock ticks.
pub(crate) fn ticks_to_nanos(ticks: u64) -> u64 {
    ANCHOR.clock.delta_as_nanos(0, ticks)
}
