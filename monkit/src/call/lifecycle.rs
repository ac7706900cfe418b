//! One call, from begin to end: the only place that knows the sequence.
//!
//! A call begins by counting itself running and noting its caller, takes its ids (a fresh
//! trace for a root, its parent's trace otherwise), decides whether its trace is recorded
//! (sampling for a root; watchers and trace-choosing observers when the registry's `hot` count
//! says somebody is looking), tells observers of recorded traces, becomes the current span and
//! lists itself for `/ps`. It ends by reading the clock, recording its duration and outcome,
//! handing a recorded span to the observers, and restoring the caller's context.
//!
//! [`SyncCall`] runs on one thread (listed on that thread's `/ps` stack); [`AsyncCall`] may be
//! polled anywhere (listed in the shared slab) and is made current by whoever polls it. The
//! `#[task]` expansion, `Func::task`/`guard`/`future` and the `tracing` bridge all use these two.

use crate::call::func::{FuncInner, ENTRY};
use crate::call::live::{self, AsyncSlot, StackPos};
use crate::call::polls::Polled;
use crate::stats::outcome::Outcome;
use crate::stats::running::{Entered, EXACT};
use crate::trace::annotate;
use crate::trace::observe::{
    Extras, FinishedSpan, SpanEvent, SpanPolls, SpanStart, MAX_ERROR_TEXT, MAX_POLL_SEGMENTS,
};
use crate::trace::span::{
    current_raw, new_span_id, root_ids, set_current, Flags, SpanRef, LOCAL_ROOT, NOTED, RECORDED,
    SAMPLED,
};
use crate::trace::values;
use crate::util::clock::Tick;
use crate::util::sync::Ordering;
use std::fmt::Display;

/// The state every call carries: its function, span, parent and start.
struct Call {
    func: &'static FuncInner,
    span: SpanRef,
    parent_id: u64,
    t0: Tick,
    /// Where the call was counted running.
    entered: Entered,
}

impl Call {
    /// Starts a call under `parent`: its span and start. Returned as parts, so the caller
    /// builds its state in one place (moving a just-written struct costs store-forwarding
    /// stalls on the hot path).
    #[inline(always)]
    fn open(func: &'static FuncInner, parent: SpanRef) -> (SpanRef, Tick, Entered) {
        let entered = func.enter();
        func.parents
            .note(if parent.func == 0 { ENTRY } else { parent.func });
        let hub = &*func.hub;
        let (trace_id, span_id, mut flags) = if parent.trace_id == 0 {
            let (t, s) = root_ids();
            (t, s, hub.sampler.root_flags(s))
        } else {
            (
                parent.trace_id,
                new_span_id(),
                parent.flags & !(NOTED | LOCAL_ROOT),
            )
        };
        if parent.func == 0 {
            flags |= LOCAL_ROOT;
            if parent.span_id != 0 {
                flags = Self::continued(func, trace_id, flags);
            }
        }
        let t0 = Tick::now();
        if hub.hot.load(Ordering::Relaxed) != 0 {
            flags |= Self::looked_at(func, trace_id, span_id, parent, t0);
        }
        let span = SpanRef {
            trace_id,
            span_id,
            func: func.id + 1,
            flags,
        };
        if flags & (RECORDED | SAMPLED) != 0 {
            Self::tell_start(func, span, parent.span_id, t0);
        }
        (span, t0, entered)
    }

    /// A span continuing a trace from a carrier: sampled as the registry's sampler says of a
    /// caller's flag, and recorded if this registry is capturing the trace (the carrier can
    /// only say whether it is sampled).
    #[cold]
    #[inline(never)]
    fn continued(func: &'static FuncInner, trace_id: u128, flags: Flags) -> Flags {
        let flags = func.hub.sampler.continued_flags(trace_id, flags);
        if func.hub.watchers.capturing(trace_id) {
            flags | RECORDED
        } else {
            flags
        }
    }

    #[cold]
    #[inline(never)]
    fn tell_start(func: &'static FuncInner, span: SpanRef, parent_id: u64, t0: Tick) {
        if !func.hub.want_starts() {
            return;
        }
        let call = Call {
            func,
            span,
            parent_id,
            t0,
            entered: EXACT,
        };
        func.hub.started(&call.start());
    }

    /// Somebody is looking (watchers armed, or observers choosing traces): the flags they
    /// add to this span's trace.
    #[cold]
    #[inline(never)]
    fn looked_at(
        func: &'static FuncInner,
        trace_id: u128,
        span_id: u64,
        parent: SpanRef,
        t0: Tick,
    ) -> Flags {
        let span = SpanRef {
            trace_id,
            span_id,
            func: func.id + 1,
            flags: parent.flags & !(NOTED | LOCAL_ROOT),
        };
        let watched = func.watched.load(Ordering::Relaxed) > 0;
        func.hub
            .on_start(func.id, watched, &span, parent.func == 0, || {
                Call {
                    func,
                    span,
                    parent_id: parent.span_id,
                    t0,
                    entered: EXACT,
                }
                .start()
            })
    }

    fn start(&self) -> SpanStart {
        self.start_at(self.t0.unix_nanos())
    }

    /// [`Call::start`] with its Unix time already known.
    fn start_at(&self, start_unix_ns: u64) -> SpanStart {
        SpanStart {
            trace_id: self.span.trace_id,
            span_id: self.span.span_id,
            parent_id: (self.parent_id != 0).then_some(self.parent_id),
            func: &self.func.names,
            start_unix_ns,
            sampled: self.span.flags & SAMPLED != 0,
        }
    }

    /// Ends the call; `noted` when its span was annotated, `error` what a returned error says,
    /// and, for a future's call (`POLLED`), `polled` its polls (with `segments`, the ones a
    /// recorded span kept). A const parameter: the sync path carries no poll code at all.
    #[inline(always)]
    fn end<const POLLED: bool>(
        &self,
        outcome: Outcome,
        noted: bool,
        error: Option<&dyn Display>,
        polled: Polled,
        segments: Option<&Segments>,
    ) {
        let t1 = Tick::now();
        let last_slow = self
            .func
            .finish::<POLLED>(self.entered, self.t0, t1, outcome, polled);
        crate::call::flight::record(
            self.func,
            self.span.trace_id,
            self.span.span_id,
            self.parent_id,
            self.t0,
            t1,
            &outcome,
            noted,
            error,
        );
        if self.span.flags & (RECORDED | SAMPLED) != 0 {
            self.hand_off::<POLLED>(t1, outcome, error, (polled, segments, last_slow));
        } else if noted || annotate::foreign_pending() {
            Self::forget_notes(self.span.span_id);
        }
        if self.span.flags & LOCAL_ROOT != 0 && values::any() {
            values::end_trace(self.span.trace_id);
        }
    }

    #[cold]
    #[inline(never)]
    fn forget_notes(span_id: u64) {
        crate::call::flight::keep_notes(span_id, annotate::take(span_id).notes);
    }

    /// Hands the finished span of a recorded trace to the registry's observers.
    #[cold]
    #[inline(never)]
    fn hand_off<const POLLED: bool>(
        &self,
        t1: Tick,
        outcome: Outcome,
        error: Option<&dyn Display>,
        (polled, segments, last_slow): (Polled, Option<&Segments>, bool),
    ) {
        let hub = &self.func.hub;
        // One conversion to Unix time: the end is the start plus the duration.
        let (start_ns, took) = (self.t0.unix_nanos(), self.t0.nanos_until(t1));
        let finish_ns = start_ns + took;
        self.func.note_exemplar(
            outcome,
            took,
            self.span.trace_id,
            self.span.span_id,
            finish_ns,
        );
        let error = error
            .filter(|_| outcome.is_failure() && hub.error_text.load(Ordering::Relaxed))
            .map(|e| annotate::display_within(e, MAX_ERROR_TEXT));
        let annotate::Held {
            notes: annotations,
            events,
        } = annotate::take(self.span.span_id);
        if !annotations.is_empty() && crate::call::flight::active() {
            // The flight recorder's trees show a recorded span's notes too.
            crate::call::flight::keep_notes(self.span.span_id, annotations.clone());
        }
        hub.finished(&FinishedSpan {
            start: self.start_at(start_ns),
            finish_unix_ns: finish_ns,
            outcome,
            annotations,
            error,
            // A sync span's hand-off has no poll code at all, and a span without events none
            // for them.
            extras: if POLLED || !events.is_empty() {
                extras(
                    events,
                    POLLED.then(|| span_polls(self.t0, t1, polled, segments, last_slow)),
                    start_ns,
                )
            } else {
                None
            },
        });
    }
}

/// The polls of a recorded span as observers see them: the kept segments and the last poll
/// (`last_slow` when it was a slow one).
#[cold]
#[inline(never)]
fn span_polls(
    t0: Tick,
    t1: Tick,
    p: Polled,
    segs: Option<&Segments>,
    last_slow: bool,
) -> SpanPolls {
    let seg = |a: Tick, b: Tick| (t0.nanos_until(a), a.nanos_until(b));
    let mut segments = Vec::new();
    let mut slow = Vec::new();
    let kept = segs.into_iter().flatten().copied();
    let last = p.in_poll.then_some((p.last, t1, last_slow));
    for (a, b, was_slow) in kept.chain(last).take(MAX_POLL_SEGMENTS) {
        segments.push(seg(a, b));
        if was_slow {
            slow.push(seg(a, b));
        }
    }
    let busy = p.busy + p.running(t1);
    SpanPolls {
        count: p.count(),
        busy_ns: crate::util::clock::ticks_to_nanos(busy),
        segments,
        slow,
        slow_ns: crate::call::polls::slow_poll().as_nanos() as u64,
    }
}

/// A span's events and polls behind one shared pointer, when it has either; each slow poll is
/// an event at its start (`slow poll`, with its length) among the others, in time order.
#[cold]
#[inline(never)]
fn extras(
    mut events: Vec<SpanEvent>,
    polls: Option<SpanPolls>,
    start_ns: u64,
) -> Option<std::sync::Arc<Extras>> {
    if events.is_empty() && polls.is_none() {
        return None;
    }
    if let Some(p) = &polls {
        slow_poll_events(p, start_ns, &mut events);
    }
    Some(std::sync::Arc::new(Extras { events, polls }))
}

fn slow_poll_events(polls: &SpanPolls, start_ns: u64, events: &mut Vec<SpanEvent>) {
    if polls.slow.is_empty() {
        return;
    }
    for &(at, len) in &polls.slow {
        events.push(SpanEvent::new(
            start_ns + at,
            crate::call::polls::SLOW_POLL_EVENT,
            vec![(crate::call::polls::SLOW_POLL_NS.to_owned(), len.to_string())],
        ));
    }
    events.sort_by_key(|e| e.time_unix_ns);
}

/// The polls a recorded span keeps, as clock readings: `(start, end, slow)` of each.
pub(crate) type Segments = Vec<(Tick, Tick, bool)>;

/// A call on one thread: current from [`SyncCall::start`] until it ends. Dropped without
/// [`finish`](SyncCall::finish), it ends as a panic while unwinding and as a success otherwise.
/// Also what `#[task]` expands to (as `TaskGuard`), so no wrapper moves it around.
#[doc(hidden)]
#[must_use = "dropping the call ends it at once"]
pub struct SyncCall {
    call: Call,
    prev: SpanRef,
    pos: StackPos,
}

impl std::fmt::Debug for SyncCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncCall")
            .field("func", &self.func_name())
            .finish_non_exhaustive()
    }
}

impl SyncCall {
    /// The call's span id.
    pub(crate) fn span_id(&self) -> u64 {
        self.call.span.span_id
    }

    /// The full name of the function called.
    pub(crate) fn func_name(&self) -> &'static str {
        self.call.func.names.full_name()
    }

    #[inline(always)]
    pub(crate) fn start(func: &'static FuncInner) -> SyncCall {
        let prev = current_raw();
        // With no monkit span current, another tracing system's may parent the call.
        #[cfg(feature = "ambient-parent")]
        let parent = crate::trace::ambient::or_ambient(prev);
        #[cfg(not(feature = "ambient-parent"))]
        let parent = prev;
        let (span, t0, entered) = Call::open(func, parent);
        set_current(span);
        SyncCall {
            call: Call {
                func,
                span,
                parent_id: parent.span_id,
                t0,
                entered,
            },
            prev,
            pos: live::push(&span, &parent, t0),
        }
    }

    /// Ends the call with `outcome`.
    #[inline(always)]
    pub fn finish(self, outcome: Outcome) {
        self.finish_with(outcome, None);
    }

    /// Ends the call with `outcome`, and what the error said if it returned one (kept only for
    /// a recorded span).
    #[inline(always)]
    pub fn finish_with(self, outcome: Outcome, error: Option<&dyn Display>) {
        self.complete(outcome, error);
        std::mem::forget(self);
    }

    #[inline(always)]
    fn complete(&self, outcome: Outcome, error: Option<&dyn Display>) {
        live::pop(self.pos);
        let noted = current_raw().flags & NOTED != 0;
        self.call
            .end::<false>(outcome, noted, error, Polled::default(), None);
        set_current(self.prev);
    }
}

impl Drop for SyncCall {
    fn drop(&mut self) {
        self.complete(
            if std::thread::panicking() {
                Outcome::Panic
            } else {
                Outcome::Ok
            },
            None,
        );
    }
}

/// A call that may be suspended and resumed on any thread: whoever runs it makes
/// [`span`](AsyncCall::span) current for the time it runs. It ends only through
/// [`finish`](AsyncCall::finish).
pub(crate) struct AsyncCall {
    call: Call,
    /// Lists the call in `/ps` until it ends (released on drop).
    _live: AsyncSlot,
    /// Its polls so far, for a call polled by [`TaskFuture`](crate::call::task::TaskFuture).
    polled: Polled,
    /// The polls a recorded span keeps (made at its first poll ending pending).
    segments: Option<Box<Segments>>,
}

impl AsyncCall {
    #[inline(always)]
    pub(crate) fn start(func: &'static FuncInner, parent: SpanRef) -> AsyncCall {
        #[cfg(feature = "ambient-parent")]
        let parent = crate::trace::ambient::or_ambient(parent);
        let (span, t0, entered) = Call::open(func, parent);
        AsyncCall {
            call: Call {
                func,
                span,
                parent_id: parent.span_id,
                t0,
                entered,
            },
            _live: AsyncSlot::claim(&span, &parent, t0),
            polled: Polled {
                pending: 0,
                busy: 0,
                last: t0,
                in_poll: true,
            },
            segments: None,
        }
    }

    /// The poll running ended pending: its time counts as busy.
    #[inline(always)]
    pub(crate) fn paused(&mut self) {
        let start = self.polled.last;
        let end = Tick::now();
        let ticks = end.0.saturating_sub(start.0);
        self.polled.pending = self.polled.pending.saturating_add(1);
        self.polled.busy += ticks;
        self.polled.in_poll = false;
        self.call.func.slow_polls.note_poll(ticks);
        let slow = ticks > crate::call::polls::slow_ticks() && self.call.func.slow_poll(start, end);
        if self.call.span.flags & (RECORDED | SAMPLED) != 0 {
            self.keep_segment(start, end, slow);
        }
    }

    /// A recorded span keeps its polls (the first [`MAX_POLL_SEGMENTS`]).
    #[cold]
    #[inline(never)]
    fn keep_segment(&mut self, start: Tick, end: Tick, slow: bool) {
        let segs = self.segments.get_or_insert_with(Box::default);
        if segs.len() < MAX_POLL_SEGMENTS - 1 {
            segs.push((start, end, slow));
        }
    }

    /// A poll begins at `start` (not the first: that one began with the call).
    #[inline(always)]
    pub(crate) fn resumed(&mut self, start: Tick) {
        self.polled.last = start;
        self.polled.in_poll = true;
    }

    #[inline(always)]
    pub(crate) fn span(&self) -> SpanRef {
        self.call.span
    }

    /// Takes note that the span was annotated while current on this thread; whoever made it
    /// current calls this before restoring the previous context.
    #[inline(always)]
    pub(crate) fn leave(&mut self) {
        // Written only when set: a byte stored into the span on every poll would stall the
        // next poll's wide load of it (the store cannot be forwarded).
        let noted = current_raw().flags & NOTED;
        if noted != 0 {
            self.call.span.flags |= noted;
        }
    }

    /// Ends a call not polled as a future (an [`OpenCall`](crate::OpenCall), a `tracing`
    /// span): no polls to count.
    #[inline(always)]
    pub(crate) fn finish(self, outcome: Outcome, error: Option<&dyn Display>) {
        let noted = self.call.span.flags & NOTED != 0;
        self.call
            .end::<false>(outcome, noted, error, Polled::default(), None);
    }

    /// [`AsyncCall::finish_polled`] in the call's first poll.
    #[inline(always)]
    pub(crate) fn finish_once(&self, outcome: Outcome, error: Option<&dyn Display>) {
        let noted = self.call.span.flags & NOTED != 0;
        let once = Polled {
            pending: 0,
            busy: 0,
            last: self.call.t0,
            in_poll: true,
        };
        self.call.end::<true>(outcome, noted, error, once, None);
    }

    /// Ends a polled call in its last poll, without moving it: the owner drops it right after
    /// (which releases its `/ps` slot).
    #[inline(always)]
    pub(crate) fn finish_polled(&self, outcome: Outcome, error: Option<&dyn Display>) {
        let noted = self.call.span.flags & NOTED != 0;
        self.call
            .end::<true>(outcome, noted, error, self.polled, self.segments.as_deref());
    }

    /// Ends a call dropped before it finished: a panic while unwinding, else canceled.
    /// `polled` when it is a future's call (its polls are counted).
    pub(crate) fn finish_dropped(self, polled: bool) {
        let outcome = if std::thread::panicking() {
            Outcome::Panic
        } else {
            Outcome::Canceled
        };
        if polled {
            self.finish_polled(outcome, None);
        } else {
            self.finish(outcome, None);
        }
    }
}
