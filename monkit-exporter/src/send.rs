//! One request body's trip to the collector, whatever carries it (HTTP here, gRPC in
//! monkit-otlp): the [`Transport`] says what became of one try, the [`Sender`] retries as the
//! OTLP specification says, after the wait the collector asked for or else with exponential
//! backoff and jitter drawn from a per-process seed, so a fleet does not retry in step.

use std::time::Duration;

/// What became of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The collector took it.
    Sent,
    /// Worth another try (the collector is down, busy or pushing back): why, and how long
    /// the collector asked us to wait, if it did.
    Retry {
        /// What went wrong, for the log.
        why: String,
        /// The collector's own wait (`Retry-After`, gRPC `RetryInfo`).
        after: Option<Duration>,
    },
    /// Refused for good (a status the specification calls permanent, a TLS failure).
    Refused(String),
}

/// Carries request bodies to one collector. It is called only on the exporter's own thread,
/// so it may block for as long as its timeout allows.
pub trait Transport: Send + 'static {
    /// Makes an encoded body what goes on the wire (compresses it, if the transport was
    /// asked to), once for all its tries. As it is, by default.
    fn prepare(&self, body: Vec<u8>) -> Vec<u8> {
        body
    }

    /// Sends one prepared request body and says what became of it.
    fn deliver(&mut self, body: &[u8]) -> Delivery;
}

/// What [`Sender::send`] made of a body after its tries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Delivered, after this many retries.
    Ok {
        /// Tries after the first.
        retries: u32,
    },
    /// Refused for good.
    Refused {
        /// The collector's or the transport's reason.
        why: String,
        /// Tries after the first.
        retries: u32,
    },
    /// Every try failed, or waiting was cut short (a shutdown out of time).
    GaveUp {
        /// The last try's reason.
        why: String,
        /// Tries after the first.
        retries: u32,
    },
}

/// A [`Transport`] with the retry rules of a [`crate::Pipeline`] (its `retries` setting).
pub struct Sender {
    transport: Box<dyn Transport>,
    max_retries: u32,
    initial: Duration,
    max: Duration,
    seed: u64,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("max_retries", &self.max_retries)
            .field("initial", &self.initial)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Sender {
    pub(crate) fn new(
        transport: Box<dyn Transport>,
        max_retries: u32,
        initial: Duration,
        max: Duration,
    ) -> Sender {
        Sender {
            transport,
            max_retries,
            initial,
            max,
            seed: random_seed(),
        }
    }

    /// Delivers `body`, retrying what is worth it. Between tries it calls `wait` with the
    /// time to wait; `wait` returns false to stop trying (a shutdown that ran out of time).
    /// A transport that panics (a bug in a dependency) costs this body, not the caller's
    /// thread.
    pub fn send(&mut self, body: Vec<u8>, wait: &mut dyn FnMut(Duration) -> bool) -> Sent {
        let tries = std::panic::AssertUnwindSafe(|| self.tries(body, wait));
        std::panic::catch_unwind(tries).unwrap_or_else(|_| Sent::GaveUp {
            why: "the transport panicked".into(),
            retries: 0,
        })
    }

    fn tries(&mut self, body: Vec<u8>, wait: &mut dyn FnMut(Duration) -> bool) -> Sent {
        let body = self.transport.prepare(body);
        let mut backoff = self.initial;
        let mut retries = 0;
        loop {
            match self.transport.deliver(&body) {
                Delivery::Sent => return Sent::Ok { retries },
                Delivery::Refused(why) => return Sent::Refused { why, retries },
                Delivery::Retry { why, after } => {
                    if retries >= self.max_retries {
                        return Sent::GaveUp { why, retries };
                    }
                    // The collector's own word first; our backoff when it gave none.
                    let pause = after.unwrap_or_else(|| backoff.mul_f64(jitter(&mut self.seed)));
                    backoff = (backoff * 2).min(self.max);
                    if !wait(pause) {
                        return Sent::GaveUp { why, retries };
                    }
                    retries += 1;
                }
            }
        }
    }
}

/// A seed no other process shares: std's per-process random hash keys, the thread and the
/// clock, so exporters across a fleet draw different jitter.
pub(crate) fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    h.write_u32(std::process::id());
    h.finish() | 1
}

/// A small xorshift for jitter, in 0.5..1.5; quality does not matter, independence from other
/// senders does (see [`random_seed`]).
fn jitter(seed: &mut u64) -> f64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    0.5 + (*seed >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers from a script, one per try.
    struct Script(Vec<Delivery>);

    impl Transport for Script {
        fn deliver(&mut self, _: &[u8]) -> Delivery {
            self.0.remove(0)
        }
    }

    fn retry(after: Option<u64>) -> Delivery {
        Delivery::Retry {
            why: "busy".into(),
            after: after.map(Duration::from_millis),
        }
    }

    #[test]
    fn the_collectors_wait_first_then_backoff_with_jitter() {
        let script = Script(vec![
            retry(Some(700)),
            retry(None),
            retry(None),
            Delivery::Sent,
        ]);
        let mut s = Sender::new(
            Box::new(script),
            5,
            Duration::from_millis(100),
            Duration::from_millis(150),
        );
        let mut waits = Vec::new();
        let got = s.send(b"x".to_vec(), &mut |d| {
            waits.push(d);
            true
        });
        assert_eq!(got, Sent::Ok { retries: 3 });
        assert_eq!(waits[0], Duration::from_millis(700));
        // The backoff doubled past the collector's wait too: 200 ms capped to 150, each times
        // a jitter in 0.5..1.5.
        assert!((75..225).contains(&waits[1].as_millis()), "{waits:?}");
        assert!((75..225).contains(&waits[2].as_millis()), "{waits:?}");
    }

    #[test]
    fn refusals_are_final_and_retries_end() {
        let mut s = Sender::new(
            Box::new(Script(vec![retry(None), Delivery::Refused("400".into())])),
            5,
            Duration::ZERO,
            Duration::ZERO,
        );
        let got = s.send(b"x".to_vec(), &mut |_| true);
        assert_eq!(
            got,
            Sent::Refused {
                why: "400".into(),
                retries: 1
            }
        );
        let mut s = Sender::new(
            Box::new(Script(vec![retry(None), retry(None), retry(None)])),
            2,
            Duration::ZERO,
            Duration::ZERO,
        );
        assert!(matches!(
            s.send(b"x".to_vec(), &mut |_| true),
            Sent::GaveUp { retries: 2, .. }
        ));
        // A wait cut short stops at once.
        let mut s = Sender::new(
            Box::new(Script(vec![retry(None)])),
            5,
            Duration::ZERO,
            Duration::ZERO,
        );
        assert!(matches!(
            s.send(b"x".to_vec(), &mut |_| false),
            Sent::GaveUp { retries: 0, .. }
        ));
    }

    #[test]
    fn seeds_differ_between_senders() {
        let seeds: std::collections::HashSet<u64> = (0..16).map(|_| random_seed()).collect();
        assert_eq!(seeds.len(), 16);
    }
}
