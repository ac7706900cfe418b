//! What `#[monkit::task]` expands to (a guard for sync calls, a future wrapper for async
//! ones), and the same for code without the attribute: [`Func::task`], [`Func::guard`],
//! [`Func::future`]. Every one of them is a thin shell over `call.rs`.

use crate::call::{AsyncCall, SyncCall};
use crate::func::{Func, FuncInner};
use crate::observe::Outcome;
use crate::site::FuncSite;
use crate::span::{current_raw, set_current, SpanRef};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// One running sync call of a `#[task]` function: started by [`TaskGuard::enter`], finished
/// by `finish` or, while a panic unwinds, by its drop.
#[doc(hidden)]
pub type TaskGuard = SyncCall;

impl SyncCall {
    #[doc(hidden)]
    #[inline(always)]
    pub fn enter(site: &'static FuncSite) -> TaskGuard {
        SyncCall::start(site.func())
    }
}

pin_project_lite::pin_project! {
    /// An async call: the span starts at the first poll, is current during every poll
    /// (whichever thread polls), and ends when the inner future completes, panics, or is
    /// dropped unfinished (`canceled`).
    #[doc(hidden)]
    pub struct TaskFuture<F, C> {
        func: &'static FuncInner,
        call: Option<AsyncCall>,
        classify: C,
        #[pin]
        inner: F,
    }

    impl<F, C> PinnedDrop for TaskFuture<F, C> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(c) = this.project().call.take() {
                c.finish(if std::thread::panicking() {
                    Outcome::Panic
                } else {
                    Outcome::Canceled
                });
            }
        }
    }
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
    fn for_func(func: &'static FuncInner, inner: F, classify: C) -> Self {
        TaskFuture {
            func,
            call: None,
            classify,
            inner,
        }
    }
}

/// Ends the call as panicked if the inner poll unwinds, and restores the caller's context.
struct PollGuard<'a> {
    call: &'a mut Option<AsyncCall>,
    prev: SpanRef,
    /// Still set when the drop comes from unwinding out of the inner poll.
    armed: bool,
}

impl Drop for PollGuard<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        if let Some(c) = self.call.as_mut() {
            c.leave();
        }
        if self.armed {
            if let Some(c) = self.call.take() {
                c.finish(Outcome::Panic);
            }
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
        let this = self.project();
        let (func, call, classify) = (*this.func, this.call, this.classify);
        let prev = current_raw();
        let span = match call {
            Some(c) => c.span(),
            None => call.insert(AsyncCall::start(func, prev)).span(),
        };
        set_current(span);
        let mut guard = PollGuard {
            call,
            prev,
            armed: true,
        };
        let polled = this.inner.poll(cx);
        guard.armed = false;
        drop(guard);
        match polled {
            Poll::Ready(out) => {
                if let Some(c) = call.take() {
                    c.finish(classify(&out));
                }
                Poll::Ready(out)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Func {
    /// Runs `f` as one call of this function (success unless it panics).
    #[inline]
    pub fn task<R>(&self, f: impl FnOnce() -> R) -> R {
        let _call = SyncCall::start(self.0);
        f()
    }

    /// Runs `f` as one call, counting an `Err` as an error of the kind `E` names.
    #[inline]
    pub fn task_result<T, E: crate::ErrorKind>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let call = SyncCall::start(self.0);
        let r = f();
        call.finish(match &r {
            Ok(_) => Outcome::Ok,
            Err(e) => Outcome::Error(e.error_kind()),
        });
        r
    }

    /// Starts one call, ended when the guard drops (a drop while panicking counts a panic).
    #[inline]
    pub fn guard(&self) -> FuncGuard {
        FuncGuard(SyncCall::start(self.0))
    }

    /// Wraps a future as one call of this function (canceled if dropped unfinished).
    pub fn future<F: Future>(&self, fut: F) -> impl Future<Output = F::Output> {
        TaskFuture::for_func(self.0, fut, |_: &F::Output| Outcome::Ok)
    }

    /// Wraps a future as one call of this function whose outcome `classify` decides from the
    /// output (canceled if dropped unfinished, panic if it panics).
    pub fn future_classified<F, C>(&self, fut: F, classify: C) -> impl Future<Output = F::Output>
    where
        F: Future,
        C: Fn(&F::Output) -> Outcome,
    {
        TaskFuture::for_func(self.0, fut, classify)
    }
}

/// A running call of a [`Func`], ended on drop.
pub struct FuncGuard(SyncCall);

impl FuncGuard {
    /// Ends the call as failed with `kind`.
    pub fn fail(self, kind: &'static str) {
        self.0.finish(Outcome::Error(kind))
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
