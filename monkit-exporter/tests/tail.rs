//! Tail sampling's decisions, through a real pipeline into a transport that keeps what it was
//! given: a caller's fan-out of concurrent requests in one trace is kept whole, pending traces
//! are bounded in bytes with every lost span counted, and with tail sampling on the default
//! head sampler lets the tail decide.

use monkit::Registry;
use monkit_exporter::{Delivery, Format, Pipeline, Transport};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Bodies of span ids, one `trace span` line each.
struct Lines;
impl Format for Lines {
    fn content_type(&self) -> &'static str {
        "text/plain"
    }
    fn encode(&self, batch: &[monkit::FinishedSpan]) -> Vec<u8> {
        batch
            .iter()
            .map(|s| format!("{:032x} {:016x}\n", s.start.trace_id, s.start.span_id))
            .collect::<String>()
            .into_bytes()
    }
}

/// Keeps every body it is handed.
#[derive(Clone, Default)]
struct Kept(Arc<Mutex<Vec<u8>>>);
impl Transport for Kept {
    fn deliver(&mut self, body: &[u8]) -> Delivery {
        self.0.lock().unwrap().extend_from_slice(body);
        Delivery::Sent
    }
}

impl Kept {
    fn spans(&self) -> Vec<(String, String)> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| {
                let (t, s) = l.split_once(' ').unwrap();
                (t.to_owned(), s.to_owned())
            })
            .collect()
    }
}

fn total(reg: &Registry, name: &str) -> f64 {
    let mut v = 0.0;
    reg.stats(|k, f, x| {
        if k.measurement == name && (f == "total" || f == "value") {
            v += x;
        }
    });
    v
}

fn install(reg: &Registry, p: Pipeline) -> (monkit_exporter::Exporter, Kept) {
    let kept = Kept::default();
    let e = p
        .batch(1024, Duration::from_millis(10))
        .install_with(reg, Lines, Box::new(kept.clone()))
        .unwrap();
    (e, kept)
}

/// A parent from another process, unsampled: what a caller's fan-out arrives with.
fn remote_parent(trace: &str) -> monkit::SpanRef {
    let mut h = HashMap::new();
    h.insert(
        "traceparent".to_owned(),
        format!("00-{trace}-b7ad6b7169203331-00"),
    );
    monkit::propagation::extract(&h).unwrap().parent()
}

#[test]
fn concurrent_local_roots_of_one_trace_are_kept_whole() {
    let reg = Registry::new();
    let (e, kept) = install(
        &reg,
        Pipeline::new("tail_roots", "http://unused")
            .tail_sampling(Some(Duration::from_millis(25)), false),
    );
    let (root, child) = (reg.scope("s").func("request"), reg.scope("s").func("work"));
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let parent = remote_parent(trace);
    // Two requests of one trace at once: the fast one ends first, the slow one qualifies.
    let fast = root.open(Some(parent));
    let slow = root.open(Some(parent));
    child.open(Some(fast.span())).finish(monkit::Outcome::Ok);
    child.open(Some(slow.span())).finish(monkit::Outcome::Ok);
    fast.finish(monkit::Outcome::Ok);
    std::thread::sleep(Duration::from_millis(30));
    slow.finish(monkit::Outcome::Ok);
    assert!(e.flush(Duration::from_secs(5)));
    let spans = kept.spans();
    assert_eq!(
        spans.len(),
        4,
        "both requests and their children: {spans:?}"
    );
    assert!(spans.iter().all(|(t, _)| t == trace));
    assert_eq!(
        (total(&reg, "tail_kept"), total(&reg, "tail_dropped")),
        (1.0, 0.0)
    );
}

#[test]
fn pending_traces_are_bounded_in_bytes_and_every_lost_span_is_counted() {
    let reg = Registry::new();
    let (e, kept) = install(
        &reg,
        Pipeline::new("tail_bytes", "http://unused")
            .tail_sampling(None, true)
            .tail_max_bytes(8 * 1024),
    );
    let (root, child) = (reg.scope("s").func("root"), reg.scope("s").func("child"));
    let g = root.guard();
    for i in 0..100 {
        let c = child.guard();
        monkit::annotate("note", "x".repeat(200));
        if i == 99 {
            c.fail("refused");
        } else {
            drop(c);
        }
    }
    drop(g);
    assert!(e.flush(Duration::from_secs(5)));
    assert!(
        kept.spans().is_empty(),
        "a trace that lost spans is not sent in part"
    );
    let lost = total(&reg, "tail_spans_lost");
    assert!((50.0..=101.0).contains(&lost), "lost {lost}");
    assert_eq!(total(&reg, "tail_overflowed"), 1.0);
    assert_eq!(
        total(&reg, "tail_pending_bytes"),
        0.0,
        "what it held is given back"
    );
}

#[test]
fn with_tail_sampling_the_default_head_sampler_lets_the_tail_decide() {
    let reg = Registry::new();
    let (e, kept) = install(
        &reg,
        Pipeline::new("tail_default", "http://unused").tail_sampling(None, true),
    );
    let f = reg.scope("s").func("fast");
    for _ in 0..5 {
        f.task(|| ());
    }
    f.guard().fail("refused");
    assert!(e.flush(Duration::from_secs(5)));
    let traces: HashSet<String> = kept.spans().into_iter().map(|(t, _)| t).collect();
    assert_eq!(traces.len(), 1, "only the failed trace");
    assert_eq!(
        (total(&reg, "tail_kept"), total(&reg, "tail_dropped")),
        (1.0, 5.0)
    );
}

#[test]
fn a_trace_held_open_while_children_start_stays_within_the_bound() {
    let reg = Registry::new();
    let (e, kept) = install(
        &reg,
        Pipeline::new("tail_open", "http://unused")
            .tail_sampling(None, true)
            .tail_max_bytes(16 * 1024),
    );
    let (root, child) = (reg.scope("s").func("root"), reg.scope("s").func("child"));
    let g = root.guard();
    for _ in 0..10_000 {
        child.task(|| ());
    }
    let held = total(&reg, "tail_pending_bytes");
    assert!(held > 0.0 && held <= 16.0 * 1024.0, "held {held}");
    g.fail("refused");
    assert!(e.flush(Duration::from_secs(5)));
    assert!(kept.spans().is_empty());
    assert!(total(&reg, "tail_spans_lost") >= 9_000.0);
    assert_eq!(total(&reg, "tail_pending_bytes"), 0.0);
}
