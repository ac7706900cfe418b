//! `/trace/*`: a capture over HTTP while other threads and tasks trigger the work, checked span
//! by span; the SVG checked by xmllint and rendered by rsvg-convert; timeouts, disconnects,
//! many watchers and bad parameters.

use monkit_testsupport::peers;

use monkit::trace::InSpanExt;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug)]
struct Miss;
impl monkit::ErrorKind for Miss {
    fn error_kind(&self) -> &'static str {
        "miss"
    }
}

#[monkit::task]
fn handle_req(n: u64) -> u64 {
    monkit::annotate("n", n);
    let _ = cache_get(n);
    let parent = monkit::current_span().unwrap();
    let on_thread = std::thread::spawn(move || parent.in_scope(|| db_query(n)))
        .join()
        .unwrap();
    on_thread + 1
}

#[monkit::task]
fn cache_get(_n: u64) -> Result<u64, Miss> {
    Err(Miss)
}

#[monkit::task]
fn db_query(n: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(1));
    n
}

#[monkit::task]
async fn async_root(n: u64) -> u64 {
    let a = async_child(n).await;
    tokio::task::yield_now().await;
    let span = monkit::current_span();
    let spawned = tokio::spawn(async_spawned(n).in_span_opt(span));
    a + spawned.await.unwrap()
}

#[monkit::task]
async fn async_child(n: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(1)).await;
    n
}

#[monkit::task]
async fn async_spawned(n: u64) -> u64 {
    tokio::task::yield_now().await;
    n * 2
}

#[monkit::task]
fn never_runs() {}

struct Got {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

fn get(url: &str) -> Got {
    let r = match ureq::get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{url}: {e}"),
    };
    let status = r.status();
    let content_type = r.content_type().to_owned();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut r.into_reader(), &mut body).unwrap();
    Got {
        status,
        content_type,
        body,
    }
}

fn text(g: &Got) -> String {
    String::from_utf8(g.body.clone()).unwrap()
}

fn run(prog: &str, args: &[&str], input: &[u8]) -> (bool, Vec<u8>, String) {
    let mut c = Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{prog} is needed for this test (.ci/run installs it): {e}"));
    c.stdin.take().unwrap().write_all(input).unwrap();
    let o = c.wait_with_output().unwrap();
    (
        o.status.success(),
        o.stdout,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn by_name<'a>(spans: &'a [Value], name: &str) -> Vec<&'a Value> {
    spans.iter().filter(|s| s["func"]["name"] == name).collect()
}

#[test]
fn trace_pages() {
    let srv = monkit_http::serve(monkit::default_registry().clone(), "127.0.0.1:0").unwrap();
    let base = format!("http://{}", srv.local_addr());
    let stop = Arc::new(AtomicBool::new(false));

    // Triggers: a thread calling the sync work, a multi-thread runtime running the async work.
    let trigger = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                handle_req(n);
                rt.block_on(async { tokio::spawn(async_root(n)).await.unwrap() });
                n += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    // Sync capture, span by span.
    let g = get(&format!("{base}/trace/json?regex=handle_req&timeout=10s"));
    assert_eq!(g.status, 200, "{}", text(&g));
    assert_eq!(g.content_type, "application/json");
    let spans: Vec<Value> = serde_json::from_slice(&g.body).unwrap();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let root = &spans[0];
    assert_eq!(root["func"]["name"], "handle_req");
    assert_eq!(root["func"]["scope"], "trace");
    assert!(root["annotations"][0][0] == "n");
    let cache = by_name(&spans, "cache_get")[0];
    assert_eq!(cache["parent_id"], root["id"]);
    assert_eq!(cache["outcome"]["kind"], "error");
    assert_eq!(cache["err"], "miss");
    let db = by_name(&spans, "db_query")[0];
    assert_eq!(
        db["parent_id"], root["id"],
        "thread child parented explicitly"
    );
    for s in &spans {
        assert_eq!(s["trace_id"], root["trace_id"]);
        assert!(s["finish"].as_u64() >= s["start"].as_u64());
        assert!(s["start"].as_u64() >= root["start"].as_u64());
    }

    // Async capture across worker threads and a spawned task.
    let g = get(&format!("{base}/trace/json?regex=async_root&timeout=10s"));
    assert_eq!(g.status, 200, "{}", text(&g));
    let spans: Vec<Value> = serde_json::from_slice(&g.body).unwrap();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let root = by_name(&spans, "async_root")[0];
    for n in ["async_child", "async_spawned"] {
        let s = by_name(&spans, n);
        assert_eq!(s.len(), 1, "{n}");
        assert_eq!(s[0]["parent_id"], root["id"], "{n}");
        assert_eq!(s[0]["outcome"]["kind"], "ok");
    }

    // SVG: valid XML, renders to PNG.
    let g = get(&format!("{base}/trace/svg?regex=handle_req&timeout=10s"));
    assert_eq!(g.status, 200);
    assert_eq!(g.content_type, "image/svg+xml");
    let svg = text(&g);
    assert!(svg.contains("trace.handle_req") && svg.contains("class=\"span error\""));
    if peers::have("xmllint", "libxml2-utils") {
        let (ok, _, err) = run("xmllint", &["--noout", "-"], &g.body);
        assert!(ok, "xmllint: {err}");
    }
    if peers::have("rsvg-convert", "librsvg2-bin") {
        let (ok, png, err) = run("rsvg-convert", &["-f", "png"], &g.body);
        assert!(ok, "rsvg-convert: {err}");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }

    // Sampling: the trace id of the next matching trace.
    let g = get(&format!("{base}/trace/sample?regex=handle_req&timeout=10s"));
    assert_eq!(g.status, 200);
    let v: Value = serde_json::from_slice(&g.body).unwrap();
    let id = v["trace_id"].as_str().unwrap();
    assert_eq!(id.len(), 32);
    assert!(u128::from_str_radix(id, 16).unwrap() != 0);

    // Many concurrent watchers (as many as one client may have), each answered.
    let baseline = monkit::registry::armed_watchers();
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..16)
            .map(|i: u64| {
                let url = format!(
                    "{base}/trace/json?regex={}&timeout=20s",
                    if i.is_multiple_of(2) {
                        "handle_req"
                    } else {
                        "async_root"
                    }
                );
                s.spawn(move || get(&url))
            })
            .collect();
        for h in hs {
            let g = h.join().unwrap();
            assert_eq!(g.status, 200, "{}", text(&g));
            let spans: Vec<Value> = serde_json::from_slice(&g.body).unwrap();
            assert_eq!(spans.len(), 3);
        }
    });
    stop.store(true, Ordering::Relaxed);
    trigger.join().unwrap();

    // Timeout: a function that never runs is a 504 after the asked-for time.
    let t = std::time::Instant::now();
    let g = get(&format!("{base}/trace/json?regex=never_runs&timeout=300ms"));
    assert_eq!(g.status, 504, "{}", text(&g));
    assert!(t.elapsed() >= Duration::from_millis(300));

    // A client that disconnects cancels its watcher.
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_millis(300))
        .build();
    assert!(agent
        .get(&format!("{base}/trace/json?regex=never_runs&timeout=60s"))
        .call()
        .is_err());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while monkit::registry::armed_watchers() > baseline {
        assert!(
            std::time::Instant::now() < deadline,
            "watcher still armed after the client left"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Bad parameters: a 400 with the reason.
    for (q, want) in [
        (
            "",
            "at least one of 'regex' or 'trace_id' query parameters required",
        ),
        ("regex=(", "invalid regex \"(\""),
        (
            "regex=matches_no_function_at_all",
            "regex preselect matches 0 functions",
        ),
        (
            "trace_id=zz",
            "trace_id expected to be hex unsigned 128 bit number: \"zz\"",
        ),
        (
            "regex=x&preselect=maybe",
            "preselect expected to be true or false",
        ),
        ("regex=x&timeout=soon", "timeout expected to be a duration"),
        ("regex=x&colour=red", "unknown query parameter \"colour\""),
    ] {
        let g = get(&format!("{base}/trace/json?{q}"));
        assert_eq!(g.status, 400, "{q}");
        assert!(text(&g).contains(want), "{q}: {}", text(&g));
    }
    // A catastrophic-looking regex is linear-time and size-limited, never a hang.
    let g = get(&format!(
        "{base}/trace/json?regex=(a%2B)%2B%24&timeout=100ms"
    ));
    assert!(g.status == 400 || g.status == 504);
    let huge = "a{1000}{1000}";
    let g = get(&format!("{base}/trace/json?regex={huge}"));
    assert_eq!(g.status, 400);
    assert!(text(&g).contains("invalid regex"), "{}", text(&g));
}
