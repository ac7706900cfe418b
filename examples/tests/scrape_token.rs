//! A real Prometheus scrapes pages that require a bearer token: the job that carries the token
//! is up, the one that does not is down.

mod common;

use common::Prometheus;
use monkit::settings::Vars;
use std::time::Duration;

#[test]
fn prometheus_scrapes_with_the_token_and_not_without() {
    let options = monkit_http::ServeOptions::from_vars(&Vars::from_pairs([(
        "MONKIT_HTTP_TOKEN",
        "scrape-me-7",
    )]))
    .unwrap();
    let reg = monkit::Registry::new();
    reg.scope("app").func("work").task(|| ());
    let server = monkit_http::serve_with(reg, "127.0.0.1:0", options).unwrap();
    let target = server.local_addr();
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  \
         - job_name: with_token\n    authorization:\n      credentials: scrape-me-7\n    static_configs:\n      - targets: ['{target}']\n  \
         - job_name: without\n    static_configs:\n      - targets: ['{target}']\n"
    );
    let Some(prom) = Prometheus::start(&config) else {
        return;
    };
    let up = |job: &str| {
        prom.query_until_data(&format!("up{{job=\"{job}\"}}"), Duration::from_secs(60))[0]["value"]
            [1]
        .as_str()
        .unwrap()
        .to_owned()
    };
    assert_eq!(up("with_token"), "1");
    assert_eq!(up("without"), "0");
    let series = prom.query_until_data(
        "monkit_function_successes_total{name=\"work\"}",
        Duration::from_secs(60),
    );
    assert_eq!(series[0]["value"][1], "1");
}
