//! A compressed soak: millions of calls across many forced window rotations keep memory flat,
//! and faults in the program (a thread exiting with a span open) leave stats consistent and
//! pages renderable. Own binary: the window length is process-wide.

use std::time::{Duration, Instant};

fn rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    s.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 4096
}

#[monkit::task]
fn soaked(i: u64) -> Result<u64, std::fmt::Error> {
    if i.is_multiple_of(7) {
        Err(std::fmt::Error)
    } else {
        Ok(i)
    }
}

#[test]
#[ignore = "long: run by scripts/test-all.sh (cargo test -- --include-ignored)"]
fn memory_stays_flat_across_rotations() {
    // Epochs of about a millisecond: a second of calls is a thousand rotations, the same
    // churn as weeks at the default window.
    monkit::stats::set_recent_window(Duration::from_millis(1));
    let vals = monkit::default_registry().scope("soak").int_val("v");
    let run = |n: u64| {
        for i in 0..n {
            let _ = soaked(i);
            vals.observe((i % 10_000) as i64 * 1000);
        }
    };
    run(200_000);
    let base = rss();
    let t = Instant::now();
    let mut rounds = 0u64;
    while t.elapsed() < Duration::from_secs(3) {
        run(200_000);
        rounds += 1;
        // Render as a scraper would.
        let _ = monkit::render::text::stats(monkit::default_registry());
    }
    let grew = rss().saturating_sub(base);
    eprintln!(
        "soak: {} calls over {} ms of ~1 ms windows, RSS grew {grew} B",
        rounds * 200_000,
        t.elapsed().as_millis()
    );
    assert!(grew < 2 << 20, "RSS grew {grew} bytes");
    let s = monkit::default_registry()
        .func_by_name("soak.soaked")
        .unwrap()
        .stats();
    assert_eq!(s.successes + s.errors_total, (rounds + 1) * 200_000);
    assert_eq!(s.current, 0);
    monkit::stats::set_recent_window(Duration::from_secs(34));
}

#[test]
fn thread_exits_with_a_span_open() {
    static MON: monkit::Scope = monkit::scope!();
    let f = MON.func("abandoned");
    std::thread::spawn(move || {
        // A guard that is never dropped: the call never ends.
        std::mem::forget(f.guard());
        assert!(monkit::registry::all_running_spans()
            .iter()
            .any(|s| s.func().map(|f| f.name()) == Some("abandoned")));
    })
    .join()
    .unwrap();
    // The thread is gone: its stack is no longer listed; the stats say one call is running
    // (it never ended) and every page still renders.
    assert!(!monkit::registry::all_running_spans()
        .iter()
        .any(|s| s.func().map(|f| f.name()) == Some("abandoned")));
    let s = f.stats();
    assert_eq!((s.current, s.total()), (1, 1));
    let reg = monkit::default_registry();
    assert!(
        monkit::render::text::stats(reg).contains("function,name=abandoned,scope=soak current=1")
    );
    let _ = monkit::render::prometheus::render(reg, false);
    let _ = monkit::render::ps::text(&monkit::registry::all_running_spans());
    let _ = monkit::render::dot::dot(&monkit::render::funcs::read(reg));
}
