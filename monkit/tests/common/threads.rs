//! Thread shapes the running-count tests share: calls one at a time from several threads, and
//! calls all inside at once.
#![allow(dead_code)]

use std::sync::{Arc, Barrier, Mutex};

/// `threads` threads each make `calls` calls of `f`, never two at once.
pub fn one_at_a_time(threads: usize, calls: usize, f: fn()) {
    let turn = Arc::new(Mutex::new(()));
    let hs: Vec<_> = (0..threads)
        .map(|_| {
            let turn = turn.clone();
            std::thread::spawn(move || {
                for _ in 0..calls {
                    let _only = turn.lock().unwrap();
                    f();
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
}

/// Runs `n` threads calling `f(inside, hold)`; once all are inside (they wait on `inside`),
/// calls `check`, then lets them out (through `hold`) and joins them.
pub fn all_inside(n: usize, f: fn(&Barrier, &Barrier), check: impl FnOnce()) {
    let inside = Arc::new(Barrier::new(n + 1));
    let hold = Arc::new(Barrier::new(n + 1));
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let (a, b) = (inside.clone(), hold.clone());
            std::thread::spawn(move || f(&a, &b))
        })
        .collect();
    inside.wait();
    check();
    hold.wait();
    for h in hs {
        h.join().unwrap();
    }
}
