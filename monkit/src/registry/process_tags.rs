//! Process-wide constant tags (service, instance, region...) added to every series the
//! registries emit, set once at start or read from `MONKIT_TAGS`.

use crate::stats::series::Tags;
use std::sync::OnceLock;

static TAGS: OnceLock<Tags> = OnceLock::new();

/// The variable read when no tags were set in code: `key=value` pairs separated by commas.
const ENV: &str = "MONKIT_TAGS";

crate::util::settings::declare! {
    MONKIT_TAGS: Pairs, "none", "tags added to every series (`service=checkout,instance=a1`)";
}

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
/// (`service=checkout,instance=a1`). A malformed `MONKIT_TAGS` is refused by
/// `monkit::export::configure`, which every `from_env` calls; read here first, it is logged
/// and no tags are set.
pub fn process_tags() -> &'static Tags {
    TAGS.get_or_init(|| match tags_from(&crate::util::settings::Vars::env()) {
        Ok(t) => t.unwrap_or_default(),
        Err(e) => {
            log::warn!("monkit: ignoring {e}");
            Tags::default()
        }
    })
}

/// Sets the process tags from `MONKIT_TAGS` of `vars`, unless tags were set or read already
/// (those were meant); an error naming the variable if it is malformed.
pub(crate) fn configure(
    vars: &crate::util::settings::Vars,
) -> Result<(), crate::util::settings::ConfigError> {
    if let Some(t) = tags_from(vars)? {
        let _ = TAGS.set(t);
    }
    Ok(())
}

/// The tags `MONKIT_TAGS` of `vars` names, if set; an error naming it if malformed.
fn tags_from(
    vars: &crate::util::settings::Vars,
) -> Result<Option<Tags>, crate::util::settings::ConfigError> {
    Ok(vars.pairs(ENV)?.map(|pairs| {
        let mut t = Tags::default();
        for (k, v) in &pairs {
            t.set(k, v);
        }
        t
    }))
}

#[cfg(test)]
mod tests {
    use crate::util::settings::Vars;

    #[test]
    fn pairs_are_read_and_malformed_ones_refused() {
        let t = super::tags_from(&Vars::from_pairs([(
            "MONKIT_TAGS",
            " service=a , instance = b,",
        )]))
        .unwrap()
        .unwrap();
        assert_eq!(t.get("service"), Some("a"));
        assert_eq!(t.get("instance"), Some("b"));
        assert_eq!(t.len(), 2);
        for bad in ["novalue", "a=b,=x"] {
            let e = super::tags_from(&Vars::from_pairs([("MONKIT_TAGS", bad)])).unwrap_err();
            assert_eq!((e.setting.as_str(), e.value.as_str()), ("MONKIT_TAGS", bad));
        }
    }
}
