//! Exact counts under real concurrent threads.

use monkit::default_registry;
mod common {
    pub mod threads;
}

use std::sync::Barrier;

#[monkit::task]
fn hot(i: u64) -> Result<u64, std::fmt::Error> {
    if i % 1000 == 999 {
        Err(std::fmt::Error)
    } else {
        Ok(i)
    }
}

#[test]
fn exact_counts_with_threads() {
    const THREADS: u64 = 4;
    const CALLS: u64 = 1_000_000;
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            std::thread::spawn(|| {
                for i in 0..CALLS {
                    let _ = hot(i);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = default_registry()
        .func_by_name("concurrency.hot")
        .unwrap()
        .stats();
    let errors = THREADS * CALLS / 1000;
    assert_eq!(s.successes, THREADS * CALLS - errors);
    assert_eq!(s.errors_total, errors);
    assert_eq!(s.errors, vec![("fmt::Error", errors)]);
    assert_eq!(s.current, 0);
    assert!(
        (1..=THREADS as i64).contains(&s.highwater),
        "{}",
        s.highwater
    );
    assert_eq!(s.success_times.count, THREADS * CALLS - errors);
    assert_eq!(s.failure_times.count, errors);
    assert!(s.success_times.min > 0.0 && s.success_times.max >= s.success_times.min);
}

#[monkit::task]
fn rendezvous(b: &Barrier, hold: &Barrier) {
    b.wait();
    hold.wait();
}

#[test]
fn highwater_is_exact() {
    const N: usize = 6;
    let f = default_registry()
        .func_by_name("concurrency.rendezvous")
        .unwrap();
    // All N are inside at once.
    common::threads::all_inside(N, rendezvous, || assert_eq!(f.stats().current, N as i64));
    let s = f.stats();
    assert_eq!(
        (s.current, s.highwater, s.successes),
        (0, N as i64, N as u64)
    );
}

#[test]
fn sources_exact_with_threads() {
    static MON: monkit::Scope = monkit::scope!("concurrency_sources");
    let meter = MON.meter("m");
    let counter = MON.counter("c");
    let ints = MON.int_val("i");
    let floats = MON.float_val("f");
    let bools = MON.bool_val("b");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (meter, counter, ints, floats, bools) = (
                meter.clone(),
                counter.clone(),
                ints.clone(),
                floats.clone(),
                bools.clone(),
            );
            std::thread::spawn(move || {
                for i in 0..100_000i64 {
                    meter.mark(1);
                    counter.inc(1);
                    counter.dec(1);
                    ints.observe(i - 50_000);
                    floats.observe(0.1);
                    bools.observe(i % 4 == 0);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(meter.total(), 400_000);
    assert_eq!(counter.value(), 0);
    assert!((1..=4).contains(&counter.high()));
    let s = ints.snapshot();
    assert_eq!((s.count, s.min, s.max), (400_000, -50_000.0, 49_999.0));
    assert_eq!(s.sum, 4.0 * (-50_000.0));
    let f = floats.snapshot();
    // 400k * 0.1 kept as a float: not truncated to an integer.
    assert!((f.sum - 40_000.0).abs() < 1e-6, "{}", f.sum);
    assert_eq!(bools.counts().0, 100_000);
    assert_eq!(bools.counts().1, 300_000);
}

#[monkit::task]
fn one_at_a_time() {}

/// Calls that never overlap, from several threads: the highwater is one, though each
/// thread's shard counted its own calls.
#[test]
fn highwater_is_exact_when_calls_move_between_threads() {
    const THREADS: usize = 4;
    common::threads::one_at_a_time(THREADS, 1000, one_at_a_time);
    let s = default_registry()
        .func_by_name("concurrency.one_at_a_time")
        .unwrap()
        .stats();
    assert_eq!((s.current, s.highwater, s.successes), (0, 1, 4000));
}

#[monkit::task]
async fn hops(rx: tokio::sync::oneshot::Receiver<()>) {
    rx.await.ok();
}

/// An async call begun on one thread and ended on another is taken off the count where it
/// began: after many such hops nothing reads as running and the highwater has not crept up.
#[test]
fn async_calls_ending_on_another_thread_leave_counts_exact() {
    use std::future::Future;
    use std::task::{Context, Poll};
    let (to_b, from_a) = std::sync::mpsc::channel::<(
        std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
        tokio::sync::oneshot::Sender<()>,
    )>();
    let (done_tx, done) = std::sync::mpsc::channel();
    let b = std::thread::spawn(move || {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        for (mut fut, tx) in from_a {
            tx.send(()).unwrap();
            assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(()));
            done_tx.send(()).unwrap();
        }
    });
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    for _ in 0..1000 {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut fut: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(hops(rx));
        assert_eq!(fut.as_mut().poll(&mut cx), Poll::Pending);
        to_b.send((fut, tx)).unwrap();
        done.recv().unwrap();
    }
    drop(to_b);
    b.join().unwrap();
    let s = default_registry()
        .func_by_name("concurrency.hops")
        .unwrap()
        .stats();
    assert_eq!((s.current, s.successes), (0, 1000));
    // One call at a time: counted where it began, each ending is seen there, so the begin
    // thread's peak stays one (taking the ends off B's count would have left A's at 1000).
    assert_eq!(s.highwater, 1);
}
