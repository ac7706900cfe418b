//! vlite's flight recorder from outside: a `/slow` request sent among a hundred fast ones is
//! there at once, with its whole tree; a `/fail` by its outcome; the list names both; and
//! the SVG is XML a real parser accepts.

mod common;

use common::*;
use std::time::{Duration, Instant};

#[test]
fn the_slow_and_the_failed_call_of_a_minute_ago() {
    let v = vlite(None, &[], None);
    let proxy = format!("http://{}", v.proxy);
    for i in 0..101 {
        let path = match i {
            50 => "/slow",
            70 => "/fail",
            _ => "/",
        };
        let _ = ureq::get(&format!("{proxy}{path}")).call();
    }
    let t = Instant::now();
    let tree: serde_json::Value = serde_json::from_str(&get(&format!(
        "{}/trace/recent/json?regex=Proxy::handle&min_duration=15ms",
        v.mon
    )))
    .unwrap();
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    let spans = tree.as_array().expect("a held call");
    assert_eq!(spans[0]["func"]["name"], "Proxy::handle", "{tree}");
    let took = spans[0]["finish"].as_u64().unwrap() - spans[0]["start"].as_u64().unwrap();
    assert!(took >= 15_000_000, "{took}");
    // The whole tree: the proxy call and the upstream's own spans under it.
    for name in ["Proxy::forward", "upstream"] {
        assert!(
            spans.iter().any(|s| s["func"]["name"] == name),
            "no {name} in {tree}"
        );
    }

    let failed: serde_json::Value =
        serde_json::from_str(&get(&format!("{}/trace/recent/json?outcome=error", v.mon))).unwrap();
    let root = &failed.as_array().expect("a held failure")[0];
    assert_eq!(root["outcome"]["kind"], "error", "{root}");

    let list: serde_json::Value =
        serde_json::from_str(&get(&format!("{}/trace/recent?format=json", v.mon))).unwrap();
    let rows = list.as_array().unwrap();
    assert!(rows
        .iter()
        .any(|r| r["func"] == "vlite.Proxy::handle" && r["why"] == "slowest"));
    assert!(rows.iter().any(|r| r["why"] == "latest_failure"));

    let svg = get(&format!(
        "{}/trace/recent/svg?regex=Proxy::handle&min_duration=15ms",
        v.mon
    ));
    peers::assert_xml(&svg);
}
