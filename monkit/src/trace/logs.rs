//! Log records on their way out of the process: what a bridge (`bridge::LogBridge`) hands to
//! log sinks (the OTLP logs exporter), each with the ids of the span it was written in.
//!
//! Sinks are few and change rarely; a record reads their list without a lock, and a process
//! with none pays one load per record.

use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

/// How severe a log record is, by `log`'s levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Severity {
    /// Very fine detail.
    Trace,
    /// Detail for debugging.
    Debug,
    /// Something that happened.
    Info,
    /// Something that may be wrong.
    Warn,
    /// Something that is wrong.
    Error,
}

impl Severity {
    /// The level's name in upper case (`INFO`), as OpenTelemetry's `severity_text`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Trace => "TRACE",
            Severity::Debug => "DEBUG",
            Severity::Info => "INFO",
            Severity::Warn => "WARN",
            Severity::Error => "ERROR",
        }
    }

    /// OpenTelemetry's `SeverityNumber` for the level: the first of its range (TRACE 1, DEBUG
    /// 5, INFO 9, WARN 13, ERROR 17).
    pub fn otel_number(self) -> i32 {
        match self {
            Severity::Trace => 1,
            Severity::Debug => 5,
            Severity::Info => 9,
            Severity::Warn => 13,
            Severity::Error => 17,
        }
    }
}

/// One log record, as sinks get it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogRecord {
    /// When it was written, in nanoseconds since the Unix epoch.
    pub time_unix_ns: u64,
    /// How severe.
    pub severity: Severity,
    /// Where it came from (`log`'s target: a module path by default).
    pub target: String,
    /// The message, cut to [`MAX_LOG_BODY`] bytes.
    pub body: String,
    /// Its key-values (the ids excluded), at most [`MAX_LOG_ATTRIBUTES`].
    pub attributes: Vec<(String, String)>,
    /// The trace of the span it was written in (0: none).
    pub trace_id: u128,
    /// That span (0: none).
    pub span_id: u64,
    /// Whether that span's trace is sampled.
    pub sampled: bool,
}

impl LogRecord {
    /// A record outside any span, without key-values (set the fields for more), for code
    /// that bridges another logging system.
    pub fn new(time_unix_ns: u64, severity: Severity, target: &str, body: &str) -> LogRecord {
        LogRecord {
            time_unix_ns,
            severity,
            target: target.to_owned(),
            body: body.to_owned(),
            attributes: Vec::new(),
            trace_id: 0,
            span_id: 0,
            sampled: false,
        }
    }
}

/// Longest body a record keeps, in bytes.
pub const MAX_LOG_BODY: usize = 4096;
/// Most key-values a record keeps.
pub const MAX_LOG_ATTRIBUTES: usize = 32;

/// Takes log records as they are written: it must return at once (queue, don't send).
pub trait LogSink: Send + Sync + 'static {
    /// A record was written.
    fn emit(&self, record: &LogRecord);
}

type Sinks = Vec<(u64, Arc<dyn LogSink>)>;

static SINKS: LazyLock<ArcSwap<Sinks>> = LazyLock::new(|| ArcSwap::from_pointee(Vec::new()));
static ANY: AtomicBool = AtomicBool::new(false);
static NEXT: AtomicU64 = AtomicU64::new(1);

/// Adds a sink; it gets every record the bridges pass on until the handle drops.
pub fn add_log_sink(sink: Arc<dyn LogSink>) -> LogSinkHandle {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    SINKS.rcu(|all| {
        let mut v = Sinks::clone(all);
        v.push((id, sink.clone()));
        v
    });
    ANY.store(true, Ordering::Release);
    LogSinkHandle(id)
}

/// Keeps a log sink added ([`add_log_sink`]); dropping it removes the sink.
#[must_use = "dropping the handle removes the sink"]
#[derive(Debug)]
pub struct LogSinkHandle(u64);

impl Drop for LogSinkHandle {
    fn drop(&mut self) {
        let left = SINKS.rcu(|all| {
            all.iter()
                .filter(|(id, _)| *id != self.0)
                .cloned()
                .collect::<Sinks>()
        });
        // `rcu` returns what was there before; the list now lacks this one.
        ANY.store(left.len() > 1, Ordering::Release);
    }
}

/// Whether any sink takes records (a bridge builds one only then).
#[inline]
pub fn has_log_sinks() -> bool {
    ANY.load(Ordering::Acquire)
}

/// Hands `record` to every sink.
pub fn emit_log(record: &LogRecord) {
    for (_, sink) in SINKS.load().iter() {
        sink.emit(record);
    }
}
