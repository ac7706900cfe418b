//! The highwater of a real service on tokio's multi-threaded runtime: requests made one after
//! another read a highwater of 1 for every function they run through, though tokio runs each
//! connection's task on whichever worker is free; requests made at once read more.

mod common;

use common::{get, post, tavern};
use serde_json::Value;

/// (highwater, current, total) of the function `name` in `/funcs/json`.
fn counts(mon: &str, name: &str) -> (i64, i64, i64) {
    let funcs: Value = serde_json::from_str(&get(&format!("{mon}/funcs/json"))).unwrap();
    let f = funcs
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no function {name} in {funcs}"));
    let n = |k: &str| f[k].as_i64().unwrap_or_else(|| panic!("{k} of {f}"));
    (n("highwater"), n("current"), n("total"))
}

#[test]
fn sequential_requests_read_one_and_parallel_ones_more() {
    let t = tavern(&[]);
    for i in 0..60 {
        let (s, b) = post(
            &format!("{}/greet", t.api),
            &format!(r#"{{"name":"guest{i}","age":30}}"#),
        );
        assert!(s == 200 || s == 503, "{s} {b}");
    }
    for name in ["POST /greet", "greet", "greet_customer"] {
        let (high, current, total) = counts(&t.mon, name);
        assert!(total >= 60, "{name}: {total} calls");
        assert_eq!((high, current), (1, 0), "{name}: one request at a time");
    }

    // Eight clients at once, each making requests until all have seen a request of theirs
    // served: calls overlap, and the highwater says so (never more than the clients).
    std::thread::scope(|s| {
        for c in 0..8 {
            let api = t.api.clone();
            s.spawn(move || {
                for i in 0..40 {
                    // Tavern fails some greetings on purpose (503): any answer will do.
                    post(
                        &format!("{api}/greet"),
                        &format!(r#"{{"name":"c{c}x{i}","age":30}}"#),
                    );
                }
            });
        }
    });
    let (high, current, _) = counts(&t.mon, "POST /greet");
    assert_eq!(current, 0);
    assert!((2..=8).contains(&high), "eight clients at once read {high}");
}
