//! The shard count a user sets (`MONKIT_SHARDS`), shown as `monkit_shards`, and what a function
//! called from every one of 64 shards holds. Each case runs in a child process of its own: the
//! count is fixed once per process.

use std::hint::black_box;
use std::process::Command;

/// Runs `case` of this file in a child with `MONKIT_SHARDS=shards`.
fn in_child(case: &str, shards: &str) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", case, "--nocapture", "--test-threads=1"])
        .env("MONKIT_SHARDS", shards)
        .env("MONKIT_SHARDS_CHILD", case)
        .output()
        .expect("run the child");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{case} with {shards}: {err}");
    eprintln!("{err}");
}

fn is_child(case: &str) -> bool {
    std::env::var("MONKIT_SHARDS_CHILD").as_deref() == Ok(case)
}

#[test]
fn sixty_four_threads_on_sixty_four_shards() {
    const CASE: &str = "sixty_four_threads_on_sixty_four_shards";
    if !is_child(CASE) {
        return in_child(CASE, "64");
    }
    assert_eq!(monkit::stats::shards(), 64);
    // Fixed now: the same count is fine, another is refused with the count in use.
    assert!(monkit::stats::set_shards(64).is_ok());
    let e = monkit::stats::set_shards(8).unwrap_err();
    assert!(e.to_string().contains("fixed at 64"), "{e}");

    let reg = monkit::Registry::new();
    reg.expose_losses();
    let f = reg.scope("svc").func("hot");
    const THREADS: usize = 64;
    const CALLS: usize = 2_000;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let f = &f;
            s.spawn(move || {
                for c in 0..CALLS {
                    f.task(|| {
                        for k in 0..(1u32 << ((c + t) % 6)) {
                            black_box(k);
                        }
                    });
                }
            });
        }
    });
    let st = f.stats();
    let total = (THREADS * CALLS) as u64;
    assert_eq!(st.successes, total);
    assert_eq!(st.current, 0);
    assert!(
        (1..=THREADS as i64).contains(&st.highwater),
        "{}",
        st.highwater
    );
    // Every call is in the histogram and in the recent window, whichever cells it went to.
    assert_eq!(
        st.success_times.histogram().count_at_most(f64::INFINITY),
        total
    );
    assert_eq!(st.success_times.window_count(), total);
    let bytes = f.heap_bytes();
    eprintln!("a function called from 64 threads on 64 shards holds {bytes} bytes");
    assert!(bytes <= 32 * 1024, "{bytes} bytes");

    let text = monkit::render::prometheus::render(&reg, false);
    assert!(text.contains("# TYPE monkit_shards gauge"), "{text}");
    assert!(
        text.contains("monkit_shards{scope=\"monkit\"} 64"),
        "{text}"
    );
    let stats = monkit::render::text::stats(&reg);
    assert!(stats.contains("monkit,scope=monkit shards=64"), "{stats}");
}

#[test]
fn one_shard() {
    const CASE: &str = "one_shard";
    if !is_child(CASE) {
        return in_child(CASE, "1");
    }
    assert_eq!(monkit::stats::shards(), 1);
    let reg = monkit::Registry::new();
    let f = reg.scope("svc").func("f");
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..1_000 {
                    f.task(|| ());
                }
            });
        }
    });
    // One thread owns the shard; the others share the overflow slot with locked adds.
    assert_eq!(f.stats().successes, 4_000);
}

#[test]
fn a_bad_count_is_refused() {
    const CASE: &str = "a_bad_count_is_refused";
    if !is_child(CASE) {
        // Out of range in the environment: logged and the default used, never a panic.
        return in_child(CASE, "65");
    }
    let n = monkit::stats::shards();
    assert!((4..=64).contains(&n) && n.is_power_of_two(), "{n}");
    for bad in [0, 65, 1000] {
        let e = monkit::stats::set_shards(bad).unwrap_err();
        assert!(e.to_string().contains("1 to 64"), "{e}");
    }
}
