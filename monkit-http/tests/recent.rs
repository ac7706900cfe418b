//! The flight recorder's pages, through a real server: a held call's whole tree at once by
//! duration, outcome and trace id, the list of what is held, a clear 404 and 400, and a
//! conditional trace page answered from what is held.

use std::time::{Duration, Instant};

fn get(url: &str) -> (u16, String) {
    match ureq::get(url).call() {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap()),
        Err(e) => panic!("{url}: {e}"),
    }
}

fn json(url: &str) -> serde_json::Value {
    let (status, body) = get(url);
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[derive(Debug)]
struct Refused;

impl monkit::ErrorKind for Refused {
    fn error_kind(&self) -> &'static str {
        "refused"
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused by the test")
    }
}

#[test]
fn held_calls_answer_at_once() {
    monkit::flight::set_enabled(true);
    let reg = monkit::Registry::new();
    // Every call sampled, so each histogram bucket keeps an exemplar.
    reg.set_sampler(monkit::trace::Sampler::Always);
    let scope = reg.scope("shop");
    let (order, pay, stock) = (scope.func("order"), scope.func("pay"), scope.func("stock"));
    let srv = monkit_http::serve(reg.clone(), "127.0.0.1:0").unwrap();
    let base = format!("http://{}", srv.local_addr());

    // A hundred fast orders, one slow one among them, one failed payment.
    for i in 0..101 {
        order.task(|| {
            stock.task(|| monkit::annotate("item", i));
            let _ = pay.task_result(|| if i == 70 { Err(Refused) } else { Ok(()) });
            if i == 50 {
                std::thread::sleep(Duration::from_millis(25));
            }
        });
    }

    let t = Instant::now();
    let tree = json(&format!(
        "{base}/trace/recent/json?regex=shop\\.order&min_duration=20ms"
    ));
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    let spans = tree.as_array().unwrap();
    assert_eq!(spans[0]["func"]["name"], "order");
    let took = spans[0]["finish"].as_u64().unwrap() - spans[0]["start"].as_u64().unwrap();
    assert!(took >= 20_000_000, "{took}");
    // Its whole tree, with the notes its children made.
    assert_eq!(spans.len(), 3, "{tree}");
    let stock_span = spans.iter().find(|s| s["func"]["name"] == "stock").unwrap();
    assert_eq!(stock_span["parent_id"], spans[0]["id"]);
    assert_eq!(
        stock_span["annotations"],
        serde_json::json!([["item", "50"]]),
        "{stock_span}"
    );

    // The latest failure, and its error's text.
    let failed = json(&format!("{base}/trace/recent/json?outcome=refused"));
    let root = &failed.as_array().unwrap()[0];
    assert_eq!(root["func"]["name"], "pay", "{failed}");
    assert_eq!(root["outcome"]["error"], "refused", "{root}");

    // The list, newest first, each row naming its trace; and a row's trace by id, as SVG.
    let list = json(&format!("{base}/trace/recent?format=json"));
    let rows = list.as_array().unwrap();
    let slow = rows
        .iter()
        .find(|r| r["func"] == "shop.order" && r["why"] == "slowest")
        .unwrap();
    assert!(slow["duration_ns"].as_u64().unwrap() >= 20_000_000);
    assert_eq!(slow["spans"], 3);
    let ends: Vec<u64> = rows
        .iter()
        .map(|r| r["finish_unix_ns"].as_u64().unwrap())
        .collect();
    assert!(ends.windows(2).all(|w| w[0] >= w[1]), "{ends:?}");
    let trace = slow["trace_id"].as_str().unwrap();
    let (status, svg) = get(&format!("{base}/trace/recent/svg?trace_id={trace}"));
    assert_eq!(status, 200);
    assert!(svg.starts_with("<svg") || svg.starts_with("<?xml"), "{svg}");
    assert!(svg.contains("order"));
    let (status, html) = get(&format!("{base}/trace/recent"));
    assert_eq!(status, 200);
    assert!(
        html.contains("shop.order") && html.contains(trace),
        "{html}"
    );
    // The console opens the held calls in place.
    let (_, console) = get(&format!("{base}/"));
    assert!(
        console.contains(&format!(
            r#"class="trace recent" href="/trace/recent/svg?trace_id={trace}""#
        )),
        "the console links the slowest recent call"
    );
    // The one failed payment is every quantile of its failures, and its exemplar is the
    // held latest failure: opened in place.
    let failed_trace = root["trace_id"].as_str().unwrap();
    assert!(
        console.contains(&format!(
            r#"class="exemplar trace recent" href="/trace/recent/svg?trace_id={failed_trace}""#
        )),
        "the exemplar opens the held call"
    );

    // Nothing held matches: 404 saying so; a bad query: 400 naming it.
    let (status, body) = get(&format!(
        "{base}/trace/recent/json?regex=shop\\.order&min_duration=1h"
    ));
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no held call matches"), "{body}");
    for (q, what) in [
        ("min_duration=soon", "min_duration"),
        ("timeout=1s&regex=.", "timeout"),
        ("regex=(", "invalid regex"),
        ("", "at least one"),
    ] {
        let (status, body) = get(&format!("{base}/trace/recent/json?{q}"));
        assert_eq!(status, 400, "{q}: {body}");
        assert!(body.contains(what), "{q}: {body}");
    }

    // A conditional trace page is answered from what is held, without waiting.
    let t = Instant::now();
    let waited = json(&format!(
        "{base}/trace/json?regex=shop\\.order&min_duration=20ms&timeout=30s"
    ));
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(waited.as_array().unwrap()[0]["func"]["name"], "order");
}
