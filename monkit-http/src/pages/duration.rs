//! Durations of the pages' settings and query strings: positive, and cut to a limit.

use std::time::Duration;

/// A positive duration ([`monkit::settings::parse_duration`]), cut to `cap`.
pub(crate) fn parse(v: &str, cap: Duration) -> Option<Duration> {
    monkit::settings::parse_duration(v)
        .filter(|d| !d.is_zero())
        .map(|d| d.min(cap))
}
