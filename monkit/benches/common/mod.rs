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
