//! OTEL_PROPAGATORS: the formats extract reads and inject writes, set for the process (its
//! own test binary, since the setting is the process's).

use monkit::propagation::{extract, inject, set_propagators, Propagators};
use std::collections::HashMap;

fn span() -> monkit::SpanRef {
    monkit::SpanRef::remote_with_flags(0x0af7651916cd43dd8448eb211c80319c, 0xb7ad6b7169203331, 1)
}

fn carrier(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn the_listed_formats_only() {
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let b3 = "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1";

    // Unset: every format is read, W3C written.
    let mut h = HashMap::new();
    inject(&mut h, span(), false);
    assert_eq!(h.get("traceparent").map(String::as_str), Some(tp));
    assert!(extract(&carrier(&[("b3", b3)])).is_some());

    set_propagators(Propagators::parse("b3, baggage").unwrap());
    let mut h = carrier(&[(
        "traceparent",
        "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01",
    )]);
    inject(&mut h, span(), false);
    assert_eq!(h.get("b3").map(String::as_str), Some(b3));
    assert!(
        !h.contains_key("traceparent"),
        "not written, and a caller's is not passed on"
    );
    assert!(
        extract(&carrier(&[("traceparent", tp)])).is_none(),
        "tracecontext is not read"
    );
    let got = extract(&carrier(&[("b3", b3), ("baggage", "k=v")])).unwrap();
    assert_eq!(got.trace_id, 0x0af7651916cd43dd8448eb211c80319c);
    assert_eq!(got.baggage.as_deref(), Some("k=v"));

    set_propagators(Propagators::parse("b3multi").unwrap());
    let mut h = HashMap::new();
    inject(&mut h, span(), false);
    assert_eq!(
        h.get("x-b3-traceid").map(String::as_str),
        Some("0af7651916cd43dd8448eb211c80319c")
    );
    assert!(extract(&carrier(&[("b3", b3)])).is_none());

    set_propagators(Propagators::parse("none").unwrap());
    let mut h = carrier(&[("b3", b3), ("traceparent", tp)]);
    inject(&mut h, span(), true);
    assert!(h.is_empty(), "nothing goes out: {h:?}");
    assert!(extract(&carrier(&[("traceparent", tp), ("b3", b3)])).is_none());

    assert!(Propagators::parse("tracecontext,xray").is_none());
    set_propagators(Propagators::parse("tracecontext,baggage").unwrap());
    assert!(extract(&carrier(&[("traceparent", tp)])).is_some());
}
