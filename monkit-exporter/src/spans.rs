//! Span export on the push worker: the observer side fills a bounded lock-free queue (and,
//! with tail sampling, the pending traces), and a [`Job`] drains it in batches.

use crate::periodic::{Ctx, Job, Periodic};
use crate::{tail, Format, Pipeline, Sender, Sent, Transport};
use crossbeam_queue::ArrayQueue;
use monkit::settings::ConfigError;
use monkit::{stats::Meter, trace::ObserverHandle, FinishedSpan, Registry, SpanObserver};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the worker looks at the queue: instrumented threads never wake it, so it polls
/// often enough to batch by size.
const POLL: Duration = Duration::from_millis(20);

/// What instrumented threads touch: the queue, the pending traces and the counts.
struct Inner {
    queue: ArrayQueue<FinishedSpan>,
    sent: Meter,
    dropped: Meter,
    failed: Meter,
    retried: Meter,
    refused: Meter,
    tail_kept: Meter,
    tail_dropped: Meter,
    tail_overflowed: Meter,
    tail_spans_lost: Meter,
    /// Traces waiting for their local root, with tail sampling on.
    pending: Option<tail::Pending>,
}

pub(crate) fn install(
    config: Pipeline,
    registry: &Registry,
    format: Box<dyn Format>,
    transport: Box<dyn Transport>,
) -> Result<Exporter, ConfigError> {
    let scope = registry.scope(&format!("monkit_{}", config.name));
    let inner = Arc::new(Inner {
        queue: ArrayQueue::new(config.queue_capacity),
        sent: scope.meter("spans_sent"),
        dropped: scope.meter("spans_dropped"),
        failed: scope.meter("spans_failed"),
        retried: scope.meter("batches_retried"),
        refused: scope.meter("batches_refused"),
        tail_kept: scope.meter("tail_kept"),
        tail_dropped: scope.meter("tail_dropped"),
        tail_overflowed: scope.meter("tail_overflowed"),
        tail_spans_lost: scope.meter("tail_spans_lost"),
        pending: config.tail.is_on().then(|| tail::Pending::new(config.tail)),
    });
    if inner.pending.is_some() {
        // What tail sampling holds now, against its byte bound.
        let weak = Arc::downgrade(&inner);
        scope.gauge("tail_pending_bytes", move || {
            weak.upgrade()
                .and_then(|i| i.pending.as_ref().map(|p| p.bytes() as f64))
                .unwrap_or(0.0)
        });
    }
    let job = Batches {
        inner: inner.clone(),
        sender: config.sender(transport),
        format,
        oldest: None,
        config: config.clone(),
    };
    let worker = Periodic::spawn(&format!("monkit-{}", config.name), POLL, job)?;
    registry.set_sampler(config.head_sampler());
    let observer = Some(registry.observe(inner.clone()));
    Ok(Exporter {
        inner,
        observer,
        worker: Some(worker),
        name: config.name,
        endpoint: config.endpoint,
    })
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

    /// Only tail sampling needs to see spans start.
    fn observes_starts(&self) -> bool {
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
            tail::Decision::Drop {
                overflowed: true,
                lost,
            } => {
                self.tail_overflowed.mark(1);
                self.tail_spans_lost.mark(lost);
            }
            tail::Decision::Drop {
                overflowed: false, ..
            } => self.tail_dropped.mark(1),
        }
    }
}

/// The worker's side: batches by size or age, sent with the pipeline's retry rules.
struct Batches {
    inner: Arc<Inner>,
    sender: Sender,
    format: Box<dyn Format>,
    /// When the oldest span of the coming batch was first seen.
    oldest: Option<Instant>,
    config: Pipeline,
}

impl Job for Batches {
    fn round(&mut self, urgent: bool, ctx: &Ctx<'_>) -> bool {
        let inner = Arc::clone(&self.inner);
        let queue = &inner.queue;
        let n = queue.len();
        if n > 0 && self.oldest.is_none() {
            self.oldest = Some(Instant::now());
        }
        let due = self
            .oldest
            .is_some_and(|t| t.elapsed() >= self.config.batch_interval);
        if n >= self.config.batch_size || (n > 0 && (due || urgent)) {
            let mut batch = Vec::with_capacity(n.min(self.config.batch_size));
            while batch.len() < self.config.batch_size {
                match queue.pop() {
                    Some(s) => batch.push(s),
                    None => break,
                }
            }
            self.send(&batch, ctx);
            self.oldest = None;
        }
        let left = queue.len();
        left >= self.config.batch_size || (urgent && left > 0)
    }

    fn abandon(&mut self) {
        let mut n = 0;
        while self.inner.queue.pop().is_some() {
            n += 1;
        }
        self.inner.failed.mark(n);
    }
}

impl Batches {
    fn send(&mut self, batch: &[FinishedSpan], ctx: &Ctx<'_>) {
        let body = self.format.encode(batch);
        let retried = &self.inner.retried;
        // Waits between tries, each counted as it begins, cut short when a shutdown runs out
        // of time.
        let mut wait = |d: Duration| {
            retried.mark(1);
            ctx.wait(d)
        };
        let n = batch.len();
        let endpoint = &self.config.endpoint;
        match self.sender.send(body, &mut wait) {
            Sent::Ok { .. } => self.inner.sent.mark(n as u64),
            Sent::Refused { why, .. } => {
                self.inner.refused.mark(1);
                self.inner.failed.mark(n as u64);
                ctx.warn(format_args!("{n} spans refused by {endpoint}: {why}"));
            }
            Sent::GaveUp { why, retries } => {
                self.inner.failed.mark(n as u64);
                ctx.warn(format_args!(
                    "giving up on {n} spans after {retries} retries: {why}"
                ));
            }
        }
    }
}

/// The installed exporter. [`Exporter::shutdown`] (or drop) sends what is queued.
#[must_use = "dropping the Exporter flushes it and stops exporting"]
pub struct Exporter {
    inner: Arc<Inner>,
    observer: Option<ObserverHandle>,
    worker: Option<Periodic>,
    name: &'static str,
    endpoint: String,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Exporter {
    /// Sends everything queued now; whether it finished within `timeout`.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.worker.as_ref().is_some_and(|w| w.flush(timeout))
    }

    /// Spans waiting in the queue.
    pub fn queued(&self) -> usize {
        self.inner.queue.len()
    }

    /// Stops exporting new spans and sends what is queued, within `timeout`: what is not sent
    /// by then is dropped and counted (`spans_failed`). Whether everything was sent.
    pub fn shutdown(mut self, timeout: Duration) -> bool {
        self.stop(timeout)
    }

    fn stop(&mut self, timeout: Duration) -> bool {
        if let Some(o) = self.observer.take() {
            o.remove();
        }
        self.worker.take().is_some_and(|w| w.shutdown(timeout))
    }
}

impl Drop for Exporter {
    /// Stops exporting; the worker's drop sends what is queued within
    /// `MONKIT_SHUTDOWN_TIMEOUT` (at once when `monkit::export::shutdown_all` already ran).
    fn drop(&mut self) {
        if let Some(o) = self.observer.take() {
            o.remove();
        }
    }
}
