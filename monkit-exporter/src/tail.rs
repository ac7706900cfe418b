//! Tail sampling: whole traces exported because of how they turned out (the local root ran
//! long, or some span failed), beside head sampling. Every trace is recorded while it runs,
//! so this costs each span a hand-off; pending traces are bounded and what does not fit is
//! counted, never waited for.
//!
//! Written here because the decision needs the exporter's queue and the core's spans: no
//! crate sits between the two.

use monkit::{FinishedSpan, SpanStart};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Most traces waiting for their local root to finish, over all shards.
pub const MAX_PENDING_TRACES: usize = 4096;
/// Most spans one pending trace keeps; past it the trace is dropped (and counted).
pub const MAX_PENDING_SPANS: usize = 1024;

const SHARDS: usize = 16;

/// When a trace is worth exporting after all.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct TailRule {
    /// The local root lasted at least this long.
    pub(crate) min_duration: Option<Duration>,
    /// Some span of the trace failed.
    pub(crate) errors: bool,
}

impl TailRule {
    pub(crate) fn is_on(&self) -> bool {
        self.min_duration.is_some() || self.errors
    }
}

#[derive(Default)]
struct Trace {
    spans: Vec<FinishedSpan>,
    /// Spans of the trace started here (so a span whose parent is not among them is the
    /// local root).
    started: HashSet<u64>,
    failed: bool,
    overflowed: bool,
}

/// What a finished span decided.
pub(crate) enum Decision {
    /// Keep waiting for the root.
    Wait,
    /// The root finished and the trace qualifies: these spans go out.
    Export(Vec<FinishedSpan>),
    /// The root finished and the trace does not qualify, or it had to be dropped.
    Drop { overflowed: bool },
}

/// Pending traces, sharded by trace id.
pub(crate) struct Pending {
    rule: TailRule,
    shards: [Mutex<HashMap<u128, Trace>>; SHARDS],
}

impl Pending {
    pub(crate) fn new(rule: TailRule) -> Pending {
        Pending {
            rule,
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        }
    }

    fn shard(&self, trace_id: u128) -> &Mutex<HashMap<u128, Trace>> {
        &self.shards[(trace_id as usize) % SHARDS]
    }

    /// A span of an unsampled trace starts; `false` when the trace could not be taken (too
    /// many pending).
    pub(crate) fn started(&self, span: &SpanStart) -> bool {
        let mut shard = self.shard(span.trace_id).lock();
        if !shard.contains_key(&span.trace_id) && shard.len() >= MAX_PENDING_TRACES / SHARDS {
            return false;
        }
        shard
            .entry(span.trace_id)
            .or_default()
            .started
            .insert(span.span_id);
        true
    }

    /// A span of an unsampled trace finishes.
    pub(crate) fn finished(&self, span: &FinishedSpan) -> Decision {
        let mut shard = self.shard(span.start.trace_id).lock();
        let Some(t) = shard.get_mut(&span.start.trace_id) else {
            return Decision::Wait;
        };
        t.failed |= span.outcome.is_failure();
        if t.spans.len() < MAX_PENDING_SPANS {
            t.spans.push(span.clone());
        } else {
            t.overflowed = true;
        }
        let local_root = span.start.parent_id.is_none_or(|p| !t.started.contains(&p));
        if !local_root {
            return Decision::Wait;
        }
        let Some(t) = shard.remove(&span.start.trace_id) else {
            return Decision::Wait;
        };
        drop(shard);
        let lasted =
            Duration::from_nanos(span.finish_unix_ns.saturating_sub(span.start.start_unix_ns));
        let slow = self.rule.min_duration.is_some_and(|d| lasted >= d);
        let failed = self.rule.errors && t.failed;
        if t.overflowed {
            Decision::Drop { overflowed: true }
        } else if slow || failed {
            Decision::Export(t.spans)
        } else {
            Decision::Drop { overflowed: false }
        }
    }
}
