//! The caps on what outside input can make: functions per scope, tag sets per source. Past a
//! cap nothing new is made and the refusal is counted (the meter `cardinality_refused` of
//! scope `monkit`), so cardinality never grows without bound and never silently.

/// Most tag sets one source name may have in a scope. Past it, new tag sets are refused:
/// their values go to the series tagged `monkit_overflow=true`, and each refusal marks the
/// meter `cardinality_refused{source=<scope>.<name>}` of scope `monkit`. Cardinality can never
/// grow without bound, and never silently.
pub const MAX_TAG_SETS: usize = 1000;
/// Most functions made by name (`Scope::func`) in one scope; past it, calls of new names count
/// under the function `other`, and each refusal is counted as above.
pub const MAX_FUNCS: usize = 10_000;
pub(crate) const OVERFLOW_TAG: &str = "monkit_overflow";
/// Scope and meter that count refusals. Recording a refusal never goes through a cap: past
/// [`MAX_TAG_SETS`] refusing sources, refusals count under `source=other`.
pub(crate) const REFUSALS_SCOPE: &str = "monkit";
pub(crate) const REFUSALS: &str = "cardinality_refused";
/// [`Scope::func_within`](crate::Scope::func_within) keeps this fraction (1/4) of its room
/// for names asked for repeatedly.
pub(crate) const FUNC_WITHIN_RESERVED: usize = 4;
/// Askings that earn a name a reserved place.
pub(crate) const FUNC_WITHIN_ADMIT_AFTER: u32 = 8;
/// Most names counted while waiting for a reserved place.
pub(crate) const FUNC_WITHIN_CANDIDATES: usize = 4096;
