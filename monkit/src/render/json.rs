//! JSON renderings of the stats.

use crate::registry::Registry;
use serde_json::{json, Value};

/// Every stat as `[[measurement, {tags}, field, value], ...]`, the Go `/stats/json` shape.
/// Non-finite values are rendered as `null`.
pub fn stats(registry: &Registry) -> Value {
    let mut out = Vec::new();
    registry.stats(|key, field, value| {
        let tags: serde_json::Map<String, Value> = key
            .tags
            .iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
            .collect();
        out.push(json!([key.measurement, tags, field, value]));
    });
    Value::Array(out)
}
