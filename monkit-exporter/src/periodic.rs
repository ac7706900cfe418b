//! The one push worker: a thread of its own that runs a [`Job`] every period, at once when
//! asked to flush, and once more when stopped; waits between retries that a shutdown out of
//! time cuts short; logs at most one line every 10 seconds; and is registered so that
//! `monkit::export::flush_all` and `shutdown_all` reach it. Span export, Graphite and OTLP
//! metrics all run on it, behind one handle shape: `flush(timeout) -> bool`,
//! `shutdown(timeout)`, and drop = shutdown within `MONKIT_SHUTDOWN_TIMEOUT`.
//!
//! Written here rather than on an async runtime: the instrumented program may have none, and
//! a blocked collector must never hold one of its workers.

use monkit::settings::{ConfigError, Vars};
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The work a [`Periodic`] does each round.
pub trait Job: Send + 'static {
    /// One round: send what is due. `urgent` when a flush or a stop asks for everything held
    /// now. Returns whether to be called again at once (more is held that should go now).
    fn round(&mut self, urgent: bool, ctx: &Ctx<'_>) -> bool;

    /// A shutdown ran out of time: drop what is still held, counting it.
    fn abandon(&mut self) {}
}

/// What a [`Job`] may ask of its worker during a round.
pub struct Ctx<'a> {
    shared: &'a Shared,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("name", &self.shared.name)
            .finish()
    }
}

impl Ctx<'_> {
    /// Waits `d` (a backoff between tries); `false`, at once, when a shutdown has run out of
    /// time and the job should give up.
    pub fn wait(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        let mut s = self.shared.state.lock();
        while !s.abandon {
            if self.shared.cv.wait_until(&mut s, until).timed_out() {
                break;
            }
        }
        !s.abandon
    }

    /// Whether a shutdown has run out of time.
    pub fn abandoned(&self) -> bool {
        self.shared.state.lock().abandon
    }

    /// Logs a warning naming the worker, at most one every 10 seconds, so a collector that is
    /// down cannot flood the log; the stats count what the lines leave out.
    pub fn warn(&self, msg: std::fmt::Arguments<'_>) {
        let now = self.shared.born.elapsed().as_secs() + LOG_EVERY_S;
        let prev = self.shared.last_log.load(Ordering::Relaxed);
        if now >= prev + LOG_EVERY_S
            && self
                .shared
                .last_log
                .compare_exchange(prev, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let name = &self.shared.name;
            log::warn!("{name}: {msg} (further messages within {LOG_EVERY_S} s are not shown; see the {} stats)", name.replace('-', "_"));
        }
    }
}

const LOG_EVERY_S: u64 = 10;

#[derive(Default)]
struct State {
    /// Cut the period's wait short.
    woken: bool,
    stop: bool,
    /// Out of time: drop what is left.
    abandon: bool,
    /// Flushes asked for, and done.
    asked: u64,
    done: u64,
    /// The thread has returned.
    gone: bool,
}

struct Shared {
    name: String,
    state: Mutex<State>,
    cv: Condvar,
    born: Instant,
    last_log: AtomicU64,
}

impl monkit::export::Flush for Shared {
    fn begin(&self, stop: bool) {
        let mut s = self.state.lock();
        s.asked += 1;
        s.stop |= stop;
        s.woken = true;
        self.cv.notify_all();
    }

    fn wait(&self, deadline: Instant) -> bool {
        let mut s = self.state.lock();
        let ticket = s.asked;
        while s.done < ticket && !s.gone && !s.abandon {
            if self.cv.wait_until(&mut s, deadline).timed_out() {
                break;
            }
        }
        let done = s.done >= ticket;
        if !done && s.stop {
            // Out of time while stopping: whatever it is doing, it gives up now.
            s.abandon = true;
            self.cv.notify_all();
        }
        done
    }
}

/// A running push worker: see the module doc. Dropping it stops it, sending what it holds
/// within `MONKIT_SHUTDOWN_TIMEOUT` (5 s by default).
#[must_use = "dropping the worker stops it"]
pub struct Periodic {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Periodic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Periodic")
            .field("name", &self.shared.name)
            .finish_non_exhaustive()
    }
}

impl Periodic {
    /// Starts the thread `name` running `job` every `period`, and registers it for
    /// `monkit::export::flush_all` and `shutdown_all`.
    pub fn spawn(name: &str, period: Duration, job: impl Job) -> Result<Periodic, ConfigError> {
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            state: Mutex::new(State::default()),
            cv: Condvar::new(),
            born: Instant::now(),
            last_log: AtomicU64::new(0),
        });
        let worker = shared.clone();
        let period = period.max(Duration::from_millis(1));
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || run(&worker, job, period))
            .map_err(|e| {
                ConfigError::new(
                    format!("{name} thread"),
                    e.to_string(),
                    "a thread the system can start",
                )
            })?;
        let flusher: Arc<dyn monkit::export::Flush> = shared.clone();
        monkit::export::register_flush(Arc::downgrade(&flusher));
        Ok(Periodic {
            shared,
            thread: Some(thread),
        })
    }

    /// Sends what is held now; whether it finished within `timeout`. The work goes on after.
    pub fn flush(&self, timeout: Duration) -> bool {
        use monkit::export::Flush;
        self.shared.begin(false);
        self.shared.wait(Instant::now() + timeout)
    }

    /// Sends what is held and stops, within `timeout`: what is not sent by then is dropped and
    /// counted. Returns by the deadline even when a request hangs (its thread then ends when
    /// the request does).
    pub fn shutdown(mut self, timeout: Duration) -> bool {
        self.stop(timeout)
    }

    fn stop(&mut self, timeout: Duration) -> bool {
        use monkit::export::Flush;
        let deadline = Instant::now() + timeout;
        self.shared.begin(true);
        let sent = self.shared.wait(deadline);
        if let Some(t) = self.thread.take() {
            // A stopped worker returns at once; an abandoned one when its request does, which
            // nobody waits for.
            let mut s = self.shared.state.lock();
            while !s.gone && !s.abandon && !self.shared.cv.wait_until(&mut s, deadline).timed_out()
            {
            }
            if s.gone {
                drop(s);
                let _ = t.join();
            }
        }
        sent
    }
}

impl Drop for Periodic {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let timeout =
                monkit::export::shutdown_timeout(&Vars::env()).unwrap_or(Duration::from_secs(5));
            self.stop(timeout);
        }
    }
}

fn run(shared: &Shared, mut job: impl Job, period: Duration) {
    let ctx = Ctx { shared };
    let mut again = false;
    loop {
        let (urgent, stopping, ticket) = {
            let mut s = shared.state.lock();
            // A period between rounds (the first one too), unless more is held, a flush or a
            // stop asks, or the round before wants another at once.
            let until = Instant::now() + period;
            while !again
                && !s.woken
                && !s.abandon
                && !shared.cv.wait_until(&mut s, until).timed_out()
            {}
            s.woken = false;
            if s.abandon {
                break;
            }
            (s.stop || s.asked != s.done, s.stop, s.asked)
        };
        again = job.round(urgent, &ctx);
        if again && !ctx.abandoned() {
            continue;
        }
        let mut s = shared.state.lock();
        if s.abandon {
            break;
        }
        if urgent {
            s.done = s.done.max(ticket);
            shared.cv.notify_all();
        }
        if stopping {
            s.gone = true;
            shared.cv.notify_all();
            return;
        }
    }
    job.abandon();
    let mut s = shared.state.lock();
    s.gone = true;
    shared.cv.notify_all();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// Counts its rounds; with `hang`, every round waits (as a dead collector's retries do).
    struct Rounds {
        n: Arc<AtomicU32>,
        abandoned: Arc<AtomicU32>,
        hang: Option<Duration>,
    }

    impl Job for Rounds {
        fn round(&mut self, _urgent: bool, ctx: &Ctx<'_>) -> bool {
            self.n.fetch_add(1, Ordering::Relaxed);
            if let Some(d) = self.hang {
                ctx.wait(d);
            }
            false
        }
        fn abandon(&mut self) {
            self.abandoned.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn rounds(hang: Option<Duration>) -> (Rounds, Arc<AtomicU32>, Arc<AtomicU32>) {
        let (n, a) = (Arc::default(), Arc::default());
        let job = Rounds {
            n: Arc::clone(&n),
            abandoned: Arc::clone(&a),
            hang,
        };
        (job, n, a)
    }

    #[test]
    fn a_flush_runs_a_round_at_once_and_a_shutdown_one_more() {
        let (job, n, abandoned) = rounds(None);
        let p = Periodic::spawn("monkit-test-periodic", Duration::from_secs(3600), job).unwrap();
        // The first round waits its period, as every later one does.
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(n.load(Ordering::Relaxed), 0);
        assert!(p.flush(Duration::from_secs(5)));
        let after_flush = n.load(Ordering::Relaxed);
        assert!(after_flush >= 1);
        assert!(p.shutdown(Duration::from_secs(5)));
        assert_eq!(n.load(Ordering::Relaxed), after_flush + 1);
        assert_eq!(abandoned.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_shutdown_out_of_time_abandons_and_returns_by_its_deadline() {
        let (job, _, abandoned) = rounds(Some(Duration::from_secs(3600)));
        let p = Periodic::spawn("monkit-test-hung", Duration::from_secs(3600), job).unwrap();
        let t = Instant::now();
        assert!(!p.shutdown(Duration::from_millis(200)));
        let took = t.elapsed();
        assert!(took < Duration::from_secs(2), "{took:?}");
        // The thread counts what it drops as it leaves.
        let t = Instant::now();
        while abandoned.load(Ordering::Relaxed) == 0 && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(abandoned.load(Ordering::Relaxed), 1);
    }
}
