//! The atomics of the lock-free structures. Under `--cfg loom` they are loom's, so the model
//! checker can explore every interleaving of the code that uses them (see `loom_tests.rs`);
//! process-wide statics keep std's atomics, which loom cannot build in a `const`.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    fence, AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize,
};
#[cfg(loom)]
pub(crate) use loom::thread::yield_now;
pub(crate) use std::sync::atomic::Ordering;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    fence, AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize,
};
#[cfg(not(loom))]
pub(crate) use std::thread::yield_now;
