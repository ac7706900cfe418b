//! A collector that is down, answers 500, or is slow: the instrumented program keeps running,
//! memory stays bounded by the queue, drops and failures are counted, nothing panics, and
//! shutdown keeps its deadline. One test: the exporter is process-wide.

mod common;
use monkit_testsupport::ports;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[monkit::task]
fn work(i: u64) -> u64 {
    std::hint::black_box(i)
}

fn meter(name: &str) -> u64 {
    monkit::default_registry()
        .scope("monkit_zipkin")
        .meter(name)
        .total()
}

fn rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    s.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 4096
}

fn hammer(calls: u64) -> Duration {
    let t = Instant::now();
    for i in 0..calls {
        work(i);
    }
    t.elapsed()
}

#[test]
fn faulty_collectors() {
    // Down: nothing listens on this port.
    let url = format!("http://127.0.0.1:{}/api/v2/spans", ports::free_port());
    let exporter = monkit_zipkin::Builder::new(&url)
        .queue_capacity(1000)
        .batch(100, Duration::from_millis(10))
        .retries(3, Duration::from_millis(5), Duration::from_millis(20))
        .install(monkit::default_registry())
        .unwrap();
    let rss0 = rss();
    hammer(300_000);
    assert!(exporter.queued() <= 1000);
    assert!(meter("spans_dropped") > 0, "a full queue drops and counts");
    std::thread::sleep(Duration::from_millis(300));
    assert!(meter("batches_retried") > 0);
    assert!(meter("spans_failed") > 0);
    hammer(300_000);
    assert!(exporter.queued() <= 1000);
    // 600k sampled spans went through a queue of 1000: memory did not follow them.
    let grew = rss().saturating_sub(rss0);
    assert!(grew < 64 << 20, "RSS grew {grew} bytes");
    let t = Instant::now();
    exporter.shutdown(Duration::from_millis(500));
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        t.elapsed()
    );

    // Answering 500: permanent (only 429, 502, 503 and 504 are retried), counted as failed.
    let recv = common::receiver();
    recv.mode.store(common::FAIL_500, Ordering::Relaxed);
    let failed0 = meter("spans_failed");
    let exporter = monkit_zipkin::Builder::new(&recv.url())
        .batch(50, Duration::from_millis(10))
        .retries(2, Duration::from_millis(5), Duration::from_millis(10))
        .install(monkit::default_registry())
        .unwrap();
    hammer(100);
    assert!(!exporter.flush(Duration::from_millis(10)) || meter("spans_failed") >= failed0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while meter("spans_failed") < failed0 + 100 {
        assert!(
            Instant::now() < deadline,
            "500s were not counted as failures"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Recovery: the same exporter delivers once the collector is healthy.
    recv.mode.store(common::OK, Ordering::Relaxed);
    hammer(10);
    assert!(exporter.flush(Duration::from_secs(5)));
    assert!(!recv.bodies.lock().is_empty());
    exporter.shutdown(Duration::from_secs(1));

    // Slow (3 s per request, 200 ms timeout): the program does not wait for it.
    let recv = common::receiver();
    recv.mode.store(common::SLOW, Ordering::Relaxed);
    let exporter = monkit_zipkin::Builder::new(&recv.url())
        .queue_capacity(500)
        .timeout(Duration::from_millis(200))
        .batch(50, Duration::from_millis(10))
        .retries(1, Duration::from_millis(5), Duration::from_millis(5))
        .install(monkit::default_registry())
        .unwrap();
    let elapsed = hammer(200_000);
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert!(exporter.queued() <= 500);
    let t = Instant::now();
    exporter.shutdown(Duration::from_millis(300));
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        t.elapsed()
    );
}
