//! The Go monkit text format: one `<series key> <field>=<value>` line per stat.

use crate::series::escape_field;
use crate::Registry;
use std::fmt::Write;

/// Every stat of `registry` as text lines, in the registry's sorted order.
pub fn stats(registry: &Registry) -> String {
    let mut out = String::new();
    registry.stats(|key, field, value| {
        let _ = writeln!(out, "{key} {}={}", escape_field(field), fmt_value(value));
    });
    out
}

/// Formats a value the way the line format wants: integers without a fraction, other values
/// in the shortest form that reads back exactly.
pub fn fmt_value(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}
