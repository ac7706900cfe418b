//! A tokio runtime's stats as a source (its own test binary: its threads would disturb the
//! thread counts the process stats test reads).

/// A tokio runtime's own numbers, read at every walk.
#[cfg(feature = "tokio")]
#[test]
fn tokio_runtime_stats() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let reg = monkit::Registry::new();
    monkit::env::register_tokio(&reg, rt.handle().clone());
    monkit::env::register_build(&reg, "1.2.3");
    let sleeper = rt.spawn(async { tokio::time::sleep(std::time::Duration::from_secs(5)).await });
    // Some work for the workers' busy time.
    rt.block_on(async {
        for _ in 0..100 {
            tokio::spawn(async { std::hint::black_box(1) })
                .await
                .unwrap();
        }
    });
    let text = monkit::render::text::stats(&reg);
    let field = |series: &str, f: &str| -> f64 {
        text.lines()
            .find_map(|l| {
                let (k, fv) = l.rsplit_once(' ')?;
                let (name, v) = fv.split_once('=')?;
                (k.starts_with(series) && name == f).then(|| v.parse().unwrap())
            })
            .unwrap_or_else(|| panic!("{series} {f} missing in:\n{text}"))
    };
    assert_eq!(field("tokio_runtime,", "workers"), 2.0);
    assert!(field("tokio_runtime,", "alive_tasks") >= 1.0);
    assert!(field("tokio_runtime,", "busy_seconds") > 0.0);
    assert!(field("tokio_worker,", "parks") >= 0.0);
    // A worker parking and waking counts one park and two park-unpark changes.
    let (parks, unparks) = (
        field("tokio_runtime,", "parks"),
        field("tokio_runtime,", "park_unparks_total"),
    );
    assert!(unparks >= parks, "{unparks} park-unparks, {parks} parks");
    let prom = monkit::render::prometheus::render(&reg, false);
    assert!(
        prom.contains("# TYPE tokio_runtime_park_unparks_total counter"),
        "{prom}"
    );
    assert!(
        text.contains("build,scope=env,version=1.2.3 value=1"),
        "{text}"
    );
    sleeper.abort();
}
