//! What a whole trace holds in this process beside its ids: the values set with
//! [`trace_set`] (Go monkit's `Trace.Set`/`Get`), and the W3C `tracestate` and `baggage` it
//! arrived with, which every outgoing request of the trace carries on. All of it is set from
//! any span of the trace, read from any other and by observers, and gone when the trace's
//! local root span ends.
//!
//! Kept by trace id in a sharded process-wide map. Calls that start a trace here check one
//! shared counter when they end, so traces without values or context cost nothing more.

use crate::trace::span::current_raw;
// A process-wide static: std's atomics, as loom cannot build its own in a `const`.
use parking_lot::Mutex;
use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

/// Most values one trace holds; setting another key past it is refused (see [`trace_set`]).
pub const MAX_TRACE_VALUES: usize = 32;

/// Most traces holding an incoming `tracestate` or `baggage` at once; past it a new trace's
/// are not kept (counted by [`contexts_dropped`]) and its ids still propagate. Entries go
/// when their local root ends, so only a program that continues contexts and never runs a
/// span under them could reach it.
pub const MAX_TRACE_CONTEXTS: usize = 8192;

const SHARDS: usize = 16;

/// One trace's entry.
#[derive(Default)]
struct Entry {
    values: Vec<(String, String)>,
    /// Values of other types ([`trace_set_any`]), by name; they count against the same bound.
    typed: Vec<(String, Arc<dyn Any + Send + Sync>)>,
    /// The incoming W3C `tracestate`, already checked and combined.
    tracestate: Option<Arc<str>>,
    /// The incoming W3C `baggage`, already checked.
    baggage: Option<Arc<str>>,
}

type Values = HashMap<u128, Entry>;
static VALUES: LazyLock<[Mutex<Values>; SHARDS]> = LazyLock::new(Default::default);
/// Traces holding values or context now: a trace's root checks the map only when this is not 0.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Traces holding an incoming context now, for [`MAX_TRACE_CONTEXTS`].
static CONTEXTS: AtomicUsize = AtomicUsize::new(0);
static CONTEXTS_DROPPED: AtomicU64 = AtomicU64::new(0);

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
    let e = map.entry(cur.trace_id).or_default();
    let held = e.values.len() + e.typed.len();
    let vals = &mut e.values;
    if let Some(i) = vals.iter().position(|(k, _)| *k == key) {
        vals[i].1 = value;
    } else if held < MAX_TRACE_VALUES {
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
        .values
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
        .map(|e| e.values.clone())
        .unwrap_or_default()
}

/// Sets `key` to a value of any type for the current trace (a tenant struct, a deadline, an
/// `Arc` of shared state): read back with [`trace_get_any`] from any span of the trace. The
/// same bound as [`trace_set`] holds (both kinds together); `false` when there is no current
/// span or the trace holds [`MAX_TRACE_VALUES`] other keys.
///
/// ```
/// #[derive(Clone, Debug, PartialEq)]
/// struct Tenant { id: u32 }
///
/// #[monkit::task]
/// fn request() {
///     monkit::trace::trace_set_any("tenant", Tenant { id: 7 });
///     handler();
/// }
/// #[monkit::task]
/// fn handler() {
///     assert_eq!(monkit::trace::trace_get_any::<Tenant>("tenant"), Some(Tenant { id: 7 }));
///     assert_eq!(monkit::trace::trace_get_any::<u64>("tenant"), None, "another type");
/// }
/// request();
/// ```
pub fn trace_set_any<T: Any + Clone + Send + Sync>(key: &str, value: T) -> bool {
    let cur = current_raw();
    if cur.trace_id == 0 {
        return false;
    }
    let key = crate::trace::annotate::bounded_key(key);
    let mut map = shard(cur.trace_id).lock();
    let fresh = !map.contains_key(&cur.trace_id);
    let e = map.entry(cur.trace_id).or_default();
    let held = e.values.len() + e.typed.len();
    let value: Arc<dyn Any + Send + Sync> = Arc::new(value);
    if let Some(i) = e.typed.iter().position(|(k, _)| *k == key) {
        e.typed[i].1 = value;
    } else if held < MAX_TRACE_VALUES {
        e.typed.push((key, value));
    } else {
        return false;
    }
    if fresh {
        LIVE.fetch_add(1, Ordering::Relaxed);
    }
    true
}

/// The value of `key` in the current trace, if it was set with [`trace_set_any`] as a `T`.
pub fn trace_get_any<T: Any + Clone + Send + Sync>(key: &str) -> Option<T> {
    let cur = current_raw();
    if cur.trace_id == 0 || LIVE.load(Ordering::Relaxed) == 0 {
        return None;
    }
    let map = shard(cur.trace_id).lock();
    map.get(&cur.trace_id)?
        .typed
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.downcast_ref::<T>().cloned())
}

/// Keeps the W3C context a trace arrived with (either may be absent) until its local root
/// ends. `false` when [`MAX_TRACE_CONTEXTS`] traces hold one already (counted).
pub(crate) fn set_context(trace_id: u128, tracestate: Option<&str>, baggage: Option<&str>) -> bool {
    if tracestate.is_none() && baggage.is_none() {
        return true;
    }
    let mut map = shard(trace_id).lock();
    let fresh = !map.contains_key(&trace_id);
    let e = map.entry(trace_id).or_default();
    let had = e.tracestate.is_some() || e.baggage.is_some();
    if !had && CONTEXTS.load(Ordering::Relaxed) >= MAX_TRACE_CONTEXTS {
        if fresh {
            map.remove(&trace_id);
        }
        CONTEXTS_DROPPED.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    e.tracestate = tracestate.map(Arc::from);
    e.baggage = baggage.map(Arc::from);
    if !had {
        CONTEXTS.fetch_add(1, Ordering::Relaxed);
    }
    if fresh {
        LIVE.fetch_add(1, Ordering::Relaxed);
    }
    true
}

/// The W3C `tracestate` and `baggage` the trace `trace_id` arrived with, if it holds them.
pub(crate) fn context(trace_id: u128) -> (Option<Arc<str>>, Option<Arc<str>>) {
    if LIVE.load(Ordering::Relaxed) == 0 {
        return (None, None);
    }
    match shard(trace_id).lock().get(&trace_id) {
        Some(e) => (e.tracestate.clone(), e.baggage.clone()),
        None => (None, None),
    }
}

/// Incoming contexts not kept because [`MAX_TRACE_CONTEXTS`] traces held one already.
pub fn contexts_dropped() -> u64 {
    CONTEXTS_DROPPED.load(Ordering::Relaxed)
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
    if let Some(e) = shard(trace_id).lock().remove(&trace_id) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
        if e.tracestate.is_some() || e.baggage.is_some() {
            CONTEXTS.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
