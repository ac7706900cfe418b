//! The vlite example as a real process: driven over HTTP, its pages checked, and its
//! `/metrics` scraped by a real Prometheus server queried through its HTTP API.

mod common;
use monkit_testsupport::sink;

use common::{example, free_port, get, wait_for, Killed, Prometheus};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn vlite_end_to_end_with_prometheus() {
    let (proxy_port, mon_port) = (free_port(), free_port());
    // A sink storing the exporter's POSTs (not a collector).
    let receiver = sink::sink("/api/v2/spans");
    let spans_url = receiver.url.clone();
    let _vlite = Killed(
        Command::new(example("vlite"))
            .env("VLITE_LISTEN", format!("127.0.0.1:{proxy_port}"))
            .env("VLITE_MONITOR", format!("127.0.0.1:{mon_port}"))
            .env("MONKIT_ZIPKIN_ENDPOINT", &spans_url)
            .env("MONKIT_ZIPKIN_SERVICE_NAME", "vlite")
            // A many-core layout on a small machine.
            .env("MONKIT_SHARDS", "16")
            .stdout(Stdio::null())
            .spawn()
            .expect("the vlite example is built by cargo test"),
    );
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    let mon = format!("http://127.0.0.1:{mon_port}");
    wait_for(&format!("{mon}/"));
    wait_for(&format!("{proxy}/"));

    // 1 request answered by wait_for, then 10 ok and 5 failing upstream answers.
    for _ in 0..10 {
        assert!(get(&format!("{proxy}/hello")).starts_with("hello from the upstream"));
    }
    for _ in 0..5 {
        assert_eq!(get(&format!("{proxy}/fail")), "failed on purpose\n");
    }

    let stats = get(&format!("{mon}/stats"));
    assert!(
        stats.contains("function,name=Proxy::handle,scope=vlite successes=16"),
        "{stats}"
    );
    assert!(stats.contains("requests,scope=vlite total=16"), "{stats}");

    let funcs: Vec<serde_json::Value> =
        serde_json::from_str(&get(&format!("{mon}/funcs/json"))).unwrap();
    let by = |n: &str| funcs.iter().find(|f| f["full_name"] == n).unwrap().clone();
    let handle = by("vlite.Proxy::handle");
    let forward = by("vlite.Proxy::forward");
    // Requests arrive as SERVER spans (trace continued from headers), the handler under them.
    let server = by("http_server.GET /hello");
    assert_eq!(server["entry"], true);
    assert!(handle["parent_ids"]
        .as_array()
        .unwrap()
        .contains(&server["id"]));
    assert_eq!(forward["parent_ids"], serde_json::json!([handle["id"]]));
    assert_eq!(
        by("http_client.GET 127.0.0.1")["parent_ids"],
        serde_json::json!([forward["id"]])
    );
    assert_eq!(by("vlite.upstream")["successes"], 16);
    // The tracing span, bridged, under the task it runs in.
    let rewrite = by("vlite.rewrite_request");
    assert_eq!(rewrite["successes"], 16);
    assert_eq!(rewrite["parent_ids"], serde_json::json!([forward["id"]]));
    assert!(stats.contains("process,scope=env rss_bytes="), "{stats}");
    assert!(stats.contains("monkit,scope=monkit shards=16"), "{stats}");

    let metrics = get(&format!("{mon}/metrics"));
    assert!(metrics
        .contains("monkit_function_successes_total{name=\"Proxy::handle\",scope=\"vlite\"} 16"));
    assert!(
        metrics.contains("monkit_shards{scope=\"monkit\"} 16"),
        "{metrics}"
    );

    // A real Prometheus scrapes it.
    let prom = Prometheus::start(&format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: vlite\n    static_configs:\n      - targets: ['127.0.0.1:{mon_port}']\n"
    ));
    if let Some(prom) = prom {
        let r = prom.query_until_data(
            "monkit_function_successes_total{name=\"Proxy::handle\"}",
            Duration::from_secs(90),
        );
        assert_eq!(r[0]["value"][1], "16");
        let r = prom.query_until_data("monkit_shards", Duration::from_secs(30));
        assert_eq!(r[0]["value"][1], "16");
    }

    // A blocking async fn found from the pages alone: /report's builder blocks its worker.
    for _ in 0..3 {
        assert!(get(&format!("{proxy}/report")).starts_with("report built"));
    }
    let sorted: Vec<serde_json::Value> =
        serde_json::from_str(&get(&format!("{mon}/funcs/json?sort=slow_polls"))).unwrap();
    assert_eq!(
        sorted[0]["full_name"], "vlite.build_report",
        "{:#}",
        sorted[0]
    );
    assert_eq!(sorted[0]["slow_polls"], 3);
    assert_eq!(sorted[0]["polls"], 6, "two polls each (the yield)");
    let slow_timer = sorted
        .iter()
        .find(|f| f["full_name"] == "vlite.upstream")
        .unwrap();
    assert_eq!(
        slow_timer["slow_polls"], 0,
        "the upstream awaits, it does not block"
    );
    let metrics = get(&format!("{mon}/metrics"));
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("monkit_function_slow_polls_total{")
                && l.contains("name=\"build_report\"")
                && l.ends_with(" 3")),
        "{metrics}"
    );

    // Zipkin export, switched on by MONKIT_ZIPKIN_*: one trace through proxy and upstream.
    let deadline = Instant::now() + Duration::from_secs(20);
    let spans: Vec<serde_json::Value> = loop {
        let all: Vec<serde_json::Value> = receiver
            .got
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, b)| serde_json::from_slice::<Vec<serde_json::Value>>(b).unwrap())
            .collect();
        if all.iter().filter(|s| s["kind"] == "SERVER").count() >= 2 {
            break all;
        }
        assert!(Instant::now() < deadline, "no spans exported: {all:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let client = spans.iter().find(|s| s["kind"] == "CLIENT").unwrap();
    let upstream_server = spans
        .iter()
        .find(|s| s["kind"] == "SERVER" && s["parentId"] == client["id"])
        .expect("the upstream's SERVER span is a child of the proxy's CLIENT span");
    assert_eq!(upstream_server["traceId"], client["traceId"]);
    assert_eq!(client["localEndpoint"]["serviceName"], "vlite");
}
