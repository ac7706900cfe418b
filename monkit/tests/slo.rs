//! Objectives in code: refused when malformed, evaluated from the functions' own counts and
//! buckets (budget, burn rates, alerts, who eats the budget), exported as `monkit_slo_*`
//! series that promtool accepts, and written as a rule file that `promtool check rules`
//! accepts and whose shipped `promtool test rules` cases pass.

use monkit::slo::{Objective, Sli};
use monkit::Registry;
use monkit_testsupport::peers;
use std::time::Duration;

#[derive(Debug)]
struct Declined;
impl monkit::ErrorKind for Declined {
    fn error_kind(&self) -> &'static str {
        "declined"
    }
}

#[test]
fn malformed_objectives_are_refused_with_a_reason() {
    let reg = Registry::new();
    let ok = || Objective::new("checkout").matching("shop\\.");
    for (o, says) in [
        (ok().success_ratio(1.0), "between 0 and 1"),
        (ok().success_ratio(0.0), "between 0 and 1"),
        (
            ok().latency(Duration::from_millis(300), 99.0),
            "between 0 and 1",
        ),
        (ok().success_ratio(f64::NAN), "between 0 and 1"),
        (ok(), "success_ratio"),
        (ok().latency(Duration::ZERO, 0.99), "above 0"),
        (Objective::new("x").success_ratio(0.9), "matching"),
        (
            Objective::new("x").success_ratio(0.9).matching("("),
            "regex",
        ),
        (Objective::new(" ").success_ratio(0.9).matching("."), "name"),
    ] {
        let e = reg.add_objective(o).unwrap_err();
        assert!(e.to_string().contains(says), "{e} should say {says}");
    }
    reg.add_objective(ok().success_ratio(0.99)).unwrap();
    let e = reg.add_objective(ok().success_ratio(0.9)).unwrap_err();
    assert!(e.to_string().contains("not added before"), "{e}");
    // Another registry may use the name.
    Registry::new()
        .add_objective(ok().success_ratio(0.9))
        .unwrap();
}

#[test]
fn objectives_are_evaluated_from_the_functions_counts() {
    let reg = Registry::new();
    reg.add_objective(
        Objective::new("checkout")
            .success_ratio(0.99)
            .latency(Duration::from_millis(10), 0.9)
            .matching("^shop\\.(pay|ship)$"),
    )
    .unwrap();
    reg.add_objective(
        Objective::new("browse")
            .success_ratio(0.999)
            .matching("^shop\\.list$"),
    )
    .unwrap();
    let shop = reg.scope("shop");
    let (pay, ship, list) = (shop.func("pay"), shop.func("ship"), shop.func("list"));
    for i in 0..100 {
        let _ = pay.task_result(|| if i % 2 == 0 { Err(Declined) } else { Ok(()) });
        list.task(|| ());
    }
    for i in 0..20 {
        ship.task(|| std::thread::sleep(Duration::from_millis(if i < 10 { 1 } else { 20 })));
    }
    // A function made later is covered too.
    let _ = shop.func("pay_later");
    let all = reg.objectives();
    let get = |name: &str, sli: Sli| {
        all.iter()
            .find(|r| r.name == name && r.sli == sli)
            .unwrap_or_else(|| panic!("{name} {sli:?} in {all:#?}"))
    };
    let success = get("checkout", Sli::Success);
    assert_eq!(success.functions, ["shop.pay", "shop.ship"]);
    assert_eq!((success.events, success.bad), (120, 50));
    let share = 50.0 / 120.0;
    assert!((success.budget_remaining - (1.0 - share / 0.01)).abs() < 1e-9);
    // The process is younger than every window: each covers it all, and burns alike.
    for (w, rate, seen) in &success.burn_rates {
        assert!((rate - share / 0.01).abs() < 1e-9, "{w:?}: {rate}");
        assert!(seen <= w);
    }
    assert_eq!(success.alerts, ["page", "page"], "both six-hour pairs burn");
    assert_eq!(success.eaters, [("shop.pay".to_owned(), 50)]);

    let latency = get("checkout", Sli::Latency);
    assert_eq!(
        latency.events, 70,
        "successful calls: 50 of pay, 20 of ship"
    );
    assert_eq!(latency.bad, 10, "the ten 20 ms calls of ship");
    assert_eq!(latency.threshold, Some(Duration::from_millis(10)));
    let at = latency.read_at.unwrap();
    assert!(
        at <= Duration::from_millis(10) && at > Duration::from_micros(9_890),
        "{at:?}"
    );
    assert_eq!(latency.eaters, [("shop.ship".to_owned(), 10)]);

    let browse = get("browse", Sli::Success);
    assert_eq!((browse.events, browse.bad), (100, 0));
    assert_eq!(browse.budget_remaining, 1.0);
    assert!(browse.alerts.is_empty());
    assert!(browse.burn_rates.iter().all(|b| b.1 == 0.0));

    // On /metrics as monkit_slo_*, which promtool takes.
    let text = monkit::render::prometheus::render(&reg, false);
    for want in [
        r#"monkit_slo_events_total{objective="checkout",scope="monkit",sli="success"} 120"#,
        r#"monkit_slo_bad_events_total{objective="checkout",scope="monkit",sli="success"} 50"#,
        r#"monkit_slo_bad_events_total{objective="checkout",scope="monkit",sli="latency"} 10"#,
        r#"monkit_slo_target{objective="browse",scope="monkit",sli="success"} 0.999"#,
        r#"monkit_slo_budget_remaining{objective="browse",scope="monkit",sli="success"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == want), "{want} in\n{text}");
    }
    assert!(text.contains(
        r#"monkit_slo_burn_rate{objective="checkout",scope="monkit",sli="success",window="5m"}"#
    ));
    peers::assert_promtool_takes(&text);
}

/// The rule file promtool checks, and the cases shipped beside this test run against it.
#[test]
fn the_rules_pass_promtool() {
    let reg = Registry::new();
    reg.add_objective(
        Objective::new("checkout")
            .success_ratio(0.999)
            .matching("pay"),
    )
    .unwrap();
    reg.add_objective(
        Objective::new("browse")
            .success_ratio(0.999)
            .matching("list"),
    )
    .unwrap();
    let rules = monkit::slo::rules::rules(
        &reg.objectives(),
        &monkit::slo::rules::RuleOptions::default(),
    );
    assert!(rules.contains("monkit_slo:bad_ratio:rate5m"), "{rules}");
    assert!(rules.contains("severity: \"page\""), "{rules}");
    if !peers::have("promtool", "prometheus") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("monkit-slo-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rules.yml"), &rules).unwrap();
    let check = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(dir.join("rules.yml"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "promtool check rules: {}{}\n{rules}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let cases = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/slo/burn_rate_test.yml");
    std::fs::copy(cases, dir.join("burn_rate_test.yml")).unwrap();
    let test = std::process::Command::new("promtool")
        .args(["test", "rules"])
        .arg(dir.join("burn_rate_test.yml"))
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&test.stdout).into_owned() + &String::from_utf8_lossy(&test.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        test.status.success(),
        "promtool test rules: {said}\n{rules}"
    );
}

#[monkit::task(objective = "refunds")]
fn refund(n: u32) -> Result<u32, Declined> {
    if n == 0 {
        Err(Declined)
    } else {
        Ok(n)
    }
}

/// `#[monkit::task(objective = "..")]` puts a function under an objective without a regex.
#[test]
fn a_task_names_its_objective() {
    let reg = monkit::default_registry();
    reg.add_objective(Objective::new("refunds").success_ratio(0.9))
        .unwrap();
    for n in 0..10 {
        let _ = refund(n);
    }
    let r = reg
        .objectives()
        .into_iter()
        .find(|r| r.name == "refunds")
        .unwrap();
    assert_eq!(r.functions, ["slo.refund"]);
    assert_eq!((r.events, r.bad), (10, 1));
    assert!((r.budget_remaining - 0.0).abs() < 1e-9, "{r:?}");
}
