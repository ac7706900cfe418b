//! Process and environment stats, read fresh at every walk.
//!
//! ```
//! monkit::env::register(monkit::default_registry());
//! ```
//!
//! Adds the series `process,scope=env` with: `uptime_seconds`, `start_time_seconds` (Unix
//! time), `cpu_user_seconds`, `cpu_system_seconds`, `rss_bytes`, `vsize_bytes`,
//! `max_rss_bytes`, `open_fds`, `max_fds` (the soft limit: alert on `open_fds / max_fds`),
//! `threads`, `minor_faults`, `major_faults`, `voluntary_context_switches`,
//! `involuntary_context_switches` and `exe_crc32`. On Linux every field comes from `/proc` and
//! `getrusage`; other Unix systems get the `getrusage` fields; elsewhere only uptime and the
//! executable's crc. Reading takes a few file reads on the reading thread, never a lock the
//! program uses.

use crate::registry::Registry;
use crate::stats::series::{SeriesKey, Tags};
use crate::stats::StatSource;
use std::sync::OnceLock;
use std::time::Instant;

/// Adds the process stats to `registry` (under scope `env`).
pub fn register(registry: &Registry) {
    let started = Instant::now();
    registry.scope("env").chain(
        "process",
        Process {
            key: SeriesKey::new("process", Tags::default()),
            registered: started,
        },
    );
}

struct Process {
    key: SeriesKey,
    registered: Instant,
}

/// The crc32 of the running executable, read once (on the first walk, off the program's path).
fn exe_crc() -> Option<u32> {
    static CRC: OnceLock<Option<u32>> = OnceLock::new();
    *CRC.get_or_init(|| {
        let path = std::env::current_exe().ok()?;
        let mut f = std::fs::File::open(path).ok()?;
        let mut h = crc32fast::Hasher::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match std::io::Read::read(&mut f, &mut buf) {
                Ok(0) => break,
                Ok(n) => h.update(&buf[..n]),
                Err(_) => return None,
            }
        }
        Some(h.finalize())
    })
}

impl StatSource for Process {
    fn stats(&self, cb: &mut dyn FnMut(&SeriesKey, &str, f64)) {
        let mut f = |name: &str, v: f64| cb(&self.key, name, v);
        f(
            "uptime_seconds",
            uptime().unwrap_or_else(|| self.registered.elapsed().as_secs_f64()),
        );
        if let Some(t) = start_time() {
            f("start_time_seconds", t);
        }
        #[cfg(unix)]
        rusage(&mut f);
        #[cfg(target_os = "linux")]
        linux(&mut f);
        if let Some(c) = exe_crc() {
            f("exe_crc32", f64::from(c));
        }
    }
}

#[cfg(unix)]
fn rusage(f: &mut dyn FnMut(&str, f64)) {
    // SAFETY: getrusage fills the struct we pass; all-zero is a valid rusage.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return;
    }
    // Whole microseconds divided once: an exact decimal, no float noise.
    #[allow(clippy::unnecessary_cast)] // i64 here, narrower on some platforms
    let secs = |t: libc::timeval| (t.tv_sec as i64 * 1_000_000 + t.tv_usec as i64) as f64 / 1e6;
    f("cpu_user_seconds", secs(u.ru_utime));
    f("cpu_system_seconds", secs(u.ru_stime));
    // Linux reports kilobytes, macOS bytes.
    let max_rss = if cfg!(target_os = "macos") {
        u.ru_maxrss as f64
    } else {
        u.ru_maxrss as f64 * 1024.0
    };
    f("max_rss_bytes", max_rss);
    f("minor_faults", u.ru_minflt as f64);
    f("major_faults", u.ru_majflt as f64);
    f("voluntary_context_switches", u.ru_nvcsw as f64);
    f("involuntary_context_switches", u.ru_nivcsw as f64);
    // SAFETY: getrlimit fills the struct we pass; all-zero is a valid rlimit.
    let mut l: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to an rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) } == 0
        && l.rlim_cur != libc::RLIM_INFINITY
    {
        f("max_fds", l.rlim_cur as f64);
    }
}

/// Fields of `/proc/self/stat` after the command name (which may contain spaces).
#[cfg(target_os = "linux")]
fn proc_stat() -> Option<Vec<String>> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// The process's start in clock ticks since boot, and the ticks a second.
#[cfg(target_os = "linux")]
fn start_ticks() -> Option<(u64, u64)> {
    // Field 22 (starttime) is index 19 after the command name.
    let start: u64 = proc_stat()?.get(19)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some((start, u64::try_from(hz).ok().filter(|&h| h > 0)?))
}

/// When the process started, in Unix seconds: boot time (`btime` of `/proc/stat`) plus the
/// start's ticks since boot. The same at every read, as Prometheus's
/// `process_start_time_seconds` is.
#[cfg(target_os = "linux")]
fn start_time() -> Option<f64> {
    let (start, hz) = start_ticks()?;
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let btime: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // Whole hundredths, so the value is an exact decimal.
    let cs = btime.checked_mul(100)? + start.checked_mul(100)? / hz;
    Some(cs as f64 / 100.0)
}

#[cfg(not(target_os = "linux"))]
fn start_time() -> Option<f64> {
    None
}

#[cfg(target_os = "linux")]
fn uptime() -> Option<f64> {
    // Worked in whole hundredths of a second (the precision of /proc/uptime), so the result is
    // an exact decimal and prints without float noise.
    let (start, hz) = start_ticks()?;
    let boot = std::fs::read_to_string("/proc/uptime").ok()?;
    let (whole, frac) = boot.split_whitespace().next()?.split_once('.')?;
    let frac = format!("{frac:0<2}");
    let boot_cs: u64 = whole.parse::<u64>().ok()? * 100 + frac.get(..2)?.parse::<u64>().ok()?;
    let start_cs = start.checked_mul(100)? / hz;
    Some(boot_cs.saturating_sub(start_cs) as f64 / 100.0)
}

#[cfg(not(target_os = "linux"))]
fn uptime() -> Option<f64> {
    None
}

#[cfg(target_os = "linux")]
fn linux(f: &mut dyn FnMut(&str, f64)) {
    if let Some(st) = proc_stat() {
        // After the command name: index 17 is num_threads, 20 vsize (bytes), 21 rss (pages).
        let num = |i: usize| st.get(i).and_then(|v| v.parse::<f64>().ok());
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64;
        if let Some(t) = num(17) {
            f("threads", t);
        }
        if let Some(v) = num(20) {
            f("vsize_bytes", v);
        }
        if let Some(r) = num(21) {
            f("rss_bytes", r * page);
        }
    }
    if let Ok(d) = std::fs::read_dir("/proc/self/fd") {
        // The directory handle itself is one of the entries.
        f("open_fds", d.count().saturating_sub(1) as f64);
    }
}

/// Adds the build's version to `registry` (under scope `env`): the series
/// `build,scope=env,version=<version>` with `value=1`, so dashboards can tell which build of a
/// service they look at (`env!("CARGO_PKG_VERSION")` is the usual argument).
pub fn register_build(registry: &Registry, version: &str) {
    registry
        .scope("env")
        .gauge_with("build", &[("version", version)], || 1.0);
}

/// Adds the stats of a tokio runtime to `registry` (under scope `env`), read fresh at every
/// walk from tokio's stable runtime metrics: the series `tokio_runtime,scope=env` with
/// `workers`, `alive_tasks`, `global_queue_depth`, `busy_seconds`, `parks` and
/// `park_unparks_total` (the last three summed over the workers; a `_total` field is a
/// counter on `/metrics`), and one
/// `tokio_worker,scope=env,worker=<n>` per worker with its own `busy_seconds`, `parks` and
/// `park_unparks_total`. Built with `--cfg tokio_unstable`, where tokio has them, also
/// `polls_total`, `steals_total`, `steal_operations_total`, `overflows_total`, `noops_total`,
/// `local_schedules_total`, `remote_schedules_total`, `spawned_tasks_total`,
/// `budget_forced_yields_total`, `blocking_threads`,
/// `idle_blocking_threads`, `blocking_queue_depth` and per worker `mean_poll_seconds` and
/// `local_queue_depth`. Reading takes no lock the runtime's tasks use.
///
/// The runtime's view is per worker; a function's own polls (`/funcs`: `polls`, `busy`,
/// `slow_polls`) say which code held a worker.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// monkit::env::register_tokio(monkit::default_registry(), tokio::runtime::Handle::current());
/// # }
/// ```
#[cfg(feature = "tokio")]
pub fn register_tokio(registry: &Registry, runtime: tokio::runtime::Handle) {
    registry.scope("env").chain(
        "tokio_runtime",
        Tokio {
            metrics: runtime.metrics(),
            key: SeriesKey::new("tokio_runtime", Tags::default()),
        },
    );
}

#[cfg(feature = "tokio")]
struct Tokio {
    metrics: tokio::runtime::RuntimeMetrics,
    key: SeriesKey,
}

#[cfg(feature = "tokio")]
impl StatSource for Tokio {
    fn stats(&self, cb: &mut dyn FnMut(&SeriesKey, &str, f64)) {
        let m = &self.metrics;
        let workers = m.num_workers();
        let mut busy = std::time::Duration::ZERO;
        let (mut parks, mut unparks) = (0u64, 0u64);
        let mut each = Vec::with_capacity(workers);
        for w in 0..workers {
            let (b, p, u) = (
                m.worker_total_busy_duration(w),
                m.worker_park_count(w),
                m.worker_park_unpark_count(w),
            );
            busy += b;
            parks += p;
            unparks += u;
            each.push((b, p, u));
        }
        cb(&self.key, "workers", workers as f64);
        cb(&self.key, "alive_tasks", m.num_alive_tasks() as f64);
        cb(
            &self.key,
            "global_queue_depth",
            m.global_queue_depth() as f64,
        );
        cb(&self.key, "busy_seconds", busy.as_nanos() as f64 / 1e9);
        cb(&self.key, "parks", parks as f64);
        cb(&self.key, "park_unparks_total", unparks as f64);
        #[cfg(tokio_unstable)]
        unstable_runtime(m, &self.key, cb);
        for (w, (b, p, u)) in each.into_iter().enumerate() {
            let key = SeriesKey::new(
                "tokio_worker",
                Tags::new(&[("worker", w.to_string().as_str())]),
            );
            cb(&key, "busy_seconds", b.as_nanos() as f64 / 1e9);
            cb(&key, "parks", p as f64);
            cb(&key, "park_unparks_total", u as f64);
            #[cfg(tokio_unstable)]
            unstable_worker(m, w, &key, cb);
        }
    }
}

/// What tokio offers only under `tokio_unstable`, for the whole runtime: worker counts
/// summed, and the runtime's own.
#[cfg(all(feature = "tokio", tokio_unstable))]
fn unstable_runtime(
    m: &tokio::runtime::RuntimeMetrics,
    key: &SeriesKey,
    cb: &mut dyn FnMut(&SeriesKey, &str, f64),
) {
    type PerWorker = fn(&tokio::runtime::RuntimeMetrics, usize) -> u64;
    let summed: [(&str, PerWorker); 6] = [
        ("polls_total", |m, w| m.worker_poll_count(w)),
        ("steals_total", |m, w| m.worker_steal_count(w)),
        ("steal_operations_total", |m, w| {
            m.worker_steal_operations(w)
        }),
        ("overflows_total", |m, w| m.worker_overflow_count(w)),
        ("noops_total", |m, w| m.worker_noop_count(w)),
        ("local_schedules_total", |m, w| {
            m.worker_local_schedule_count(w)
        }),
    ];
    for (name, read) in summed {
        let n: u64 = (0..m.num_workers()).map(|w| read(m, w)).sum();
        cb(key, name, n as f64);
    }
    cb(
        key,
        "remote_schedules_total",
        m.remote_schedule_count() as f64,
    );
    cb(key, "spawned_tasks_total", m.spawned_tasks_count() as f64);
    cb(
        key,
        "budget_forced_yields_total",
        m.budget_forced_yield_count() as f64,
    );
    cb(key, "blocking_threads", m.num_blocking_threads() as f64);
    cb(
        key,
        "idle_blocking_threads",
        m.num_idle_blocking_threads() as f64,
    );
    cb(key, "blocking_queue_depth", m.blocking_queue_depth() as f64);
}

/// The same per worker, with its mean poll time and local queue.
#[cfg(all(feature = "tokio", tokio_unstable))]
fn unstable_worker(
    m: &tokio::runtime::RuntimeMetrics,
    w: usize,
    key: &SeriesKey,
    cb: &mut dyn FnMut(&SeriesKey, &str, f64),
) {
    cb(key, "polls_total", m.worker_poll_count(w) as f64);
    cb(key, "steals_total", m.worker_steal_count(w) as f64);
    cb(key, "overflows_total", m.worker_overflow_count(w) as f64);
    cb(
        key,
        "mean_poll_seconds",
        m.worker_mean_poll_time(w).as_secs_f64(),
    );
    cb(
        key,
        "local_queue_depth",
        m.worker_local_queue_depth(w) as f64,
    );
}
