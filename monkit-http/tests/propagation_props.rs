//! Property tests for the header parsers: every valid header round-trips, every mutation is
//! rejected or read as another valid context, and no input panics.

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use monkit::propagation::{
    extract, format_traceparent, parse_b3_single, parse_traceparent, valid_tracestate,
};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn traceparent_round_trips(trace in 1u128.., parent in 1u64.., flags in 0u8..4) {
        let tp = format_traceparent(trace, parent, flags);
        prop_assert_eq!(tp.len(), 55);
        prop_assert_eq!(parse_traceparent(&tp), Some((trace, parent, flags)));
    }

    #[test]
    fn traceparent_mutations_are_safe(trace in 1u128.., parent in 1u64.., flags in 0u8..4,
                                      at in 0usize..55, c in any::<char>()) {
        let tp = format_traceparent(trace, parent, flags);
        let mut chars: Vec<char> = tp.chars().collect();
        // Writing the same character back is no mutation.
        prop_assume!(chars[at] != c);
        chars[at] = c;
        let m: String = chars.into_iter().collect();
        if let Some((t, p, _)) = parse_traceparent(&m) {
            // Only a change to another lowercase hex digit (or a flag/version digit) survives.
            prop_assert!(t != 0 && p != 0);
            prop_assert!(c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
        }
    }

    #[test]
    fn traceparent_any_string(s in ".{0,80}") {
        let _ = parse_traceparent(&s);
    }

    #[test]
    fn b3_single_round_trips(trace in 1u128.., span in 1u64.., sampled: bool) {
        let v = format!("{trace:032x}-{span:016x}-{}", u8::from(sampled));
        prop_assert_eq!(parse_b3_single(&v), Some((trace, span, Some(sampled))));
    }

    #[test]
    fn b3_and_tracestate_any_string(s in "[ -~]{0,100}") {
        let _ = parse_b3_single(&s);
        let _ = valid_tracestate(&s);
    }

    #[test]
    fn extract_any_headers(values in proptest::collection::vec("[ -~]{0,70}", 0..6)) {
        let names = ["traceparent", "tracestate", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled"];
        let mut h = HeaderMap::new();
        for (n, v) in names.iter().zip(&values) {
            if let Ok(v) = HeaderValue::from_str(v) {
                h.insert(HeaderName::from_static(n), v);
            }
        }
        if let Some(i) = extract(&h) {
            prop_assert!(i.trace_id != 0 && i.parent_id != 0);
        }
    }
}
