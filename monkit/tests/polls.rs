//! Inside async calls, on a real multi-thread tokio runtime: a function that blocks its worker
//! with `std::thread::sleep` has exactly its slow polls and is busy for its whole duration; one
//! that awaits a timer as long has none and is busy for almost none of it; one that does half
//! of each is busy half the time.

use monkit::{default_registry, Func};
use std::time::{Duration, Instant};

const NAP: Duration = Duration::from_millis(40);

#[monkit::task]
async fn blocks_worker() -> u32 {
    std::thread::sleep(NAP);
    1
}

#[monkit::task]
async fn awaits_timer() -> u32 {
    tokio::time::sleep(NAP).await;
    1
}

#[monkit::task]
async fn half_and_half() -> u32 {
    std::thread::sleep(NAP / 2);
    tokio::time::sleep(NAP / 2).await;
    1
}

#[monkit::task]
async fn yields_often(n: u32) -> u32 {
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
    n
}

#[monkit::task]
fn plain_sync() -> u32 {
    2
}

fn func(name: &str) -> Func {
    default_registry()
        .funcs()
        .into_iter()
        .find(|f| f.name() == name)
        .unwrap_or_else(|| panic!("no function {name}"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_blocking_fn_is_found_and_a_waiting_one_is_not() {
    monkit::polls::set_slow_poll(Duration::from_millis(10));
    let rt = runtime();
    const CALLS: u64 = 5;
    let t = Instant::now();
    rt.block_on(async {
        for _ in 0..CALLS {
            tokio::spawn(blocks_worker()).await.unwrap();
            tokio::spawn(awaits_timer()).await.unwrap();
            tokio::spawn(half_and_half()).await.unwrap();
        }
    });
    let took = t.elapsed();

    let blocking = func("blocks_worker").stats();
    let p = blocking.polls.clone().expect("async calls have polls");
    assert_eq!(p.calls, CALLS);
    assert_eq!(p.polls, CALLS, "no await: one poll each");
    assert_eq!(p.slow_polls, CALLS, "every poll blocked for {NAP:?}");
    assert!(p.max_poll_ns >= NAP.as_nanos() as u64);
    let wall = blocking.success_times.sum;
    let busy = p.busy_ns();
    assert!(
        (busy - wall).abs() <= 0.05 * wall,
        "busy {busy} against wall {wall}"
    );

    let waiting = func("awaits_timer").stats();
    let p = waiting.polls.clone().unwrap();
    assert_eq!(p.calls, CALLS);
    assert_eq!(p.slow_polls, 0, "awaiting a timer blocks nothing");
    assert!(p.polls >= 2 * CALLS, "a timer await is at least two polls");
    let wall = waiting.success_times.sum;
    assert!(wall >= (CALLS as f64) * NAP.as_nanos() as f64);
    assert!(
        p.busy_ns() <= 0.05 * wall,
        "busy {} of wall {wall}",
        p.busy_ns()
    );
    assert!(p.max_poll_ns < Duration::from_millis(10).as_nanos() as u64);

    let half = func("half_and_half").stats();
    assert_eq!(
        half.successes, CALLS,
        "calls polled twice count as successes"
    );
    assert_eq!(half.total(), CALLS);
    let p = half.polls.clone().unwrap();
    assert_eq!(p.slow_polls, CALLS, "the first poll of each blocked");
    let wall = half.success_times.sum;
    let share = p.busy_ns() / wall;
    assert!(
        (share - 0.5).abs() <= 0.05 + 0.5 * 0.05,
        "busy share {share:.3} (busy {} of {wall})",
        p.busy_ns()
    );
    // Both durations cover every call, whichever way each was polled.
    assert_eq!(half.success_times.count, CALLS);
    assert_eq!(p.busy_success.count, CALLS);
    assert!(took >= NAP * 2 * CALLS as u32);
}

#[test]
fn polls_per_call_are_counted_exactly() {
    let rt = runtime();
    rt.block_on(async {
        for n in [0u32, 1, 3, 7, 100] {
            tokio::spawn(yields_often(n)).await.unwrap();
        }
    });
    let p = func("yields_often").stats().polls.unwrap();
    assert_eq!(p.calls, 5);
    // n yields make n + 1 polls.
    assert_eq!(p.polls, 1 + 2 + 4 + 8 + 101);
    let buckets: Vec<(u64, u64)> = p.per_call.clone();
    assert_eq!(buckets, vec![(1, 1), (2, 1), (4, 1), (8, 1), (128, 1)]);
    assert_eq!(p.polls_quantile(0.5), 4);
    assert_eq!(p.polls_quantile(1.0), 128);
    assert!((p.mean_polls() - 116.0 / 5.0).abs() < 1e-9);
}

#[test]
fn a_future_dropped_between_polls_counts_the_polls_it_had() {
    let rt = runtime();
    rt.block_on(async {
        let mut fut = Box::pin(awaits_dropped());
        assert!(futures::poll!(fut.as_mut()).is_pending());
        tokio::time::sleep(Duration::from_millis(5)).await;
        drop(fut);
    });
    let s = func("awaits_dropped").stats();
    assert_eq!(s.errors, vec![("canceled", 1)]);
    assert_eq!(
        (s.successes, s.failures(), s.failure_times.count),
        (0, 1, 1)
    );
    let p = s.polls.unwrap();
    assert_eq!((p.calls, p.polls), (1, 1));
    assert_eq!(p.busy_failure.count, 1);
    assert!(p.busy_failure.sum < s.failure_times.sum);
}

#[monkit::task]
async fn awaits_dropped() -> u32 {
    tokio::time::sleep(Duration::from_secs(60)).await;
    1
}

#[monkit::task]
async fn outer_blocks_nothing() -> u32 {
    inner_blocks().await + 1
}

#[monkit::task]
async fn inner_blocks() -> u32 {
    std::thread::sleep(NAP);
    tokio::task::yield_now().await;
    1
}

#[monkit::task]
async fn outer_blocks_too() -> u32 {
    std::thread::sleep(NAP / 2);
    inner_blocks_too().await + 1
}

#[monkit::task]
async fn inner_blocks_too() -> u32 {
    std::thread::sleep(NAP / 2);
    1
}

/// An outer future's poll contains its inner future's: a slow poll belongs to the function
/// whose own code held the thread, not to every caller above it.
#[test]
fn a_slow_poll_belongs_to_the_function_that_blocked() {
    monkit::polls::set_slow_poll(Duration::from_millis(10));
    let rt = runtime();
    rt.block_on(async {
        for _ in 0..3 {
            tokio::spawn(outer_blocks_nothing()).await.unwrap();
            tokio::spawn(outer_blocks_too()).await.unwrap();
        }
    });
    let slow = |name| func(name).stats().polls.unwrap().slow_polls;
    assert_eq!(slow("inner_blocks"), 3);
    assert_eq!(
        slow("outer_blocks_nothing"),
        0,
        "its poll only held the inner one"
    );
    // Each blocked for 20 ms: both slow on their own.
    assert_eq!(slow("inner_blocks_too"), 3);
    assert_eq!(slow("outer_blocks_too"), 3);
    // Busy time is what each poll ran, inner polls included.
    let outer = func("outer_blocks_nothing").stats().polls.unwrap();
    assert!(outer.busy_ns() >= 3.0 * NAP.as_nanos() as f64);
}

#[test]
fn sync_functions_have_no_polls() {
    plain_sync();
    assert!(func("plain_sync").stats().polls.is_none());
}

#[test]
fn a_recorded_async_span_knows_its_polls() {
    let rt = runtime();
    let ((), spans) = rt.block_on(monkit::collect_trace_async(async {
        recorded_parent().await;
    }));
    let span = spans
        .iter()
        .find(|s| s.start.name() == "half_and_half_recorded")
        .expect("the child span was recorded");
    let polls = span.polls().expect("an async span has polls");
    assert!(polls.count >= 2, "{polls:?}");
    assert_eq!(polls.segments.len() as u32, polls.count);
    let slow = &polls.slow;
    assert_eq!(slow.len(), 1, "the blocking poll is slow: {polls:?}");
    assert_eq!(slow[0].0, 0, "the first poll starts the span");
    let busy: u64 = polls.segments.iter().map(|s| s.1).sum();
    // Each converted from clock ticks on its own: within a nanosecond a segment.
    assert!(
        busy.abs_diff(polls.busy_ns) <= u64::from(polls.count),
        "{busy} vs {polls:?}"
    );
    assert!(busy < span.duration_ns());
    for w in polls.segments.windows(2) {
        assert!(w[0].0 + w[0].1 <= w[1].0, "segments in order: {w:?}");
    }
}

#[monkit::task]
async fn recorded_parent() {
    half_and_half_recorded().await;
}

#[monkit::task]
async fn half_and_half_recorded() -> u32 {
    std::thread::sleep(Duration::from_millis(15));
    tokio::time::sleep(Duration::from_millis(15)).await;
    1
}
