//! tavern's objectives end to end: `/slo/json` shows the orders objective burning within one
//! read of the failures; a real Prometheus loads the rules `/slo/rules` writes (windows scaled
//! down so they run in seconds), scrapes tavern, and fires the page alert of the objective
//! being broken and none for the healthy one; a real Alertmanager receives it.

mod common;
use monkit_testsupport::ports::free_port;

use common::{get, peers, post, tavern, Killed, Prometheus};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Polls `url` (JSON) until `found` says yes, for up to `timeout`.
fn until(url: &str, timeout: Duration, what: &str, found: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(r) = ureq::get(url).call() {
            if let Ok(v) = serde_json::from_str::<Value>(&r.into_string().unwrap_or_default()) {
                if found(&v) {
                    return v;
                }
                assert!(Instant::now() < deadline, "{what} never came: {v:#}");
            }
        }
        assert!(Instant::now() < deadline, "{what} never came from {url}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_broken_objective_pages_through_prometheus_to_alertmanager() {
    let t = tavern(&[]);
    for (name, age) in [("ann", 34), ("bob", 15)] {
        let (s, b) = post(
            &format!("{}/greet", t.api),
            &format!(r#"{{"name":"{name}","age":{age}}}"#),
        );
        assert_eq!(s, 200, "{b}");
    }
    let order = |who: &str| {
        post(
            &format!("{}/order", t.api),
            &format!(r#"{{"customer":"{who}","item":"ale"}}"#),
        )
        .0
    };
    assert_eq!(order("ann"), 200);
    // Underage: every order of bob fails, and orders are 99% to succeed.
    for _ in 0..20 {
        assert_eq!(order("bob"), 403);
    }
    let slo: Vec<Value> = serde_json::from_str(&get(&format!("{}/slo/json", t.mon))).unwrap();
    let find = |name: &str, sli: &str| {
        slo.iter()
            .find(|o| o["objective"] == name && o["sli"] == sli)
            .unwrap_or_else(|| panic!("{name} {sli} in {slo:#?}"))
            .clone()
    };
    let orders = find("orders", "success");
    assert_eq!(
        (orders["events"].clone(), orders["bad"].clone()),
        (21.into(), 20.into())
    );
    assert!(
        orders["budget_remaining"].as_f64().unwrap() < 0.0,
        "{orders}"
    );
    assert_eq!(
        orders["alerts"],
        serde_json::json!(["page", "page"]),
        "{orders}"
    );
    assert_eq!(
        orders["eaters"][0]["function"],
        "tavern::workflows.process_order"
    );
    assert_eq!(find("greetings", "success")["bad"], 0);
    let latency = find("orders", "latency");
    assert!(
        latency["threshold_seconds"].as_f64().unwrap() == 0.25,
        "{latency}"
    );

    // The rules, scaled: 5m -> 6s, 1h -> 72s; alerts fire after 1s.
    let rules = get(&format!("{}/slo/rules?scale=0.02&for=1s", t.mon));
    assert!(rules.contains("monkit_slo:bad_ratio:rate6s"), "{rules}");
    for bad in ["scale=-1", "scale=x", "for=forever", "window=1h"] {
        match ureq::get(&format!("{}/slo/rules?{bad}", t.mon)).call() {
            Err(ureq::Error::Status(400, r)) => {
                let msg = r.into_string().unwrap();
                assert!(msg.contains(bad.split('=').next().unwrap()), "{bad}: {msg}");
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    if !peers::have("prometheus", "prometheus")
        || !peers::have("prometheus-alertmanager", "prometheus-alertmanager")
    {
        return;
    }
    // Alertmanager, taking every alert into one receiver that sends nowhere.
    let am_port = free_port();
    let am_dir = std::env::temp_dir().join(format!("monkit-am-{}-{am_port}", std::process::id()));
    std::fs::create_dir_all(&am_dir).unwrap();
    std::fs::write(
        am_dir.join("alertmanager.yml"),
        "route:\n  receiver: nowhere\n  group_wait: 1s\n  group_interval: 1s\nreceivers:\n  - name: nowhere\n",
    )
    .unwrap();
    let _am = Killed(
        Command::new("prometheus-alertmanager")
            .arg(format!(
                "--config.file={}",
                am_dir.join("alertmanager.yml").display()
            ))
            .arg(format!("--storage.path={}", am_dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-alertmanager starts"),
    );
    // Prometheus: scrapes tavern every second, evaluates the rules every second, alerts there.
    let rules_file = am_dir.join("slo-rules.yml");
    std::fs::write(&rules_file, &rules).unwrap();
    let port = t.mon.rsplit(':').next().unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\nscrape_configs:\n  - job_name: tavern\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n",
        rules_file.display()
    );
    let prom = Prometheus::start(&config).expect("prometheus runs");
    // Keep breaking it while Prometheus watches: bob's orders fail, one in twenty succeeds.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = {
        let (stop, api) = (stop.clone(), t.api.clone());
        std::thread::spawn(move || {
            let mut i = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let who = if i.is_multiple_of(20) { "ann" } else { "bob" };
                let _ = post(
                    &format!("{api}/order"),
                    &format!(r#"{{"customer":"{who}","item":"ale"}}"#),
                );
                let _ = post(&format!("{api}/greet"), r#"{"name":"ann","age":34}"#);
                i += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let firing = until(
        &format!("http://127.0.0.1:{}/api/v1/alerts", prom.port),
        Duration::from_secs(90),
        "a firing page alert for orders in Prometheus",
        |v| {
            v["data"]["alerts"].as_array().is_some_and(|a| {
                a.iter().any(|x| {
                    x["state"] == "firing"
                        && x["labels"]["objective"] == "orders"
                        && x["labels"]["severity"] == "page"
                })
            })
        },
    );
    let alerts = firing["data"]["alerts"].as_array().unwrap();
    assert!(
        alerts
            .iter()
            .all(|x| x["labels"]["objective"] != "greetings"),
        "the healthy objective alerts on nothing: {alerts:#?}"
    );
    until(
        &format!("http://127.0.0.1:{am_port}/api/v2/alerts"),
        Duration::from_secs(60),
        "the orders page alert at Alertmanager",
        |v| {
            v.as_array().is_some_and(|a| {
                a.iter().any(|x| {
                    x["labels"]["alertname"] == "MonkitSLOBurnRate"
                        && x["labels"]["objective"] == "orders"
                        && x["labels"]["severity"] == "page"
                        && x["annotations"]["summary"]
                            .as_str()
                            .is_some_and(|s| s.contains("orders"))
                })
            })
        },
    );
    // Every expression of the objectives' dashboard runs in the same Prometheus and returns
    // data.
    let dashboard: Value = serde_json::from_str(&get(&format!("{}/slo/dashboard", t.mon))).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert_eq!(
        panels.len(),
        5 * 4,
        "five panels for each of four indicators"
    );
    for p in panels {
        let expr = p["targets"][0]["expr"].as_str().unwrap();
        prom.query_until_data(expr, Duration::from_secs(60));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    traffic.join().unwrap();
    let _ = std::fs::remove_dir_all(&am_dir);
}
