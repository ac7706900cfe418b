//! The Prometheus rule file of a registry's objectives (`/slo/rules`): recording rules for each
//! indicator's bad-event ratio over every window the alerts use, and the SRE workbook's
//! multi-window, multi-burn-rate alerts (`page` and `ticket`) labelled `objective`, `sli` and
//! `severity`, over the `monkit_slo_events_total` and `monkit_slo_bad_events_total` series
//! `/metrics` exports. Written as YAML by hand (double-quoted strings, which YAML reads as
//! JSON does): the file's shape is fixed and small.

use super::{Report, BURN_ALERTS};
use std::fmt::Write;
use std::time::Duration;

/// How the rules are written: windows scaled (a test runs them in seconds), and how long an
/// alert's condition holds before it fires.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct RuleOptions {
    /// Every window multiplied by this (1: the workbook's 5m to 3d).
    pub scale: f64,
    /// `for:` of the page alerts (2m by default; `None`: the scaled default).
    pub page_for: Option<Duration>,
    /// `for:` of the ticket alerts (15m by default).
    pub ticket_for: Option<Duration>,
}

impl Default for RuleOptions {
    fn default() -> RuleOptions {
        RuleOptions {
            scale: 1.0,
            page_for: None,
            ticket_for: None,
        }
    }
}

impl RuleOptions {
    /// Windows scaled by `scale` (at least a second each).
    pub fn scaled(mut self, scale: f64) -> RuleOptions {
        self.scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        self
    }

    /// Every alert's `for:`.
    pub fn alert_for(mut self, d: Duration) -> RuleOptions {
        self.page_for = Some(d);
        self.ticket_for = Some(d);
        self
    }

    fn window(&self, w: Duration) -> Duration {
        Duration::from_secs(((w.as_secs_f64() * self.scale).round() as u64).max(1))
    }

    fn for_of(&self, severity: &str) -> Duration {
        let (set, default) = match severity {
            "page" => (self.page_for, Duration::from_secs(120)),
            _ => (self.ticket_for, Duration::from_secs(900)),
        };
        set.unwrap_or_else(|| self.window(default))
    }
}

/// A duration as Prometheus writes one: `5m`, `1h`, `90s`, `3d`.
pub fn window_text(d: Duration) -> String {
    let s = d.as_secs().max(1);
    for (unit, n) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if s.is_multiple_of(n) {
            return format!("{}{unit}", s / n);
        }
    }
    format!("{s}s")
}

/// The name of the recording rule of the bad-event ratio over `window`.
pub fn ratio_rule(window: Duration) -> String {
    format!("monkit_slo:bad_ratio:rate{}", window_text(window))
}

/// `s` as a PromQL (and YAML) double-quoted string.
fn quoted(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(q, "\\u{:04x}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// The rule file for `reports` (one per objective and indicator: [`Registry::objectives`]).
///
/// [`Registry::objectives`]: crate::Registry::objectives
pub fn rules(reports: &[Report], options: &RuleOptions) -> String {
    let mut windows: Vec<Duration> = BURN_ALERTS
        .iter()
        .flat_map(|a| [a.0, a.1])
        .map(|w| options.window(w))
        .collect();
    windows.sort();
    windows.dedup();
    let mut out = String::from("groups:\n");
    if reports.is_empty() {
        out = String::from("groups: []\n");
    }
    for r in reports {
        let sel = format!(
            "objective={},sli={}",
            quoted(&r.name),
            quoted(r.sli.as_str())
        );
        let _ = writeln!(
            out,
            "  - name: {}\n    rules:",
            quoted(&format!("monkit-slo-{}-{}", r.name, r.sli.as_str()))
        );
        for w in &windows {
            let wt = window_text(*w);
            let expr = format!(
                "sum by (objective, sli) (rate(monkit_slo_bad_events_total{{{sel}}}[{wt}])) / sum by (objective, sli) (rate(monkit_slo_events_total{{{sel}}}[{wt}]))"
            );
            let _ = writeln!(
                out,
                "      - record: {}\n        expr: {}",
                ratio_rule(*w),
                quoted(&expr)
            );
        }
        let allowed = 1.0 - r.target;
        for severity in ["page", "ticket"] {
            let conditions: Vec<String> = BURN_ALERTS
                .iter()
                .filter(|a| a.3 == severity)
                .map(|&(long, short, rate, _)| {
                    let limit = rate * allowed;
                    format!(
                        "({}{{{sel}}} > {limit} and {}{{{sel}}} > {limit})",
                        ratio_rule(options.window(long)),
                        ratio_rule(options.window(short)),
                    )
                })
                .collect();
            let what = match r.threshold {
                Some(t) => format!(
                    "{:.3}% of its successful calls within {t:?}",
                    r.target * 100.0
                ),
                None => format!("{:.3}% of its calls succeeding", r.target * 100.0),
            };
            let summary = format!(
                "Objective {} ({what}) is burning its error budget too fast ({severity})",
                r.name
            );
            let _ = writeln!(
                out,
                "      - alert: \"MonkitSLOBurnRate\"\n        expr: {}\n        for: {}\n        labels:\n          objective: {}\n          sli: {}\n          severity: {}\n        annotations:\n          summary: {}",
                quoted(&conditions.join(" or ")),
                window_text(options.for_of(severity)),
                quoted(&r.name),
                quoted(r.sli.as_str()),
                quoted(severity),
                quoted(&summary),
            );
        }
    }
    out
}
