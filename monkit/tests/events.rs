//! Span events and log records tied to their span: `trace::event` on recorded and unrecorded
//! calls, the `log` bridge (ids as key-values for any formatter, records as span events, log
//! sinks), and `tracing` events through the layer. One test: the logger is process-wide.

use monkit::trace::logs::{LogRecord, LogSink};
use std::sync::{Arc, Mutex};

/// A logger keeping each record's message and key-values, as a formatter would see them.
/// A record as a formatter sees it: its message and key-values.
type Seen = (String, Vec<(String, String)>);

#[derive(Default, Clone)]
struct Keep(Arc<Mutex<Vec<Seen>>>);

impl log::Log for Keep {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        struct Pairs(Vec<(String, String)>);
        impl<'kvs> log::kv::VisitSource<'kvs> for Pairs {
            fn visit_pair(
                &mut self,
                k: log::kv::Key<'kvs>,
                v: log::kv::Value<'kvs>,
            ) -> Result<(), log::kv::Error> {
                self.0.push((k.to_string(), v.to_string()));
                Ok(())
            }
        }
        let mut kvs = Pairs(Vec::new());
        let _ = r.key_values().visit(&mut kvs);
        self.0.lock().unwrap().push((r.args().to_string(), kvs.0));
    }
    fn flush(&self) {}
}

#[derive(Default)]
struct Sink(Mutex<Vec<LogRecord>>);

impl LogSink for Sink {
    fn emit(&self, r: &LogRecord) {
        self.0.lock().unwrap().push(r.clone());
    }
}

#[monkit::task]
fn checkout(order: u64) -> u64 {
    monkit::trace::event("cart loaded");
    log::info!(order; "charging order {order}");
    monkit::trace::event_with("paid", &[("provider", "acme")]);
    order
}

#[monkit::task]
fn chatty(n: usize) {
    for i in 0..n {
        monkit::trace::event_with("tick", &[("i", &i.to_string())]);
    }
}

#[monkit::task]
fn traced_inside() {
    tracing::warn!(retries = 3, "slow upstream");
}

fn kv<'a>(kvs: &'a [(String, String)], k: &str) -> Option<&'a str> {
    kvs.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str())
}

#[test]
fn events_and_logs_belong_to_their_span() {
    let kept = Keep::default();
    monkit::bridge::LogBridge::new(kept.clone())
        .max_level(log::LevelFilter::Info)
        .install()
        .unwrap();
    let sink = Arc::new(Sink::default());
    let _sink = monkit::trace::logs::add_log_sink(sink.clone());

    // Unrecorded: the log line still carries the ids; no event is kept.
    checkout(1);
    let (msg, kvs) = kept.0.lock().unwrap().last().cloned().unwrap();
    assert_eq!(msg, "charging order 1");
    let trace_id = kv(&kvs, "trace_id")
        .expect("trace_id on the record")
        .to_owned();
    let span_id = kv(&kvs, "span_id")
        .expect("span_id on the record")
        .to_owned();
    assert_eq!((trace_id.len(), span_id.len()), (32, 16));
    assert_eq!(
        kv(&kvs, "order"),
        Some("1"),
        "the record's own key-values follow"
    );
    let rec = sink.0.lock().unwrap().last().cloned().unwrap();
    assert_eq!(format!("{:032x}", rec.trace_id), trace_id);
    assert_eq!(format!("{:016x}", rec.span_id), span_id);
    assert_eq!(rec.body, "charging order 1");
    assert_eq!(rec.severity, monkit::trace::logs::Severity::Info);
    assert_eq!(rec.attributes, vec![("order".to_owned(), "1".to_owned())]);

    // Outside any span: no ids.
    log::info!("starting");
    let (_, kvs) = kept.0.lock().unwrap().last().cloned().unwrap();
    assert_eq!(kv(&kvs, "trace_id"), None);
    assert_eq!(sink.0.lock().unwrap().last().unwrap().trace_id, 0);

    // Recorded: the events and the log record, in order, within the span, on its span.
    let (_, spans) = monkit::collect_trace(|| checkout(2));
    let s = spans.iter().find(|s| s.start.name() == "checkout").unwrap();
    let names: Vec<&str> = s.events().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["cart loaded", "charging order 2", "paid"]);
    for e in s.events() {
        assert!(e.time_unix_ns >= s.start.start_unix_ns && e.time_unix_ns <= s.finish_unix_ns);
    }
    let log_event = &s.events()[1];
    assert_eq!(
        log_event.attributes,
        vec![
            ("level".to_owned(), "INFO".to_owned()),
            ("target".to_owned(), "events".to_owned()),
            ("order".to_owned(), "2".to_owned()),
        ]
    );
    assert_eq!(
        s.events()[2].attributes,
        vec![("provider".to_owned(), "acme".to_owned())]
    );
    let (_, kvs) = kept.0.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        kv(&kvs, "span_id"),
        Some(format!("{:016x}", s.start.span_id).as_str())
    );
    assert_eq!(
        kv(&kvs, "trace_id"),
        Some(format!("{:032x}", s.start.trace_id).as_str())
    );

    // Bounded: past MAX_EVENTS a span's events are counted, not kept.
    let before = monkit::trace::events_dropped();
    let (_, spans) = monkit::collect_trace(|| chatty(monkit::trace::MAX_EVENTS + 6));
    assert_eq!(spans[0].events().len(), monkit::trace::MAX_EVENTS);
    assert_eq!(monkit::trace::events_dropped() - before, 6);
    assert!(monkit::default_registry().losses().events_dropped >= 6);

    // `tracing` events through the layer: an event of the recorded span, a record for sinks.
    use tracing_subscriber::layer::SubscriberExt;
    let subscriber = tracing_subscriber::registry().with(monkit::bridge::MonkitLayer::new());
    let (_, spans) =
        tracing::subscriber::with_default(subscriber, || monkit::collect_trace(traced_inside));
    let s = spans
        .iter()
        .find(|s| s.start.name() == "traced_inside")
        .unwrap();
    assert_eq!(s.events().len(), 1, "{:?}", s.events());
    assert_eq!(s.events()[0].name, "slow upstream");
    assert!(s.events()[0]
        .attributes
        .contains(&("retries".to_owned(), "3".to_owned())));
    assert!(s.events()[0]
        .attributes
        .contains(&("level".to_owned(), "WARN".to_owned())));
    let rec = sink.0.lock().unwrap().last().cloned().unwrap();
    assert_eq!(rec.body, "slow upstream");
    assert_eq!(rec.span_id, s.start.span_id);
}
