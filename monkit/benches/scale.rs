//! Memory at scale: what functions called from many threads hold, by shard count.
//!
//! Each case runs in a child process of its own (the shard count is fixed per process by
//! `MONKIT_SHARDS`): `threads` threads each call every one of `funcs` functions `calls` times,
//! with durations spread over a few octaves as real calls are. The child prints the growth of
//! its resident memory (`/proc/self/statm`) across making the functions and calling them, and
//! the bytes monkit accounts for (`Func::heap_bytes`), both per function.
//!
//! `cargo bench -p monkit --bench scale` runs the table of BENCHMARKS.md; with arguments
//! `SHARDS FUNCS THREADS CALLS` it runs one case.

use std::future::Future;
use std::hint::black_box;
use std::process::Command;
use std::sync::Barrier;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// A future ready at its second poll: an async call that waited once.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// One call of `f`: with `SCALE_ASYNC` set, an async call polled twice; else a sync call.
fn call(f: &monkit::Func, spin: usize) {
    let work = || {
        for k in 0..(1u32 << spin) {
            black_box(k);
        }
    };
    if std::env::var_os("SCALE_ASYNC").is_none() {
        return f.task(work);
    }
    let mut fut = std::pin::pin!(f.future(async move {
        work();
        YieldOnce(false).await;
    }));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    while fut.as_mut().poll(&mut cx).is_pending() {}
}

/// One case, in this process: prints `rss_per_func heap_per_func shards`.
fn child(funcs: usize, threads: usize, calls: usize) {
    let reg = monkit::Registry::new();
    let names: Vec<String> = (0..funcs).map(|i| format!("handler_{i}")).collect();
    let warm = reg.scope("warm").func("warm");
    let made = Barrier::new(threads + 1);
    let done = Barrier::new(threads + 1);
    let fs = std::sync::OnceLock::new();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (made, done, fs, warm) = (&made, &done, &fs, &warm);
            s.spawn(move || {
                // Claim a shard and touch the thread's own state before the first reading.
                warm.task(|| ());
                made.wait();
                let fs: &Vec<monkit::Func> = fs.get().unwrap();
                for c in 0..calls {
                    for (i, f) in fs.iter().enumerate() {
                        // Durations from tens of nanoseconds to a few microseconds.
                        call(f, (i + c + t) % 7);
                    }
                }
                done.wait();
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        let before = rss_bytes();
        let scope = reg.scope("svc");
        fs.set(names.iter().map(|n| scope.func(n)).collect::<Vec<_>>())
            .ok();
        made.wait();
        done.wait();
        let after = rss_bytes();
        let heap: usize = fs.get().unwrap().iter().map(|f| f.heap_bytes()).sum();
        println!(
            "{} {} {} {}",
            (after.saturating_sub(before)) / funcs as u64,
            heap / funcs,
            monkit::stats::shards(),
            after
        );
    });
}

/// Runs one case in a child; `polled_twice`: its calls are async calls polled twice.
fn run(
    shards: usize,
    funcs: usize,
    threads: usize,
    calls: usize,
    polled_twice: bool,
) -> (u64, u64, u64) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    if polled_twice {
        cmd.env("SCALE_ASYNC", "1");
    }
    let out = cmd
        .args([
            "--case",
            &funcs.to_string(),
            &threads.to_string(),
            &calls.to_string(),
        ])
        .env("MONKIT_SHARDS", shards.to_string())
        .output()
        .expect("run a case");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u64> = text
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    assert_eq!(v.len(), 4, "case printed {text:?}, {:?}", out.stderr);
    assert_eq!(v[2], shards as u64, "MONKIT_SHARDS was not taken");
    (v[0], v[1], v[3])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--case") {
        let n = |k: usize| args[i + k].parse::<usize>().expect("a number");
        child(n(1), n(2), n(3));
        return;
    }
    // `cargo bench` passes `--bench`; anything else is a filter of the rows by name.
    let filter = args
        .iter()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_default();
    let wanted = |name: &str| name.contains(&filter);
    println!("| case | shards | functions | threads | calls each | RSS per function | heap_bytes per function | process RSS |");
    println!("|---|---|---|---|---|---|---|---|");
    let row = |name: &str, shards: usize, funcs: usize, threads: usize, calls: usize| {
        if !wanted(name) {
            return;
        }
        let polled_twice = name.starts_with("async");
        let (rss, heap, total) = run(shards, funcs, threads, calls, polled_twice);
        println!(
            "| {name} | {shards} | {funcs} | {threads} | {calls} | {rss} B | {heap} B | {:.1} MiB |",
            total as f64 / 1048576.0
        );
    };
    for shards in [1, 4, 16, 64] {
        row("by_shards_hot", shards, 200, shards, 2_000);
    }
    for shards in [1, 4, 16, 64] {
        row("by_shards_cold", shards, 2_000, shards, 3);
    }
    row("sixty_four_threads", 64, 2_000, 64, 20);
    row("ten_thousand", 64, 10_000, 64, 3);
    // Async calls polled twice keep their durations and busy times apart as well.
    row("async_polled_twice_hot", 64, 200, 64, 2_000);
}
