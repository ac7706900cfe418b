//! How the read side writes values: numbers in the line format and in Prometheus, durations
//! for people (three significant digits in a unit that suits them) and for Go monkit's `/funcs`
//! text (exact), and text escaped for XML and HTML. Every renderer, and the console, writes
//! through these, so a number reads the same on every page.

use std::time::Duration;

/// Formats a value the way the line format wants: integers without a fraction, other values
/// with at most 9 significant digits, in the shortest form (a rate is `125.946065`, not
/// `125.94606477050571`).
///
/// ```
/// use monkit::render::format::value;
/// assert_eq!(value(125.94606477050571), "125.946065");
/// assert_eq!(value(0.001056768), "0.001056768");
/// assert_eq!(value(3.0), "3");
/// ```
pub fn value(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else if v.is_finite() {
        let shortest = format!("{v}");
        let digits = shortest
            .bytes()
            .skip_while(|b| matches!(b, b'-' | b'0' | b'.'))
            .filter(u8::is_ascii_digit)
            .count();
        if digits <= 9 {
            return shortest;
        }
        // Rounded to 9 significant digits through the exponent form, then written shortest.
        let rounded: f64 = format!("{v:.8e}").parse().unwrap_or(v);
        format!("{rounded}")
    } else {
        format!("{v}")
    }
}

/// A sample value as the Prometheus text formats write it: `NaN`, `+Inf`, `-Inf`, otherwise
/// the shortest form that reads back exactly.
pub fn prometheus_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Whether XML 1.0 allows `c` in a document at all: tab, newline, carriage return, and
/// everything from U+0020 but U+FFFE and U+FFFF (Rust's `char` holds no surrogates).
pub fn xml_allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{fffe}' && c != '\u{ffff}')
}

/// `s` escaped for XML and HTML text and attribute values. Characters XML 1.0 does not
/// allow anywhere (control characters, U+FFFE, U+FFFF), which a client can put in a path or
/// a baggage value, become U+FFFD, so a page is always well-formed.
///
/// ```
/// use monkit::render::format::xml_escape;
/// assert_eq!(xml_escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
/// assert_eq!(xml_escape("x\u{ffff}\u{1}y"), "x\u{fffd}\u{fffd}y");
/// ```
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if !xml_allowed(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A duration of `ns` nanoseconds in the unit that suits it, with at most three significant
/// digits ("870 ns", "1.25 ms", "12.3 s"): never "0.000ns".
///
/// ```
/// assert_eq!(monkit::render::format::duration(1_250_000.0), "1.25 ms");
/// ```
pub fn duration(ns: f64) -> String {
    fmt_in(ns, unit_for(ns))
}

/// (nanoseconds per unit, name) for a span of `ns`.
pub(crate) fn unit_for(ns: f64) -> (f64, &'static str) {
    match ns {
        n if n >= 1e9 => (1e9, "s"),
        n if n >= 1e6 => (1e6, "ms"),
        n if n >= 1e3 => (1e3, "µs"),
        _ => (1.0, "ns"),
    }
}

/// `ns` in the unit `unit_for` chose (so every tick of an axis reads in one unit).
pub(crate) fn fmt_in(ns: f64, (per, name): (f64, &str)) -> String {
    format!("{} {name}", significant(ns / per))
}

/// `v` with at most three significant digits and no trailing zeros ("1.5", "12.3", "870").
pub fn significant(v: f64) -> String {
    let digits = match v.abs() {
        v if v >= 100.0 || v == 0.0 => 0,
        v if v >= 10.0 => 1,
        _ => 2,
    };
    let mut t = format!("{v:.digits$}");
    if t.contains('.') {
        while t.ends_with('0') {
            t.pop();
        }
        if t.ends_with('.') {
            t.pop();
        }
    }
    t
}

/// `ns` nanoseconds, exact, as Go monkit's `/funcs` text writes durations (`684.581µs`,
/// `1.5s`).
pub fn exact_duration(ns: f64) -> String {
    format!("{:?}", Duration::from_nanos(ns.max(0.0).round() as u64))
}
