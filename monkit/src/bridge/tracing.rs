//! The `tracing` bridge: every `tracing` span becomes a monkit call of a monkit function named
//! after its target and name, with full stats, a place in the monkit span tree, and a place in
//! captured traces.
//!
//! ```
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let subscriber = tracing_subscriber::registry().with(monkit::bridge::MonkitLayer::new());
//! tracing::subscriber::with_default(subscriber, || {
//!     let _span = tracing::info_span!("load_config").entered();
//! });
//! ```
//!
//! A `tracing` span starts a call when it is created and ends it when it closes; while it is
//! entered it is monkit's current span, so a `#[monkit::task]` called inside is its child, and
//! a `tracing` span created inside a `#[monkit::task]` is the task's child. An event at ERROR
//! level inside a span (as `#[instrument(err)]` emits) marks the call failed, with the error
//! kind `error`.

use crate::call::func::{FuncInner, Location};
use crate::call::lifecycle::AsyncCall;
use crate::registry::registry::default_registry;
use crate::registry::registry::Registry;
use crate::stats::outcome::Outcome;
use crate::trace::span::{current_raw, set_current, SpanRef};
use parking_lot::RwLock;
use std::cell::RefCell;
use std::collections::HashMap;
use tracing_core::span::{Attributes, Id};
use tracing_core::{Event, Interest, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The error kind of a call marked failed by an ERROR event.
pub const ERROR_EVENT_KIND: &str = "error";

/// Targets whose spans are libraries' own workings (an HTTP/2 stream's, a connection's, a
/// runtime's), left out by default: a service's requests would otherwise each make dozens of
/// spans in the function table. A target is left out when it is one of these or inside one
/// (`h2::proto`).
pub const DEFAULT_SKIPPED_TARGETS: [&str; 9] = [
    "h2",
    "hyper",
    "hyper_util",
    "tokio",
    "tokio_util",
    "mio",
    "rustls",
    "want",
    "tower::buffer",
];

/// A `tracing-subscriber` layer feeding monkit. See the module documentation.
pub struct MonkitLayer {
    registry: Registry,
    /// Target prefixes not bridged.
    skipped: Vec<String>,
    // Callsite metadata address -> function (`None`: its target is skipped), once per callsite.
    funcs: RwLock<HashMap<usize, Option<&'static FuncInner>>>,
}

impl std::fmt::Debug for MonkitLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonkitLayer")
            .field("registry", &self.registry)
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

impl Default for MonkitLayer {
    fn default() -> Self {
        MonkitLayer::new()
    }
}

impl MonkitLayer {
    /// A layer registering its functions in the default registry.
    pub fn new() -> MonkitLayer {
        MonkitLayer::with_registry(default_registry().clone())
    }

    /// A layer registering its functions in `registry`, leaving out the spans of
    /// [`DEFAULT_SKIPPED_TARGETS`].
    pub fn with_registry(registry: Registry) -> MonkitLayer {
        MonkitLayer {
            registry,
            skipped: DEFAULT_SKIPPED_TARGETS
                .iter()
                .map(|t| (*t).to_owned())
                .collect(),
            funcs: RwLock::new(HashMap::new()),
        }
    }

    /// Leaves out the spans of these targets (and of the modules inside them) instead of
    /// [`DEFAULT_SKIPPED_TARGETS`]; an empty list bridges every span.
    ///
    /// ```
    /// let everything = monkit::bridge::MonkitLayer::new().skip_targets(&[]);
    /// let mine_only = monkit::bridge::MonkitLayer::new().skip_targets(&["h2", "hyper", "sqlx"]);
    /// # let _ = (everything, mine_only);
    /// ```
    pub fn skip_targets(mut self, targets: &[&str]) -> MonkitLayer {
        self.skipped = targets.iter().map(|t| (*t).to_owned()).collect();
        self
    }

    /// Whether spans of `target` are left out.
    fn skips(&self, target: &str) -> bool {
        self.skipped.iter().any(|s| {
            target
                .strip_prefix(s.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
    }

    fn func_for(&self, meta: &'static Metadata<'static>) -> Option<&'static FuncInner> {
        let key = meta as *const Metadata<'static> as usize;
        if let Some(f) = self.funcs.read().get(&key) {
            return *f;
        }
        let f = (!self.skips(meta.target())).then(|| {
            self.registry.scope_named(meta.target()).func_inner(
                meta.name(),
                crate::stats::series::Tags::default(),
                Some(Location {
                    module: meta.module_path().unwrap_or(meta.target()),
                    file: meta.file().unwrap_or("<unknown>"),
                    line: meta.line().unwrap_or(0),
                }),
            )
        });
        self.funcs.write().insert(key, f);
        f
    }
}

/// The monkit call of a `tracing` span, kept in the span's extensions.
struct Bridged {
    call: AsyncCall,
    failed: Option<&'static str>,
    /// What the ERROR event said (its `error` field, else its message), for recorded spans.
    text: Option<String>,
}

/// Reads an event's `error` field, or else its message.
#[derive(Default)]
struct ErrorText {
    error: Option<String>,
    message: Option<String>,
}

impl tracing_core::field::Visit for ErrorText {
    fn record_debug(&mut self, field: &tracing_core::Field, value: &dyn std::fmt::Debug) {
        let text = || {
            crate::trace::annotate::display_within(
                &format_args!("{value:?}"),
                crate::trace::MAX_ERROR_TEXT,
            )
        };
        match field.name() {
            "error" => self.error = Some(text()),
            "message" => self.message = Some(text()),
            _ => {}
        }
    }

    fn record_str(&mut self, field: &tracing_core::Field, value: &str) {
        let text = || crate::trace::annotate::display_within(&value, crate::trace::MAX_ERROR_TEXT);
        match field.name() {
            "error" => self.error = Some(text()),
            "message" => self.message = Some(text()),
            _ => {}
        }
    }
}

/// An event's message and other fields as text.
#[derive(Default)]
struct Fields {
    message: String,
    others: Vec<(String, String)>,
}

impl tracing_core::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing_core::Field, value: &dyn std::fmt::Debug) {
        let text = crate::trace::annotate::bounded_display(&format_args!("{value:?}"));
        if field.name() == "message" {
            self.message = text;
        } else if self.others.len() < crate::trace::MAX_EVENT_ATTRIBUTES - 2 {
            self.others.push((field.name().to_owned(), text));
        }
    }

    fn record_str(&mut self, field: &tracing_core::Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }
}

/// A `tracing` event as an event of the current (recorded) span and as a log record.
fn record_event(event: &Event<'_>, recorded: bool) {
    let meta = event.metadata();
    let mut f = Fields::default();
    event.record(&mut f);
    let level = match *meta.level() {
        Level::ERROR => crate::trace::logs::Severity::Error,
        Level::WARN => crate::trace::logs::Severity::Warn,
        Level::INFO => crate::trace::logs::Severity::Info,
        Level::DEBUG => crate::trace::logs::Severity::Debug,
        _ => crate::trace::logs::Severity::Trace,
    };
    if recorded {
        let mut attrs = vec![
            ("level".to_owned(), level.as_str().to_owned()),
            ("target".to_owned(), meta.target().to_owned()),
        ];
        attrs.extend(f.others.iter().cloned());
        crate::trace::annotate::add_event(
            &f.message,
            attrs
                .iter()
                .map(|(k, v)| (k.as_str(), v as &dyn std::fmt::Display)),
        );
    }
    if crate::trace::logs::has_log_sinks() {
        let cur = current_raw();
        crate::trace::logs::emit_log(&crate::trace::logs::LogRecord {
            time_unix_ns: crate::util::clock::Tick::now().unix_nanos(),
            severity: level,
            target: meta.target().to_owned(),
            body: f.message,
            attributes: f.others,
            trace_id: cur.trace_id,
            span_id: cur.span_id,
            sampled: cur.is_sampled(),
        });
    }
}

thread_local! {
    /// Contexts saved by `on_enter`, restored by `on_exit` (spans nest per thread).
    static SAVED: RefCell<Vec<SpanRef>> = const { RefCell::new(Vec::new()) };
}

impl<S> Layer<S> for MonkitLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if meta.is_span() {
            // Listed (and known to trace watchers) before the span is ever created.
            self.func_for(meta);
        }
        Interest::always()
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let Some(func) = self.func_for(attrs.metadata()) else {
            return;
        };
        let parent = if attrs.is_contextual() {
            // monkit's context is the innermost: a #[task] inside an entered tracing span.
            current_raw()
        } else if let Some(p) = attrs.parent().and_then(|p| ctx.span(p)) {
            // The nearest bridged ancestor (a skipped span has no call of its own).
            p.scope()
                .find_map(|a| a.extensions().get::<Bridged>().map(|b| b.call.span()))
                .unwrap_or_default()
        } else {
            SpanRef::default()
        };
        span.extensions_mut().insert(Bridged {
            call: AsyncCall::start(func, parent),
            failed: None,
            text: None,
        });
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mine = span.extensions().get::<Bridged>().map(|b| b.call.span());
        if let Some(me) = mine {
            SAVED.with(|s| s.borrow_mut().push(current_raw()));
            set_current(me);
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(b) = ext.get_mut::<Bridged>() {
            b.call.leave();
            if let Some(prev) = SAVED.with(|s| s.borrow_mut().pop()) {
                set_current(prev);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // An event in a recorded span is one of its events; any event reaches the log sinks.
        let recorded = crate::trace::annotate::current_recorded();
        if recorded || crate::trace::logs::has_log_sinks() {
            record_event(event, recorded);
        }
        if *event.metadata().level() != Level::ERROR {
            return;
        }
        if let Some(span) = ctx.event_span(event) {
            if let Some(b) = span.extensions_mut().get_mut::<Bridged>() {
                b.failed = Some(ERROR_EVENT_KIND);
                let s = b.call.span();
                if s.is_recorded() || s.is_sampled() {
                    let mut t = ErrorText::default();
                    event.record(&mut t);
                    b.text = t.error.or(t.message);
                }
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(b) = span.extensions_mut().remove::<Bridged>() else {
            return;
        };
        let text = b.text.as_ref().map(|t| t as &dyn std::fmt::Display);
        b.call
            .finish(b.failed.map_or(Outcome::Ok, Outcome::Error), text);
    }
}
