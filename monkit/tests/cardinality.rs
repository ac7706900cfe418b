//! 100,000 distinct tag values on one source stay within the documented cap, and every
//! refusal is counted.

use monkit::Registry;

#[test]
fn tag_values_are_capped_and_refusals_counted() {
    let reg = Registry::new();
    let s = reg.scope("card");
    for i in 0..100_000 {
        s.int_val_with("bytes", &[("user", &i.to_string())])
            .observe(1);
    }
    let mut series = 0;
    let mut overflow = None;
    let mut total = 0.0;
    reg.stats(|k, f, v| {
        if k.measurement == "bytes" && f == "count" {
            series += 1;
            total += v;
            if k.tags.get("monkit_overflow") == Some("true") {
                overflow = Some(v);
            }
        }
    });
    assert_eq!(series, monkit::registry::MAX_TAG_SETS + 1);
    // No value is lost: the refused ones are in the overflow series.
    assert_eq!(total, 100_000.0);
    assert_eq!(
        overflow,
        Some((100_000 - monkit::registry::MAX_TAG_SETS) as f64)
    );
    let refused = reg
        .scope("monkit")
        .meter_with("cardinality_refused", &[("source", "card.bytes")])
        .total();
    assert_eq!(refused, (100_000 - monkit::registry::MAX_TAG_SETS) as u64);
    // Refusals are the registry's own: the default registry saw none of them.
    let mut leaked = 0;
    monkit::default_registry().stats(|k, _, _| {
        if k.tags.get("source") == Some("card.bytes") {
            leaked += 1;
        }
    });
    assert_eq!(leaked, 0);

    // Functions made by name are capped too.
    for i in 0..(monkit::registry::MAX_FUNCS + 50) {
        s.func(&format!("f{i}")).task(|| ());
    }
    assert_eq!(s.funcs().len(), monkit::registry::MAX_FUNCS + 1);
    let other = s.funcs().into_iter().find(|f| f.name() == "other").unwrap();
    assert_eq!(other.stats().successes, 50);
}

/// Counting a refusal never refuses: more distinct refused sources than the tag-set cap end
/// up under `source=other` (this used to recurse until the stack overflowed).
#[test]
fn refusals_past_the_cap_do_not_recurse() {
    let reg = Registry::new();
    let s = reg.scope("many");
    for i in 0..monkit::registry::MAX_FUNCS {
        s.func(&format!("f{i}"));
    }
    let extra = monkit::registry::MAX_TAG_SETS + 500;
    for i in 0..extra {
        s.func(&format!("new{i}")).task(|| ());
    }
    let (mut sources, mut total, mut other) = (0, 0.0, 0.0);
    reg.stats(|k, f, v| {
        if k.measurement == "cardinality_refused" && f == "total" {
            sources += 1;
            total += v;
            if k.tags.get("source") == Some("other") {
                other = v;
            }
        }
    });
    assert_eq!(sources, monkit::registry::MAX_TAG_SETS + 1);
    assert_eq!(total, extra as f64);
    assert_eq!(other, 500.0);
}

/// Run-time tagged functions are capped per name: past the tag-set cap, new tag sets count
/// as the name tagged `monkit_overflow=true`, and every refusal is counted.
#[test]
fn tagged_functions_are_capped_per_name() {
    let reg = Registry::new();
    let s = reg.scope("wf");
    for i in 0..monkit::registry::MAX_TAG_SETS + 20 {
        let id = format!("w{i}");
        s.func_with("run", &[("workflow", &id)]).task(|| ());
    }
    // Found again, in any tag order, as the same function.
    let a = s.func_with("step", &[("a", "1"), ("b", "2")]);
    assert_eq!(a, s.func_with("step", &[("b", "2"), ("a", "1")]));
    assert_ne!(a, s.func("step"));
    let runs: Vec<_> = s
        .funcs()
        .into_iter()
        .filter(|f| f.name() == "run")
        .collect();
    assert_eq!(runs.len(), monkit::registry::MAX_TAG_SETS + 1);
    let over = runs
        .iter()
        .find(|f| f.tags().get("monkit_overflow") == Some("true"))
        .expect("an overflow function");
    assert_eq!(over.stats().successes, 20);
    let mut refused = 0.0;
    reg.stats(|k, f, v| {
        if k.measurement == "cardinality_refused" && f == "total" {
            assert_eq!(k.tags.get("source"), Some("wf.run"));
            refused += v;
        }
    });
    assert_eq!(refused, 20.0);
}
