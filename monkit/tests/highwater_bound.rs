//! The highwater says when it is only an upper bound: sequential calls from two threads read
//! 2 by the per-thread peaks, and the stats say so; from one thread it is exact.

use monkit::Registry;

#[test]
fn the_pages_know_when_the_highwater_is_a_bound() {
    let reg = Registry::new();
    let f = reg.scope("hw").func("one_thread");
    for _ in 0..3 {
        f.task(|| ());
    }
    let s = f.stats();
    assert_eq!(
        (s.highwater, s.highwater_bound),
        (1, false),
        "exact on one thread"
    );

    let g = reg.scope("hw").func("two_threads");
    g.task(|| ());
    std::thread::spawn(move || g.task(|| ())).join().unwrap();
    let s = g.stats();
    assert_eq!(s.highwater, 2, "the sum of two threads' peaks");
    assert!(s.highwater_bound, "and the stats say it is a bound");
    let text = monkit::render::funcs::text(&monkit::render::funcs::read(&reg));
    assert!(text.contains("highwater: 2 (upper bound)"), "{text}");
    let json = monkit::render::funcs::json(&monkit::render::funcs::read(&reg));
    let two = json
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "two_threads")
        .unwrap();
    assert_eq!(two["highwater_bound"], true);
}
