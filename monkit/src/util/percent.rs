//! Percent escapes (`%XX`) as W3C Baggage and OpenTelemetry's key-value variables write them,
//! through the `percent-encoding` crate. Decoding is strict where that crate is lenient: a
//! malformed escape makes the whole value unreadable rather than pass through as text.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

/// What W3C Baggage's value grammar does not allow as is: controls, space, `"`, `,`, `;`,
/// `\`, `%`, and every non-ASCII byte (the crate escapes those always).
const BAGGAGE_VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b',')
    .add(b';')
    .add(b'\\')
    .add(b'%')
    .add(b'=');

/// `v` with its `%XX` escapes decoded; `None` when an escape is malformed or the bytes are not
/// UTF-8.
pub(crate) fn decode(v: &str) -> Option<String> {
    let b = v.as_bytes();
    let well_formed = b.iter().enumerate().all(|(i, &c)| {
        c != b'%'
            || b.get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return None;
    }
    percent_decode_str(v)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// `v` with what a baggage value may not hold escaped.
pub(crate) fn encode_baggage_value(v: &str) -> String {
    utf8_percent_encode(v, BAGGAGE_VALUE).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_and_refuses_malformed_escapes() {
        for v in ["a b", "x,y;z=1", "100%", "é\u{1}", "plain-text_~!"] {
            assert_eq!(
                super::decode(&super::encode_baggage_value(v)).as_deref(),
                Some(v)
            );
        }
        assert_eq!(super::decode("a%20b").as_deref(), Some("a b"));
        for bad in ["%zz", "%2", "a%", "%ff"] {
            assert_eq!(super::decode(bad), None, "{bad}");
        }
    }
}
