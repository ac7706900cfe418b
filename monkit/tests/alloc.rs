//! Zero allocations per call in steady state, and memory per function, counted by a global
//! allocator. One test function, so no other test allocates concurrently.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

struct Counting;

thread_local! {
    /// Only the test's own thread is counted (the harness thread may allocate meanwhile).
    static TRACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static SIZES: [AtomicUsize; 64] = [const { AtomicUsize::new(0) }; 64];
/// Allocations of one histogram octave (64 u32 counters): made once per window the first time
/// a value lands in that power of two, never per call.
static OCTAVE_ALLOCS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // An octave of a window (256 B) or of the cumulative histogram (512 B).
        if l.size() == 256 || l.size() == 512 {
            OCTAVE_ALLOCS.fetch_add(1, Ordering::Relaxed);
        } else if TRACK.with(|t| t.get()) {
            let n = ALLOCS.fetch_add(1, Ordering::Relaxed);
            SIZES[n % 64].store(l.size(), Ordering::Relaxed);
        }
        BYTES.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        BYTES.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[monkit::task]
fn sync_ok(x: u64) -> u64 {
    std::hint::black_box(x)
}

#[monkit::task]
fn sync_err(x: u64) -> Result<u64, std::io::Error> {
    if x.is_multiple_of(2) {
        Err(std::io::Error::from(std::io::ErrorKind::TimedOut))
    } else {
        Ok(x)
    }
}

#[monkit::task]
async fn async_ok(x: u64) -> u64 {
    x
}

/// Events in an unrecorded call: nothing kept, nothing allocated.
#[monkit::task]
fn with_events(x: u64) -> u64 {
    monkit::trace::event("step");
    monkit::trace::event_with("detail", &[("k", "v"), ("n", "2")]);
    x
}

#[monkit::task]
fn mem_one() {}

#[monkit::task]
fn mem_eight() {}

fn poll_once<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("pending"),
    }
}

#[test]
fn steady_state_and_memory() {
    // Warm up: first calls allocate shards and histogram buckets.
    let io = std::io::Error::from(std::io::ErrorKind::TimedOut);
    drop(io);
    for i in 0..1000 {
        sync_ok(i);
        let _ = sync_err(i | 1);
        poll_once(async_ok(i));
        with_events(i);
    }
    // The calls themselves: nothing, the flight recorder off.
    monkit::flight::set_enabled(false);
    TRACK.with(|t| t.set(true));
    let before = ALLOCS.load(Ordering::Relaxed);
    let octaves_before = OCTAVE_ALLOCS.load(Ordering::Relaxed);
    const CALLS: usize = 100_000;
    for i in 0..CALLS as u64 {
        sync_ok(i);
        let _ = sync_err(i | 1);
        poll_once(async_ok(i));
        with_events(i);
    }
    let after = ALLOCS.load(Ordering::Relaxed);
    TRACK.with(|t| t.set(false));
    let sizes: Vec<_> = (before..after)
        .map(|i| SIZES[i % 64].load(Ordering::Relaxed))
        .collect();
    assert_eq!(after - before, 0, "allocations per call: sizes {sizes:?}");

    // With the recorder on, records cost nothing either; a call it keeps (a function's new
    // slowest of the window, or a failure, at most one per 100 ms per function) allocates
    // its held subtree: a bounded number, whatever the number of calls.
    monkit::flight::set_enabled(true);
    TRACK.with(|t| t.set(true));
    let started = std::time::Instant::now();
    let before = ALLOCS.load(Ordering::Relaxed);
    for i in 0..CALLS as u64 {
        sync_ok(i);
        let _ = sync_err(i);
        poll_once(async_ok(i));
    }
    let after = ALLOCS.load(Ordering::Relaxed);
    TRACK.with(|t| t.set(false));
    let windows = 2 + started.elapsed().as_millis() as usize / 100;
    let kept = monkit::default_registry().recent_calls().len();
    eprintln!(
        "flight recorder on: {} allocations in {} calls over {:?}; {kept} calls held",
        after - before,
        3 * CALLS,
        started.elapsed()
    );
    // Each kept call: its subtree, the store's entry and the scratch of putting it together;
    // new slowest calls come about ln(calls) times per function and window.
    assert!(
        after - before <= 3 * (20 + windows) * 12,
        "{} allocations",
        after - before
    );
    assert!(kept >= 3, "{kept}");
    // A call slower than any before (a preemption) may open a new octave of the windows and
    // of the cumulative histogram: at most 3 tables x 3 functions x 20 octaves, whatever the
    // number of calls.
    let octaves = OCTAVE_ALLOCS.load(Ordering::Relaxed) - octaves_before;
    eprintln!("octave allocations during {} calls: {octaves}", 3 * CALLS);
    assert!(octaves <= 180, "{octaves}");

    // Memory of one function after calls from 1 thread, then from 8 threads (without the
    // flight recorder, whose rings are the process's, one per thread, bounded by its bytes).
    monkit::flight::set_enabled(false);
    monkit::default_registry().funcs(); // registration itself is not counted below
    let f1 = monkit::default_registry()
        .func_by_name("alloc.mem_one")
        .unwrap();
    let b0 = BYTES.load(Ordering::Relaxed);
    for _ in 0..10_000 {
        mem_one();
    }
    let one = BYTES.load(Ordering::Relaxed) - b0;
    eprintln!(
        "memory per function, 1 thread: {one} B (heap_bytes {})",
        f1.heap_bytes()
    );
    assert!(one <= 32 * 1024, "{one} bytes");

    let f8 = monkit::default_registry()
        .func_by_name("alloc.mem_eight")
        .unwrap();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                // Touch thread-locals first so their own allocations are not counted.
                sync_ok(0);
            });
        }
    });
    let threads: Vec<_> = (0..8).map(|_| std::thread::Builder::new()).collect();
    let b0 = BYTES.load(Ordering::Relaxed);
    std::thread::scope(|s| {
        for b in threads {
            b.spawn_scoped(s, || {
                for _ in 0..10_000 {
                    mem_eight();
                }
            })
            .unwrap();
        }
    });
    // Thread stacks and thread-local buffers are freed at join; what is left is the function's.
    let eight = BYTES.load(Ordering::Relaxed) - b0;
    eprintln!(
        "memory per function, 8 threads: {eight} B (heap_bytes {})",
        f8.heap_bytes()
    );
    assert!(eight <= 64 * 1024, "{eight} bytes");
}
