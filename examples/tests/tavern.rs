//! The tavern example as a real process: driven over HTTP, its pages checked, scraped by a real
//! Prometheus with the shipped prometheus.yml, and every PromQL expression of the shipped
//! Grafana dashboard run against it, each returning data.

mod common;

use common::{example, free_port, get, peers, post, wait_for, Killed, Prometheus};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn tavern_end_to_end_with_prometheus_and_dashboard() {
    let (api_port, mon_port) = (free_port(), free_port());
    let _tavern = Killed(
        Command::new(example("tavern"))
            .env("TAVERN_LISTEN", format!("127.0.0.1:{api_port}"))
            .env("TAVERN_MONITOR", format!("127.0.0.1:{mon_port}"))
            .env("TAVERN_GRPC", format!("127.0.0.1:{}", free_port()))
            .stdout(Stdio::null())
            .spawn()
            .expect("the tavern example is built by cargo test"),
    );
    let api = format!("http://127.0.0.1:{api_port}");
    let mon = format!("http://127.0.0.1:{mon_port}");
    wait_for(&format!("{mon}/"));

    // Prometheus first, with the shipped configuration aimed at this process.
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tavern/prometheus.yml"
    ))
    .unwrap();
    assert!(shipped.contains("127.0.0.1:9001"));
    let prom = Prometheus::start(
        &shipped
            .replace("127.0.0.1:9001", &format!("127.0.0.1:{mon_port}"))
            .replace("scrape_interval: 5s", "scrape_interval: 1s"),
    );

    // Customers, with failures: an underage customer, an unknown one, bad input.
    for (name, age) in [("ann", 34), ("bob", 15), ("carl", 40), ("dora", 29)] {
        let (s, b) = post(
            &format!("{api}/greet"),
            &format!(r#"{{"name":"{name}","age":{age}}}"#),
        );
        assert_eq!(s, 200, "{b}");
    }
    let (s, _) = post(&format!("{api}/greet"), r#"{"name":"","age":3}"#);
    assert_eq!(s, 400);
    let mut ok = 0;
    for (customer, want) in [
        ("ann", 200),
        ("bob", 403),
        ("zed", 404),
        ("carl", 200),
        ("ann", 200),
        ("bob", 403),
        ("dora", 200),
        ("zed", 404),
        ("ann", 200),
        ("carl", 200),
        ("dora", 200),
    ] {
        let (s, b) = post(
            &format!("{api}/order"),
            &format!(r#"{{"customer":"{customer}","item":"ale"}}"#),
        );
        assert_eq!(s, want, "{customer}: {b}");
        ok += usize::from(s == 200);
    }
    let c: Value = serde_json::from_str(&get(&format!("{api}/customers/ann"))).unwrap();
    assert_eq!(c["orders"].as_array().unwrap().len(), 3);

    // /stats and /funcs/json: functions, counts and error kinds.
    let stats = get(&format!("{mon}/stats"));
    assert!(
        stats.contains("function,name=process_order,scope=tavern::workflows total=11"),
        "{stats}"
    );
    assert!(stats
        .contains("function,error_name=underage,name=check_age,scope=tavern::activities count=2"));
    assert!(stats.contains(
        "function,error_name=unknown_customer,name=find_customer,scope=tavern::activities count=2"
    ));
    assert!(stats.contains(
        "function,error_name=bad_input,name=update_customer_store,scope=tavern::activities count=1"
    ));
    assert!(
        stats.contains("continued_as_new,scope=tavern::workflows total=2"),
        "{stats}"
    );
    let funcs: Vec<Value> = serde_json::from_str(&get(&format!("{mon}/funcs/json"))).unwrap();
    let by = |n: &str| {
        funcs
            .iter()
            .find(|f| f["full_name"] == n)
            .unwrap_or_else(|| panic!("{n}"))
            .clone()
    };
    let process = by("tavern::workflows.process_order");
    assert_eq!(process["successes"], ok);
    assert_eq!(process["errors"]["underage"], 2);
    assert_eq!(process["errors"]["unknown_customer"], 2);
    assert_eq!(
        by("tavern::activities.check_age")["parent_ids"],
        serde_json::json!([process["id"]])
    );
    assert_eq!(
        by("tavern::workflows.order_run{workflow_type=order}")["successes"],
        2
    );
    assert!(
        stats.contains(
            "function,domain=default,name=workflow,scope=tavern::workflows,type=process_order total=11"
        ),
        "{stats}"
    );
    // Inside the async activities: `find_customer` awaits a timer (two polls or more a call,
    // none slow, busy for a fraction of its time); `record_order` never waits (one poll).
    let find = by("tavern::activities.find_customer");
    let calls = find["success_times"]["count"].as_u64().unwrap()
        + find["failure_times"]["count"].as_u64().unwrap();
    assert!(find["polls"].as_u64().unwrap() >= 2 * calls, "{find:#}");
    assert_eq!(find["slow_polls"], 0);
    let wall = find["success_times"]["sum"].as_f64().unwrap()
        + find["failure_times"]["sum"].as_f64().unwrap();
    assert!(find["busy"].as_f64().unwrap() < 0.5 * wall, "{find:#}");
    let record = by("tavern::activities.record_order");
    let calls = record["success_times"]["count"].as_u64().unwrap()
        + record["failure_times"]["count"].as_u64().unwrap();
    assert_eq!(record["polls"], calls, "{record:#}");
    assert_eq!(record["polls_per_call"]["p99"], 1);
    let greet = by("tavern::activities.greet_customer");
    assert!(
        greet["errors"]["transient"].as_u64().unwrap() >= 1,
        "retried activity failed transiently"
    );
    assert_eq!(greet["successes"], 5);

    // /metrics: the names the dashboard uses.
    let metrics = get(&format!("{mon}/metrics"));
    assert!(
        metrics.contains("retries_total{activity=\"greet_customer\",scope=\"tavern::activities\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("monkit_function_errors_total{error_name=\"underage\",name=\"check_age\",scope=\"tavern::activities\"} 2"));
    // Every name a real service exposes (tokio's, the process's, the facade's) passes
    // promtool's lint, which refuses a `_count` suffix on anything but a histogram.
    assert!(metrics.contains("tokio_worker_parks{"), "{metrics}");
    peers::assert_promtool_takes(&metrics);

    // One trace from the HTTP request through the signal to the child workflow's last
    // activity, with the allowed baggage as annotations and the domain as a tag.
    let watcher = {
        let url = format!("{mon}/trace/json?regex=POST%20/order&timeout=20s");
        std::thread::spawn(move || get(&url))
    };
    std::thread::sleep(Duration::from_millis(300));
    let r = ureq::post(&format!("{api}/order"))
        .set("x-tavern-domain", "eu")
        .set(
            "baggage",
            "tenant=acme, customer_tier=gold;p=1, secret=hunter2",
        )
        .send_string(r#"{"customer":"ann","item":"stout"}"#)
        .unwrap();
    assert_eq!(r.status(), 200);
    let spans: Vec<Value> = serde_json::from_str(&watcher.join().unwrap()).unwrap();
    let trace = spans[0]["trace_id"].clone();
    assert!(spans.iter().all(|s| s["trace_id"] == trace), "one trace");
    let named = |n: &str| {
        spans
            .iter()
            .find(|s| s["func"]["name"] == n)
            .unwrap_or_else(|| panic!("{n} in {spans:#?}"))
    };
    let server = named("POST /order");
    assert_eq!(server["parent_id"], Value::Null, "the request is the root");
    let wf = named("workflow");
    assert_eq!(
        wf["func"]["tags"],
        serde_json::json!({"domain": "eu", "type": "process_order"})
    );
    let last = named("record_order");
    let ids: Vec<&Value> = spans.iter().map(|s| &s["id"]).collect();
    assert!(
        ids.contains(&&last["parent_id"]),
        "record_order's parent is in the trace"
    );
    assert_eq!(named("process_order")["parent_id"], wf["id"]);
    for s in [server, wf] {
        let notes = s["annotations"].to_string();
        assert!(notes.contains(r#"["baggage.tenant","acme"]"#), "{notes}");
        assert!(
            notes.contains(r#"["baggage.customer_tier","gold"]"#),
            "{notes}"
        );
        assert!(!notes.contains("hunter2"), "only allowed baggage: {notes}");
    }
    assert!(get(&format!("{mon}/stats")).contains(
        "function,domain=eu,name=workflow,scope=tavern::workflows,type=process_order total=1"
    ));

    // Keep some traffic flowing so rates have two samples in their window.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_secs(2));
        post(&format!("{api}/greet"), r#"{"name":"eve","age":50}"#);
        post(
            &format!("{api}/order"),
            r#"{"customer":"bob","item":"ale"}"#,
        );
        post(
            &format!("{api}/order"),
            r#"{"customer":"eve","item":"ale"}"#,
        );
    }

    // Every expression of the shipped dashboard returns data.
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tavern/grafana-dashboard.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let exprs: Vec<String> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().clone())
        .map(|t| t["expr"].as_str().unwrap().to_owned())
        .collect();
    assert!(exprs.len() >= 6);
    let Some(prom) = prom else { return };
    for e in &exprs {
        let r = prom.query_until_data(e, Duration::from_secs(90));
        assert!(!r.is_empty(), "{e}");
    }
    let p99 = prom.query_until_data(
        "histogram_quantile(0.99, sum by (le, name) (rate(monkit_function_duration_seconds_bucket{scope=\"tavern::activities\",kind=\"success\",name=\"greet_customer\"}[1m])))",
        Duration::from_secs(30),
    );
    let v: f64 = p99[0]["value"][1].as_str().unwrap().parse().unwrap();
    // Classic buckets: the p99 lies in the bucket holding 2 ms and more, (0.001, 0.005] at
    // least by the default layout.
    assert!(
        (0.001..1.0).contains(&v),
        "greet_customer sleeps 2 ms: p99 {v}"
    );
}
