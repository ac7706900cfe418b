//! The highwater is the most calls that really ran at once, in the default (per-thread) mode:
//! calls that never overlap read 1 however many threads make them, N calls at once read N,
//! on plain threads and on tokio's multi-threaded runtime, where a task resumes on any worker.

use monkit::Registry;
use std::collections::HashSet;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

fn funcs_text(reg: &Registry) -> String {
    monkit::render::funcs::text(&monkit::render::funcs::read(reg))
}

#[test]
fn calls_taking_turns_on_four_threads_read_one() {
    let reg = Registry::new();
    let f = reg.scope("hw").func("turns");
    let turn = Arc::new(Mutex::new(()));
    std::thread::scope(|s| {
        for _ in 0..4 {
            let turn = turn.clone();
            s.spawn(move || {
                for _ in 0..2000 {
                    let _only = turn.lock().unwrap();
                    f.task(|| ());
                }
            });
        }
    });
    let s = f.stats();
    assert_eq!((s.current, s.highwater, s.successes), (0, 1, 8000));
    assert!(
        funcs_text(&reg).contains("highwater: 1"),
        "{}",
        funcs_text(&reg)
    );

    // Then four at once: 4, and taking turns again afterwards leaves it at 4.
    let inside = Barrier::new(4);
    std::thread::scope(|s| {
        for _ in 0..4 {
            let inside = &inside;
            s.spawn(move || f.task(|| inside.wait()));
        }
    });
    assert_eq!(f.stats().highwater, 4);
    for _ in 0..100 {
        f.task(|| ());
    }
    assert_eq!((f.stats().current, f.stats().highwater), (0, 4));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

/// The thread each call's task ran on, before and after it yielded.
type Seen = Arc<Mutex<HashSet<std::thread::ThreadId>>>;

async fn hop(f: monkit::Func, seen: Seen, yields: usize) {
    f.future(async move {
        for _ in 0..yields {
            seen.lock().unwrap().insert(std::thread::current().id());
            tokio::task::yield_now().await;
        }
        seen.lock().unwrap().insert(std::thread::current().id());
    })
    .await;
}

#[test]
fn sequential_tasks_on_a_multi_thread_runtime_read_one() {
    let reg = Registry::new();
    let f = reg.scope("hw").func("sequential");
    let seen: Seen = Arc::default();
    let rt = runtime();
    rt.block_on(async {
        for i in 0..400 {
            // Each call is a new task, spawned from outside the workers: any worker may take it,
            // and it may resume elsewhere after each yield.
            tokio::spawn(hop(f, seen.clone(), i % 3)).await.unwrap();
        }
    });
    let s = f.stats();
    assert!(
        seen.lock().unwrap().len() > 1,
        "the calls ran on one worker only: the test shows nothing"
    );
    assert_eq!((s.current, s.highwater, s.successes), (0, 1, 400));
}

#[test]
fn n_tasks_at_once_read_n_and_no_more() {
    let reg = Registry::new();
    let f = reg.scope("hw").func("at_once");
    let rt = runtime();
    for n in [3usize, 16] {
        let all_in = Arc::new(tokio::sync::Barrier::new(n));
        rt.block_on(async {
            let tasks: Vec<_> = (0..n)
                .map(|_| {
                    let all_in = all_in.clone();
                    tokio::spawn(f.future(async move {
                        all_in.wait().await;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }))
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        let s = f.stats();
        assert_eq!((s.current, s.highwater), (0, n as i64), "{n} at once");
        // Sequential calls afterwards, hopping between workers, do not move it.
        rt.block_on(async {
            for _ in 0..50 {
                tokio::spawn(hop(f, Arc::default(), 2)).await.unwrap();
            }
        });
        assert_eq!(f.stats().highwater, n as i64);
    }
}
