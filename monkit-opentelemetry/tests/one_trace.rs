//! monkit and the OpenTelemetry SDK in one program, each exporting its own spans (monkit to a
//! span observer, the SDK to its in-memory exporter): one trace id covers both, and each span's
//! parent is the span it ran in, whichever side made it. Also through the global provider and
//! through tracing-opentelemetry.

use monkit::{FinishedSpan, SpanObserver};
use opentelemetry::trace::{Span as _, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Default)]
struct Seen(Mutex<Vec<FinishedSpan>>);

impl SpanObserver for Seen {
    fn finish(&self, span: &FinishedSpan) {
        self.0.lock().unwrap().push(span.clone());
    }
}

/// monkit's side: every trace sampled, every finished span kept.
fn monkit_spans() -> &'static Seen {
    static SEEN: OnceLock<&'static Seen> = OnceLock::new();
    SEEN.get_or_init(|| {
        let seen: &'static Seen = Box::leak(Box::default());
        let reg = monkit::default_registry();
        reg.set_sampler(monkit::export::Sampler::Always);
        // An observer for the life of the test process.
        let handle = reg.observe(Arc::new(SeenRef(seen)));
        std::mem::forget(handle);
        monkit_opentelemetry::install();
        seen
    })
}

struct SeenRef(&'static Seen);

impl SpanObserver for SeenRef {
    fn finish(&self, span: &FinishedSpan) {
        self.0.finish(span)
    }
}

fn sdk() -> (SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    (provider, exporter)
}

/// A monkit span by function name, in `trace`.
fn monkit_span(trace: u128, name: &str) -> FinishedSpan {
    let all = monkit_spans().0.lock().unwrap();
    all.iter()
        .find(|s| s.start.trace_id == trace && s.start.func.name() == name)
        .unwrap_or_else(|| panic!("no monkit span {name} in trace {trace:032x}"))
        .clone()
}

fn otel_span<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no OpenTelemetry span {name}"))
}

fn trace_of(s: &SpanData) -> u128 {
    u128::from_be_bytes(s.span_context.trace_id().to_bytes())
}

fn id_of(s: &SpanData) -> u64 {
    u64::from_be_bytes(s.span_context.span_id().to_bytes())
}

fn parent_of(s: &SpanData) -> u64 {
    u64::from_be_bytes(s.parent_span_id.to_bytes())
}

#[monkit::task]
fn checkout(tracer: &monkit_opentelemetry::Tracer<opentelemetry_sdk::trace::SdkTracer>) {
    // An OpenTelemetry span inside the call, made current, with a call inside it again.
    tracer.in_span("charge_card", |_| {
        ledger();
    });
    // And one that is only started and ended.
    tracer.start("audit").end();
}

#[monkit::task]
fn ledger() {}

#[test]
fn otel_monkit_otel_monkit_is_one_tree() {
    monkit_spans();
    let (provider, exporter) = sdk();
    let tracer = monkit_opentelemetry::TracerProvider::new(provider.clone()).tracer("shop");
    tracer.in_span("request", |_| checkout(&tracer));
    let spans = exporter.get_finished_spans().unwrap();
    let request = otel_span(&spans, "request");
    let trace = trace_of(request);
    let co = monkit_span(trace, "checkout");
    assert_eq!(
        co.start.parent_id,
        Some(id_of(request)),
        "checkout in request"
    );
    let charge = otel_span(&spans, "charge_card");
    let audit = otel_span(&spans, "audit");
    for s in [charge, audit] {
        assert_eq!(trace_of(s), trace, "one trace id");
        assert_eq!(parent_of(s), co.start.span_id, "{} in checkout", s.name);
    }
    let ledger = monkit_span(trace, "ledger");
    assert_eq!(
        ledger.start.parent_id,
        Some(id_of(charge)),
        "ledger in charge_card"
    );
    assert!(
        co.start.sampled && ledger.start.sampled,
        "the SDK's sampled flag kept"
    );
}

#[monkit::task]
fn nightly_job(tracer: &opentelemetry::global::BoxedTracer) {
    let span = tracer.start("fetch_rates");
    drop(span);
}

#[test]
fn a_monkit_root_parents_spans_of_the_global_provider() {
    monkit_spans();
    let (provider, exporter) = sdk();
    opentelemetry::global::set_tracer_provider(monkit_opentelemetry::TracerProvider::new(
        provider.clone(),
    ));
    let tracer = opentelemetry::global::tracer("jobs");
    nightly_job(&tracer);
    let spans = exporter.get_finished_spans().unwrap();
    let fetch = otel_span(&spans, "fetch_rates");
    let job = monkit_span(trace_of(fetch), "nightly_job");
    assert_eq!(job.start.parent_id, None, "a root of monkit's");
    assert_eq!(parent_of(fetch), job.start.span_id);
    // An explicit parent of another trace is kept as it is.
    let other = provider.tracer("x").start("elsewhere");
    let cx = opentelemetry::Context::current_with_span(other);
    let explicit = monkit_opentelemetry::parent_context(&cx);
    assert_eq!(
        explicit.span().span_context().trace_id(),
        cx.span().span_context().trace_id()
    );
}

#[monkit::task]
fn render_page() {
    let _inner = tracing::info_span!("template").entered();
}

#[test]
fn tracing_opentelemetry_spans_and_tasks_nest() {
    use tracing_subscriber::layer::SubscriberExt;
    monkit_spans();
    let (provider, exporter) = sdk();
    let tracer = monkit_opentelemetry::Tracer::new(provider.tracer("web"));
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
    tracing::subscriber::with_default(subscriber, || {
        let _outer = tracing::info_span!("handler").entered();
        render_page();
    });
    let spans = exporter.get_finished_spans().unwrap();
    let handler = otel_span(&spans, "handler");
    let page = monkit_span(trace_of(handler), "render_page");
    assert_eq!(
        page.start.parent_id,
        Some(id_of(handler)),
        "render_page in handler"
    );
    let template = otel_span(&spans, "template");
    assert_eq!(trace_of(template), trace_of(handler));
    assert_eq!(
        parent_of(template),
        page.start.span_id,
        "template in render_page"
    );
}
