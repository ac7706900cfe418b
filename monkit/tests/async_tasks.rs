//! Async `#[task]`s: spans across awaits and worker threads, cancellation.

use monkit::{default_registry, trace::InSpanExt, Outcome};
use std::time::Duration;

fn stats(name: &str) -> monkit::registry::FuncStats {
    default_registry()
        .func_by_name(&format!("async_tasks.{name}"))
        .unwrap_or_else(|| panic!("{name} not registered"))
        .stats()
}

#[monkit::task]
async fn child(n: u64) -> Result<u64, std::io::Error> {
    tokio::task::yield_now().await;
    if n == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "t"));
    }
    Ok(n)
}

#[monkit::task]
async fn parent() -> u64 {
    let mut total = 0;
    for i in 0..4 {
        // Moves between worker threads at every yield.
        total += child(i).await.unwrap_or(0);
        tokio::task::yield_now().await;
    }
    // A spawned task parented explicitly.
    let span = monkit::current_span();
    let h = tokio::spawn(spawned().in_span_opt(span));
    total += h.await.unwrap();
    total
}

#[monkit::task]
async fn spawned() -> u64 {
    tokio::time::sleep(Duration::from_millis(1)).await;
    100
}

#[monkit::task]
async fn slow() {
    tokio::time::sleep(Duration::from_secs(60)).await;
}

#[monkit::task]
async fn panicky() {
    tokio::task::yield_now().await;
    panic!("async boom");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_spans_across_threads() {
    let (total, spans) = monkit::collect_trace_async(parent()).await;
    assert_eq!(total, 106);
    let s = stats("child");
    assert_eq!((s.successes, s.errors), (3, vec![("timed_out", 1)]));
    let p = default_registry()
        .func_by_name("async_tasks.parent")
        .unwrap();
    assert_eq!(s.parents, vec![p.id()]);
    assert_eq!(stats("spawned").parents, vec![p.id()]);
    assert_eq!(spans.len(), 6);
    let root = spans.iter().find(|s| s.start.name() == "parent").unwrap();
    for s in spans.iter().filter(|s| s.start.name() != "parent") {
        assert_eq!(s.start.parent_id, Some(root.start.span_id), "{s:?}");
        assert_eq!(s.start.trace_id, root.start.trace_id);
    }
    let errs = spans
        .iter()
        .filter(|s| s.outcome == Outcome::Error("timed_out"))
        .count();
    assert_eq!(errs, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_future_is_canceled() {
    let r = tokio::time::timeout(Duration::from_millis(20), slow()).await;
    assert!(r.is_err());
    let s = stats("slow");
    assert_eq!((s.current, s.errors_total, s.successes), (0, 1, 0));
    assert_eq!(s.errors, vec![("canceled", 1)]);
    // A future never polled never started.
    drop(slow());
    assert_eq!(stats("slow").total(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_panic_counted() {
    let h = tokio::spawn(panicky());
    assert!(h.await.unwrap_err().is_panic());
    let s = stats("panicky");
    assert_eq!((s.panics, s.errors_total, s.current), (1, 0, 0));
}
