//! The `log` bridge: a `log::Log` wrapped so that every record written inside a monkit span
//! carries the span's ids as key-values (`trace_id`, `span_id`) for whatever formats it, becomes
//! an event of the span when its trace is recorded, and reaches the log sinks (OTLP logs) with
//! its ids. Written here rather than taken from a crate: no logger knows monkit's context.

use crate::trace::annotate::{add_event, current_recorded};
use crate::trace::logs::{self, LogRecord, Severity};
use crate::trace::span::current_raw;
use log::kv::{self, Key, Source, Value, VisitSource};
use log::{LevelFilter, Log, Metadata, Record};
use std::fmt;

/// Wraps a logger (`env_logger`, a JSON formatter, any `log::Log`): see the module
/// documentation. [`install`](LogBridge::install) makes it the process's logger.
///
/// ```
/// // Any `log::Log`; here one that prints each record with its key-values.
/// struct Print;
/// struct Pairs(String);
/// impl<'kvs> log::kv::VisitSource<'kvs> for Pairs {
///     fn visit_pair(&mut self, k: log::kv::Key<'kvs>, v: log::kv::Value<'kvs>)
///         -> Result<(), log::kv::Error> {
///         self.0.push_str(&format!(" {k}={v}"));
///         Ok(())
///     }
/// }
/// impl log::Log for Print {
///     fn enabled(&self, _: &log::Metadata) -> bool { true }
///     fn log(&self, r: &log::Record) {
///         let mut kvs = Pairs(String::new());
///         let _ = r.key_values().visit(&mut kvs);
///         println!("{} {}{}", r.level(), r.args(), kvs.0);
///     }
///     fn flush(&self) {}
/// }
/// # fn run() -> Result<(), log::SetLoggerError> {
/// monkit::bridge::LogBridge::new(Print)
///     .max_level(log::LevelFilter::Info)
///     .install()?;
/// # Ok(()) }
/// ```
pub struct LogBridge<L> {
    inner: L,
    max_level: LevelFilter,
}

impl<L> fmt::Debug for LogBridge<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogBridge")
            .field("max_level", &self.max_level)
            .finish_non_exhaustive()
    }
}

impl<L: Log + 'static> LogBridge<L> {
    /// Wraps `inner`; records at every level pass (see [`max_level`](LogBridge::max_level)).
    pub fn new(inner: L) -> LogBridge<L> {
        LogBridge {
            inner,
            max_level: LevelFilter::Trace,
        }
    }

    /// The most verbose level recorded at all (`log::set_max_level` at install): records
    /// above it are not even made. Set it to the wrapped logger's own filter (env_logger's
    /// `Logger::filter()`), so debug records it would drop cost nothing.
    pub fn max_level(mut self, level: LevelFilter) -> LogBridge<L> {
        self.max_level = level;
        self
    }

    /// Makes this the process's logger; fails if one is installed already.
    pub fn install(self) -> Result<(), log::SetLoggerError> {
        let level = self.max_level;
        log::set_boxed_logger(Box::new(self))?;
        log::set_max_level(level);
        Ok(())
    }
}

/// A span's ids as hex, written without allocating.
struct Hex<const W: usize>(u128);

impl<const W: usize> fmt::Display for Hex<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:0w$x}", self.0, w = W)
    }
}

/// The record's own key-values after the span's ids.
struct WithIds<'a> {
    trace_id: Hex<32>,
    span_id: Hex<16>,
    rest: &'a dyn Source,
}

impl Source for WithIds<'_> {
    fn visit<'kvs>(&'kvs self, v: &mut dyn VisitSource<'kvs>) -> Result<(), kv::Error> {
        v.visit_pair(
            Key::from_str("trace_id"),
            Value::from_display(&self.trace_id),
        )?;
        v.visit_pair(Key::from_str("span_id"), Value::from_display(&self.span_id))?;
        self.rest.visit(v)
    }
}

/// A record's key-values as text pairs, at most `max`.
fn pairs(source: &dyn Source, max: usize) -> Vec<(String, String)> {
    struct Collect(Vec<(String, String)>, usize);
    impl<'kvs> VisitSource<'kvs> for Collect {
        fn visit_pair(&mut self, k: Key<'kvs>, v: Value<'kvs>) -> Result<(), kv::Error> {
            if self.0.len() < self.1 {
                self.0.push((k.to_string(), v.to_string()));
            }
            Ok(())
        }
    }
    let mut c = Collect(Vec::new(), max);
    let _ = source.visit(&mut c);
    c.0
}

fn severity(l: log::Level) -> Severity {
    match l {
        log::Level::Error => Severity::Error,
        log::Level::Warn => Severity::Warn,
        log::Level::Info => Severity::Info,
        log::Level::Debug => Severity::Debug,
        log::Level::Trace => Severity::Trace,
    }
}

impl<L: Log> Log for LogBridge<L> {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= self.max_level && (self.inner.enabled(m) || logs::has_log_sinks())
    }

    fn log(&self, record: &Record<'_>) {
        if record.level() > self.max_level {
            return;
        }
        let cur = current_raw();
        if cur.span_id == 0 {
            self.inner.log(record);
        } else {
            let kvs = WithIds {
                trace_id: Hex(cur.trace_id),
                span_id: Hex(u128::from(cur.span_id)),
                rest: record.key_values(),
            };
            self.inner
                .log(&record.to_builder().key_values(&kvs).build());
            if current_recorded() {
                let mut attrs = vec![
                    ("level".to_owned(), record.level().as_str().to_owned()),
                    ("target".to_owned(), record.target().to_owned()),
                ];
                attrs.extend(pairs(
                    record.key_values(),
                    crate::trace::MAX_EVENT_ATTRIBUTES - 2,
                ));
                // Formatted no further than an event keeps.
                let message = crate::trace::annotate::bounded_display(record.args());
                add_event(
                    &message,
                    attrs
                        .iter()
                        .map(|(k, v)| (k.as_str(), v as &dyn fmt::Display)),
                );
            }
        }
        if logs::has_log_sinks() {
            logs::emit_log(&LogRecord {
                time_unix_ns: crate::util::clock::Tick::now().unix_nanos(),
                severity: severity(record.level()),
                target: record.target().to_owned(),
                body: crate::trace::annotate::display_within(record.args(), logs::MAX_LOG_BODY),
                attributes: pairs(record.key_values(), logs::MAX_LOG_ATTRIBUTES),
                trace_id: cur.trace_id,
                span_id: cur.span_id,
                sampled: cur.flags & crate::trace::span::SAMPLED != 0,
            });
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}
