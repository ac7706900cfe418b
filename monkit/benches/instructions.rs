//! Instructions per call, counted exactly under valgrind (callgrind), beside the criterion
//! timings of `overhead.rs`, which this VM's noise (+-25% run to run) blurs.
//!
//! `cargo bench -p monkit --bench instructions` runs this binary under valgrind for each case,
//! collecting only inside the loop of N calls (after a warm-up), twice: with N and 2N calls;
//! the difference over N is the count per call (the loop's own few instructions included, as
//! the `bare` case shows). Each case has a budget: a count over it fails the run (the full
//! test script runs it), so a regression shows.

mod common;
use monkit_testsupport::icount;

use common::{
    bare, bare_async, bare_async3, mk_async, mk_async3, mk_err, mk_events, mk_sync, mk_tagged,
    poll_once, poll_thrice, true_floor,
};
use monkit::{FinishedSpan, SpanObserver, SpanStart};
use std::hint::black_box;

#[monkit::task]
#[inline(never)]
fn mk_recorded(x: u64) -> u64 {
    black_box(x)
}

#[monkit::task]
#[inline(never)]
fn mk_watched(x: u64) -> u64 {
    black_box(x)
}

/// Chooses every trace of `mk_recorded` and drops what it is given: the cost of recording.
struct RecordAll;

impl SpanObserver for RecordAll {
    fn chooses_traces(&self) -> bool {
        true
    }
    fn new_trace(&self, root: &SpanStart) -> bool {
        root.name() == "mk_recorded"
    }
    fn finish(&self, span: &FinishedSpan) {
        black_box(span);
    }
}

/// Every span sampled for export: takes a copy of each finished span, as an exporter's queue
/// does, and wants no starts.
struct ExportAll;

impl SpanObserver for ExportAll {
    fn observes_starts(&self) -> bool {
        false
    }
    fn finish(&self, span: &FinishedSpan) {
        black_box(span.clone());
    }
}

/// (case, budget in instructions per call). Budgets sit about 5% above the counts measured
/// when they were set (see BENCHMARKS.md), so noise-free counts that grow past them are real.
const CASES: [(&str, u64); 20] = [
    ("bare", 13),
    // The async floor: an uninstrumented async fn polled once the same way.
    ("bare_async", 13),
    // The true floor: monkit's bookkeeping by hand, per-thread plain stores and two clock
    // reads (see `common::true_floor`); what sync and `Err` are read against.
    ("floor", 105),
    ("sync", 425),
    ("err", 475),
    // Polled once: its one poll is its duration (no clock read more), a counter and a
    // comparison for the slow-poll check (450 before polls were counted).
    ("async", 480),
    // A future that waits twice, polled three times, and its floor: each later poll reads
    // the clock at its start and end, and the call records its busy time beside its
    // duration (626 before polls were counted).
    ("bare_async3", 68),
    ("async3", 950),
    ("tagged", 425),
    ("recorded", 1330),
    // Every trace sampled, every finished span copied for an exporter.
    ("exported", 1000),
    // A function a conditional watcher waits on (`/trace/json?min_duration=1h`): each call
    // leaves a flight record the watcher is served from (before, each was recorded
    // tentatively: 3,700); and with 32 such watchers, the most the pages allow.
    ("cond_watched", 485),
    ("cond_watched32", 485),
    // A sync call of a function an objective covers (`monkit::slo`): the same as `sync`.
    ("sync_slo", 425),
    // The same calls with the flight recorder on (it is off by default): what its record
    // costs.
    ("sync_flight", 480),
    // Two span events a call: unrecorded (nothing kept), and every span exported.
    ("events", 450),
    ("exported_events", 3500),
    ("err_flight", 545),
    ("async_flight", 530),
    ("async3_flight", 1010),
];

fn err(x: u64) -> u64 {
    mk_err(x).unwrap_or(0)
}

fn async_once(x: u64) -> u64 {
    poll_once(mk_async(x))
}

fn bare_async_once(x: u64) -> u64 {
    poll_once(bare_async(x))
}

fn async_thrice(x: u64) -> u64 {
    poll_thrice(mk_async3(x))
}

fn bare_async_thrice(x: u64) -> u64 {
    poll_thrice(bare_async3(x))
}

fn run(case: &str, n: u64) {
    let case = match case.strip_suffix("_flight") {
        Some(c) => {
            monkit::flight::set_enabled(true);
            c
        }
        None => case,
    };
    // Chosen once, so the loop costs the same in every case.
    let one: fn(u64) -> u64 = match case {
        "bare" => bare,
        "floor" => true_floor,
        "sync" => mk_sync,
        "err" => err,
        "async" => async_once,
        "bare_async" => bare_async_once,
        "async3" => async_thrice,
        "bare_async3" => bare_async_thrice,
        "tagged" => mk_tagged,
        "recorded" => mk_recorded,
        "exported" | "sync_slo" => mk_sync,
        "events" | "exported_events" => mk_events,
        "cond_watched" | "cond_watched32" => mk_watched,
        _ => panic!("unknown case {case}"),
    };
    let watchers = match case {
        "cond_watched" => 1,
        "cond_watched32" => 32,
        _ => 0,
    };
    let _watch: Vec<_> = (0..watchers)
        .map(|_| {
            monkit::default_registry()
                .watch(
                    monkit::trace::WatchSpec::regex("mk_watched")
                        .min_duration(std::time::Duration::from_secs(3600)),
                )
                .unwrap()
        })
        .collect();
    // An objective over the function: read from what calls record anyway.
    if case == "sync_slo" {
        monkit::default_registry()
            .add_objective(
                monkit::slo::Objective::new("bench")
                    .success_ratio(0.999)
                    .latency(std::time::Duration::from_millis(1), 0.99)
                    .matching("mk_sync"),
            )
            .unwrap();
    }
    let _keep = (case == "recorded")
        .then(|| monkit::default_registry().observe(std::sync::Arc::new(RecordAll)));
    let _export = (case == "exported" || case == "exported_events").then(|| {
        monkit::default_registry().set_sampler(monkit::trace::Sampler::Always);
        monkit::default_registry().observe(std::sync::Arc::new(ExportAll))
    });
    // Warm-up: first calls register, allocate shards and buckets, calibrate the clock.
    for i in 0..1000 {
        black_box(one(black_box(i)));
    }
    measured(one, n);
}

/// The calls counted: callgrind collects only inside this function (`--toggle-collect`), so
/// start-up, warm-up and the clock's calibration never enter the count.
#[inline(never)]
fn measured(one: fn(u64) -> u64, n: u64) {
    for i in 0..n {
        black_box(one(black_box(i)));
    }
}

/// Instructions valgrind counted for a whole run of `case` with `n` calls.
fn count(case: &str, n: u64) -> u64 {
    icount::count("MONKIT_ICOUNT_CASE", &format!("{case}:{n}"))
}

fn main() {
    if let Ok(spec) = std::env::var("MONKIT_ICOUNT_CASE") {
        let (case, n) = spec.split_once(':').unwrap();
        run(case, n.parse().unwrap());
        return;
    }
    // `cargo test` runs benches as tests with `--bench` absent: only count when benchmarking.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if !icount::have_valgrind() {
        return;
    }
    const N: u64 = 20_000;
    let mut over = Vec::new();
    let mut got = std::collections::HashMap::new();
    println!("{:<12} {:>12} {:>8}", "case", "instr/call", "budget");
    // `MONKIT_ICOUNT_ONLY=sync,sync_off` counts only those cases (while tuning one path).
    let only = std::env::var("MONKIT_ICOUNT_ONLY").ok();
    for (case, budget) in CASES {
        if only
            .as_ref()
            .is_some_and(|o| !o.split(',').any(|c| c == case))
        {
            continue;
        }
        let per = (count(case, 2 * N) - count(case, N)) as f64 / N as f64;
        println!("{case:<12} {per:>12.1} {budget:>8}");
        got.insert(case, per);
        if per > budget as f64 {
            over.push(format!("{case}: {per:.1} > {budget}"));
        }
    }
    if only.is_some() {
        assert!(over.is_empty(), "over budget: {over:?}");
        return;
    }
    for case in ["sync", "err", "async", "async3"] {
        let (on, off) = (got[format!("{case}_flight").as_str()], got[case]);
        println!(
            "flight recorder, {case}: {:.0} instructions more than off ({:+.1}%)",
            on - off,
            (on / off - 1.0) * 100.0
        );
    }
    // What instrumentation adds over the same code without it, async against sync.
    let sync = got["sync"] - got["bare"];
    for (label, case, floor) in [
        ("polled once", "async", "bare_async"),
        ("polled three times", "async3", "bare_async3"),
    ] {
        let o = got[case] - got[floor];
        println!(
            "async overhead, {label}: {o:.0} instructions against sync's {sync:.0}: {:.2}x",
            o / sync
        );
    }
    assert!(over.is_empty(), "over budget: {over:?}");
}
