//! Nothing lost under load: 2 threads x 10M calls over 100 functions while 32 clients scrape
//! every page in a loop and a trace watcher captures repeatedly. Exact final counts, right
//! highwater, no page error, no deadlock (the test has a hard deadline).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const FUNCS: usize = 100;

fn calls_per_thread() -> u64 {
    std::env::var("MONKIT_LOAD_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000)
}

#[test]
#[ignore = "long: run by scripts/test-all.sh (cargo test -- --include-ignored)"]
fn nothing_lost_under_load() {
    let reg = monkit::Registry::new();
    let scope = reg.scope("load");
    let funcs: Vec<monkit::Func> = (0..FUNCS)
        .map(|i| scope.func(&format!("f{i:03}")))
        .collect();
    let srv = monkit_http::serve(reg.clone(), "127.0.0.1:0").unwrap();
    let base = format!("http://{}", srv.local_addr());
    let stop = Arc::new(AtomicBool::new(false));
    let pages_ok = Arc::new(AtomicU64::new(0));
    let traces_ok = Arc::new(AtomicU64::new(0));
    let calls = calls_per_thread();
    let start = Arc::new(Barrier::new(2 + 32 + 1));
    let deadline = Instant::now() + Duration::from_secs(600);

    std::thread::scope(|s| {
        for c in 0..32 {
            let (stop, start, base, ok) =
                (stop.clone(), start.clone(), base.clone(), pages_ok.clone());
            s.spawn(move || {
                let pages = [
                    "/stats",
                    "/stats/json",
                    "/funcs",
                    "/funcs/json",
                    "/funcs/dot",
                    "/ps",
                    "/ps/json",
                    "/metrics",
                    "/",
                ];
                start.wait();
                let mut i = c;
                while !stop.load(Ordering::Relaxed) {
                    let r = ureq::get(&format!("{base}{}", pages[i % pages.len()])).call();
                    assert_eq!(r.map(|r| r.status()).unwrap_or(0), 200, "page error");
                    ok.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            });
        }
        {
            let (stop, start, base, ok) =
                (stop.clone(), start.clone(), base.clone(), traces_ok.clone());
            s.spawn(move || {
                start.wait();
                while !stop.load(Ordering::Relaxed) {
                    let r = ureq::get(&format!(
                        "{base}/trace/json?regex=load%5C.f0[0-4]&timeout=5s"
                    ))
                    .call();
                    if let Ok(r) = r {
                        let v: Vec<serde_json::Value> =
                            serde_json::from_str(&r.into_string().unwrap()).unwrap();
                        assert!(!v.is_empty());
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        let callers: Vec<_> = (0..2)
            .map(|_| {
                let (start, funcs) = (start.clone(), &funcs);
                s.spawn(move || {
                    start.wait();
                    for i in 0..calls {
                        funcs[(i as usize) % FUNCS].task(|| std::hint::black_box(i));
                        if i % 1_000_000 == 0 {
                            assert!(Instant::now() < deadline, "deadline");
                        }
                    }
                })
            })
            .collect();
        for c in callers {
            c.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });

    let per = 2 * calls / FUNCS as u64;
    for f in &funcs {
        let st = f.stats();
        assert_eq!(st.successes, per, "{}", f.full_name());
        assert_eq!(st.current, 0);
        assert!(
            (1..=2).contains(&st.highwater),
            "{} highwater {}",
            f.full_name(),
            st.highwater
        );
    }
    let (pages, traces) = (
        pages_ok.load(Ordering::Relaxed),
        traces_ok.load(Ordering::Relaxed),
    );
    eprintln!(
        "load: {} calls, {pages} pages, {traces} traces captured",
        2 * calls
    );
    assert!(pages > 32 && traces > 0);
}
