//! A fleet: two tavern processes scraped by a real Prometheus with native histograms and by
//! one reading the classic text format. Fleet-wide percentiles come back from both forms and
//! agree with each process's own recent quantiles within the buckets' error.

mod common;

use common::{example, free_port, get, post, wait_for, Killed, Prometheus};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Tavern {
    api: String,
    mon: String,
    mon_port: u16,
    _child: Killed,
}

fn tavern() -> Tavern {
    let (api_port, mon_port) = (free_port(), free_port());
    let child = Command::new(example("tavern"))
        .env("TAVERN_LISTEN", format!("127.0.0.1:{api_port}"))
        .env("TAVERN_MONITOR", format!("127.0.0.1:{mon_port}"))
        .env("TAVERN_GRPC", format!("127.0.0.1:{}", free_port()))
        .stdout(Stdio::null())
        .spawn()
        .expect("the tavern example is built by cargo test");
    let t = Tavern {
        api: format!("http://127.0.0.1:{api_port}"),
        mon: format!("http://127.0.0.1:{mon_port}"),
        mon_port,
        _child: Killed(child),
    };
    wait_for(&format!("{}/", t.mon));
    t
}

/// A field of a process's own greet_customer success times (`r99` in seconds, `count`),
/// from /stats.
fn own_quantile(t: &Tavern, field: &str) -> f64 {
    let stats = get(&format!("{}/stats", t.mon));
    let key = format!(
        "function_times,kind=success,name=greet_customer,scope=tavern::activities {field}="
    );
    let line = stats
        .lines()
        .find(|l| l.starts_with(&key))
        .unwrap_or_else(|| panic!("no {field} in {stats}"));
    line[key.len()..].parse().unwrap()
}

fn value(r: &[Value]) -> f64 {
    r[0]["value"][1].as_str().unwrap().parse().unwrap()
}

#[test]
fn fleet_percentiles_from_native_and_classic_histograms() {
    let (a, b) = (tavern(), tavern());
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: tavern\n    static_configs:\n      - targets: ['127.0.0.1:{}', '127.0.0.1:{}']\n",
        a.mon_port, b.mon_port
    );
    let Some(native) = Prometheus::start_with(&config, &["--enable-feature=native-histograms"])
    else {
        return;
    };
    let classic = Prometheus::start(&config).expect("prometheus is installed");

    // Traffic on both for a while, so each scrape sees the counts grow.
    let until = Instant::now() + Duration::from_secs(8);
    let mut i = 0;
    while Instant::now() < until {
        for t in [&a, &b] {
            let (s, body) = post(
                &format!("{}/greet", t.api),
                &format!(r#"{{"name":"guest{i}","age":30}}"#),
            );
            assert_eq!(s, 200, "{body}");
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let the last scrapes see every value, so both sides count the same calls.
    std::thread::sleep(Duration::from_secs(3));
    let sel = r#"scope="tavern::activities",kind="success",name="greet_customer""#;

    // The aggregatable forms return data: fleet-wide rates of native and classic buckets.
    let rate_native = format!(
        "histogram_quantile(0.99, sum by (name) (rate(monkit_function_duration_seconds{{{sel}}}[1m])))"
    );
    let rate_classic = format!(
        "histogram_quantile(0.99, sum by (le, name) (rate(monkit_function_duration_seconds_bucket{{{sel}}}[1m])))"
    );
    let rn = value(&native.query_until_data(&rate_native, Duration::from_secs(60)));
    let rc = value(&classic.query_until_data(&rate_classic, Duration::from_secs(60)));
    eprintln!("fleet p99 over the last minute: native {rn:.6} s, classic {rc:.6} s");

    // Over the same calls (everything since the start), the fleet quantiles from native
    // buckets lie within the range of the processes' own quantiles, give or take a bucket
    // (1.1%) and the interpolation inside it: the mixture of two samples has its quantile
    // between theirs.
    for (q, field) in [(0.5, "r50"), (0.9, "r90"), (0.99, "r99")] {
        let own: Vec<f64> = [&a, &b].iter().map(|t| own_quantile(t, field)).collect();
        let (lo, hi) = (own[0].min(own[1]), own[0].max(own[1]));
        let fleet = value(&native.query_until_data(
            &format!(
                "histogram_quantile({q}, sum by (name) (monkit_function_duration_seconds{{{sel}}}))"
            ),
            Duration::from_secs(30),
        ));
        eprintln!(
            "p{}: own {lo:.6}..{hi:.6} s, fleet (native) {fleet:.6} s",
            q * 100.0
        );
        assert!(
            fleet >= lo * 0.975 && fleet <= hi * 1.025,
            "native fleet p{} {fleet} outside [{lo}, {hi}] +-2.5%",
            q * 100.0
        );
        // Classic buckets are coarse: the fleet quantile falls in the classic bucket that
        // holds the processes' own.
        let c = value(&classic.query_until_data(
            &format!(
                "histogram_quantile({q}, sum by (le, name) (monkit_function_duration_seconds_bucket{{{sel}}}))"
            ),
            Duration::from_secs(30),
        ));
        let bounds = [
            0.0, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let bucket = |v: f64| bounds.windows(2).position(|w| v > w[0] && v <= w[1]);
        assert!(
            bucket(c) == bucket(lo) || bucket(c) == bucket(hi),
            "classic p{} {c} not in the bucket of {lo} or {hi}",
            q * 100.0
        );
    }
    let count = value(&native.query_until_data(
        &format!("sum(histogram_count(monkit_function_duration_seconds{{{sel}}}))"),
        Duration::from_secs(30),
    ));
    let own_count: f64 = [&a, &b].iter().map(|t| own_quantile(t, "count")).sum();
    assert_eq!(count, own_count, "every call counted once across the fleet");
}
