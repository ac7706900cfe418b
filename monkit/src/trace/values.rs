//! Values of a whole trace (Go monkit's `Trace.Set`/`Get`): set from any span of the trace
//! in this process, read from any other and by observers, gone when the trace's local root
//! span ends.
//!
//! Kept by trace id in a sharded process-wide map. Calls that start a trace here check one
//! shared counter when they end, so traces without values cost nothing more.

use crate::trace::span::current_raw;
// A process-wide static: std's atomics, as loom cannot build its own in a `const`.
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

/// Most values one trace holds; setting another key past it is refused (see [`trace_set`]).
pub const MAX_TRACE_VALUES: usize = 32;

const SHARDS: usize = 16;
type Values = HashMap<u128, Vec<(String, String)>>;
static VALUES: LazyLock<[Mutex<Values>; SHARDS]> = LazyLock::new(Default::default);
/// Traces holding values now: a trace's root checks the map only when this is not 0.
static LIVE: AtomicUsize = AtomicUsize::new(0);

fn shard(trace_id: u128) -> &'static Mutex<Values> {
    &VALUES[(trace_id as u64 >> 9) as usize % SHARDS]
}

/// Sets `key` to `value` for the current trace. `false` when there is no current span, or the
/// trace already holds [`MAX_TRACE_VALUES`] other keys. Values are cut like annotations.
///
/// ```
/// #[monkit::task]
/// fn request() {
///     monkit::trace::trace_set("tenant", "acme");
///     handler();
/// }
/// #[monkit::task]
/// fn handler() {
///     assert_eq!(monkit::trace::trace_get("tenant").as_deref(), Some("acme"));
/// }
/// request();
/// assert_eq!(monkit::trace::trace_get("tenant"), None);
/// ```
pub fn trace_set(key: &str, value: impl std::fmt::Display) -> bool {
    let cur = current_raw();
    if cur.trace_id == 0 {
        return false;
    }
    let value = crate::trace::annotate::bounded_display(&value);
    let key = crate::trace::annotate::bounded_key(key);
    let mut map = shard(cur.trace_id).lock();
    let fresh = !map.contains_key(&cur.trace_id);
    let vals = map.entry(cur.trace_id).or_default();
    if let Some(i) = vals.iter().position(|(k, _)| *k == key) {
        vals[i].1 = value;
    } else if vals.len() < MAX_TRACE_VALUES {
        vals.push((key, value));
    } else {
        return false;
    }
    if fresh {
        LIVE.fetch_add(1, Ordering::Relaxed);
    }
    true
}

/// The value of `key` in the current trace.
pub fn trace_get(key: &str) -> Option<String> {
    let cur = current_raw();
    if cur.trace_id == 0 || LIVE.load(Ordering::Relaxed) == 0 {
        return None;
    }
    let map = shard(cur.trace_id).lock();
    map.get(&cur.trace_id)?
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

/// Every value of the trace `trace_id` (for observers: a span's trace values are still there
/// when its `finish` is called, the root's included).
pub fn trace_values(trace_id: u128) -> Vec<(String, String)> {
    if LIVE.load(Ordering::Relaxed) == 0 {
        return Vec::new();
    }
    shard(trace_id)
        .lock()
        .get(&trace_id)
        .cloned()
        .unwrap_or_default()
}

/// Whether any trace holds values (the one check a root's end makes).
#[inline(always)]
pub(crate) fn any() -> bool {
    LIVE.load(Ordering::Relaxed) != 0
}

/// The trace's local root has ended: its values go.
#[cold]
#[inline(never)]
pub(crate) fn end_trace(trace_id: u128) {
    if shard(trace_id).lock().remove(&trace_id).is_some() {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}
