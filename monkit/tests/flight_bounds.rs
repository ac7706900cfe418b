//! What the flight recorder may cost the calls it watches: putting subtrees together is
//! bounded a second over the process, and what it skips is counted. Its own test binary, the
//! recorder being the process's.

#[test]
fn assemblies_are_bounded_a_second_and_the_rest_counted() {
    monkit::flight::set_enabled(true);
    let reg = monkit::Registry::new();
    let scope = reg.scope("many");
    let funcs: Vec<_> = (0..600).map(|i| scope.func(&format!("f{i}"))).collect();
    let before = monkit::flight::skipped();
    let t = std::time::Instant::now();
    // Each function's first call starts its window: 600 candidates at once.
    for f in &funcs {
        f.task(|| ());
    }
    // Seconds whose turns the loop spans.
    let seconds = t.elapsed().as_secs() + 2;
    let skipped = monkit::flight::skipped() - before;
    // At most 200 held a second.
    assert!(skipped >= 600u64.saturating_sub(200 * seconds), "{skipped}");
    assert!(skipped > 0, "600 at once are more than a second's 200");
    let held = reg.recent_calls().len() as u64;
    assert_eq!(held + skipped, 600, "{held} held");
    assert_eq!(reg.losses().flight_skipped, monkit::flight::skipped());
}
