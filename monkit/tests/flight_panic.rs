//! A crash leaves evidence: with `write_recent_on_panic`, a panic writes what the flight
//! recorder holds as JSON, each held call with its whole tree. Its own test binary, since the
//! panic hook is the process's.

use std::time::Duration;

#[test]
fn a_panic_writes_the_held_calls() {
    monkit::flight::set_enabled(true);
    let reg = monkit::Registry::new();
    let scope = reg.scope("crash");
    let (job, step) = (scope.func("job"), scope.func("step"));
    for i in 0..20 {
        job.task(|| {
            step.task(|| {
                if i == 7 {
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        });
    }
    let path = std::env::temp_dir().join(format!("monkit-recent-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&path);
    monkit::render::trace::write_recent_on_panic(reg.clone(), path.clone());
    let r = std::thread::spawn(move || job.task(|| panic!("on purpose"))).join();
    assert!(r.is_err());
    let text = std::fs::read_to_string(&path).expect("the panic wrote the record");
    let _ = std::fs::remove_file(&path);
    let held: serde_json::Value = serde_json::from_str(&text).unwrap();
    let slowest = held
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["func"] == "crash.job" && h["why"] == "slowest")
        .unwrap_or_else(|| panic!("{held}"));
    let spans = slowest["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 2, "{slowest}");
    assert!(spans[0]["duration_ns"].as_u64().unwrap() >= 10_000_000);
    assert_eq!(spans[1]["func"]["name"], "step");
    assert_eq!(spans[1]["parent_id"], spans[0]["id"]);
}
