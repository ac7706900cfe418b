//! A heap slot filled at most once, without locks: the first writer publishes its box with one
//! compare-and-swap, a racing writer frees its own and uses the winner's. Readers pay one
//! acquire load. Used where the hot path must allocate lazily but never block.
//!
//! The same idea as `once_cell::race::OnceBox`, written here because it is built on
//! `crate::util::sync`'s atomics, so the loom models explore it with everything that uses it.

use crate::util::sync::{AtomicPtr, Ordering};

pub(crate) struct OnceBox<T> {
    ptr: AtomicPtr<T>,
}

impl<T> Default for OnceBox<T> {
    fn default() -> Self {
        OnceBox {
            ptr: AtomicPtr::new(std::ptr::null_mut()),
        }
    }
}

impl<T> OnceBox<T> {
    #[inline(always)]
    pub(crate) fn get(&self) -> Option<&T> {
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: `ptr` only ever holds a pointer from Box::into_raw, freed in Drop.
        (!p.is_null()).then(|| unsafe { &*p })
    }

    #[inline(always)]
    pub(crate) fn get_or_init(&self, make: impl FnOnce() -> T) -> &T {
        match self.get() {
            Some(v) => v,
            None => self.init_with(make),
        }
    }

    /// The value is made here, not in the caller: a large `T` would otherwise take room in
    /// the caller's stack frame (and stack probes) on every call, though it is made once.
    #[cold]
    #[inline(never)]
    fn init_with(&self, make: impl FnOnce() -> T) -> &T {
        self.init(make())
    }

    #[cold]
    fn init(&self, value: T) -> &T {
        let fresh = Box::into_raw(Box::new(value));
        match self.ptr.compare_exchange(
            std::ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: just published; freed only in Drop.
            Ok(_) => unsafe { &*fresh },
            Err(other) => {
                // SAFETY: `fresh` never escaped this function.
                drop(unsafe { Box::from_raw(fresh) });
                // SAFETY: published by the winner, freed only in Drop.
                unsafe { &*other }
            }
        }
    }
}

impl<T> Drop for OnceBox<T> {
    fn drop(&mut self) {
        let p = self.ptr.load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: unique owner; pointer from Box::into_raw.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

// SAFETY: OnceBox<T> owns a T and hands out &T, like a Box<T> behind a OnceLock.
unsafe impl<T: Send + Sync> Sync for OnceBox<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for OnceBox<T> {}
