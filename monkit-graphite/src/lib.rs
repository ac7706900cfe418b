//! Pushes every stat of a registry to Graphite (carbon's plaintext protocol) every interval,
//! as Go monkit's README suggests for Graphite users.
//!
//! ```no_run
//! let reporter = monkit_graphite::Builder::new("127.0.0.1:2003")
//!     .prefix("shop.web1")
//!     .interval(std::time::Duration::from_secs(10))
//!     .install(monkit::default_registry())
//!     .expect("valid configuration");
//! // ... run ...
//! reporter.shutdown(); // one last push, then stop
//! ```
//!
//! Each stat of the line-format walk (`/stats`) becomes one line `path value timestamp`. The
//! path is `<prefix>.<scope>.<measurement>.<tag>_<value>....<field>`: the scope first, then
//! the measurement, then every other tag sorted by key as `key_value`, then the field, each
//! part with anything but letters, digits, `-` and `_` replaced by `_`, so
//! `function,name=handle,scope=vlite successes=3` is `shop.web1.vlite.function.name_handle.successes`.
//! With [`Builder::tagged`], paths are Graphite 1.1 tagged series instead
//! (`<prefix>.<measurement>.<field>;scope=vlite;name=handle`).
//!
//! The program never waits for carbon: the pushes run on their own thread; a push that cannot
//! connect or write is dropped and counted, and the next connection attempt backs off (from 1 s
//! doubling to 1 min). Its counts are monkit stats of the scope `monkit_graphite`:
//! `pushes_sent`, `pushes_failed`, `lines_sent`.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

use monkit::{stats::Meter, stats::SeriesKey, Registry};
use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use monkit::export::ConfigError;

/// Configures and starts the reporter.
#[derive(Clone, Debug)]
pub struct Builder {
    addr: String,
    prefix: String,
    interval: Duration,
    timeout: Duration,
    tagged: bool,
}

/// One part of a dotted path: letters, digits, `-` and `_`; anything else becomes `_`.
pub fn path_part(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() {
        "_".into()
    } else {
        out
    }
}

/// A tag value in a Graphite 1.1 tagged series: no `;`, `~`, spaces or newlines.
fn tag_value(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c == ';' || c == '~' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if out.is_empty() {
        "_".into()
    } else {
        out
    }
}

/// The Graphite path of one stat (see the crate doc).
pub fn path(prefix: &str, key: &SeriesKey, field: &str, tagged: bool) -> String {
    let mut p = String::new();
    for part in prefix.split('.').filter(|s| !s.is_empty()) {
        p.push_str(&path_part(part));
        p.push('.');
    }
    if tagged {
        p.push_str(&path_part(&key.measurement));
        p.push('.');
        p.push_str(&path_part(field));
        for (k, v) in key.tags.iter() {
            p.push(';');
            p.push_str(&path_part(k));
            p.push('=');
            p.push_str(&tag_value(v));
        }
        return p;
    }
    if let Some(scope) = key.tags.get("scope") {
        p.push_str(&path_part(scope));
        p.push('.');
    }
    p.push_str(&path_part(&key.measurement));
    for (k, v) in key.tags.iter().filter(|(k, _)| *k != "scope") {
        p.push('.');
        p.push_str(&path_part(k));
        p.push('_');
        p.push_str(&path_part(v));
    }
    p.push('.');
    p.push_str(&path_part(field));
    p
}

/// Every stat of `registry` as plaintext-protocol lines stamped `ts` (Unix seconds).
pub fn lines(registry: &Registry, prefix: &str, tagged: bool, ts: u64) -> String {
    let mut out = String::new();
    registry.stats(|k, f, v| {
        if v.is_finite() {
            out.push_str(&path(prefix, k, f, tagged));
            out.push(' ');
            out.push_str(&v.to_string());
            out.push(' ');
            out.push_str(&ts.to_string());
            out.push('\n');
        }
    });
    out
}

impl Builder {
    /// Pushes to carbon's plaintext port at `addr` (`host:2003`) every 10 s, with no prefix,
    /// dotted paths and a 5 s connect and write timeout.
    pub fn new(addr: &str) -> Builder {
        Builder {
            addr: addr.to_owned(),
            prefix: String::new(),
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            tagged: false,
        }
    }

    /// From `MONKIT_GRAPHITE_ADDR` (required: `None` without it), `MONKIT_GRAPHITE_PREFIX`,
    /// `MONKIT_GRAPHITE_INTERVAL` (seconds) and `MONKIT_GRAPHITE_TAGGED` (`1`).
    pub fn from_env() -> Option<Result<Builder, ConfigError>> {
        let addr = std::env::var("MONKIT_GRAPHITE_ADDR").ok()?;
        let mut b = Builder::new(&addr);
        if let Ok(p) = std::env::var("MONKIT_GRAPHITE_PREFIX") {
            b = b.prefix(&p);
        }
        if let Ok(i) = std::env::var("MONKIT_GRAPHITE_INTERVAL") {
            match i.parse::<f64>() {
                Ok(s) if s.is_finite() && s > 0.0 => b = b.interval(Duration::from_secs_f64(s)),
                _ => {
                    return Some(Err(ConfigError::new(
                        "MONKIT_GRAPHITE_INTERVAL",
                        i,
                        "a positive number of seconds",
                    )))
                }
            }
        }
        if let Ok(t) = std::env::var("MONKIT_GRAPHITE_TAGGED") {
            b = b.tagged(matches!(t.as_str(), "1" | "true" | "yes"));
        }
        Some(Ok(b))
    }

    /// Put before every path (dots separate its parts).
    pub fn prefix(mut self, prefix: &str) -> Builder {
        self.prefix = prefix.to_owned();
        self
    }

    /// How often every stat is pushed.
    pub fn interval(mut self, every: Duration) -> Builder {
        self.interval = every.max(Duration::from_millis(10));
        self
    }

    /// Connect and write timeout.
    pub fn timeout(mut self, t: Duration) -> Builder {
        self.timeout = t.max(Duration::from_millis(1));
        self
    }

    /// Graphite 1.1 tagged series (`name;k=v`) instead of dotted paths.
    pub fn tagged(mut self, on: bool) -> Builder {
        self.tagged = on;
        self
    }

    /// Starts pushing `registry`'s stats from a background thread.
    pub fn install(self, registry: &Registry) -> Result<Reporter, ConfigError> {
        if self.addr.to_socket_addrs().is_err() {
            return Err(ConfigError::new(
                "graphite address",
                &self.addr,
                "host:port",
            ));
        }
        let scope = registry.scope("monkit_graphite");
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            wake: (Mutex::new(false), Condvar::new()),
            pushes: (Mutex::new(0), Condvar::new()),
        });
        let flusher: Arc<dyn monkit::export::Flush> = shared.clone();
        monkit::export::register_flush(Arc::downgrade(&flusher));
        let worker = Worker {
            config: self,
            registry: registry.clone(),
            sent: scope.meter("pushes_sent"),
            failed: scope.meter("pushes_failed"),
            lines: scope.meter("lines_sent"),
            shared: shared.clone(),
            conn: None,
            backoff: Duration::ZERO,
            next_try: Instant::now(),
            last_log: None,
        };
        let thread = std::thread::Builder::new()
            .name("monkit-graphite".into())
            .spawn(move || worker.run())
            .map_err(|e| {
                ConfigError::new(
                    "monkit-graphite thread",
                    e.to_string(),
                    "a thread the system can start",
                )
            })?;
        Ok(Reporter {
            shared,
            thread: Some(thread),
        })
    }
}

struct Shared {
    stop: AtomicBool,
    /// Set and notified to cut the wait short (a flush, a shutdown).
    wake: (Mutex<bool>, Condvar),
    /// Pushes finished (sent or failed), and notified after each, for flushes.
    pushes: (Mutex<u64>, Condvar),
}

impl Shared {
    fn wake_now(&self) {
        let (lock, cv) = &self.wake;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }
}

/// A flush pushes now and waits for that push.
impl monkit::export::Flush for Shared {
    fn flush(&self, deadline: Instant) -> bool {
        let (lock, cv) = &self.pushes;
        let mut done = lock.lock().unwrap_or_else(|e| e.into_inner());
        let want = *done + 1;
        self.wake_now();
        while *done < want {
            let now = Instant::now();
            if now >= deadline || self.stop.load(Ordering::Acquire) {
                return false;
            }
            done = cv
                .wait_timeout(done, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        true
    }
}

struct Worker {
    config: Builder,
    registry: Registry,
    sent: Meter,
    failed: Meter,
    lines: Meter,
    shared: Arc<Shared>,
    conn: Option<TcpStream>,
    backoff: Duration,
    next_try: Instant,
    last_log: Option<Instant>,
}

impl Worker {
    fn run(mut self) {
        loop {
            let stopping = self.wait();
            self.push();
            let (lock, cv) = &self.shared.pushes;
            *lock.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            cv.notify_all();
            if stopping {
                return;
            }
        }
    }

    /// Sleeps one interval (or until told to stop); whether to stop after this push.
    fn wait(&self) -> bool {
        let (lock, cv) = &self.shared.wake;
        let mut woken = lock.lock().unwrap_or_else(|e| e.into_inner());
        if !*woken {
            woken = cv
                .wait_timeout(woken, self.config.interval)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        *woken = false;
        self.shared.stop.load(Ordering::Acquire)
    }

    fn push(&mut self) {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let body = lines(&self.registry, &self.config.prefix, self.config.tagged, ts);
        let n = body.lines().count() as u64;
        match self.send(body.as_bytes()) {
            Ok(()) => {
                self.sent.mark(1);
                self.lines.mark(n);
                self.backoff = Duration::ZERO;
            }
            Err(e) => {
                self.failed.mark(1);
                self.conn = None;
                self.backoff =
                    (self.backoff * 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
                self.next_try = Instant::now() + self.backoff;
                if self
                    .last_log
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
                {
                    log::warn!(
                        "monkit-graphite: push to {} failed: {e} (next attempt in {:?}; see the monkit_graphite stats)",
                        self.config.addr, self.backoff
                    );
                    self.last_log = Some(Instant::now());
                }
            }
        }
    }

    fn send(&mut self, body: &[u8]) -> std::io::Result<()> {
        if self.conn.is_none() {
            if Instant::now() < self.next_try {
                return Err(std::io::Error::other("backing off after a failure"));
            }
            let addr: SocketAddr = self
                .config
                .addr
                .to_socket_addrs()?
                .next()
                .ok_or_else(|| std::io::Error::other("no address"))?;
            let s = TcpStream::connect_timeout(&addr, self.config.timeout)?;
            s.set_write_timeout(Some(self.config.timeout))?;
            s.set_nodelay(true)?;
            self.conn = Some(s);
        }
        let conn = self.conn.as_mut().expect("connected above");
        conn.write_all(body)?;
        conn.flush()
    }
}

/// The running reporter. [`Reporter::shutdown`] (or drop) pushes once more and stops.
#[must_use = "dropping the Reporter stops the pushes"]
pub struct Reporter {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter").finish_non_exhaustive()
    }
}

impl Reporter {
    /// Pushes once more (at most the write timeout) and stops the thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake_now();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monkit::stats::Tags;

    #[test]
    fn paths() {
        let k = SeriesKey::new(
            "function",
            Tags::new(&[("scope", "tavern::activities"), ("name", "greet customer")]),
        );
        assert_eq!(
            path("shop.web1", &k, "successes", false),
            "shop.web1.tavern__activities.function.name_greet_customer.successes"
        );
        assert_eq!(
            path("", &k, "r99", true),
            "function.r99;name=greet_customer;scope=tavern::activities"
        );
    }
}
