//! Process-wide constant tags (service, instance, region...) added to every series the
//! registries emit, set once at start or read from `MONKIT_TAGS`.

use crate::stats::series::Tags;
use std::sync::OnceLock;

static TAGS: OnceLock<Tags> = OnceLock::new();

/// The variable read when no tags were set in code: `key=value` pairs separated by commas.
pub const ENV: &str = "MONKIT_TAGS";

/// Why [`set_process_tags`] did nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlreadySet;

impl std::fmt::Display for AlreadySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("process tags are set once, before the first read; they were set already")
    }
}

impl std::error::Error for AlreadySet {}

/// Sets the tags added to every series of every registry (a series' own tag of the same key
/// wins). Call it once, early: after the first page or export has read them (from
/// `MONKIT_TAGS`, or none), they no longer change.
///
/// ```
/// monkit::registry::set_process_tags(&[("service", "checkout"), ("instance", "a1")]).unwrap();
/// assert_eq!(monkit::registry::process_tags().get("service"), Some("checkout"));
/// assert!(monkit::registry::set_process_tags(&[("service", "x")]).is_err());
/// ```
pub fn set_process_tags(tags: &[(&str, &str)]) -> Result<(), AlreadySet> {
    TAGS.set(Tags::new(tags)).map_err(|_| AlreadySet)
}

/// The process-wide tags: those set with [`set_process_tags`], else those of `MONKIT_TAGS`
/// (`service=checkout,instance=a1`; malformed pairs are skipped with a line on stderr).
pub fn process_tags() -> &'static Tags {
    TAGS.get_or_init(|| match std::env::var(ENV) {
        Ok(v) => parse(&v),
        Err(_) => Tags::default(),
    })
}

fn parse(v: &str) -> Tags {
    let mut t = Tags::default();
    for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((k, val)) if !k.trim().is_empty() => t.set(k.trim(), val.trim()),
            _ => log::warn!("{ENV}: skipping {pair:?}, expected key=value"),
        }
    }
    t
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_pairs() {
        let t = super::parse(" service=a , instance = b,bad,=x,");
        assert_eq!(t.get("service"), Some("a"));
        assert_eq!(t.get("instance"), Some("b"));
        assert_eq!(t.len(), 2);
    }
}
