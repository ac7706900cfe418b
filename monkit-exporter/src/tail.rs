//! Tail sampling: whole traces exported because of how they turned out (a local root ran
//! long, or some span failed), beside head sampling. Every trace is recorded while it runs,
//! so this costs each span a hand-off; pending traces are bounded in number, in spans and in
//! bytes, and what does not fit is counted, never waited for. A trace decides when its last
//! open local root ends: a caller's fan-out of concurrent requests in one trace is kept, or
//! let go, whole.
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

/// Bytes all pending traces may hold together by default (`MONKIT_TAIL_MAX_BYTES`).
pub const DEFAULT_TAIL_MAX_BYTES: usize = 32 << 20;

const SHARDS: usize = 16;

/// What noting a started span costs in the set of started ids, roughly.
const STARTED_COST: usize = 2 * std::mem::size_of::<u64>();

/// What a pending span costs, roughly: the span itself, its strings, and the vector's slot.
fn span_bytes(s: &FinishedSpan) -> usize {
    std::mem::size_of::<FinishedSpan>()
        + s.annotations
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2 * std::mem::size_of::<String>())
            .sum::<usize>()
        + s.error.as_ref().map_or(0, String::len)
}

/// When a trace is worth exporting after all, and what pending traces may hold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct TailRule {
    /// A local root lasted at least this long.
    pub(crate) min_duration: Option<Duration>,
    /// Some span of the trace failed.
    pub(crate) errors: bool,
    /// Bytes all pending traces may hold together.
    pub(crate) max_bytes: usize,
}

impl Default for TailRule {
    fn default() -> TailRule {
        TailRule {
            min_duration: None,
            errors: false,
            max_bytes: DEFAULT_TAIL_MAX_BYTES,
        }
    }
}

impl TailRule {
    pub(crate) fn is_on(&self) -> bool {
        self.min_duration.is_some() || self.errors
    }
}

#[derive(Default)]
struct Trace {
    spans: Vec<FinishedSpan>,
    /// What `spans` holds, in bytes (see `span_bytes`).
    bytes: usize,
    /// Spans of the trace started here (so a span whose parent is not among them is a local
    /// root).
    started: HashSet<u64>,
    /// Local roots started and not yet finished.
    open_roots: usize,
    /// Some local root lasted long enough.
    slow: bool,
    failed: bool,
    /// Spans not kept (over the span or byte bound).
    lost: u64,
    /// Some start could not be noted (over the byte bound): the trace cannot be whole.
    incomplete: bool,
}

/// What a finished span decided.
pub(crate) enum Decision {
    /// Keep waiting for the last local root.
    Wait,
    /// The last local root finished and the trace qualifies: these spans go out.
    Export(Vec<FinishedSpan>),
    /// The last local root finished and the trace does not qualify, or lost spans: `lost`
    /// spans were not kept along the way.
    Drop { overflowed: bool, lost: u64 },
}

/// Pending traces, sharded by trace id.
pub(crate) struct Pending {
    rule: TailRule,
    shards: [Mutex<HashMap<u128, Trace>>; SHARDS],
    /// Bytes held by every pending trace.
    bytes: std::sync::atomic::AtomicUsize,
}

impl Pending {
    pub(crate) fn new(rule: TailRule) -> Pending {
        Pending {
            rule,
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            bytes: std::sync::atomic::AtomicUsize::new(0),
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
        let t = shard.entry(span.trace_id).or_default();
        if span.parent_id.is_none_or(|p| !t.started.contains(&p)) {
            t.open_roots += 1;
        }
        // The ids are held against the byte bound too: a trace kept open while a client
        // starts children under it must not grow without one.
        if self.take(STARTED_COST) {
            t.started.insert(span.span_id);
            t.bytes += STARTED_COST;
        } else {
            t.incomplete = true;
        }
        true
    }

    /// Takes `cost` bytes of the bound; whether they were there.
    fn take(&self, cost: usize) -> bool {
        use std::sync::atomic::Ordering;
        self.bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held + cost <= self.rule.max_bytes).then_some(held + cost)
            })
            .is_ok()
    }

    /// A span of an unsampled trace finishes.
    pub(crate) fn finished(&self, span: &FinishedSpan) -> Decision {
        use std::sync::atomic::Ordering;
        let mut shard = self.shard(span.start.trace_id).lock();
        let Some(t) = shard.get_mut(&span.start.trace_id) else {
            return Decision::Wait;
        };
        t.failed |= span.outcome.is_failure();
        let cost = span_bytes(span);
        let room = self.take(cost);
        if t.spans.len() < MAX_PENDING_SPANS && room {
            t.spans.push(span.clone());
            t.bytes += cost;
        } else {
            if room {
                self.bytes.fetch_sub(cost, Ordering::AcqRel);
            }
            t.lost += 1;
        }
        let local_root = span.start.parent_id.is_none_or(|p| !t.started.contains(&p));
        if !local_root {
            return Decision::Wait;
        }
        let lasted =
            Duration::from_nanos(span.finish_unix_ns.saturating_sub(span.start.start_unix_ns));
        t.slow |= self.rule.min_duration.is_some_and(|d| lasted >= d);
        t.open_roots = t.open_roots.saturating_sub(1);
        if t.open_roots > 0 {
            return Decision::Wait;
        }
        let Some(t) = shard.remove(&span.start.trace_id) else {
            return Decision::Wait;
        };
        drop(shard);
        self.bytes.fetch_sub(t.bytes, Ordering::AcqRel);
        let failed = self.rule.errors && t.failed;
        if t.lost > 0 || t.incomplete {
            Decision::Drop {
                overflowed: true,
                lost: t.lost,
            }
        } else if t.slow || failed {
            Decision::Export(t.spans)
        } else {
            Decision::Drop {
                overflowed: false,
                lost: 0,
            }
        }
    }

    /// Bytes the pending traces hold now.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(std::sync::atomic::Ordering::Acquire)
    }
}
