//! Process stats change when the process does work; custom sources, struct values, diff
//! meters and delta transforms show up in the stats walk.

use monkit::Registry;
use std::collections::BTreeMap;

fn process(reg: &Registry) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    reg.stats(|k, f, v| {
        if k.measurement == "process" {
            assert_eq!(k.tags.get("scope"), Some("env"));
            out.insert(f.to_owned(), v);
        }
    });
    out
}

#[test]
fn env_stats_and_custom_sources() {
    let reg = Registry::new();
    monkit::env::register(&reg);
    let before = process(&reg);
    for field in [
        "uptime_seconds",
        "cpu_user_seconds",
        "cpu_system_seconds",
        "rss_bytes",
        "vsize_bytes",
        "max_rss_bytes",
        "open_fds",
        "max_fds",
        "start_time_seconds",
        "threads",
        "minor_faults",
        "major_faults",
        "voluntary_context_switches",
        "involuntary_context_switches",
        "exe_crc32",
    ] {
        assert!(before.contains_key(field), "{field} missing: {before:?}");
    }

    // Burn CPU, touch memory, open files, start threads.
    let t = std::time::Instant::now();
    let mut x = 0u64;
    while t.elapsed() < std::time::Duration::from_millis(300) {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    let mem: Vec<u8> = vec![1u8; 64 << 20];
    std::hint::black_box(mem.iter().step_by(4096).map(|&b| b as u64).sum::<u64>());
    let files: Vec<_> = (0..20)
        .map(|_| std::fs::File::open("/proc/self/stat").unwrap())
        .collect();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let rx = rx.clone();
            std::thread::spawn(move || {
                let _ = rx.lock().unwrap().recv();
            })
        })
        .collect();

    let after = process(&reg);
    assert!(
        after["cpu_user_seconds"] >= before["cpu_user_seconds"] + 0.2,
        "{after:?}"
    );
    assert!(
        after["rss_bytes"] >= before["rss_bytes"] + (48 << 20) as f64,
        "{after:?}"
    );
    assert!(after["max_rss_bytes"] >= after["rss_bytes"] * 0.9);
    assert!(after["minor_faults"] > before["minor_faults"]);
    assert!(after["open_fds"] >= before["open_fds"] + 20.0);
    assert!(after["threads"] >= before["threads"] + 4.0);
    assert!(after["uptime_seconds"] >= before["uptime_seconds"]);
    assert_eq!(after["exe_crc32"], before["exe_crc32"]);
    assert!(after["max_fds"] > after["open_fds"], "{after:?}");
    // The start is fixed, and with the uptime makes the time now.
    assert_eq!(after["start_time_seconds"], before["start_time_seconds"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let lag = now - (after["start_time_seconds"] + after["uptime_seconds"]);
    assert!(
        lag.abs() < 2.0,
        "start + uptime is {lag} s off now: {after:?}"
    );
    drop((mem, files, tx));
    for t in threads {
        t.join().unwrap();
    }
    custom_sources();
}

/// Called from the env test: the process's thread count must not change under it.
fn custom_sources() {
    let reg = Registry::new();
    let s = reg.scope("app");
    s.struct_val_with("cache", &[("tier", "hot")], |f| {
        f("entries", 120.0);
        f("bytes", 4096.0);
    });
    let started = s.meter("started");
    let finished = s.meter("finished");
    started.mark(10);
    finished.mark(7);
    s.chain(
        "inflight",
        monkit::stats::DiffMeter::new("inflight", &[], started.clone(), finished.clone()),
    );
    s.chain(
        "deltas",
        monkit::stats::DeltaTransform::new(
            monkit::stats::DiffMeter::new("started_delta", &[], started.clone(), s.meter("zero")),
            &["total"],
        ),
    );
    let text = monkit::render::text::stats(&reg);
    assert!(
        text.contains("cache,scope=app,tier=hot entries=120\n"),
        "{text}"
    );
    assert!(text.contains("cache,scope=app,tier=hot bytes=4096\n"));
    assert!(text.contains("inflight,scope=app total=3\n"));
    assert!(text.contains("started_delta,scope=app total=10\n"));
    started.mark(5);
    let text = monkit::render::text::stats(&reg);
    assert!(text.contains("started_delta,scope=app total=5\n"), "{text}");
    assert!(text.contains("inflight,scope=app total=8\n"));
    let prom = monkit::render::prometheus::render(&reg, false);
    assert!(
        prom.contains("cache_entries{scope=\"app\",tier=\"hot\"} 120"),
        "{prom}"
    );
}
