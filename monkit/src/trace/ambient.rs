//! A parent from another tracing system: when a call starts with no monkit span current, a
//! bridge (monkit-opentelemetry) may name the span that system has current, so the call
//! continues its trace instead of starting one. One function for the process, set once; the
//! hot path pays one relaxed load, and only for calls that would start a trace, and only with
//! the feature `ambient-parent` (which the bridges turn on): without it, nothing at all.

use crate::trace::span::SpanRef;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// The bridge's function; `ON` says whether to ask it (it can be switched off, not replaced).
static SOURCE: OnceLock<fn() -> Option<SpanRef>> = OnceLock::new();
static ON: AtomicBool = AtomicBool::new(false);

/// Makes `source` the place calls with no monkit parent look for one: it returns the span
/// another tracing system has current on this thread (as [`SpanRef::remote_with_flags`]),
/// or `None`. The first source set stays for the life of the process; setting it again only
/// switches it back on. Returns whether `source` is the one in use.
pub fn set_ambient_parent(source: fn() -> Option<SpanRef>) -> bool {
    let used = std::ptr::fn_addr_eq(*SOURCE.get_or_init(|| source), source);
    ON.store(true, Ordering::Release);
    used
}

/// Stops asking the ambient parent's source (see [`set_ambient_parent`]).
pub fn clear_ambient_parent() {
    ON.store(false, Ordering::Release);
}

/// `parent`, or when it is no span, the ambient parent if there is one.
#[inline(always)]
pub(crate) fn or_ambient(parent: SpanRef) -> SpanRef {
    if parent.trace_id != 0 || !ON.load(Ordering::Relaxed) {
        return parent;
    }
    ask()
}

#[cold]
#[inline(never)]
fn ask() -> SpanRef {
    SOURCE
        .get()
        .and_then(|f| f())
        .filter(|p| p.trace_id != 0)
        .map(|mut p| {
            // Whatever the source made, it is a parent from outside this process's spans.
            p.func = 0;
            p
        })
        .unwrap_or_default()
}
