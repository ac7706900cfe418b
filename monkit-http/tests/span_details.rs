//! Tagged functions, arguments and annotations on running spans, orphaned spans, /ps/dot and
//! process-wide tags, read back from a real server's pages.

use monkit_testsupport::peers;

mod common;

use common::{find, get};
use monkit::trace::InSpanExt;
use std::sync::mpsc;
use std::time::Duration;

#[monkit::task(tags(tier = "gold", kind = "greet"))]
fn greet(n: u64) -> u64 {
    n + 1
}

#[monkit::task(args, skip(secret))]
fn login(user: &str, secret: &str, attempt: u32, hold: &mpsc::Receiver<()>) -> usize {
    monkit::annotate("step", "checking\nagain");
    for i in 0..100 {
        monkit::annotate("n", i);
    }
    let _ = hold.recv();
    user.len() + secret.len() + attempt as usize
}

#[monkit::task]
async fn parent_task(child_started: tokio::sync::oneshot::Sender<()>) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(child_task(tx).in_span(monkit::current_span().unwrap()));
    let _ = rx.await;
    let _ = child_started.send(());
}

#[monkit::task]
async fn child_task(started: tokio::sync::oneshot::Sender<()>) {
    let _ = started.send(());
    tokio::time::sleep(Duration::from_secs(3)).await;
}

#[test]
fn tags_args_annotations_and_orphans_on_the_pages() {
    monkit::registry::set_process_tags(&[("service", "span-details")]).unwrap();
    let srv = monkit_http::serve(monkit::default_registry().clone(), "127.0.0.1:0").unwrap();
    let base = format!("http://{}", srv.local_addr());

    // Tagged functions: static and made at run time.
    greet(1);
    static MON: monkit::Scope = monkit::scope!();
    for wf in ["checkout", "refund", "checkout"] {
        MON.func_with("run", &[("workflow", wf)]).task(|| ());
    }
    let stats = get(&format!("{base}/stats"));
    assert!(
        stats.contains(
            "function,kind=greet,name=greet,scope=span_details,service=span-details,tier=gold successes=1"
        ),
        "{stats}"
    );
    assert!(
        stats.contains("function,name=run,scope=span_details,service=span-details,workflow=checkout successes=2"),
        "{stats}"
    );
    assert!(stats.contains("workflow=refund successes=1"), "{stats}");
    let funcs: Vec<serde_json::Value> =
        serde_json::from_str(&get(&format!("{base}/funcs/json"))).unwrap();
    let g = funcs
        .iter()
        .find(|f| f["name"] == "greet")
        .expect("greet listed");
    assert_eq!(
        g["tags"],
        serde_json::json!({"kind": "greet", "tier": "gold"})
    );
    assert_eq!(g["full_name"], "span_details.greet{kind=greet,tier=gold}");
    assert_eq!(
        funcs.iter().filter(|f| f["name"] == "run").count(),
        2,
        "one function per tag set"
    );
    let metrics = get(&format!("{base}/metrics"));
    assert!(
        metrics.contains(
            "monkit_function_successes_total{name=\"run\",scope=\"span_details\",service=\"span-details\",workflow=\"checkout\"} 2"
        ),
        "{metrics}"
    );
    // `kind` is one of the labels the exposition uses itself: the tag is renamed, not lost.
    assert!(metrics.contains("tag_kind=\"greet\""), "{metrics}");
    assert!(get(&format!("{base}/funcs/dot")).contains("greet{kind=greet,tier=gold}"));

    // Arguments and annotations on a running span that nobody records.
    let held_before = monkit::trace::annotated_spans();
    let (release, hold) = mpsc::channel();
    let t = std::thread::spawn(move || login("ann", "hunter2", 3, &hold));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let login_span = loop {
        let ps: Vec<serde_json::Value> =
            serde_json::from_str(&get(&format!("{base}/ps/json"))).unwrap();
        if let Some(n) = find(&ps, "login")
            .filter(|n| n["annotations"].as_array().unwrap().len() >= monkit::trace::MAX_NOTES)
        {
            break n.clone();
        }
        assert!(std::time::Instant::now() < deadline, "login never listed");
        std::thread::sleep(Duration::from_millis(10));
    };
    let notes = login_span["annotations"].as_array().unwrap();
    assert_eq!(notes.len(), monkit::trace::MAX_NOTES, "bounded per span");
    assert_eq!(
        notes[0],
        serde_json::json!(["args", "user=\"ann\", attempt=3, hold=Receiver { .. }"])
    );
    assert!(!login_span.to_string().contains("hunter2"), "skipped");
    assert_eq!(notes[1], serde_json::json!(["step", "checking\nagain"]));
    assert!(monkit::trace::annotations_dropped() >= 100 + 2 - monkit::trace::MAX_NOTES as u64);
    let text = get(&format!("{base}/ps"));
    assert!(text.contains("  args: user=\"ann\""), "{text}");
    assert!(text.contains("  step: checking\\nagain"), "{text}");
    release.send(()).unwrap();
    t.join().unwrap();
    assert_eq!(
        monkit::trace::annotated_spans(),
        held_before,
        "a finished span's notes are gone"
    );

    // A spawned child that outlives its parent is orphaned.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (started, child_running) = tokio::sync::oneshot::channel();
    rt.block_on(parent_task(started));
    rt.block_on(child_running).unwrap();
    let ps: Vec<serde_json::Value> =
        serde_json::from_str(&get(&format!("{base}/ps/json"))).unwrap();
    let child = find(&ps, "child_task").expect("child running");
    assert_eq!(child["orphaned"], true, "{child}");
    assert_eq!(child["remote_parent"], false);
    assert!(find(&ps, "parent_task").is_none());
    assert!(get(&format!("{base}/ps")).contains("(orphaned: parent"));
    let dot = get(&format!("{base}/ps/dot"));
    assert!(dot.contains("style=dashed"), "{dot}");
    assert!(dot.contains("span_details.child_task"), "{dot}");
    if peers::have("dot", "graphviz") {
        let out = peers::pipe(
            std::process::Command::new("dot").arg("-Tsvg"),
            dot.as_bytes(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));
    }
}
