//! The `metrics` facade through monkit's recorder, read back from monkit's own pages served on
//! a loopback port: `/stats` and `/metrics` (Prometheus text and its histogram buckets).

use std::time::Duration;

fn get(url: &str) -> String {
    ureq::get(url).call().unwrap().into_string().unwrap()
}

#[test]
fn facade_metrics_show_on_the_pages() {
    let reg = monkit::Registry::new();
    let recorder = monkit_metrics::Recorder::new(&reg);
    metrics::with_local_recorder(&recorder, || {
        metrics::describe_counter!("jobs.done", metrics::Unit::Count, "jobs finished");
        for _ in 0..5 {
            metrics::counter!("jobs.done", "queue" => "mail").increment(2);
        }
        metrics::counter!("jobs.done", "queue" => "sms").increment(1);
        metrics::counter!("jobs.done", "queue" => "sms").absolute(7);
        let g = metrics::gauge!("pool_connections");
        g.set(10.0);
        g.decrement(2.5);
        for i in 1..=100 {
            metrics::histogram!("jobs.latency_seconds").record(i as f64 / 1000.0);
        }
        // More label values than the cap lets become series.
        for i in 0..1500 {
            metrics::counter!("jobs.by_user", "user" => i.to_string()).increment(1);
        }
    });
    let d = recorder.description("jobs.done").unwrap();
    assert_eq!(d.text, "jobs finished");
    assert_eq!(d.unit, Some(metrics::Unit::Count));

    let server = monkit_http::serve(reg.clone(), "127.0.0.1:0").unwrap();
    let base = format!("http://{}", server.local_addr());
    let stats = get(&format!("{base}/stats"));
    assert!(
        stats.contains("done,queue=mail,scope=jobs total=10"),
        "a counter is a meter in the scope before the dot: {stats}"
    );
    assert!(
        stats.contains("done,queue=sms,scope=jobs total=7"),
        "{stats}"
    );
    assert!(
        stats.contains("pool_connections,scope=metrics value=7.5"),
        "{stats}"
    );
    assert!(
        stats.contains("latency_seconds,scope=jobs count=100"),
        "{stats}"
    );
    let users = stats
        .lines()
        .filter(|l| l.starts_with("by_user,") && l.contains(" total="))
        .count();
    assert!(
        users <= monkit::registry::MAX_TAG_SETS + 1,
        "{users} series"
    );
    let overflow: f64 = stats
        .lines()
        .find(|l| l.starts_with("by_user,monkit_overflow=true,") && l.contains(" total="))
        .and_then(|l| l.rsplit('=').next())
        .and_then(|v| v.parse().ok())
        .expect("the rest in the overflow series");
    assert_eq!(
        users - 1,
        monkit::registry::MAX_TAG_SETS,
        "the cap's worth of series"
    );
    assert_eq!(
        overflow as usize + users - 1,
        1500,
        "every increment counted"
    );

    let prom = get(&format!("{base}/metrics"));
    // describe_* text, with its unit, is the family's help.
    assert!(
        prom.contains("# HELP done_total jobs finished (unit: count)")
            || prom.contains("# HELP done jobs finished (unit: count)"),
        "{prom}"
    );
    let buckets: Vec<&str> = prom
        .lines()
        .filter(|l| l.contains("latency_seconds") && l.contains("_bucket"))
        .collect();
    assert!(!buckets.is_empty(), "a histogram has buckets: {prom}");
    let inf = buckets
        .iter()
        .find(|l| l.contains("le=\"+Inf\""))
        .expect("+Inf bucket");
    assert!(inf.ends_with(" 100"), "{inf}");
    let _ = Duration::ZERO;
}
