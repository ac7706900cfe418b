//! The spans running right now, for the `/ps` page, kept without a lock or an allocation on
//! the hot path.
//!
//! A thread's running sync calls are a stack only that thread writes: a call writes its span
//! into the next slot with plain stores under a per-slot sequence number, and the page reads
//! every thread's stack, skipping a slot caught mid-write. An async call may be suspended on
//! no thread at all, so it takes a slot of a shared slab with one compare-and-swap when it
//! starts and gives it back with one store when it ends. Past the stack depth or a full slab,
//! spans still run and count, they are just not listed.

use crate::trace::span::SpanRef;
use crate::util::clock::Tick;
use crate::util::shard::Sharded;
use crate::util::sync::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use parking_lot::Mutex;
use std::cell::Cell;
use std::sync::{Arc, LazyLock};

const STACK: usize = 64;
const SLAB: usize = 256;

#[derive(Default)]
pub(crate) struct Slot {
    /// Even: stable; odd: being written. For slab slots, 0 means free.
    seq: AtomicU32,
    func: AtomicU32,
    span_id: AtomicU64,
    parent_id: AtomicU64,
    trace_hi: AtomicU64,
    trace_lo: AtomicU64,
    start: AtomicU64,
}

impl Slot {
    /// Writes a span; `parent` is its parent context (a function's span, a remote one, or
    /// none).
    #[inline(always)]
    pub(crate) fn write(&self, span: &SpanRef, parent: &SpanRef, start: Tick) {
        let parent_id = parent.span_id;
        let s = self.seq.load(Ordering::Relaxed) | 1;
        self.seq.store(s, Ordering::Relaxed);
        fence(Ordering::Release);
        // The top bit: the parent is no function of this process (a remote context).
        let remote = u32::from(parent.func == 0 && parent_id != 0) << 31;
        self.func.store(span.func | remote, Ordering::Relaxed);
        self.span_id.store(span.span_id, Ordering::Relaxed);
        self.parent_id.store(parent_id, Ordering::Relaxed);
        self.trace_hi
            .store((span.trace_id >> 64) as u64, Ordering::Relaxed);
        self.trace_lo.store(span.trace_id as u64, Ordering::Relaxed);
        self.start.store(start.0, Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Release);
    }

    /// A consistent read, or `None` if the slot changed meanwhile.
    pub(crate) fn read(&self) -> Option<LiveSpan> {
        let s1 = self.seq.load(Ordering::Acquire);
        if s1 & 1 == 1 || s1 == 0 {
            return None;
        }
        let func = self.func.load(Ordering::Relaxed);
        let v = LiveSpan {
            func: func & !(1 << 31),
            remote_parent: func >> 31 == 1,
            span_id: self.span_id.load(Ordering::Relaxed),
            parent_id: self.parent_id.load(Ordering::Relaxed),
            trace_id: (u128::from(self.trace_hi.load(Ordering::Relaxed)) << 64)
                | u128::from(self.trace_lo.load(Ordering::Relaxed)),
            start: Tick(self.start.load(Ordering::Relaxed)),
        };
        fence(Ordering::Acquire);
        (self.seq.load(Ordering::Relaxed) == s1).then_some(v)
    }
}

/// One thread's stack of running sync calls.
struct ThreadStack {
    depth: AtomicUsize,
    slots: [Slot; STACK],
    alive: AtomicBool,
}

static THREADS: LazyLock<Mutex<Vec<Arc<ThreadStack>>>> = LazyLock::new(Default::default);

thread_local! {
    static STACK_PTR: Cell<*const ThreadStack> = const { Cell::new(std::ptr::null()) };
    static OWNER: Owner = const { Owner(Cell::new(None)) };
}

/// Unlists the thread's stack when the thread exits.
struct Owner(Cell<Option<Arc<ThreadStack>>>);

impl Drop for Owner {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            STACK_PTR.with(|p| p.set(std::ptr::null()));
            s.alive.store(false, Ordering::Relaxed);
            THREADS.lock().retain(|t| !Arc::ptr_eq(t, &s));
        }
    }
}

#[cold]
fn register_thread() -> *const ThreadStack {
    let stack = Arc::new(ThreadStack {
        depth: AtomicUsize::new(0),
        slots: std::array::from_fn(|_| Slot::default()),
        alive: AtomicBool::new(true),
    });
    let p = Arc::as_ptr(&stack);
    // Without a destructor slot (the thread is exiting) the stack cannot be unlisted: skip.
    if OWNER.try_with(|o| o.0.set(Some(stack.clone()))).is_err() {
        return std::ptr::null();
    }
    THREADS.lock().push(stack);
    STACK_PTR.with(|c| c.set(p));
    p
}

/// Where a sync call sits on its thread's stack; `usize::MAX` when not listed.
pub(crate) type StackPos = usize;

/// Lists a starting sync call on this thread's stack.
#[inline(always)]
pub(crate) fn push(span: &SpanRef, parent: &SpanRef, start: Tick) -> StackPos {
    let mut p = STACK_PTR.with(Cell::get);
    if p.is_null() {
        p = register_thread();
        if p.is_null() {
            return usize::MAX;
        }
    }
    // SAFETY: the Arc in OWNER keeps the stack alive as long as STACK_PTR is set.
    let s = unsafe { &*p };
    let d = s.depth.load(Ordering::Relaxed);
    if let Some(slot) = s.slots.get(d) {
        slot.write(span, parent, start);
    }
    s.depth.store(d + 1, Ordering::Release);
    d
}

/// Unlists the sync call at `pos` (and anything a panic left above it).
#[inline(always)]
pub(crate) fn pop(pos: StackPos) {
    if pos == usize::MAX {
        return;
    }
    let p = STACK_PTR.with(Cell::get);
    if !p.is_null() {
        // SAFETY: as in `push`.
        unsafe { &*p }.depth.store(pos, Ordering::Release);
    }
}

/// Slots for running async calls, one slab per shard.
struct Slab {
    slots: [Slot; SLAB],
    hint: AtomicUsize,
}

impl Default for Slab {
    fn default() -> Self {
        Slab {
            slots: std::array::from_fn(|_| Slot::default()),
            hint: AtomicUsize::new(0),
        }
    }
}

static SLABS: LazyLock<Sharded<Slab>> = LazyLock::new(Sharded::new);

/// A running async call's slot; released on drop.
pub(crate) struct AsyncSlot(Option<(&'static Slab, usize)>);

impl AsyncSlot {
    #[inline(always)]
    pub(crate) fn claim(span: &SpanRef, parent: &SpanRef, start: Tick) -> AsyncSlot {
        let (slab, lane) = SLABS.local();
        let h = slab.hint.load(Ordering::Relaxed);
        for i in 0..SLAB {
            let slot = &slab.slots[(h + i) % SLAB];
            // Other threads only ever free slots; the only claimer of an exclusive shard's slab
            // is its owner thread, which needs no compare-and-swap.
            if slot.seq.load(Ordering::Acquire) == 0
                && (lane.exclusive
                    || slot
                        .seq
                        .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok())
            {
                slot.write(span, parent, start);
                return AsyncSlot(Some((slab, (h + i) % SLAB)));
            }
        }
        AsyncSlot(None)
    }
}

impl Drop for AsyncSlot {
    fn drop(&mut self) {
        if let Some((slab, i)) = self.0 {
            slab.slots[i].seq.store(0, Ordering::Release);
            // The next claim starts at the slot just freed, so a thread running one call at a
            // time keeps reusing one warm slot.
            slab.hint.store(i, Ordering::Relaxed);
        }
    }
}

/// A span running now.
#[derive(Clone, Debug)]
pub struct LiveSpan {
    func: u32,
    remote_parent: bool,
    /// The span's id.
    pub span_id: u64,
    /// Its parent's id (0 for a root).
    pub parent_id: u64,
    /// Its trace.
    pub trace_id: u128,
    start: Tick,
}

impl LiveSpan {
    /// The span's function.
    pub fn func(&self) -> Option<crate::call::func::Func> {
        self.func
            .checked_sub(1)
            .and_then(crate::call::func::Func::by_id)
    }

    /// Whether its parent is a span of another process (a trace continued from headers).
    pub fn has_remote_parent(&self) -> bool {
        self.remote_parent
    }

    /// The span's annotations so far (see [`annotate`](crate::trace::annotate)).
    pub fn annotations(&self) -> Vec<(String, String)> {
        crate::trace::annotate::peek(self.span_id)
    }

    /// How long it has been running.
    pub fn elapsed(&self) -> std::time::Duration {
        self.start.until(Tick::now())
    }

    /// Start, in nanoseconds since the Unix epoch.
    pub fn start_unix_ns(&self) -> u64 {
        self.start.unix_nanos()
    }
}

/// Every span running now in the process, whichever registry its function belongs to, sync
/// and async, in no particular order ([`Registry::running_spans`](crate::Registry::running_spans)
/// gives one registry's).
pub fn all_running_spans() -> Vec<LiveSpan> {
    let mut out = Vec::new();
    let threads: Vec<Arc<ThreadStack>> = THREADS.lock().clone();
    for t in threads {
        if !t.alive.load(Ordering::Relaxed) {
            continue;
        }
        let d = t.depth.load(Ordering::Acquire).min(STACK);
        out.extend(t.slots[..d].iter().filter_map(Slot::read));
    }
    for slab in SLABS.iter() {
        out.extend(slab.slots.iter().filter_map(Slot::read));
    }
    out
}

/// Whether the span `span_id` is running now (listed in `/ps`).
fn is_running(span_id: u64) -> bool {
    span_id != 0 && all_running_spans().iter().any(|s| s.span_id == span_id)
}

/// Annotates the running span `span`, from any thread or task (not only as the current span):
/// shown in `/ps` at once and handed with the span to observers when it ends, like
/// [`annotate`](crate::annotate). `false`, and nothing kept, when the span is not running now
/// (finished already, or not listed in `/ps`: past 64 nested calls on a thread).
///
/// ```
/// #[monkit::task]
/// fn job() {
///     let me = monkit::current_span().unwrap();
///     std::thread::spawn(move || monkit::registry::annotate_span(me, "progress", "half"))
///         .join()
///         .unwrap();
/// }
/// let ((), spans) = monkit::collect_trace(job);
/// assert_eq!(spans[0].annotations, vec![("progress".into(), "half".into())]);
/// ```
pub fn annotate_span(span: SpanRef, key: &str, value: impl std::fmt::Display) -> bool {
    let id = span.span_id;
    if !is_running(id) {
        return false;
    }
    crate::trace::annotate::annotate_span(id, key, &value);
    // It may have ended between the look and the note: then nobody would take the note.
    if !is_running(id) {
        drop(crate::trace::annotate::take(id));
        return false;
    }
    true
}
