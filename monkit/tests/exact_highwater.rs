//! `set_exact_highwater(true)`: one shared count per function, so the highwater is the true
//! maximum even when calls move between threads. Its own test binary: the switch is
//! process-wide.

use monkit::default_registry;
mod common {
    pub mod threads;
}

use std::sync::Barrier;

#[monkit::task]
fn turn_taker() {}

#[monkit::task]
fn rendezvous(inside: &Barrier, hold: &Barrier) {
    inside.wait();
    hold.wait();
}

#[test]
fn exact_mode_counts_the_true_maximum() {
    monkit::stats::set_exact_highwater(true);
    common::threads::one_at_a_time(4, 1000, turn_taker);
    let s = default_registry()
        .func_by_name("exact_highwater.turn_taker")
        .unwrap()
        .stats();
    assert_eq!((s.current, s.highwater, s.successes), (0, 1, 4000));

    let f = default_registry()
        .func_by_name("exact_highwater.rendezvous")
        .unwrap();
    common::threads::all_inside(4, rendezvous, || assert_eq!(f.stats().current, 4));
    let s = f.stats();
    assert_eq!((s.current, s.highwater), (0, 4));
}
