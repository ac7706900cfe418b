//! Property tests for what turns outside text into Prometheus output and series keys: no
//! input panics, names are always valid, escaping round-trips.

use monkit::render::prometheus::{escape_label_value, sanitize_name};
use proptest::prelude::*;

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push('\n'),
                Some(c) => out.push(c),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn names_are_valid(s in any::<String>()) {
        let n = sanitize_name(&s);
        let mut chars = n.chars();
        let first = chars.next().unwrap();
        prop_assert!(first == '_' || first.is_ascii_lowercase());
        prop_assert!(chars.all(|c| c == '_' || c.is_ascii_lowercase() || c.is_ascii_digit()));
    }

    #[test]
    fn label_values_round_trip(s in any::<String>()) {
        let e = escape_label_value(&s);
        prop_assert!(!e.contains('\n'));
        prop_assert_eq!(unescape(&e), s);
    }

    #[test]
    fn any_tags_render(k in any::<String>(), v in any::<String>(), name in any::<String>()) {
        let reg = monkit::Registry::new();
        reg.scope(&k).int_val_with(&name, &[(&k, &v), ("scope", &v)]).observe(1);
        let text = monkit::render::prometheus::render(&reg, false);
        // One HELP/TYPE pair per family, each sample on one line.
        for line in text.lines() {
            prop_assert!(line.starts_with('#') || line.contains("} "), "{}", line);
        }
        let _ = monkit::render::text::stats(&reg);
        let _ = monkit::render::json::stats(&reg);
    }
}
