//! Span identity and the current-span context.
//!
//! A call's span is a few words on the caller's stack: the thread-local context holds the
//! current span's ids, a `#[task]` call saves it, installs its own and restores it on exit. No
//! span is allocated unless somebody records it (trace capture or an exporter), which is decided
//! once per trace and inherited by every child.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A span's flags below. As wide as the padding after them would be, so a copied span moves
/// whole words (a `u8` left three padding bytes that copies moved one by one).
pub(crate) type Flags = u32;

/// Flag: spans of this trace are recorded (handed to collectors when they finish).
pub(crate) const RECORDED: Flags = 1;
/// Flag: the trace is sampled for export (propagated to other processes).
pub(crate) const SAMPLED: Flags = 2;
/// Flag of one span, never inherited: it holds annotations (see `annotate.rs`).
pub(crate) const NOTED: Flags = 4;
/// Flag of one span, never inherited: its parent is no span of this process, so its end
/// ends the trace here (see `values.rs`).
pub(crate) const LOCAL_ROOT: Flags = 8;
/// Flag: the trace id is random (W3C Trace Context Level 2 `random` trace flag), as every
/// trace monkit starts is; kept and passed on for a trace continued with it.
pub(crate) const RANDOM: Flags = 16;

/// The W3C trace-flags bits: sampled (bit 0) and random (bit 1).
const W3C_SAMPLED: u8 = 1;
const W3C_RANDOM: u8 = 2;

/// The identity of a span, cheap to copy and to send to another thread or task to parent work
/// there (see [`SpanRef::in_scope`] and [`InSpanExt::in_span`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SpanRef {
    pub(crate) trace_id: u128,
    pub(crate) span_id: u64,
    /// Function id + 1 of the span's function; 0 for a remote or synthetic parent.
    pub(crate) func: u32,
    pub(crate) flags: Flags,
}

impl SpanRef {
    /// A context continuing a trace that started elsewhere (another process): spans started
    /// under it belong to `trace_id` and have `parent_span_id` as parent.
    pub fn remote(trace_id: u128, parent_span_id: u64, sampled: bool) -> SpanRef {
        SpanRef::remote_with_flags(trace_id, parent_span_id, u8::from(sampled))
    }

    /// [`SpanRef::remote`] with the caller's W3C trace flags (`01` sampled, `02` random; other
    /// bits have no meaning yet and are dropped). A trace id of 0 starts a fresh, random one.
    pub fn remote_with_flags(trace_id: u128, parent_span_id: u64, w3c_flags: u8) -> SpanRef {
        let mut flags = 0;
        if w3c_flags & W3C_SAMPLED != 0 {
            flags |= SAMPLED;
        }
        if w3c_flags & W3C_RANDOM != 0 {
            flags |= RANDOM;
        }
        let trace_id = if trace_id == 0 {
            flags |= RANDOM;
            new_trace_id()
        } else {
            trace_id
        };
        SpanRef {
            trace_id,
            span_id: parent_span_id,
            func: 0,
            flags,
        }
    }

    /// The 128-bit trace id (W3C trace-context compatible; never 0).
    pub fn trace_id(&self) -> u128 {
        self.trace_id
    }

    /// The 64-bit span id (never 0 for a span; 0 for a bare trace context).
    pub fn span_id(&self) -> u64 {
        self.span_id
    }

    /// Whether the trace is sampled for export.
    pub fn is_sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }

    /// Whether spans of this trace are being recorded.
    pub fn is_recorded(&self) -> bool {
        self.flags & RECORDED != 0
    }

    /// Whether this span goes to observers when it ends (its trace is sampled for export, or
    /// recorded for a capture): notes that matter only on a finished span can be skipped when
    /// it does not.
    pub fn is_kept(&self) -> bool {
        self.flags & (SAMPLED | RECORDED) != 0
    }

    /// Whether the trace id is random (W3C Level 2): true for every trace monkit starts, and
    /// for a continued trace whose caller said so.
    pub fn is_random(&self) -> bool {
        self.flags & RANDOM != 0
    }

    /// The W3C trace-flags byte of this context: sampled (`01`) and random (`02`).
    pub fn w3c_flags(&self) -> u8 {
        let mut f = 0;
        if self.is_sampled() {
            f |= W3C_SAMPLED;
        }
        if self.is_random() {
            f |= W3C_RANDOM;
        }
        f
    }

    /// The W3C `tracestate` this span's trace arrived with, which outgoing requests of the
    /// trace carry on (`None` for a trace that started here or came without one).
    pub fn tracestate(&self) -> Option<std::sync::Arc<str>> {
        crate::trace::values::context(self.trace_id).0
    }

    /// The W3C `baggage` this span's trace arrived with, which outgoing requests of the trace
    /// carry on.
    pub fn baggage(&self) -> Option<std::sync::Arc<str>> {
        crate::trace::values::context(self.trace_id).1
    }

    /// Runs `f` with this span as the current one, so spans started inside are its children.
    pub fn in_scope<R>(self, f: impl FnOnce() -> R) -> R {
        let _restore = enter_ctx(Some(self));
        f()
    }

    pub(crate) fn is_some(&self) -> bool {
        self.trace_id != 0
    }
}

thread_local! {
    static CURRENT: Cell<SpanRef> = const { Cell::new(SpanRef { trace_id: 0, span_id: 0, func: 0, flags: 0 }) };
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// The span running on this thread (or in this task), if any.
pub fn current_span() -> Option<SpanRef> {
    let mut c = current_raw();
    c.flags &= !(NOTED | LOCAL_ROOT);
    c.is_some().then_some(c)
}

#[inline(always)]
pub(crate) fn current_raw() -> SpanRef {
    CURRENT.with(Cell::get)
}

#[inline(always)]
pub(crate) fn set_current(s: SpanRef) {
    CURRENT.with(|c| c.set(s))
}

/// Restores the previous context on drop.
pub(crate) struct CtxGuard(SpanRef);

impl Drop for CtxGuard {
    #[inline(always)]
    fn drop(&mut self) {
        set_current(self.0);
    }
}

#[inline(always)]
pub(crate) fn enter_ctx(s: Option<SpanRef>) -> CtxGuard {
    let prev = current_raw();
    set_current(s.unwrap_or_default());
    CtxGuard(prev)
}

/// A fresh non-zero 64-bit id from a per-thread xorshift generator seeded once per thread.
#[inline(always)]
pub(crate) fn new_span_id() -> u64 {
    RNG.with(|r| {
        let mut x = r.get();
        if x == 0 {
            x = seed();
        }
        // xorshift64*: full period over non-zero states, and the output is never zero.
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        r.set(x);
        // An odd multiplier is invertible mod 2^64, so a non-zero state gives a non-zero id.
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

#[cold]
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(crate::util::clock::Tick::now().0);
    h.write_usize(&h as *const _ as usize);
    h.finish() | 1
}

/// A fresh 128-bit trace id.
pub(crate) fn new_trace_id() -> u128 {
    root_ids().0
}

/// Ids of a new root span from one draw: the span id, and a trace id whose low half is that
/// span id and whose high half is the draw through a splitmix64 finalizer (a bijection, so
/// it is non-zero and as unpredictable as the draw). A root span id equal to the low half of
/// its trace id is the usual B3 convention.
#[inline(always)]
pub(crate) fn root_ids() -> (u128, u64) {
    let id = new_span_id();
    let mut z = id.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    let hi = (z ^ (z >> 31)) | 1;
    ((u128::from(hi) << 64) | u128::from(id), id)
}

pin_project_lite::pin_project! {
    /// Runs a future with `span` as the current span on every poll. Made by
    /// [`InSpanExt::in_span`].
    #[derive(Debug)]
    pub struct InSpan<F> {
        #[pin]
        inner: F,
        span: SpanRef,
    }
}

impl<F: Future> Future for InSpan<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _restore = enter_ctx(Some(*this.span));
        this.inner.poll(cx)
    }
}

/// Parent a future's spans explicitly, for work spawned onto another task or thread.
///
/// ```
/// use monkit::trace::InSpanExt;
/// # async fn work() {}
/// # async fn demo() {
/// let parent = monkit::current_span();
/// let handle = async move { work().in_span_opt(parent).await };
/// # handle.await
/// # }
/// ```
pub trait InSpanExt: Future + Sized {
    /// Polls `self` with `span` as the current span.
    fn in_span(self, span: SpanRef) -> InSpan<Self> {
        InSpan { inner: self, span }
    }

    /// Like [`InSpanExt::in_span`], keeping the empty context when `span` is `None`.
    fn in_span_opt(self, span: Option<SpanRef>) -> InSpan<Self> {
        InSpan {
            inner: self,
            span: span.unwrap_or_default(),
        }
    }
}

impl<F: Future> InSpanExt for F {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_nonzero_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = new_span_id();
            assert_ne!(id, 0);
            assert!(seen.insert(id));
        }
        assert_ne!(new_trace_id(), 0);
    }
}
