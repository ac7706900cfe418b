//! Service level objectives declared in code: a success ratio and/or a latency target over the
//! functions an objective covers, evaluated in the process (error budget, burn rates over the
//! standard windows) from the exact counts and native histogram buckets the functions keep,
//! exported as `monkit_slo_*` series, and turned into a Prometheus rule file
//! ([`rules`]) that runs the same objectives over the scraped series.
//!
//! ```
//! use std::time::Duration;
//! use monkit::slo::Objective;
//!
//! let reg = monkit::Registry::new();
//! reg.add_objective(
//!     Objective::new("checkout")
//!         .success_ratio(0.999)
//!         .latency(Duration::from_millis(300), 0.99)
//!         .matching("POST /order|checkout::.*"),
//! )
//! .unwrap();
//! let report = &reg.objectives()[0];
//! assert_eq!(report.name, "checkout");
//! ```
//!
//! Written here rather than taken from a crate: no SLO library reads monkit's counts.

#[cfg(feature = "render")]
pub mod dashboard;
pub mod rules;

use crate::registry::site::SiteRef;
use crate::registry::{Func, FuncStats, Registry};
use crate::settings::ConfigError;
use crate::stats::series::{SeriesKey, Tags};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

const HOUR: Duration = Duration::from_secs(3600);

/// The windows burn rates are read over in the process: 5 minutes to 6 hours.
pub const WINDOWS: [Duration; 4] = [
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    HOUR,
    Duration::from_secs(6 * 3600),
];

/// The SRE workbook's multi-window, multi-burn-rate alerts: `(long window, short window, burn
/// rate, severity)`. Both windows must burn faster than the rate.
pub const BURN_ALERTS: [(Duration, Duration, f64, &str); 4] = [
    (HOUR, Duration::from_secs(5 * 60), 14.4, "page"),
    (
        Duration::from_secs(6 * 3600),
        Duration::from_secs(30 * 60),
        6.0,
        "page",
    ),
    (
        Duration::from_secs(24 * 3600),
        Duration::from_secs(2 * 3600),
        3.0,
        "ticket",
    ),
    (
        Duration::from_secs(72 * 3600),
        Duration::from_secs(6 * 3600),
        1.0,
        "ticket",
    ),
];

/// How often the counts are sampled for the windows.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);

/// An objective: what share of the covered calls must succeed, and/or finish within a time.
#[derive(Clone, Debug)]
#[must_use = "an objective does nothing until added: Registry::add_objective"]
pub struct Objective {
    name: String,
    success: Option<f64>,
    latency: Option<(Duration, f64)>,
    matching: Option<String>,
    canceled_fails: bool,
}

impl Objective {
    /// An objective named `name` (the `objective` label of its series and alerts).
    pub fn new(name: &str) -> Objective {
        Objective {
            name: name.to_owned(),
            success: None,
            latency: None,
            matching: None,
            canceled_fails: true,
        }
    }

    /// At least `ratio` (in (0, 1), as `0.999`) of the calls succeed: errors and panics fail,
    /// cancellations too unless [`canceled_is_failure`](Objective::canceled_is_failure)`(false)`.
    pub fn success_ratio(mut self, ratio: f64) -> Objective {
        self.success = Some(ratio);
        self
    }

    /// At least `ratio` of the successful calls take at most `threshold`.
    pub fn latency(mut self, threshold: Duration, ratio: f64) -> Objective {
        self.latency = Some((threshold, ratio));
        self
    }

    /// The functions covered: those whose full name (`scope.name`) the regex matches anywhere,
    /// functions made later included; besides those marked `#[monkit::task(objective =
    /// "name")]`.
    pub fn matching(mut self, regex: &str) -> Objective {
        self.matching = Some(regex.to_owned());
        self
    }

    /// Whether a canceled call (a future dropped unfinished) counts as failed (the default) or
    /// is left out.
    pub fn canceled_is_failure(mut self, yes: bool) -> Objective {
        self.canceled_fails = yes;
        self
    }
}

/// Which indicator a report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Sli {
    /// The share of calls that succeed.
    Success,
    /// The share of successful calls within the latency threshold.
    Latency,
}

impl Sli {
    /// `success` or `latency`: the `sli` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Sli::Success => "success",
            Sli::Latency => "latency",
        }
    }
}

/// Cumulative counts of an objective's functions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    /// Calls that ended (cancellations left out when they do not fail).
    calls: u64,
    failed: u64,
    successes: u64,
    /// Successes over the latency threshold (read conservatively).
    slow: u64,
}

impl Counts {
    fn of(&self, sli: Sli) -> (u64, u64) {
        match sli {
            Sli::Success => (self.calls, self.failed),
            Sli::Latency => (self.successes, self.slow),
        }
    }

    fn minus(&self, earlier: &Counts) -> Counts {
        Counts {
            calls: self.calls.saturating_sub(earlier.calls),
            failed: self.failed.saturating_sub(earlier.failed),
            successes: self.successes.saturating_sub(earlier.successes),
            slow: self.slow.saturating_sub(earlier.slow),
        }
    }
}

/// An added objective and its samples.
struct State {
    objective: Objective,
    regex: Option<regex::Regex>,
    /// `(when, counts)`, oldest first, every [`SAMPLE_EVERY`] over the longest window.
    samples: Mutex<VecDeque<(Instant, Counts)>>,
}

/// An objective's indicator, evaluated now.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Report {
    /// The objective's name.
    pub name: String,
    /// Which indicator.
    pub sli: Sli,
    /// The share of good events it asks for.
    pub target: f64,
    /// The latency threshold, for [`Sli::Latency`].
    pub threshold: Option<Duration>,
    /// For a latency threshold between two bucket bounds: the bound below it, which is what
    /// counts as fast (read conservatively: a call in the bucket holding the threshold counts
    /// as slow).
    pub read_at: Option<Duration>,
    /// The functions it covers now, by full name.
    pub functions: Vec<String>,
    /// Events (calls, or successful calls for latency) since the process started.
    pub events: u64,
    /// Bad events (failures, or slow successes) since the process started.
    pub bad: u64,
    /// The error budget left over the process's life: 1 when nothing went wrong, 0 when the
    /// bad share equals what the objective allows, below 0 past it.
    pub budget_remaining: f64,
    /// `(window, burn rate, how much of the window the process has seen)` for each of
    /// [`WINDOWS`]: the bad share over the window divided by the share allowed.
    pub burn_rates: Vec<(Duration, f64, Duration)>,
    /// The severities of the [`BURN_ALERTS`] within six hours that burn now (`page`).
    pub alerts: Vec<&'static str>,
    /// The covered functions with bad events, most first: `(full name, bad)`.
    pub eaters: Vec<(String, u64)>,
}

/// The objectives of every registry, by the registry they were added to (the registry itself
/// is below this layer and holds none).
static ADDED: Mutex<Vec<(Weak<crate::registry::registry::RegistryInner>, Arc<State>)>> =
    Mutex::new(Vec::new());

impl Registry {
    /// Adds an objective: evaluated on demand ([`Registry::objectives`], `/slo/json`),
    /// exported on `/metrics` as `monkit_slo_*`, and in the rule file of
    /// [`slo::rules`](crate::slo::rules). A ratio outside (0, 1), a bad regex, no indicator,
    /// no regex, or a name already added is a [`ConfigError`].
    pub fn add_objective(&self, objective: Objective) -> Result<(), ConfigError> {
        let setting = format!("objective {:?}", objective.name);
        if objective.name.trim().is_empty() {
            return Err(ConfigError::new("objective name", "", "a non-empty name"));
        }
        for r in [objective.success, objective.latency.map(|l| l.1)]
            .into_iter()
            .flatten()
        {
            if !(r > 0.0 && r < 1.0) {
                return Err(ConfigError::new(
                    &setting,
                    r.to_string(),
                    "a ratio between 0 and 1, both excluded (0.999 for 99.9%)",
                ));
            }
        }
        if objective.success.is_none() && objective.latency.is_none() {
            return Err(ConfigError::new(
                &setting,
                "no indicator",
                ".success_ratio(..) and/or .latency(..)",
            ));
        }
        if let Some((t, _)) = objective.latency {
            if t.is_zero() {
                return Err(ConfigError::new(
                    &setting,
                    "0s",
                    "a latency threshold above 0",
                ));
            }
        }
        let marked = inventory::iter::<SiteRef>
            .into_iter()
            .any(|s| s.0.objective() == Some(objective.name.as_str()));
        let regex = match &objective.matching {
            Some(source) => Some(regex::Regex::new(source).map_err(|e| {
                ConfigError::new(&setting, source.clone(), format!("a regex ({e})"))
            })?),
            None if marked => None,
            None => {
                return Err(ConfigError::new(
                    &setting,
                    "no functions",
                    ".matching(regex) over the functions' full names, or #[monkit::task(objective = \"..\")]",
                ))
            }
        };
        let mut added = ADDED.lock();
        added.retain(|(r, _)| r.strong_count() > 0);
        let mine = Arc::downgrade(&self.0);
        if added
            .iter()
            .any(|(r, s)| r.ptr_eq(&mine) && s.objective.name == objective.name)
        {
            return Err(ConfigError::new(
                &setting,
                objective.name.clone(),
                "a name not added before",
            ));
        }
        let first_here = !added.iter().any(|(r, _)| r.ptr_eq(&mine));
        added.push((
            mine.clone(),
            Arc::new(State {
                objective,
                regex,
                samples: Mutex::new(VecDeque::new()),
            }),
        ));
        drop(added);
        if first_here {
            self.scope("monkit")
                .chain("monkit_slo", SloSource { registry: mine });
        }
        start_sampler();
        Ok(())
    }

    /// Every objective added to this registry, evaluated now, by name, each indicator a report.
    pub fn objectives(&self) -> Vec<Report> {
        let states = states_of(self);
        if states.is_empty() {
            return Vec::new();
        }
        // Only the covered functions' stats are read: a scrape already reads every one.
        let funcs = self.funcs();
        let mut out = Vec::new();
        for s in states {
            let marked = s.marked();
            let mine: Vec<(Func, FuncStats)> = funcs
                .iter()
                .filter(|f| s.covers(f, &marked))
                .map(|f| (*f, f.stats()))
                .collect();
            out.extend(s.report(&mine));
        }
        out.sort_by(|a, b| (&a.name, a.sli).cmp(&(&b.name, b.sli)));
        out
    }
}

fn states_of(reg: &Registry) -> Vec<Arc<State>> {
    let mine = Arc::downgrade(&reg.0);
    ADDED
        .lock()
        .iter()
        .filter(|(r, _)| r.ptr_eq(&mine))
        .map(|(_, s)| s.clone())
        .collect()
}

/// Samples every objective's counts every [`SAMPLE_EVERY`], from a thread of its own (started
/// with the first objective): the burn rates' windows reach back to these.
fn start_sampler() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    if cfg!(loom) {
        return;
    }
    STARTED.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("monkit-slo".into())
            .spawn(|| loop {
                sample_all();
                std::thread::sleep(SAMPLE_EVERY);
            });
    });
}

fn sample_all() {
    let added: Vec<_> = ADDED.lock().clone();
    let now = Instant::now();
    for (reg, state) in added {
        let Some(inner) = reg.upgrade() else { continue };
        let marked = state.marked();
        let funcs: Vec<(Func, FuncStats)> = Registry(inner)
            .funcs()
            .into_iter()
            .filter(|f| state.covers(f, &marked))
            .map(|f| (f, f.stats()))
            .collect();
        let (counts, _) = state.count(&funcs);
        let mut samples = state.samples.lock();
        samples.push_back((now, counts));
        let keep = WINDOWS[WINDOWS.len() - 1] + SAMPLE_EVERY * 2;
        while samples
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > keep)
        {
            samples.pop_front();
        }
    }
}

impl State {
    /// The ids of the functions marked `#[task(objective = ..)]` with its name (made so far).
    fn marked(&self) -> Vec<u32> {
        inventory::iter::<SiteRef>
            .into_iter()
            .filter(|s| s.0.objective() == Some(self.objective.name.as_str()))
            .filter_map(|s| s.0.func_if_made().map(|f| f.id))
            .collect()
    }

    fn covers(&self, f: &Func, marked: &[u32]) -> bool {
        marked.contains(&f.id())
            || self
                .regex
                .as_ref()
                .is_some_and(|r| r.is_match(f.full_name()))
    }

    fn threshold_secs(&self) -> Option<f64> {
        self.objective.latency.map(|(t, _)| t.as_secs_f64())
    }

    /// The covered functions' counts, and each one's `(name, failed, slow)`.
    fn count(&self, funcs: &[(Func, FuncStats)]) -> (Counts, Vec<(String, u64, u64)>) {
        let mut c = Counts::default();
        let mut each = Vec::new();
        let marked = self.marked();
        for (f, s) in funcs.iter().filter(|(f, _)| self.covers(f, &marked)) {
            let canceled = s
                .errors
                .iter()
                .find(|(k, _)| *k == "canceled")
                .map_or(0, |e| e.1);
            let (mut calls, mut failed) = (s.successes + s.failures(), s.failures());
            if !self.objective.canceled_fails {
                calls -= canceled.min(calls);
                failed -= canceled.min(failed);
            }
            let slow = self.threshold_secs().map_or(0, |t| {
                let fast = s.success_times.histogram().count_at_most(t);
                s.successes.saturating_sub(fast)
            });
            c.calls += calls;
            c.failed += failed;
            c.successes += s.successes;
            c.slow += slow;
            each.push((f.full_name().to_owned(), failed, slow));
        }
        (c, each)
    }

    fn report(&self, funcs: &[(Func, FuncStats)]) -> Vec<Report> {
        let (now_counts, each) = self.count(funcs);
        let now = Instant::now();
        let uptime = Duration::from_nanos(crate::util::clock::process_nanos_now());
        let samples = self.samples.lock().clone();
        let marked = self.marked();
        let functions: Vec<String> = funcs
            .iter()
            .filter(|(f, _)| self.covers(f, &marked))
            .map(|(f, _)| f.full_name().to_owned())
            .collect();
        let o = &self.objective;
        let slis = [
            o.success.map(|t| (Sli::Success, t)),
            o.latency.map(|(_, t)| (Sli::Latency, t)),
        ];
        slis.into_iter()
            .flatten()
            .map(|(sli, target)| {
                let (events, bad) = now_counts.of(sli);
                let allowed = 1.0 - target;
                let share = |good_bad: (u64, u64)| {
                    if good_bad.0 == 0 {
                        0.0
                    } else {
                        good_bad.1 as f64 / good_bad.0 as f64
                    }
                };
                let burn_rates: Vec<(Duration, f64, Duration)> = WINDOWS
                    .iter()
                    .map(|&w| {
                        // The latest sample at least `w` old; else the process's start.
                        let base = samples
                            .iter()
                            .rev()
                            .find(|(t, _)| now.duration_since(*t) >= w);
                        let (since, counts) = match base {
                            Some((t, c)) => (now.duration_since(*t), *c),
                            None => (uptime, Counts::default()),
                        };
                        let d = now_counts.minus(&counts).of(sli);
                        (w, share(d) / allowed, since.min(w))
                    })
                    .collect();
                let burn = |w: Duration| {
                    burn_rates
                        .iter()
                        .find(|b| b.0 == w)
                        .map(|b| b.1)
                };
                let alerts = BURN_ALERTS
                    .iter()
                    .filter(|(long, short, rate, _)| {
                        matches!((burn(*long), burn(*short)), (Some(l), Some(s)) if l > *rate && s > *rate)
                    })
                    .map(|a| a.3)
                    .collect();
                let mut eaters: Vec<(String, u64)> = each
                    .iter()
                    .map(|(n, failed, slow)| {
                        (n.clone(), if sli == Sli::Success { *failed } else { *slow })
                    })
                    .filter(|e| e.1 > 0)
                    .collect();
                eaters.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                let threshold = (sli == Sli::Latency).then(|| o.latency.map(|l| l.0)).flatten();
                Report {
                    name: o.name.clone(),
                    sli,
                    target,
                    threshold,
                    read_at: threshold.map(read_at),
                    functions: functions.clone(),
                    events,
                    bad,
                    budget_remaining: 1.0 - share((events, bad)) / allowed,
                    burn_rates,
                    alerts,
                    eaters,
                }
            })
            .collect()
    }
}

/// The bucket bound at or below `threshold`: what a latency target is read at (the native
/// buckets' bounds are powers of 2^(1/64) seconds).
fn read_at(threshold: Duration) -> Duration {
    use crate::stats::Histogram;
    let t = threshold.as_secs_f64();
    let mut key = (t.log2() * 64.0).floor() as i32 + 1;
    while Histogram::upper_bound(key) > t {
        key -= 1;
    }
    Duration::from_secs_f64(Histogram::upper_bound(key))
}

/// The objectives of a registry as stat series: `monkit_slo` with `objective` and `sli`.
struct SloSource {
    registry: Weak<crate::registry::registry::RegistryInner>,
}

impl crate::stats::StatSource for SloSource {
    fn stats(&self, cb: &mut dyn FnMut(&SeriesKey, &str, f64)) {
        let Some(inner) = self.registry.upgrade() else {
            return;
        };
        for r in Registry(inner).objectives() {
            let tags = Tags::new(&[("objective", r.name.as_str()), ("sli", r.sli.as_str())]);
            let key = SeriesKey::new("monkit_slo", tags.clone());
            cb(&key, "events_total", r.events as f64);
            cb(&key, "bad_events_total", r.bad as f64);
            cb(&key, "target", r.target);
            cb(&key, "budget_remaining", r.budget_remaining);
            for (w, rate, _) in &r.burn_rates {
                let mut t = tags.clone();
                t.set("window", &rules::window_text(*w));
                cb(&SeriesKey::new("monkit_slo", t), "burn_rate", *rate);
            }
        }
    }
}

/// `reports` as `/slo/json` lists them: per objective and indicator its target, functions,
/// counts, budget left, burn rates by window, alerts burning and the functions eating the
/// budget; durations in seconds.
#[cfg(feature = "render")]
pub fn json(reports: &[Report]) -> serde_json::Value {
    use serde_json::json;
    reports
        .iter()
        .map(|r| {
            json!({
                "objective": r.name,
                "sli": r.sli.as_str(),
                "target": r.target,
                "threshold_seconds": r.threshold.map(|t| t.as_secs_f64()),
                "read_at_seconds": r.read_at.map(|t| t.as_secs_f64()),
                "functions": r.functions,
                "events": r.events,
                "bad": r.bad,
                "budget_remaining": r.budget_remaining,
                "burn_rates": r.burn_rates.iter().map(|(w, rate, seen)| json!({
                    "window": rules::window_text(*w),
                    "burn_rate": rate,
                    "seen_seconds": seen.as_secs_f64(),
                })).collect::<Vec<_>>(),
                "alerts": r.alerts,
                "eaters": r.eaters.iter().map(|(f, n)| json!({"function": f, "bad": n})).collect::<Vec<_>>(),
            })
        })
        .collect()
}
