//! The pages' table of a function's count fields: for each field the model lists
//! ([`FuncStats::fields`]), its Prometheus name, type and help text. The model names and
//! reads the fields; this says how the read side exposes them.

use crate::call::func::FuncStats;

/// How a function field behaves over time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// Goes up and down.
    Gauge,
    /// Only goes up over the process's life.
    Counter,
}

/// How the pages expose one of a function's count fields ([`FuncStats::fields`]).
#[derive(Clone, Copy, Debug)]
pub struct FuncField {
    /// Field name, as [`FuncStats::fields`] lists it (the line format, `/funcs`, dot).
    pub name: &'static str,
    /// Name in Prometheus, after `monkit_function_` (counters also get `_total`).
    pub metric: &'static str,
    /// Gauge or counter.
    pub kind: FieldKind,
    /// One sentence for Prometheus `# HELP`.
    pub help: &'static str,
    /// What Prometheus exposes where it is not `get`: a counter whose `get` adds two reads
    /// that could go backwards together (Prometheus would take a dip for a restart).
    pub exposed: Option<fn(&FuncStats) -> u64>,
}

impl FuncField {
    /// The field's value in `s`.
    pub fn value(&self, s: &FuncStats) -> u64 {
        s.fields()
            .iter()
            .find(|(n, _)| *n == self.name)
            .map_or(0, |(_, v)| *v)
    }

    /// The value Prometheus exposes: [`FuncField::exposed`] if set, else [`FuncField::value`].
    pub fn exposed_value(&self, s: &FuncStats) -> u64 {
        match self.exposed {
            Some(f) => f(s),
            None => self.value(s),
        }
    }
}

/// Every count field of a function, in the order of [`FuncStats::fields`].
pub const FUNC_FIELDS: [FuncField; 7] = [
    FuncField {
        name: "current",
        metric: "current",
        kind: FieldKind::Gauge,
        help: "Calls of the function running now.",
        exposed: None,
    },
    FuncField {
        name: "highwater",
        metric: "highwater",
        kind: FieldKind::Gauge,
        help: "Most calls of the function ever running at once.",
        exposed: None,
    },
    FuncField {
        name: "successes",
        metric: "successes",
        kind: FieldKind::Counter,
        help: "Calls of the function that returned successfully.",
        exposed: None,
    },
    FuncField {
        name: "errors",
        metric: "errored",
        kind: FieldKind::Counter,
        help: "Calls of the function that returned an error or were canceled, all kinds together.",
        exposed: None,
    },
    FuncField {
        name: "panics",
        metric: "panics",
        kind: FieldKind::Counter,
        help: "Calls of the function that panicked.",
        exposed: None,
    },
    FuncField {
        name: "failures",
        metric: "failures",
        kind: FieldKind::Counter,
        help: "Calls of the function that failed (errors, cancellations and panics).",
        exposed: None,
    },
    FuncField {
        name: "total",
        metric: "calls",
        kind: FieldKind::Counter,
        help: "Calls of the function that finished (in any way); the running ones are monkit_function_current.",
        // Started calls are the running count plus the finished ones, read one after the
        // other: a call ending between the two reads is counted twice, then once, which a
        // counter must never show. Finished calls only grow.
        exposed: Some(|s| s.successes + s.failures()),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_follows_the_model() {
        let names: Vec<&str> = FuncStats::default().fields().iter().map(|f| f.0).collect();
        let table: Vec<&str> = FUNC_FIELDS.iter().map(|f| f.name).collect();
        assert_eq!(names, table);
    }
}
