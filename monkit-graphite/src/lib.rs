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
//! reporter.shutdown(std::time::Duration::from_secs(5)); // one last push, then stop
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

use monkit::settings::{ConfigError, Vars};
use monkit::{stats::Meter, stats::SeriesKey, Registry};
use monkit_exporter::{Ctx, Job, Periodic};
use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

monkit::settings::declare! {
    MONKIT_GRAPHITE_ADDR: Address, "unset: no push", "carbon's plaintext port (`host:2003`) to push every stat to";
    MONKIT_GRAPHITE_PREFIX: Text, "none", "put before every Graphite path";
    MONKIT_GRAPHITE_INTERVAL: Duration, "10s", "how often every stat is pushed";
    MONKIT_GRAPHITE_TAGGED: Flag, "off", "Graphite 1.1 tagged series instead of dotted paths";
}

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
    /// `MONKIT_GRAPHITE_INTERVAL` (a duration such as `10s`) and `MONKIT_GRAPHITE_TAGGED` (a
    /// flag), and the core's own variables (`monkit::export::configure`); a value that cannot
    /// be read is an error naming it.
    pub fn from_env() -> Option<Result<Builder, ConfigError>> {
        Self::from_vars(&Vars::env())
    }

    /// [`Builder::from_env`] over any source of variables.
    pub fn from_vars(vars: &Vars) -> Option<Result<Builder, ConfigError>> {
        let read = || -> Result<Option<Builder>, ConfigError> {
            monkit::export::configure(vars)?;
            let Some(addr) = vars.address("MONKIT_GRAPHITE_ADDR")? else {
                return Ok(None);
            };
            let mut b = Builder::new(&addr);
            if let Some(p) = vars.string("MONKIT_GRAPHITE_PREFIX") {
                b = b.prefix(&p);
            }
            if let Some(i) = vars.duration("MONKIT_GRAPHITE_INTERVAL")? {
                b = b.interval(i);
            }
            if let Some(t) = vars.flag("MONKIT_GRAPHITE_TAGGED")? {
                b = b.tagged(t);
            }
            Ok(Some(b))
        };
        read().transpose()
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
                "MONKIT_GRAPHITE_ADDR (Builder::new)",
                &self.addr,
                "host:port",
            ));
        }
        let scope = registry.scope("monkit_graphite");
        let interval = self.interval;
        let push = Push {
            config: self,
            registry: registry.clone(),
            sent: scope.meter("pushes_sent"),
            failed: scope.meter("pushes_failed"),
            lines: scope.meter("lines_sent"),
            conn: None,
            backoff: Duration::ZERO,
            next_try: Instant::now(),
        };
        Ok(Reporter {
            worker: Periodic::spawn("monkit-graphite", interval, push)?,
        })
    }
}

/// One push a round: every stat, over a connection kept between pushes.
struct Push {
    config: Builder,
    registry: Registry,
    sent: Meter,
    failed: Meter,
    lines: Meter,
    conn: Option<TcpStream>,
    backoff: Duration,
    next_try: Instant,
}

impl Job for Push {
    fn round(&mut self, _urgent: bool, ctx: &Ctx<'_>) -> bool {
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
                ctx.warn(format_args!(
                    "push to {} failed: {e} (next attempt in {:?})",
                    self.config.addr, self.backoff
                ));
            }
        }
        false
    }
}

impl Push {
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

/// The running reporter: a push worker with the same handle as every exporter's.
/// [`Reporter::shutdown`] (or drop) pushes once more and stops.
#[must_use = "dropping the Reporter stops the pushes"]
#[derive(Debug)]
pub struct Reporter {
    worker: Periodic,
}

impl Reporter {
    /// Pushes now; whether the push finished within `timeout`.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.worker.flush(timeout)
    }

    /// Pushes once more and stops, within `timeout`; whether the last push went out.
    pub fn shutdown(self, timeout: Duration) -> bool {
        self.worker.shutdown(timeout)
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
