//! The sending side of monkit's span exporters (Zipkin, OTLP), written once: a bounded
//! lock-free queue filled by instrumented threads, drained in batches by one background thread
//! that POSTs them, optionally gzip-compressed. The wire format is the caller's ([`Format`]).
//!
//! Collectors are obeyed as the OTLP specification says: connection errors and `429`, `502`,
//! `503` and `504` are retried, after the `Retry-After` the collector asked for (seconds or an
//! HTTP date, at most [`MAX_RETRY_AFTER`]) or else with exponential backoff and jitter drawn
//! from a per-process random seed (so a fleet does not retry in step); every other status is
//! permanent, logged and counted (`batches_refused`), as is a TLS failure (a certificate the
//! roots or the collector's name refuse; feature `tls`, on by default, with Mozilla's roots or
//! the CA of [`Pipeline::tls_ca`], and a client certificate for mutual TLS). A response body is read to at most
//! [`MAX_RESPONSE_BODY`] bytes; past that the connection is dropped.
//!
//! The instrumented program never waits: a finished span of a sampled trace is pushed onto the
//! queue, or dropped and counted when it is full. The exporter's own counts are monkit stats of
//! the scope `monkit_<name>`: `spans_sent`, `spans_dropped`, `spans_failed`,
//! `batches_retried`, `batches_refused`.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

use crossbeam_queue::ArrayQueue;
use monkit::export::Sampler;
use monkit::{stats::Meter, trace::ObserverHandle, FinishedSpan, Registry, SpanObserver};
use parking::Parker;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest `Retry-After` obeyed; a collector asking for more is retried after this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Most bytes of a collector's response read (an error's text); the rest is never read.
pub const MAX_RESPONSE_BODY: u64 = 64 * 1024;

/// How a batch of spans goes on the wire.
pub trait Format: Send + Sync + 'static {
    /// The `Content-Type` of a request body.
    fn content_type(&self) -> &'static str;
    /// One request body for `batch`.
    fn encode(&self, batch: &[FinishedSpan]) -> Vec<u8>;
}

mod parking {
    //! A wake-up for the sender thread that instrumented threads never touch. Written here
    //! because any thread may wait on it (`flush` waits on `done`), and crossbeam's `Parker`
    //! allows only its one owner thread to park.
    use parking_lot::{Condvar, Mutex};
    use std::time::Duration;

    #[derive(Default)]
    pub(super) struct Parker {
        woken: Mutex<bool>,
        cv: Condvar,
    }

    impl Parker {
        pub(super) fn wait(&self, d: Duration) {
            let mut w = self.woken.lock();
            if !*w {
                self.cv.wait_for(&mut w, d);
            }
            *w = false;
        }
        pub(super) fn wake(&self) {
            *self.woken.lock() = true;
            self.cv.notify_all();
        }
    }
}

pub use monkit::export::ConfigError;

mod tail;
#[cfg(feature = "tls")]
mod tls;

pub use tail::{MAX_PENDING_SPANS, MAX_PENDING_TRACES};

/// An HTTP agent for another sender of an exporter crate (OTLP metrics): the request timeout,
/// and for `https://` the same TLS as the span pipeline (`ca` instead of Mozilla's roots, a
/// client certificate and key for mutual TLS). `name` names the sender in errors.
#[doc(hidden)]
pub fn http_agent(
    name: &str,
    timeout: Duration,
    ca: Option<std::path::PathBuf>,
    client: Option<(std::path::PathBuf, std::path::PathBuf)>,
) -> Result<ureq::Agent, ConfigError> {
    let agent = ureq::AgentBuilder::new().timeout(timeout);
    #[cfg(feature = "tls")]
    let agent = agent.tls_config(TlsFiles { ca, client }.config(name)?);
    #[cfg(not(feature = "tls"))]
    let _ = (name, ca, client);
    Ok(agent.build())
}

/// Where an exporter's TLS material comes from: PEM files.
#[derive(Clone, Debug, Default)]
struct TlsFiles {
    /// The CA certificates that may sign the collector's certificate, instead of Mozilla's.
    ca: Option<std::path::PathBuf>,
    /// The client's certificate chain and private key, for mutual TLS.
    client: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// Where and how often to send, and how hard to try.
#[derive(Clone, Debug)]
pub struct Pipeline {
    name: &'static str,
    endpoint: String,
    sampler: Sampler,
    queue_capacity: usize,
    batch_size: usize,
    batch_interval: Duration,
    timeout: Duration,
    max_retries: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    gzip: bool,
    headers: Vec<(String, String)>,
    tls: TlsFiles,
    tail: tail::TailRule,
}

impl Pipeline {
    /// Sends to `endpoint` as the exporter `name` (its thread `monkit-<name>`, its stats scope
    /// `monkit_<name>`), sampling every new trace and keeping a caller's flag for a continued
    /// one (OpenTelemetry's default, `parentbased_always_on`), with a queue of 4,096 spans, batches of up
    /// to 256 spans or every second, a 5 s request timeout and up to 5 retries backing off
    /// from 100 ms to 10 s, uncompressed.
    pub fn new(name: &'static str, endpoint: &str) -> Pipeline {
        Pipeline {
            name,
            endpoint: endpoint.to_owned(),
            sampler: Sampler::ParentBased(1.0),
            queue_capacity: 4096,
            batch_size: 256,
            batch_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            max_retries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            gzip: false,
            headers: Vec::new(),
            tls: TlsFiles::default(),
            tail: tail::TailRule::default(),
        }
    }

    /// The endpoint requests go to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Samples this fraction (0..=1) of new traces; incoming sampled flags and `/trace/sample`
    /// still decide for theirs (parent-based). [`Pipeline::sampler`] chooses otherwise.
    pub fn sample_rate(mut self, rate: f64) -> Pipeline {
        let rate = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        self.sampler = Sampler::ParentBased(rate);
        self
    }

    /// The sampler: [`Sampler::Always`], `Never` and `Fraction` decide every trace here,
    /// ignoring a caller's flag; [`Sampler::ParentBased`] keeps it.
    pub fn sampler(mut self, s: Sampler) -> Pipeline {
        self.sampler = s;
        self
    }

    /// Most spans waiting to be sent; past this, finished spans are dropped and counted.
    pub fn queue_capacity(mut self, n: usize) -> Pipeline {
        self.queue_capacity = n.max(1);
        self
    }

    /// Most spans per request, and the longest a span waits before its batch is sent.
    pub fn batch(mut self, size: usize, interval: Duration) -> Pipeline {
        self.batch_size = size.max(1);
        self.batch_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Request timeout.
    pub fn timeout(mut self, t: Duration) -> Pipeline {
        self.timeout = t;
        self
    }

    /// Retries of a failed batch (connection errors and 5xx), backing off exponentially from
    /// `initial` to at most `max`, with jitter.
    pub fn retries(mut self, max_retries: u32, initial: Duration, max: Duration) -> Pipeline {
        self.max_retries = max_retries;
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// Compresses request bodies with gzip (`Content-Encoding: gzip`).
    pub fn gzip(mut self, on: bool) -> Pipeline {
        self.gzip = on;
        self
    }

    /// A header sent with every request (an API key, say).
    pub fn header(mut self, name: &str, value: &str) -> Pipeline {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// For an `https://` endpoint: trusts only the CA certificates in this PEM file (a private
    /// CA's), instead of Mozilla's roots (feature `tls`).
    pub fn tls_ca(mut self, pem: impl Into<std::path::PathBuf>) -> Pipeline {
        self.tls.ca = Some(pem.into());
        self
    }

    /// For an `https://` endpoint: presents this certificate chain and private key (PEM
    /// files), for a collector that asks for mutual TLS (feature `tls`).
    pub fn tls_client_cert(
        mut self,
        cert_pem: impl Into<std::path::PathBuf>,
        key_pem: impl Into<std::path::PathBuf>,
    ) -> Pipeline {
        self.tls.client = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// Tail sampling: also exports every whole trace whose local root lasted at least
    /// `min_duration`, or (with `errors`) in which some span failed, though head sampling did
    /// not pick it. Every trace is then recorded while it runs (each span costs a hand-off to
    /// the exporter); at most [`MAX_PENDING_TRACES`] wait for their root at once, with at most
    /// [`MAX_PENDING_SPANS`] spans each, and what does not fit is counted
    /// (`tail_overflowed`), as are the traces kept (`tail_kept`) and let go (`tail_dropped`).
    pub fn tail_sampling(mut self, min_duration: Option<Duration>, errors: bool) -> Pipeline {
        self.tail = tail::TailRule {
            min_duration,
            errors,
        };
        self
    }

    /// [`Pipeline::tail_sampling`] from `MONKIT_TAIL_MIN_DURATION` (a duration such as `250ms`)
    /// and `MONKIT_TAIL_ERRORS` (`1` or `true`), when set.
    pub fn tail_from_env(self) -> Result<Pipeline, ConfigError> {
        self.tail_from_vars(&|k| std::env::var(k).ok())
    }

    /// [`Pipeline::tail_from_env`] over any source of variables.
    #[doc(hidden)]
    pub fn tail_from_vars(
        mut self,
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Pipeline, ConfigError> {
        if let Some(v) = get("MONKIT_TAIL_MIN_DURATION") {
            let d = monkit::export::parse_duration(&v).ok_or_else(|| {
                ConfigError::new(
                    "MONKIT_TAIL_MIN_DURATION",
                    &v,
                    "a duration such as 250ms or 2s",
                )
            })?;
            self.tail.min_duration = Some(d);
        }
        if let Some(v) = get("MONKIT_TAIL_ERRORS") {
            self.tail.errors = match v.trim() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" | "" => false,
                _ => return Err(ConfigError::new("MONKIT_TAIL_ERRORS", &v, "1 or 0")),
            };
        }
        Ok(self)
    }

    /// Starts the sender thread, registers the exporter as a span observer of `registry` and
    /// sets that registry's sampler. An `https://` endpoint's certificate files are read here:
    /// a missing or malformed one is a `ConfigError` naming it.
    pub fn install(
        self,
        registry: &Registry,
        format: impl Format,
    ) -> Result<Exporter, ConfigError> {
        if !(self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://")) {
            return Err(ConfigError::new(
                format!("{} endpoint", self.name),
                &self.endpoint,
                "an http:// URL",
            ));
        }
        #[cfg(not(feature = "tls"))]
        if self.endpoint.starts_with("https://") {
            return Err(ConfigError::new(
                format!("{} endpoint", self.name),
                &self.endpoint,
                "an http:// URL (https needs the feature `tls` of monkit-exporter)",
            ));
        }
        #[cfg(feature = "tls")]
        let tls = self.tls.config(self.name)?;
        let scope = registry.scope(&format!("monkit_{}", self.name));
        let inner = Arc::new(Inner {
            queue: ArrayQueue::new(self.queue_capacity),
            sent: scope.meter("spans_sent"),
            dropped: scope.meter("spans_dropped"),
            failed: scope.meter("spans_failed"),
            retried: scope.meter("batches_retried"),
            refused: scope.meter("batches_refused"),
            tail_kept: scope.meter("tail_kept"),
            tail_dropped: scope.meter("tail_dropped"),
            tail_overflowed: scope.meter("tail_overflowed"),
            pending: self.tail.is_on().then(|| tail::Pending::new(self.tail)),
            parker: Parker::default(),
            stop: AtomicBool::new(false),
            abandon: AtomicBool::new(false),
            flush_asked: AtomicU64::new(0),
            flush_done: AtomicU64::new(0),
            done: Parker::default(),
            last_log: AtomicU64::new(0),
            thread_gone: AtomicBool::new(false),
            format: Box::new(format),
            #[cfg(feature = "tls")]
            tls,
            config: self,
        });
        let worker = inner.clone();
        let thread = std::thread::Builder::new()
            .name(format!("monkit-{}", inner.config.name))
            .spawn(move || {
                worker.run();
                worker.thread_gone.store(true, Ordering::Release);
                worker.done.wake();
            })
            .map_err(|e| {
                ConfigError::new(
                    format!("monkit-{} thread", inner.config.name),
                    e.to_string(),
                    "a thread the system can start",
                )
            })?;
        registry.set_sampler(inner.config.sampler);
        let observer = Some(registry.observe(inner.clone()));
        let flusher: Arc<dyn monkit::export::Flush> = inner.clone();
        monkit::export::register_flush(Arc::downgrade(&flusher));
        Ok(Exporter {
            inner,
            observer,
            thread: Some(thread),
        })
    }
}

struct Inner {
    config: Pipeline,
    #[cfg(feature = "tls")]
    tls: Arc<rustls::ClientConfig>,
    format: Box<dyn Format>,
    queue: ArrayQueue<FinishedSpan>,
    sent: Meter,
    dropped: Meter,
    failed: Meter,
    retried: Meter,
    refused: Meter,
    tail_kept: Meter,
    tail_dropped: Meter,
    tail_overflowed: Meter,
    /// Traces waiting for their local root, with tail sampling on.
    pending: Option<tail::Pending>,
    parker: Parker,
    stop: AtomicBool,
    /// Shutdown ran out of time: drop (and count) what is left instead of sending it.
    abandon: AtomicBool,
    flush_asked: AtomicU64,
    flush_done: AtomicU64,
    done: Parker,
    last_log: AtomicU64,
    /// The sender thread has returned: a flush has nobody to wait for.
    thread_gone: AtomicBool,
}

impl monkit::export::Flush for Inner {
    fn flush(&self, deadline: Instant) -> bool {
        let ticket = self.flush_asked.fetch_add(1, Ordering::AcqRel) + 1;
        self.parker.wake();
        while self.flush_done.load(Ordering::Acquire) < ticket {
            let now = Instant::now();
            if now >= deadline || self.thread_gone.load(Ordering::Acquire) {
                return false;
            }
            self.done
                .wait((deadline - now).min(Duration::from_millis(20)));
        }
        true
    }
}

impl Inner {
    /// Queues a span to send; never blocks: a full queue drops the span.
    fn enqueue(&self, span: FinishedSpan) {
        if self.queue.push(span).is_err() {
            self.dropped.mark(1);
        }
    }
}

impl SpanObserver for Inner {
    fn chooses_traces(&self) -> bool {
        self.pending.is_some()
    }

    /// With tail sampling, every trace is recorded: how it turns out decides.
    fn new_trace(&self, _root: &monkit::SpanStart) -> bool {
        self.pending.is_some()
    }

    fn start(&self, span: &monkit::SpanStart) {
        if let Some(p) = &self.pending {
            if !span.sampled && !p.started(span) {
                self.tail_overflowed.mark(1);
            }
        }
    }

    fn finish(&self, span: &FinishedSpan) {
        if span.start.sampled {
            self.enqueue(span.clone());
            return;
        }
        let Some(p) = &self.pending else {
            return;
        };
        match p.finished(span) {
            tail::Decision::Wait => {}
            tail::Decision::Export(spans) => {
                self.tail_kept.mark(1);
                for s in spans {
                    self.enqueue(s);
                }
            }
            tail::Decision::Drop { overflowed: true } => self.tail_overflowed.mark(1),
            tail::Decision::Drop { overflowed: false } => self.tail_dropped.mark(1),
        }
    }
}

/// A seed no other process shares: std's per-process random hash keys, the thread and the
/// clock, so exporters across a fleet draw different jitter.
fn random_seed() -> u64 {
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

/// Logs at most one line every 10 seconds, so a collector that is down cannot flood stderr.
fn log(name: &str, last: &AtomicU64, msg: std::fmt::Arguments<'_>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let prev = last.load(Ordering::Relaxed);
    if now >= prev + 10
        && last
            .compare_exchange(prev, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        log::warn!("monkit-{name}: {msg} (further messages within 10 s are not shown; see the monkit_{name} stats)");
    }
}

enum Sent {
    Ok,
    /// Worth another try: why, and how long the collector asked us to wait.
    Retry(String, Option<Duration>),
    /// Refused for good.
    GiveUp(String),
}

impl Inner {
    fn run(&self) {
        let agent = ureq::AgentBuilder::new().timeout(self.config.timeout);
        #[cfg(feature = "tls")]
        let agent = agent.tls_config(self.tls.clone());
        let agent = agent.build();
        let mut seed = random_seed();
        let mut oldest: Option<Instant> = None;
        loop {
            if self.abandon.load(Ordering::Acquire) {
                let mut n = 0;
                while self.queue.pop().is_some() {
                    n += 1;
                }
                self.failed.mark(n);
                self.done.wake();
                return;
            }
            let stopping = self.stop.load(Ordering::Acquire);
            let flush = self.flush_asked.load(Ordering::Acquire);
            let flushing = flush != self.flush_done.load(Ordering::Acquire);
            let n = self.queue.len();
            if n > 0 && oldest.is_none() {
                oldest = Some(Instant::now());
            }
            let due = oldest.is_some_and(|t| t.elapsed() >= self.config.batch_interval);
            if n >= self.config.batch_size || (n > 0 && (due || flushing || stopping)) {
                let mut batch = Vec::with_capacity(n.min(self.config.batch_size));
                while batch.len() < self.config.batch_size {
                    match self.queue.pop() {
                        Some(s) => batch.push(s),
                        None => break,
                    }
                }
                self.send(&agent, &batch, &mut seed);
                oldest = None;
                continue;
            }
            if n == 0 && flushing {
                self.flush_done.store(flush, Ordering::Release);
                self.done.wake();
            }
            if stopping && n == 0 {
                self.flush_done.store(flush, Ordering::Release);
                self.done.wake();
                return;
            }
            // Instrumented threads never wake us: poll often enough to batch by size.
            self.parker.wait(Duration::from_millis(20));
        }
    }

    fn send(&self, agent: &ureq::Agent, batch: &[FinishedSpan], seed: &mut u64) {
        let mut body = self.format.encode(batch);
        if self.config.gzip {
            let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            // Writing into a Vec cannot fail.
            let _ = z.write_all(&body);
            body = z.finish().unwrap_or_default();
        }
        let mut backoff = self.config.initial_backoff;
        for attempt in 0..=self.config.max_retries {
            match self.post(agent, &body) {
                Sent::Ok => {
                    self.sent.mark(batch.len() as u64);
                    return;
                }
                Sent::GiveUp(why) => {
                    self.refused.mark(1);
                    log(
                        self.config.name,
                        &self.last_log,
                        format_args!(
                            "{} spans refused by {}: {why}",
                            batch.len(),
                            self.config.endpoint
                        ),
                    );
                    break;
                }
                Sent::Retry(why, after)
                    if attempt < self.config.max_retries
                        && !self.abandon.load(Ordering::Acquire) =>
                {
                    self.retried.mark(1);
                    // The collector's own word first; our backoff when it gave none.
                    let wait = after.unwrap_or_else(|| backoff.mul_f64(jitter(seed)));
                    backoff = (backoff * 2).min(self.config.max_backoff);
                    // Stop waiting early when a shutdown runs out of time.
                    let until = Instant::now() + wait;
                    while Instant::now() < until && !self.abandon.load(Ordering::Acquire) {
                        self.parker
                            .wait((until - Instant::now()).min(Duration::from_millis(50)));
                    }
                    let _ = why;
                }
                Sent::Retry(why, _) => {
                    log(
                        self.config.name,
                        &self.last_log,
                        format_args!(
                            "giving up on {} spans after {} retries: {why}",
                            batch.len(),
                            self.config.max_retries
                        ),
                    );
                }
            }
        }
        self.failed.mark(batch.len() as u64);
    }

    fn post(&self, agent: &ureq::Agent, body: &[u8]) -> Sent {
        let mut req = agent
            .post(&self.config.endpoint)
            .set("Content-Type", self.format.content_type());
        if self.config.gzip {
            req = req.set("Content-Encoding", "gzip");
        }
        for (k, v) in &self.config.headers {
            req = req.set(k, v);
        }
        match req.send_bytes(body) {
            Ok(r) => {
                // Read (a bounded part of) the body, so the connection can be used again.
                let _ = read_bounded(r);
                Sent::Ok
            }
            Err(ureq::Error::Status(code, r)) => {
                let after = r
                    .header("retry-after")
                    .and_then(|v| retry_after(v, std::time::SystemTime::now()));
                let text = read_bounded(r);
                let why = format!("HTTP {code}: {}", text.trim());
                if retryable(code) {
                    Sent::Retry(why, after)
                } else {
                    Sent::GiveUp(why)
                }
            }
            Err(e) => {
                // A certificate the collector's name or our roots refuse stays refused.
                #[cfg(feature = "tls")]
                if let Some(why) = tls::tls_failure(&e) {
                    return Sent::GiveUp(why);
                }
                Sent::Retry(e.to_string(), None)
            }
        }
    }
}

/// The statuses the OTLP specification says to retry; every other one is permanent.
fn retryable(code: u16) -> bool {
    matches!(code, 429 | 502 | 503 | 504)
}

/// At most [`MAX_RESPONSE_BODY`] bytes of a response, as text; a longer body is left unread
/// and its connection dropped with the response.
fn read_bounded(r: ureq::Response) -> String {
    use std::io::Read;
    let mut buf = Vec::new();
    let _ = r
        .into_reader()
        .take(MAX_RESPONSE_BODY)
        .read_to_end(&mut buf);
    buf.truncate(4096);
    String::from_utf8_lossy(&buf).into_owned()
}

/// The wait a `Retry-After` value asks for (RFC 9110 section 10.2.3): whole seconds, or an
/// HTTP date, from `now`; at most [`MAX_RETRY_AFTER`]. `None` when it is neither.
pub fn retry_after(v: &str, now: std::time::SystemTime) -> Option<Duration> {
    let v = v.trim();
    let wait = if let Ok(s) = v.parse::<u64>() {
        Duration::from_secs(s)
    } else {
        let at = httpdate::parse_http_date(v).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// The installed exporter. [`Exporter::shutdown`] (or drop) sends what is queued.
#[must_use = "dropping the Exporter flushes it and stops exporting"]
pub struct Exporter {
    inner: Arc<Inner>,
    observer: Option<ObserverHandle>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("name", &self.inner.config.name)
            .field("endpoint", &self.inner.config.endpoint)
            .finish_non_exhaustive()
    }
}

impl Exporter {
    /// Sends everything queued now; returns whether it finished within `timeout`.
    pub fn flush(&self, timeout: Duration) -> bool {
        monkit::export::Flush::flush(&*self.inner, Instant::now() + timeout)
    }

    /// Spans waiting in the queue.
    pub fn queued(&self) -> usize {
        self.inner.queue.len()
    }

    /// Stops exporting new spans, sends what is queued (waiting at most `timeout`), and stops
    /// the sender thread.
    pub fn shutdown(mut self, timeout: Duration) {
        self.stop(timeout);
    }

    fn stop(&mut self, timeout: Duration) {
        if let Some(o) = self.observer.take() {
            o.remove();
        }
        if !self.flush(timeout) {
            self.inner.abandon.store(true, Ordering::Release);
        }
        self.inner.stop.store(true, Ordering::Release);
        self.inner.parker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Exporter {
    /// Sends what is queued, waiting at most `MONKIT_SHUTDOWN_TIMEOUT` (5 s by default).
    fn drop(&mut self) {
        if self.thread.is_some() {
            let timeout = monkit::export::shutdown_timeout().unwrap_or(Duration::from_secs(5));
            self.stop(timeout);
        }
    }
}

/// The [`Pipeline`] settings as methods of an exporter's own builder (a struct with a field
/// `pipeline: Pipeline`), so every exporter offers the same ones with the same words:
/// `sample_rate`, `sampler`, `queue_capacity`, `batch`, `timeout`, `retries`, `gzip`.
#[macro_export]
macro_rules! pipeline_settings {
    ($builder:ty) => {
        impl $builder {
            /// Samples this fraction (0..=1) of new traces; incoming sampled flags and
            /// `/trace/sample` still decide for theirs (parent-based).
            pub fn sample_rate(mut self, rate: f64) -> Self {
                self.pipeline = self.pipeline.sample_rate(rate);
                self
            }

            /// The sampler: `Always`, `Never` and `Fraction` decide every trace here, ignoring
            /// a caller's flag; `ParentBased` keeps it.
            pub fn sampler(mut self, s: monkit::export::Sampler) -> Self {
                self.pipeline = self.pipeline.sampler(s);
                self
            }

            /// Most spans waiting to be sent; past this, finished spans are dropped and
            /// counted.
            pub fn queue_capacity(mut self, n: usize) -> Self {
                self.pipeline = self.pipeline.queue_capacity(n);
                self
            }

            /// Most spans per request, and the longest a span waits before its batch is sent.
            pub fn batch(mut self, size: usize, interval: std::time::Duration) -> Self {
                self.pipeline = self.pipeline.batch(size, interval);
                self
            }

            /// Request timeout.
            pub fn timeout(mut self, t: std::time::Duration) -> Self {
                self.pipeline = self.pipeline.timeout(t);
                self
            }

            /// Retries of a failed batch (connection errors and 5xx), backing off
            /// exponentially from `initial` to at most `max`, with jitter.
            pub fn retries(
                mut self,
                max_retries: u32,
                initial: std::time::Duration,
                max: std::time::Duration,
            ) -> Self {
                self.pipeline = self.pipeline.retries(max_retries, initial, max);
                self
            }

            /// Compresses request bodies with gzip (`Content-Encoding: gzip`).
            pub fn gzip(mut self, on: bool) -> Self {
                self.pipeline = self.pipeline.gzip(on);
                self
            }

            /// Tail sampling: also exports whole traces whose local root lasted at least
            /// `min_duration`, or (with `errors`) in which a span failed (see
            /// `monkit_exporter::Pipeline::tail_sampling`).
            pub fn tail_sampling(
                mut self,
                min_duration: Option<std::time::Duration>,
                errors: bool,
            ) -> Self {
                self.pipeline = self.pipeline.tail_sampling(min_duration, errors);
                self
            }

            /// For an `https://` endpoint: trusts only the CA certificates of this PEM file
            /// instead of Mozilla's roots.
            pub fn tls_ca(mut self, pem: impl Into<std::path::PathBuf>) -> Self {
                self.pipeline = self.pipeline.tls_ca(pem);
                self
            }

            /// For an `https://` endpoint: presents this client certificate chain and key
            /// (PEM files), for mutual TLS.
            pub fn tls_client_cert(
                mut self,
                cert_pem: impl Into<std::path::PathBuf>,
                key_pem: impl Into<std::path::PathBuf>,
            ) -> Self {
                self.pipeline = self.pipeline.tls_client_cert(cert_pem, key_pem);
                self
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(retry_after("5", now), Some(Duration::from_secs(5)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        // Capped, and a date in the past is now.
        assert_eq!(retry_after("86400", now), Some(MAX_RETRY_AFTER));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in ["", "-1", "soon", "1.5"] {
            assert_eq!(retry_after(bad, SystemTime::now()), None, "{bad}");
        }
    }

    #[test]
    fn only_pushback_is_retried() {
        for code in [429, 502, 503, 504] {
            assert!(retryable(code), "{code}");
        }
        for code in [400, 401, 403, 404, 413, 500, 501] {
            assert!(!retryable(code), "{code}");
        }
    }

    #[test]
    fn seeds_differ_between_senders() {
        let seeds: std::collections::HashSet<u64> = (0..16).map(|_| random_seed()).collect();
        assert_eq!(seeds.len(), 16);
    }
}
