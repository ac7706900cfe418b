//! The text and JSON renderings, parsed back and checked.

use monkit::Registry;
use std::collections::BTreeMap;

fn parse_line(line: &str) -> (String, String, f64) {
    monkit::render::text::parse_line(line).unwrap_or_else(|| panic!("bad stat line: {line}"))
}

fn registry() -> Registry {
    let reg = Registry::new();
    let s = reg.scope("app");
    s.meter("requests").mark(3);
    s.counter("conns").inc(2);
    s.int_val_with("bytes", &[("route", "/x"), ("method", "GET")])
        .observe(100);
    s.int_val_with("bytes", &[("method", "GET"), ("route", "/x")])
        .observe(300);
    s.float_val("ratio").observe(0.25);
    s.bool_val("hit").observe(true);
    s.gauge_with("temp", &[("a b", "c,d")], || 21.5);
    let f = s.func("work");
    f.task(|| ());
    f.guard().fail("bad");
    reg.scope("zzz").meter("later").mark(1);
    reg
}

#[test]
fn text_lines_parse_back() {
    let text = monkit::render::text::stats(&registry());
    let mut got: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut keys = Vec::new();
    for line in text.lines() {
        let (k, f, v) = parse_line(line);
        keys.push(k.clone());
        got.insert((k, f), v);
    }
    let g = |k: &str, f: &str| {
        *got.get(&(k.to_owned(), f.to_owned()))
            .unwrap_or_else(|| panic!("missing {k} {f} in\n{text}"))
    };
    assert_eq!(g("requests,scope=app", "total"), 3.0);
    assert!(g("requests,scope=app", "rate") > 0.0);
    assert_eq!(g("conns,scope=app", "value"), 2.0);
    assert_eq!(g("conns,scope=app", "high"), 2.0);
    // Tag order does not split the source: both observations land in one series.
    assert_eq!(g("bytes,method=GET,route=/x,scope=app", "count"), 2.0);
    assert_eq!(g("bytes,method=GET,route=/x,scope=app", "sum"), 400.0);
    assert_eq!(g("bytes,method=GET,route=/x,scope=app", "max"), 300.0);
    assert_eq!(g("ratio,scope=app", "sum"), 0.25);
    assert_eq!(g("hit,scope=app", "disposition"), 1.0);
    assert_eq!(g(r"temp,a\ b=c\,d,scope=app", "value"), 21.5);
    assert_eq!(g("function,name=work,scope=app", "successes"), 1.0);
    assert_eq!(g("function,name=work,scope=app", "errors"), 1.0);
    assert_eq!(g("function,name=work,scope=app", "failures"), 1.0);
    assert_eq!(g("function,name=work,scope=app", "total"), 2.0);
    assert_eq!(
        g("function,error_name=bad,name=work,scope=app", "count"),
        1.0
    );
    assert_eq!(
        g("function_times,kind=success,name=work,scope=app", "count"),
        1.0
    );
    let r50 = g("function_times,kind=success,name=work,scope=app", "r50");
    assert!(r50 > 0.0 && r50 < 1.0, "durations are in seconds: {r50}");
    // Sorted: scope app before zzz, keys sorted within a scope.
    assert_eq!(keys.last().unwrap(), "later,scope=zzz");
    let app: Vec<_> = keys.iter().filter(|k| k.ends_with("scope=app")).collect();
    let mut sorted = app.clone();
    sorted.sort();
    assert_eq!(app, sorted);
    // Deterministic.
    let again = monkit::render::text::stats(&registry());
    let strip = |t: &str| {
        t.lines()
            .filter(|l| !l.contains(" rate="))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&text).len(), strip(&again).len());
}

#[test]
fn json_parses_back() {
    let v = monkit::render::json::stats(&registry());
    let text = serde_json::to_string(&v).unwrap();
    let rows: Vec<(String, BTreeMap<String, String>, String, f64)> =
        serde_json::from_str(&text).unwrap();
    let find = |m: &str, f: &str| {
        rows.iter()
            .find(|r| r.0 == m && r.2 == f)
            .unwrap_or_else(|| panic!("no {m} {f}"))
    };
    let r = find("bytes", "sum");
    assert_eq!(r.3, 400.0);
    assert_eq!(r.1.get("route").map(String::as_str), Some("/x"));
    assert_eq!(r.1.get("scope").map(String::as_str), Some("app"));
    assert_eq!(
        find("temp", "value").1.get("a b").map(String::as_str),
        Some("c,d")
    );
    assert_eq!(
        rows.len(),
        monkit::render::text::stats(&registry()).lines().count()
    );
}
