//! A call whose end is not a return: begun by [`Func::open`](crate::Func::open), carried by
//! whatever owns it (a response body that streams after its headers were sent, a callback,
//! a tower service's future), and ended by [`OpenCall::finish`] on any thread.
//!
//! It is the lifecycle's async call with nothing around it, so integrations that need their
//! own future or body type (the tower layers) record exactly what `#[task]` records.

use crate::call::lifecycle::AsyncCall;
use crate::stats::outcome::Outcome;
use crate::trace::span::{current_raw, set_current, SpanRef};
use std::fmt::Display;

/// One running call of a [`Func`](crate::Func), ended by [`finish`](OpenCall::finish); dropped
/// unfinished it counts as `canceled` (as `panic` while unwinding). Its span is current only
/// inside [`enter`](OpenCall::enter).
///
/// ```
/// static MON: monkit::Scope = monkit::scope!();
/// let func = MON.func("stream_reply");
/// let mut call = func.open(None);
/// call.enter(|| monkit::annotate("rows", 3));
/// // ... later, maybe on another thread, when the last byte is sent:
/// call.finish(monkit::Outcome::Ok);
/// assert_eq!(func.stats().successes, 1);
/// ```
#[must_use = "dropping the OpenCall ends the call at once, as canceled"]
pub struct OpenCall {
    call: Option<AsyncCall>,
}

impl std::fmt::Debug for OpenCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenCall")
            .field("span", &self.span())
            .finish_non_exhaustive()
    }
}

/// Restores the caller's context when `enter` returns or unwinds.
struct Leave<'a> {
    call: &'a mut AsyncCall,
    prev: SpanRef,
}

impl Drop for Leave<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.call.leave();
        set_current(self.prev);
    }
}

impl OpenCall {
    #[inline(always)]
    pub(crate) fn new(call: AsyncCall) -> OpenCall {
        OpenCall { call: Some(call) }
    }

    /// The call's span (for a child started elsewhere, or for propagation).
    pub fn span(&self) -> SpanRef {
        self.call.as_ref().map(AsyncCall::span).unwrap_or_default()
    }

    /// Runs `f` with this call's span current: what it annotates and the calls it makes
    /// belong to this call.
    #[inline]
    pub fn enter<R>(&mut self, f: impl FnOnce() -> R) -> R {
        match self.call.as_mut() {
            Some(call) => {
                let prev = current_raw();
                set_current(call.span());
                let _leave = Leave { call, prev };
                f()
            }
            None => f(),
        }
    }

    /// Ends the call with `outcome`.
    #[inline]
    pub fn finish(self, outcome: Outcome) {
        self.finish_with(outcome, None);
    }

    /// Ends the call with `outcome`, and what went wrong when it failed (kept only for a
    /// recorded span, as a `#[task]`'s returned error is).
    #[inline]
    pub fn finish_with(mut self, outcome: Outcome, error: Option<&dyn Display>) {
        if let Some(c) = self.call.take() {
            c.finish(outcome, error);
        }
    }
}

impl Drop for OpenCall {
    fn drop(&mut self) {
        if let Some(c) = self.call.take() {
            c.finish_dropped(false);
        }
    }
}
