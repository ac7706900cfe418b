//! A blocking `async fn` found from the pages alone: a real server on a loopback port, a real
//! multi-thread tokio runtime, and `/funcs`, `/funcs/json`, `/metrics` (checked by promtool)
//! and `/trace/json` read back as a user reads them; and span events on the trace pages.

use monkit_testsupport::peers;
use serde_json::Value;
use std::time::Duration;

const NAP: Duration = Duration::from_millis(30);

/// The tests wait for their own trace watchers to arm: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
const CALLS: u64 = 4;

#[monkit::task]
async fn pages_blocker() -> u32 {
    std::thread::sleep(NAP);
    1
}

#[monkit::task]
async fn pages_waiter() -> u32 {
    tokio::time::sleep(NAP).await;
    1
}

#[monkit::task]
async fn pages_traced() -> u32 {
    std::thread::sleep(NAP / 2);
    tokio::time::sleep(NAP / 2).await;
    1
}

fn get(url: &str) -> (u16, String) {
    match ureq::get(url).call() {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap()),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The value of the sample `name{labels}` where the labels include `name="func"`.
fn sample(metrics: &str, name: &str, func: &str) -> Option<f64> {
    let label = format!("name=\"{func}\"");
    metrics.lines().find_map(|l| {
        let (series, v) = l.rsplit_once(' ')?;
        (series.starts_with(&format!("{name}{{")) && series.contains(&label))
            .then(|| v.parse().ok())?
    })
}

#[test]
fn a_blocking_async_fn_is_found_from_the_pages() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    monkit::polls::set_slow_poll(Duration::from_millis(10));
    let server = monkit_http::serve(monkit::default_registry().clone(), "127.0.0.1:0").unwrap();
    let base = format!("http://{}", server.local_addr());
    let rt = runtime();
    rt.block_on(async {
        for _ in 0..CALLS {
            tokio::spawn(pages_blocker()).await.unwrap();
            tokio::spawn(pages_waiter()).await.unwrap();
        }
    });

    // /funcs/json: the fields, per function.
    let (status, body) = get(&format!("{base}/funcs/json"));
    assert_eq!(status, 200);
    let funcs: Vec<Value> = serde_json::from_str(&body).unwrap();
    let f = |name: &str| {
        funcs
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {body}"))
            .clone()
    };
    let (blocker, waiter) = (f("pages_blocker"), f("pages_waiter"));
    assert_eq!(blocker["slow_polls"], CALLS);
    assert_eq!(blocker["polls"], CALLS);
    assert!(blocker["max_poll"].as_u64().unwrap() >= NAP.as_nanos() as u64);
    let wall = blocker["success_times"]["sum"].as_f64().unwrap();
    let busy = blocker["busy"].as_f64().unwrap();
    assert!((busy - wall).abs() <= 0.05 * wall, "{busy} vs {wall}");
    assert_eq!(waiter["slow_polls"], 0);
    assert!(waiter["polls"].as_u64().unwrap() >= 2 * CALLS);
    let wall = waiter["success_times"]["sum"].as_f64().unwrap();
    assert!(waiter["busy"].as_f64().unwrap() <= 0.05 * wall);
    assert_eq!(
        waiter["busy_times"]["success"]["count"], CALLS,
        "a busy time for every call"
    );
    // A sync function has no poll fields.
    assert!(funcs
        .iter()
        .filter(|f| f["name"] == "never_polled")
        .all(|f| f.get("polls").is_none()));

    // /funcs sorted by slow polls: the blocker first.
    let (status, text) = get(&format!("{base}/funcs?sort=slow_polls"));
    assert_eq!(status, 200);
    let first = text.lines().next().unwrap();
    assert!(first.ends_with("pages_blocker"), "{first}");
    assert!(text.contains(&format!("slow_polls: {CALLS}")), "{text}");
    let (status, json) = get(&format!("{base}/funcs/json?sort=slow_polls"));
    assert_eq!(status, 200);
    let sorted: Vec<Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(sorted[0]["name"], "pages_blocker");
    let (status, msg) = get(&format!("{base}/funcs?sort=fastest"));
    assert_eq!(status, 400);
    assert!(msg.contains("slow_polls"), "{msg}");

    // /metrics: the counters and the busy histogram, and promtool takes them.
    let (_, m) = get(&format!("{base}/metrics"));
    let slow = |f| sample(&m, "monkit_function_slow_polls_total", f);
    assert_eq!(slow("pages_blocker"), Some(CALLS as f64), "{m}");
    assert_eq!(slow("pages_waiter"), Some(0.0));
    assert_eq!(
        sample(&m, "monkit_function_polls_total", "pages_blocker"),
        Some(CALLS as f64)
    );
    let busy = sample(&m, "monkit_function_busy_seconds_total", "pages_blocker").unwrap();
    assert!(
        busy >= (CALLS * NAP.as_millis() as u64) as f64 / 1e3 * 0.95,
        "{busy}"
    );
    let waiting = sample(&m, "monkit_function_busy_seconds_total", "pages_waiter").unwrap();
    assert!(waiting < busy * 0.05, "{waiting}");
    assert_eq!(
        sample(
            &m,
            "monkit_function_busy_duration_seconds_count",
            "pages_waiter"
        ),
        Some(CALLS as f64)
    );
    assert!(m.contains("# TYPE monkit_function_busy_duration_seconds histogram"));
    assert!(m.contains("# TYPE monkit_function_max_poll_seconds gauge"));
    peers::assert_promtool_takes(&m);

    // /trace/json: a captured call carries its polls, the blocking one marked slow.
    let url = format!("{base}/trace/json?regex=pages_traced&timeout=10s");
    let fetch = std::thread::spawn(move || get(&url));
    while monkit::registry::armed_watchers() == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    rt.block_on(async { tokio::spawn(pages_traced()).await.unwrap() });
    let (status, trace) = fetch.join().unwrap();
    assert_eq!(status, 200, "{trace}");
    let spans: Vec<Value> = serde_json::from_str(&trace).unwrap();
    let polls = &spans[0]["polls"];
    assert!(polls["count"].as_u64().unwrap() >= 2, "{polls}");
    assert_eq!(polls["slow"].as_array().unwrap().len(), 1, "{polls}");
    assert_eq!(polls["slow"][0][0], 0, "the first poll blocked");
    let busy = polls["busy_ns"].as_u64().unwrap();
    assert!(busy < spans[0]["duration_ns"].as_u64().unwrap());

    // /trace/svg: the polls drawn inside the bar, the slow one marked.
    let url = format!("{base}/trace/svg?regex=pages_traced&timeout=10s");
    let fetch = std::thread::spawn(move || get(&url));
    while monkit::registry::armed_watchers() == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    rt.block_on(async { tokio::spawn(pages_traced()).await.unwrap() });
    let (status, svg) = fetch.join().unwrap();
    assert_eq!(status, 200, "{svg}");
    assert_eq!(
        svg.matches(r#"<rect class="poll slow""#).count(),
        1,
        "{svg}"
    );
    assert!(svg.matches(r#"<rect class="poll""#).count() >= 1, "{svg}");
    assert!(svg.contains("Slow polls: "), "{svg}");
}

#[monkit::task]
fn never_polled() {}

#[monkit::task]
fn pages_evented() -> u32 {
    monkit::trace::event("cart loaded");
    std::thread::sleep(Duration::from_millis(2));
    monkit::trace::event_with("paid", &[("provider", "acme & co"), ("attempt", "2")]);
    1
}

/// Span events read back from a real server: `/trace/json` lists them with their times and
/// attributes, the SVG marks each on its span's bar (and stays well-formed XML).
#[test]
fn events_on_the_trace_pages() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = monkit_http::serve(monkit::default_registry().clone(), "127.0.0.1:0").unwrap();
    let base = format!("http://{}", server.local_addr());
    let capture = |format: &str| {
        let url = format!("{base}/trace/{format}?regex=pages_evented&timeout=10s");
        let before = monkit::registry::armed_watchers();
        let fetch = std::thread::spawn(move || get(&url));
        while monkit::registry::armed_watchers() == before {
            std::thread::sleep(Duration::from_millis(5));
        }
        pages_evented();
        let (status, body) = fetch.join().unwrap();
        assert_eq!(status, 200, "{body}");
        body
    };
    let spans: Vec<Value> = serde_json::from_str(&capture("json")).unwrap();
    let s = &spans[0];
    let events = s["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{s}");
    assert_eq!(events[0]["name"], "cart loaded");
    assert_eq!(events[1]["name"], "paid");
    assert_eq!(events[1]["attributes"]["provider"], "acme & co");
    assert_eq!(events[1]["attributes"]["attempt"], "2");
    let (start, finish) = (s["start"].as_u64().unwrap(), s["finish"].as_u64().unwrap());
    let (t0, t1) = (
        events[0]["time"].as_u64().unwrap(),
        events[1]["time"].as_u64().unwrap(),
    );
    assert!(start <= t0 && t0 + 2_000_000 <= t1 && t1 <= finish, "{s}");
    let svg = capture("svg");
    assert_eq!(svg.matches(r#"<g class="event">"#).count(), 2, "{svg}");
    assert!(
        svg.contains("paid provider=acme &amp; co attempt=2"),
        "{svg}"
    );
    peers::assert_xml(&svg);
}
