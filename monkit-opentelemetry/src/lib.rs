//! One trace across monkit and OpenTelemetry in the same program.
//!
//! A program that already has OpenTelemetry spans (the SDK, or `tracing` through
//! tracing-opentelemetry) and adds `#[monkit::task]` would otherwise get two unrelated trace
//! trees. With this crate:
//!
//! - [`install`]: a `#[task]` call made while an OpenTelemetry span is current (and no monkit
//!   span is) continues that span's trace, as its child: same trace id, its span as parent,
//!   its sampled flag.
//! - [`Tracer`] (or [`TracerProvider`] for a whole provider, global one included): an
//!   OpenTelemetry span started while a `#[task]` call runs is that call's child, unless the
//!   span's own context names a parent nearer to it (an OpenTelemetry span started inside the
//!   call and made current).
//!
//! ```
//! use opentelemetry::trace::{Tracer as _, TracerProvider as _};
//!
//! monkit_opentelemetry::install();
//! # let sdk = opentelemetry::trace::noop::NoopTracerProvider::new();
//! // `sdk` is the program's tracer provider (opentelemetry_sdk's, say).
//! let provider = monkit_opentelemetry::TracerProvider::new(sdk);
//! let tracer = provider.tracer("shop");
//! tracer.in_span("checkout", |_cx| {
//!     // a #[monkit::task] called here is a child of "checkout",
//!     // and an OpenTelemetry span started inside that call is the task's child.
//! });
//! ```
//!
//! With tracing-opentelemetry, wrap the tracer the layer is given:
//! `tracing_opentelemetry::layer().with_tracer(monkit_opentelemetry::Tracer::new(tracer))`; its
//! default context activation makes an entered `tracing` span the current OpenTelemetry span,
//! which is what `#[task]` calls continue.
//!
//! Each side keeps exporting its own spans (monkit's through monkit-otlp or monkit-zipkin,
//! OpenTelemetry's through its exporter); they agree on the trace id and on who is whose
//! parent, so a backend shows one tree.
//!
//! Which parent is nearer when both sides have a span current: an OpenTelemetry span that
//! [`Tracer`] started inside the running `#[task]` call (each thread remembers its last 64);
//! otherwise the call.
//!
//! Limits: a `#[task]` call nested in an OpenTelemetry span that is itself inside a `#[task]`
//! call is the outer call's child, unless the span was made current with [`Tracer`]'s
//! `in_span` family (which also makes it monkit's current parent): only calls with no monkit
//! span current ask OpenTelemetry for a parent, which keeps monkit's hot path to one load.
//! Spans of tracers not wrapped in [`Tracer`] are not known to have started inside a call.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

use monkit::SpanRef;
use opentelemetry::trace::{
    Span as _, SpanBuilder, SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Context, InstrumentationScope};
use std::cell::Cell;

/// How many OpenTelemetry spans started inside monkit calls each thread remembers.
const INSIDE_SLOTS: usize = 64;

thread_local! {
    /// OpenTelemetry spans [`Tracer`] started on this thread while a monkit span was current,
    /// with that span: (OpenTelemetry span id, monkit span id), the latest overwriting the
    /// oldest. A span found here was started inside that monkit call, so it is the nearer
    /// parent of what starts under it.
    static INSIDE: Cell<([(u64, u64); INSIDE_SLOTS], usize)> =
        const { Cell::new(([(0, 0); INSIDE_SLOTS], 0)) };
}

fn note_inside(otel: u64, monkit: u64) {
    INSIDE.with(|c| {
        let (mut slots, next) = c.get();
        slots[next % INSIDE_SLOTS] = (otel, monkit);
        c.set((slots, next.wrapping_add(1)));
    });
}

fn started_inside(otel: u64, monkit: u64) -> bool {
    INSIDE.with(|c| c.get().0.contains(&(otel, monkit)))
}

/// Makes `#[task]` calls with no monkit span current continue the current OpenTelemetry
/// span's trace. Returns false if another source of ambient parents was installed first (it
/// stays in use).
pub fn install() -> bool {
    monkit::trace::set_ambient_parent(current_otel_parent)
}

/// Stops `#[task]` calls from looking for an OpenTelemetry parent.
pub fn uninstall() {
    monkit::trace::clear_ambient_parent();
}

fn ids(sc: &SpanContext) -> (u128, u64) {
    (
        u128::from_be_bytes(sc.trace_id().to_bytes()),
        u64::from_be_bytes(sc.span_id().to_bytes()),
    )
}

/// The current OpenTelemetry span, as a monkit parent.
fn current_otel_parent() -> Option<SpanRef> {
    let sc = Context::map_current(|cx| cx.span().span_context().clone());
    if !sc.is_valid() {
        return None;
    }
    let (trace, span) = ids(&sc);
    Some(SpanRef::remote_with_flags(
        trace,
        span,
        u8::from(sc.is_sampled()),
    ))
}

/// The context an OpenTelemetry span started now should have as its parent: `cx`, or `cx`
/// with the running `#[task]` call as the parent span when that call is nearer.
pub fn parent_context(cx: &Context) -> Context {
    monkit::current_span()
        .and_then(|m| nearer_parent(m, cx))
        .unwrap_or_else(|| cx.clone())
}

/// `cx` with the monkit span `m` as its parent, when `m` is nearer than `cx`'s own span.
fn nearer_parent(m: SpanRef, cx: &Context) -> Option<Context> {
    if m.span_id() == 0 {
        return None;
    }
    let otel = cx.span().span_context().clone();
    if otel.is_valid() {
        let (trace, span) = ids(&otel);
        if trace != m.trace_id() || span == m.span_id() {
            // Another trace on purpose, or the very span monkit has current.
            return None;
        }
        // Same trace: the OpenTelemetry span is nearer if it started inside the monkit call.
        if started_inside(span, m.span_id()) {
            return None;
        }
    }
    let flags = if m.is_sampled() {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    Some(cx.with_remote_span_context(SpanContext::new(
        TraceId::from_bytes(m.trace_id().to_be_bytes()),
        SpanId::from_bytes(m.span_id().to_be_bytes()),
        flags,
        true,
        TraceState::default(),
    )))
}

/// Runs `f` with the OpenTelemetry span of `cx` also as monkit's current parent, so
/// `#[task]` calls inside are its children.
fn with_monkit_parent<T>(cx: Context, f: impl FnOnce(Context) -> T) -> T {
    let sc = cx.span().span_context().clone();
    if !sc.is_valid() {
        return f(cx);
    }
    let (trace, span) = ids(&sc);
    SpanRef::remote_with_flags(trace, span, u8::from(sc.is_sampled())).in_scope(|| f(cx))
}

/// An OpenTelemetry tracer whose spans take a running `#[task]` call as their parent (see the
/// crate doc). Everything else is the wrapped tracer's.
#[derive(Clone, Debug)]
pub struct Tracer<T> {
    inner: T,
}

impl<T> Tracer<T> {
    /// Wraps `tracer`.
    pub fn new(tracer: T) -> Tracer<T> {
        Tracer { inner: tracer }
    }

    /// The wrapped tracer.
    pub fn inner(&self) -> &T {
        &self.inner
    }
}

impl<T: opentelemetry::trace::Tracer> opentelemetry::trace::Tracer for Tracer<T> {
    type Span = T::Span;

    fn build_with_context(&self, builder: SpanBuilder, parent_cx: &Context) -> T::Span {
        let Some(m) = monkit::current_span() else {
            return self.inner.build_with_context(builder, parent_cx);
        };
        let span = match nearer_parent(m, parent_cx) {
            Some(cx) => self.inner.build_with_context(builder, &cx),
            None => self.inner.build_with_context(builder, parent_cx),
        };
        let id = u64::from_be_bytes(span.span_context().span_id().to_bytes());
        note_inside(id, m.span_id());
        span
    }

    fn in_span_with_builder<R, F>(&self, builder: SpanBuilder, f: F) -> R
    where
        F: FnOnce(Context) -> R,
        T::Span: Send + Sync + 'static,
    {
        let span = self.build(builder);
        let cx = Context::current_with_span(span);
        let _guard = cx.clone().attach();
        with_monkit_parent(cx, f)
    }

    fn in_span_with_builder_and_context<R, F>(
        &self,
        builder: SpanBuilder,
        parent_cx: &Context,
        f: F,
    ) -> R
    where
        F: FnOnce(Context) -> R,
        T::Span: Send + Sync + 'static,
    {
        let span = self.build_with_context(builder, parent_cx);
        let cx = parent_cx.with_span(span);
        let _guard = cx.clone().attach();
        with_monkit_parent(cx, f)
    }
}

/// A tracer provider whose tracers are [`Tracer`]s: set it as the global provider and every
/// OpenTelemetry span of the program takes part.
#[derive(Clone, Debug)]
pub struct TracerProvider<P> {
    inner: P,
}

impl<P> TracerProvider<P> {
    /// Wraps `provider`.
    pub fn new(provider: P) -> TracerProvider<P> {
        TracerProvider { inner: provider }
    }

    /// The wrapped provider (to shut it down, say).
    pub fn inner(&self) -> &P {
        &self.inner
    }
}

impl<P: opentelemetry::trace::TracerProvider> opentelemetry::trace::TracerProvider
    for TracerProvider<P>
{
    type Tracer = Tracer<P::Tracer>;

    fn tracer_with_scope(&self, scope: InstrumentationScope) -> Self::Tracer {
        Tracer::new(self.inner.tracer_with_scope(scope))
    }
}
