//! Series keys: a measurement with sorted tags, escaped the way Go monkit's line format does.

use std::fmt;

/// Key/value tags. Kept sorted by key, so their order never changes a source's identity; a
/// key given twice keeps its last value.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tags(Vec<(String, String)>);

impl Tags {
    /// No tags (usable in a `static`).
    pub const fn empty() -> Tags {
        Tags(Vec::new())
    }

    /// Tags from pairs, in any order.
    pub fn new(pairs: &[(&str, &str)]) -> Tags {
        let mut t = Tags(Vec::with_capacity(pairs.len()));
        for (k, v) in pairs {
            t.set(k, v);
        }
        t
    }

    /// Sets `key` to `value`, replacing an earlier value.
    pub fn set(&mut self, key: &str, value: &str) {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(key)) {
            Ok(i) => self.0[i].1 = value.to_owned(),
            Err(i) => self.0.insert(i, (key.to_owned(), value.to_owned())),
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// The pairs, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of tags.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no tags.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A function's full name: `scope.name`, and `{k=v,...}` after it when it has tags.
fn full_name(scope: &str, name: &str, tags: &Tags) -> String {
    let mut n = format!("{scope}.{name}");
    if !tags.is_empty() {
        let pairs: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        n = format!("{n}{{{}}}", pairs.join(","));
    }
    n
}

/// A function's names, made once when the function is and held for the process's life: a
/// span points at them, so no name is copied or formatted per span.
#[derive(Debug)]
pub struct FuncName {
    scope: String,
    name: String,
    tags: Tags,
    full_name: String,
}

impl FuncName {
    /// The names of the function `name` with `tags` in `scope`.
    pub fn new(scope: &str, name: &str, tags: Tags) -> FuncName {
        FuncName {
            full_name: full_name(scope, name, &tags),
            scope: scope.to_owned(),
            name: name.to_owned(),
            tags,
        }
    }

    /// The scope.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The name within the scope.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The function's own tags (empty for most functions).
    pub fn tags(&self) -> &Tags {
        &self.tags
    }

    /// `scope.name`, and `{k=v,...}` after it for a tagged function.
    pub fn full_name(&self) -> &str {
        &self.full_name
    }

    /// Heap bytes the names hold.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.scope.capacity() + self.name.capacity() + self.full_name.capacity()
    }
}

/// A measurement and its tags: `measurement,k1=v1,k2=v2` with keys sorted. Every series a
/// registry emits carries a `scope` tag.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    /// The measurement (a source's name, `function`, `function_times`...).
    pub measurement: String,
    /// Its tags, including `scope`.
    pub tags: Tags,
}

impl SeriesKey {
    /// A key from a measurement and tags.
    pub fn new(measurement: &str, tags: Tags) -> SeriesKey {
        SeriesKey {
            measurement: measurement.to_owned(),
            tags,
        }
    }
}

fn escape(out: &mut fmt::Formatter<'_>, s: &str, specials: &[char]) -> fmt::Result {
    for c in s.chars() {
        if specials.contains(&c) {
            out.write_str("\\")?;
        }
        fmt::Write::write_char(out, c)?;
    }
    Ok(())
}

/// Escapes a field name for the line format.
#[cfg_attr(not(feature = "render"), allow(dead_code))]
pub(crate) fn escape_field(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ',' | '=' | ' ') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        escape(f, &self.measurement, &[',', ' '])?;
        for (k, v) in self.tags.iter() {
            f.write_str(",")?;
            escape(f, k, &[',', '=', ' '])?;
            f.write_str("=")?;
            escape(f, v, &[',', '=', ' '])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_escaping() {
        let a = Tags::new(&[("b", "2"), ("a", "1")]);
        let b = Tags::new(&[("a", "1"), ("b", "2")]);
        assert_eq!(a, b);
        let k = SeriesKey::new("req, x", Tags::new(&[("k=1", "v 1,2"), ("a", "b")]));
        assert_eq!(k.to_string(), r"req\,\ x,a=b,k\=1=v\ 1\,2");
        assert_eq!(escape_field("a b"), r"a\ b");
    }
}
