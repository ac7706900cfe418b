//! What `#[monkit::task]` expands to: a guard for sync calls and a future wrapper for async ones.

use crate::clock::Tick;
use crate::func::{FuncInner, FuncSite};
use crate::live::{self, AsyncSlot, StackPos};
use crate::span::{current_raw, set_current, SpanRef, RECORDED, SAMPLED};
use crate::trace::{finish_recorded, Outcome};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// One running call: started by [`TaskGuard::enter`], finished when dropped. A drop during a
/// panic counts a panic (and the panic goes on unwinding).
#[doc(hidden)]
pub struct TaskGuard {
    func: &'static FuncInner,
    span: SpanRef,
    prev: SpanRef,
    pos: StackPos,
    t0: Tick,
}

impl TaskGuard {
    #[inline(always)]
    pub fn enter(site: &'static FuncSite) -> TaskGuard {
        Self::enter_func(site.func())
    }

    #[inline(always)]
    pub(crate) fn enter_func(func: &'static FuncInner) -> TaskGuard {
        let prev = current_raw();
        let span = func.begin(prev);
        set_current(span);
        let t0 = Tick::now();
        TaskGuard {
            func,
            span,
            prev,
            pos: live::push(&span, prev.span_id, t0),
            t0,
        }
    }

    /// Ends the call with `outcome`.
    #[inline(always)]
    pub fn finish(self, outcome: Outcome) {
        self.complete(outcome);
        std::mem::forget(self);
    }

    #[inline(always)]
    fn complete(&self, outcome: Outcome) {
        let t1 = Tick::now();
        live::pop(self.pos);
        self.func.end(self.t0, t1, outcome);
        if self.span.flags & (RECORDED | SAMPLED) != 0 {
            finish_recorded(
                self.func,
                self.span,
                self.prev.span_id,
                self.t0,
                t1,
                outcome,
            );
        }
        set_current(self.prev);
    }
}

impl Drop for TaskGuard {
    /// Reached without `finish` when the call unwinds (a panic), or for calls that have no
    /// outcome to report (`impl Trait` returns, `Func::task`).
    fn drop(&mut self) {
        self.complete(if std::thread::panicking() {
            Outcome::Panic
        } else {
            Outcome::Ok
        });
    }
}

struct Started {
    span: SpanRef,
    parent_id: u64,
    t0: Tick,
    /// Lists the call in `/ps` until it ends (released on drop).
    _live: AsyncSlot,
}

/// An async call: the span starts at the first poll, is current during every poll (whichever
/// thread polls), and ends when the inner future completes, panics, or is dropped unfinished
/// (`canceled`).
#[doc(hidden)]
pub struct TaskFuture<F, C> {
    func: &'static FuncInner,
    started: Option<Started>,
    classify: C,
    inner: F,
}

impl<F, C> TaskFuture<F, C>
where
    F: Future,
    C: Fn(&F::Output) -> Outcome,
{
    #[inline(always)]
    pub fn new(site: &'static FuncSite, inner: F, classify: C) -> Self {
        Self::for_func(site.func(), inner, classify)
    }

    #[inline(always)]
    pub(crate) fn for_func(func: &'static FuncInner, inner: F, classify: C) -> Self {
        TaskFuture {
            func,
            started: None,
            classify,
            inner,
        }
    }
}

#[inline(always)]
fn end_async(func: &'static FuncInner, started: &mut Option<Started>, outcome: Outcome) {
    if let Some(s) = started.take() {
        let t1 = Tick::now();
        func.end(s.t0, t1, outcome);
        if s.span.flags & (RECORDED | SAMPLED) != 0 {
            finish_recorded(func, s.span, s.parent_id, s.t0, t1, outcome);
        }
    }
}

/// Ends the call as panicked if the inner poll unwinds, and restores the caller's context.
struct PollGuard<'a> {
    func: &'static FuncInner,
    started: &'a mut Option<Started>,
    prev: SpanRef,
    /// Still set when the drop comes from unwinding out of the inner poll.
    armed: bool,
}

impl Drop for PollGuard<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        if self.armed {
            end_async(self.func, self.started, Outcome::Panic);
        }
        set_current(self.prev);
    }
}

impl<F, C> Future for TaskFuture<F, C>
where
    F: Future,
    C: Fn(&F::Output) -> Outcome,
{
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `inner` is structurally pinned and never moved; other fields are not pinned.
        let TaskFuture {
            func,
            started,
            classify,
            inner,
        } = unsafe { self.get_unchecked_mut() };
        let func = *func;
        let prev = current_raw();
        let span = match started {
            Some(s) => s.span,
            None => {
                let span = func.begin(prev);
                let t0 = Tick::now();
                *started = Some(Started {
                    span,
                    parent_id: prev.span_id,
                    t0,
                    _live: AsyncSlot::claim(&span, prev.span_id, t0),
                });
                span
            }
        };
        set_current(span);
        let mut guard = PollGuard {
            func,
            started,
            prev,
            armed: true,
        };
        // SAFETY: see above.
        let polled = unsafe { Pin::new_unchecked(inner) }.poll(cx);
        guard.armed = false;
        drop(guard);
        match polled {
            Poll::Ready(out) => {
                end_async(func, started, classify(&out));
                Poll::Ready(out)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F, C> Drop for TaskFuture<F, C> {
    fn drop(&mut self) {
        if self.started.is_some() {
            let outcome = if std::thread::panicking() {
                Outcome::Panic
            } else {
                Outcome::Canceled
            };
            end_async(self.func, &mut self.started, outcome);
        }
    }
}

/// Picks an [`Outcome`] for a return value by autoderef specialization: `Result<_, E>` with
/// `E: ErrorKind` names the error by the trait, other `Result`s by the error's type name,
/// anything else is a success. Used as `(&&&Classify(&value)).monkit_outcome()`.
#[doc(hidden)]
pub struct Classify<'a, T>(pub &'a T);

#[doc(hidden)]
pub trait ViaErrorKind {
    fn monkit_outcome(&self) -> Outcome;
}
impl<T, E: crate::ErrorKind> ViaErrorKind for &&Classify<'_, Result<T, E>> {
    #[inline(always)]
    fn monkit_outcome(&self) -> Outcome {
        match self.0 {
            Ok(_) => Outcome::Ok,
            Err(e) => Outcome::Error(e.error_kind()),
        }
    }
}

#[doc(hidden)]
pub trait ViaTypeName {
    fn monkit_outcome(&self) -> Outcome;
}
impl<T, E> ViaTypeName for &Classify<'_, Result<T, E>> {
    #[inline(always)]
    fn monkit_outcome(&self) -> Outcome {
        match self.0 {
            Ok(_) => Outcome::Ok,
            Err(_) => Outcome::Error(crate::error::type_kind::<E>()),
        }
    }
}

#[doc(hidden)]
pub trait ViaAny {
    fn monkit_outcome(&self) -> Outcome;
}
impl<T> ViaAny for Classify<'_, T> {
    #[inline(always)]
    fn monkit_outcome(&self) -> Outcome {
        Outcome::Ok
    }
}
