//! `set_exact_highwater(true)`: one shared count per function, so the highwater is the true
//! maximum even when calls move between threads. Its own test binary: the switch is
//! process-wide.

use monkit::default_registry;
use std::sync::{Arc, Barrier, Mutex};

#[monkit::task]
fn turn_taker() {}

#[monkit::task]
fn rendezvous(inside: &Barrier, hold: &Barrier) {
    inside.wait();
    hold.wait();
}

#[test]
fn exact_mode_counts_the_true_maximum() {
    monkit::set_exact_highwater(true);
    const THREADS: usize = 4;
    let turn = Arc::new(Mutex::new(()));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let turn = turn.clone();
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    let _only = turn.lock().unwrap();
                    turn_taker();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = default_registry()
        .func_by_name("exact_highwater.turn_taker")
        .unwrap()
        .stats();
    assert_eq!((s.current, s.highwater, s.successes), (0, 1, 4000));

    let (inside, hold) = (Arc::new(Barrier::new(5)), Arc::new(Barrier::new(5)));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (a, b) = (inside.clone(), hold.clone());
            std::thread::spawn(move || rendezvous(&a, &b))
        })
        .collect();
    inside.wait();
    let f = default_registry()
        .func_by_name("exact_highwater.rendezvous")
        .unwrap();
    assert_eq!(f.stats().current, 4);
    hold.wait();
    for t in threads {
        t.join().unwrap();
    }
    let s = f.stats();
    assert_eq!((s.current, s.highwater), (0, 4));
}
