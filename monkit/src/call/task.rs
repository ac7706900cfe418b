//! The shells a call runs in: a guard for sync calls ([`TaskGuard`], which is the lifecycle's
//! `SyncCall` itself) and a future wrapper for async ones ([`TaskFuture`]), and how a return
//! value picks its outcome ([`Classify`]). `#[monkit::task]` reaches them through its site
//! (`registry/site.rs`), `Func::task`/`guard`/`future` through the function; both are thin
//! shells over `lifecycle.rs`.

use crate::call::func::FuncInner;
use crate::call::lifecycle::{AsyncCall, SyncCall};
use crate::stats::outcome::Outcome;
use crate::trace::span::{current_raw, set_current, SpanRef};
use crate::util::clock::Tick;
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// One running sync call of a `#[task]` function: started by [`TaskGuard::enter`], finished
/// by `finish` or, while a panic unwinds, by its drop.
#[doc(hidden)]
pub type TaskGuard = SyncCall;

pin_project_lite::pin_project! {
    /// An async call: the span starts at the first poll, is current during every poll
    /// (whichever thread polls), and ends when the inner future completes, panics, or is
    /// dropped unfinished (`canceled`).
    #[doc(hidden)]
    pub struct TaskFuture<F, C, D> {
        func: &'static FuncInner,
        call: Option<AsyncCall>,
        classify: C,
        describe: D,
        #[pin]
        inner: F,
    }

    impl<F, C, D> PinnedDrop for TaskFuture<F, C, D> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(c) = this.project().call.take() {
                c.finish_dropped(true);
            }
        }
    }
}

impl<F, C, D> TaskFuture<F, C, D>
where
    F: Future,
    C: Fn(&F::Output) -> Outcome,
    D: Fn(&F::Output) -> Option<&dyn Display>,
{
    #[inline(always)]
    pub(crate) fn new(func: &'static FuncInner, inner: F, classify: C, describe: D) -> Self {
        TaskFuture {
            func,
            call: None,
            classify,
            describe,
            inner,
        }
    }
}

/// Only ever dropped while the inner poll unwinds (the normal path forgets it): ends the call
/// as panicked and restores the caller's context.
struct Unwinding<'a> {
    call: &'a mut Option<AsyncCall>,
    prev: &'a SpanRef,
}

impl Drop for Unwinding<'_> {
    #[cold]
    fn drop(&mut self) {
        if let Some(c) = self.call.take() {
            c.finish_polled(Outcome::Panic, None);
        }
        set_current(*self.prev);
    }
}

impl<F, C, D> Future for TaskFuture<F, C, D>
where
    F: Future,
    C: Fn(&F::Output) -> Outcome,
    D: Fn(&F::Output) -> Option<&dyn Display>,
{
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let call = this.call;
        let prev = current_raw();
        let (span, first) = match call {
            Some(c) => {
                c.resumed(Tick::now());
                (c.span(), false)
            }
            None => {
                // The span from the registers it was made in, not read back from the call
                // just stored (a wide load of narrow stores stalls).
                let started = AsyncCall::start(this.func, prev);
                let span = started.span();
                *call = Some(started);
                (span, true)
            }
        };
        set_current(span);
        let unwinding = Unwinding { call, prev: &prev };
        let polled = this.inner.poll(cx);
        if let Some(c) = unwinding.call.as_mut() {
            c.leave();
            match &polled {
                Poll::Ready(out) => {
                    let (outcome, error) = ((this.classify)(out), (this.describe)(out));
                    if first {
                        // Known here without reading back what the call holds.
                        c.finish_once(outcome, error);
                    } else {
                        c.finish_polled(outcome, error);
                    }
                    *unwinding.call = None;
                }
                Poll::Pending => c.paused(),
            }
        }
        set_current(prev);
        // Not unwinding: the guard's drop is for panics only.
        std::mem::forget(unwinding);
        polled
    }
}

/// Picks an [`Outcome`] for a return value by autoderef specialization: `Result<_, E>` with
/// `E: ErrorKind` names the error by the trait, with `E: std::error::Error` by the kind
/// handlers and built-ins (`error_kind_of`) or else its type name, with `E` a handle that
/// derefs to `dyn Error + Send + Sync` (`anyhow::Error`, `eyre::Report`) by what its chain
/// holds, other `Result`s by the error's type name, anything else is a success. Used as
/// `(&&&&&Classify(&value)).monkit_outcome()`.
#[doc(hidden)]
pub struct Classify<'a, T>(pub &'a T);

impl<T> std::fmt::Debug for Classify<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Classify")
    }
}

#[doc(hidden)]
pub trait ViaErrorKind {
    fn monkit_outcome(&self) -> Outcome;
}
impl<T, E: crate::stats::outcome::ErrorKind> ViaErrorKind for &&&&Classify<'_, Result<T, E>> {
    #[inline(always)]
    fn monkit_outcome(&self) -> Outcome {
        match self.0 {
            Ok(_) => Outcome::Ok,
            Err(e) => Outcome::Error(e.error_kind()),
        }
    }
}

#[doc(hidden)]
pub trait ViaStdError {
    fn monkit_outcome(&self) -> Outcome;
}
impl<T, E: std::error::Error + 'static> ViaStdError for &&&Classify<'_, Result<T, E>> {
    #[inline(always)]
    fn monkit_outcome(&self) -> Outcome {
        match self.0 {
            Ok(_) => Outcome::Ok,
            Err(e) => Outcome::Error(failure_kind_of(e)),
        }
    }
}

#[cold]
#[inline(never)]
fn failure_kind_of<E: std::error::Error + 'static>(e: &E) -> &'static str {
    crate::stats::outcome::error_kind_of(e).unwrap_or_else(crate::stats::outcome::type_kind::<E>)
}

#[doc(hidden)]
pub trait ViaDynError {
    fn monkit_outcome(&self) -> Outcome;
}
impl<T, E> ViaDynError for &&Classify<'_, Result<T, E>>
where
    E: std::ops::Deref<Target = dyn std::error::Error + Send + Sync + 'static>,
{
    #[inline(always)]
    fn monkit_outcome(&self) -> Outcome {
        match self.0 {
            Ok(_) => Outcome::Ok,
            Err(e) => Outcome::Error(dyn_failure_kind_of::<E>(&**e)),
        }
    }
}

#[cold]
#[inline(never)]
fn dyn_failure_kind_of<E>(e: &(dyn std::error::Error + Send + Sync + 'static)) -> &'static str {
    crate::stats::outcome::error_kind_of(e).unwrap_or_else(crate::stats::outcome::type_kind::<E>)
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
            Err(_) => Outcome::Error(crate::stats::outcome::type_kind::<E>()),
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

/// Finds what a returned error says, by the same autoderef specialization as [`Classify`]: an
/// `Err` whose type is `Display` gives its text, anything else nothing. Used as
/// `(&&Describe(&value)).monkit_error()`.
#[doc(hidden)]
pub struct Describe<'a, T>(pub &'a T);

impl<T> std::fmt::Debug for Describe<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Describe")
    }
}

#[doc(hidden)]
pub trait ViaDisplay<'a> {
    fn monkit_error(&self) -> Option<&'a dyn Display>;
}
impl<'a, T, E: Display> ViaDisplay<'a> for &Describe<'a, Result<T, E>> {
    #[inline(always)]
    fn monkit_error(&self) -> Option<&'a dyn Display> {
        match self.0 {
            Ok(_) => None,
            Err(e) => Some(e),
        }
    }
}

#[doc(hidden)]
pub trait ViaNoText<'a> {
    fn monkit_error(&self) -> Option<&'a dyn Display>;
}
impl<'a, T> ViaNoText<'a> for Describe<'a, T> {
    #[inline(always)]
    fn monkit_error(&self) -> Option<&'a dyn Display> {
        None
    }
}

/// What a future's output says when nothing can be said.
#[doc(hidden)]
pub fn no_text<T>(_: &T) -> Option<&dyn Display> {
    None
}
