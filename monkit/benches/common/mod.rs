//! The functions both benchmarks measure (`overhead.rs` times them, `instructions.rs` counts
//! their instructions), defined once so the two always measure the same code.
#![allow(dead_code)]

use std::hint::black_box;

#[inline(never)]
pub fn bare(x: u64) -> u64 {
    black_box(x)
}

#[monkit::task]
#[inline(never)]
pub fn mk_sync(x: u64) -> u64 {
    black_box(x)
}

/// A call that notes two span events (kept only when its trace is recorded).
#[monkit::task]
#[inline(never)]
#[allow(dead_code)]
pub fn mk_events(x: u64) -> u64 {
    monkit::trace::event("step");
    monkit::trace::event_with("detail", &[("k", "v")]);
    black_box(x)
}

#[monkit::task(tags(kind = "greet", tier = "gold"))]
#[inline(never)]
pub fn mk_tagged(x: u64) -> u64 {
    black_box(x)
}

#[monkit::task(args)]
#[inline(never)]
pub fn mk_args(x: u64) -> u64 {
    black_box(x)
}

#[monkit::task]
#[inline(never)]
pub fn mk_err(x: u64) -> Result<u64, std::fmt::Error> {
    if black_box(x) != u64::MAX {
        Err(std::fmt::Error)
    } else {
        Ok(x)
    }
}

/// The async floor: the same future without instrumentation, polled the same way.
pub async fn bare_async(x: u64) -> u64 {
    black_box(x)
}

#[monkit::task]
pub async fn mk_async(x: u64) -> u64 {
    black_box(x)
}

/// Pending twice, then ready: a future that needs three polls.
pub struct TwoWaits(pub u8);

impl std::future::Future for TwoWaits {
    type Output = ();
    #[inline(always)]
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 == 2 {
            return std::task::Poll::Ready(());
        }
        self.0 += 1;
        std::task::Poll::Pending
    }
}

/// The async floor of three polls.
pub async fn bare_async3(x: u64) -> u64 {
    TwoWaits(0).await;
    black_box(x)
}

#[monkit::task]
pub async fn mk_async3(x: u64) -> u64 {
    TwoWaits(0).await;
    black_box(x)
}

/// Polls a future until it is ready, three polls (no wake-ups are needed: nothing else runs).
/// The future is hidden from the optimizer between polls, as a runtime's task is, so the
/// floor runs its state machine too instead of folding three polls into one.
#[inline(always)]
pub fn poll_thrice<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..2 {
        if black_box(f.as_mut()).poll(&mut cx).is_ready() {
            unreachable!("ready only at the third poll");
        }
    }
    match black_box(f.as_mut()).poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => unreachable!("ready at the third poll"),
    }
}

/// Polls a future that is ready at once, with no runtime (inlined, as it was when each bench
/// had its own copy, so the counts measure the call and not this shim).
#[inline(always)]
pub fn poll_once<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => unreachable!("ready at once"),
    }
}

/// What a thread keeps of one function by hand in the true floor: running count and peak,
/// count, sum, max and a bucket of the duration, plain stores to memory only this thread
/// touches.
struct FloorState {
    running: std::cell::Cell<u64>,
    peak: std::cell::Cell<u64>,
    count: std::cell::Cell<u64>,
    sum: std::cell::Cell<u64>,
    max: std::cell::Cell<u64>,
    buckets: [std::cell::Cell<u64>; 65],
}

thread_local! {
    static FLOOR: FloorState = const {
        FloorState {
            running: std::cell::Cell::new(0),
            peak: std::cell::Cell::new(0),
            count: std::cell::Cell::new(0),
            sum: std::cell::Cell::new(0),
            max: std::cell::Cell::new(0),
            buckets: [const { std::cell::Cell::new(0) }; 65],
        }
    };
}

/// The true floor: monkit's own bookkeeping done by hand with nothing shared (per-thread plain
/// stores of running count, peak, count, sum, max and a log2 bucket) and monkit's two clock
/// reads. No ids, no current span, no `/ps`, no callers, no watchers.
#[inline(never)]
pub fn true_floor(x: u64) -> u64 {
    FLOOR.with(|s| {
        let running = s.running.get() + 1;
        s.running.set(running);
        if running > s.peak.get() {
            s.peak.set(running);
        }
        let t0 = monkit::stats::Tick::now();
        let r = bare(x);
        let ns = t0.nanos_until(monkit::stats::Tick::now());
        s.count.set(s.count.get() + 1);
        s.sum.set(s.sum.get() + ns);
        if ns > s.max.get() {
            s.max.set(ns);
        }
        let b = &s.buckets[(64 - ns.leading_zeros()) as usize];
        b.set(b.get() + 1);
        s.running.set(running - 1);
        r
    })
}

/// A tree of calls `depth` deep with `fan` children each; the number of calls.
#[monkit::task]
#[inline(never)]
pub fn mk_node(depth: u32, fan: u32) -> u64 {
    let mut n = 1;
    if depth > 1 {
        for _ in 0..fan {
            n += mk_node(depth - 1, fan);
        }
    }
    black_box(n)
}

/// [`mk_node`]'s tree as fastrace spans.
#[fastrace::trace]
#[inline(never)]
pub fn ft_node(depth: u32, fan: u32) -> u64 {
    let mut n = 1;
    if depth > 1 {
        for _ in 0..fan {
            n += ft_node(depth - 1, fan);
        }
    }
    black_box(n)
}

/// Runs whole trees until about `spans` spans were made; returns the time per span.
pub fn per_span(spans: u64, mut batch: impl FnMut() -> u64) -> std::time::Duration {
    let t0 = std::time::Instant::now();
    let mut done = 0;
    while done < spans {
        done += batch();
    }
    std::time::Instant::now()
        .duration_since(t0)
        .mul_f64(spans as f64 / done as f64)
}
