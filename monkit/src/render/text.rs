//! The Go monkit text format: one `<series key> <field>=<value>` line per stat.

use crate::registry::Registry;
use crate::render::format;
use crate::stats::series::escape_field;
use std::fmt::Write;

/// Every stat of `registry` as text lines, in the registry's sorted order.
pub fn stats(registry: &Registry) -> String {
    let mut out = String::new();
    registry.stats(|key, field, value| {
        let _ = writeln!(
            out,
            "{key} {}={}",
            escape_field(field),
            format::value(value)
        );
    });
    out
}

/// Parses one line of the text format back into (series key text, field, value), honouring
/// backslash escapes in the key. For tools and tests that read `/stats`.
///
/// ```
/// let (key, field, value) =
///     monkit::render::text::parse_line(r"req\ time,scope=a\,b count=3").unwrap();
/// assert_eq!((key.as_str(), field.as_str(), value), (r"req\ time,scope=a\,b", "count", 3.0));
/// ```
pub fn parse_line(line: &str) -> Option<(String, String, f64)> {
    let mut key = String::new();
    let mut chars = line.chars();
    loop {
        match chars.next()? {
            '\\' => {
                key.push('\\');
                key.push(chars.next()?);
            }
            ' ' => break,
            c => key.push(c),
        }
    }
    let rest: String = chars.collect();
    let (field, value) = rest.rsplit_once('=')?;
    Some((key, field.to_owned(), value.parse().ok()?))
}
