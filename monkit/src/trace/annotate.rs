//! Annotations: key/value notes on the current span, kept until the span finishes, for every
//! running span (shown in `/ps`) and handed with recorded spans to observers; and events:
//! timestamped notes ([`event`]), kept only for spans that are recorded.
//!
//! The store is process-wide and keyed by span id (span ids are unique in the process, and an
//! annotation must find its span whichever thread or registry it runs in), split in shards so
//! annotating threads rarely meet. A span that was annotated carries the `NOTED` flag in the
//! thread's context, so a call that ends without notes (nearly all of them) never looks here.
//! Memory is bounded per span: at most [`MAX_NOTES`] notes, keys and values cut to
//! [`MAX_KEY`] and [`MAX_VALUE`] bytes.

use crate::trace::observe::SpanEvent;
use crate::trace::span::{current_raw, set_current, NOTED, RECORDED, SAMPLED};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

/// Most notes one span keeps; later ones are dropped (counted in `monkit.annotations_dropped`
/// of no scope: see [`dropped`]).
pub const MAX_NOTES: usize = 32;
/// Longest key kept, in bytes.
pub const MAX_KEY: usize = 64;
/// Longest value kept, in bytes; longer values end in `…`.
pub const MAX_VALUE: usize = 512;

/// Span ids are random already: hashing them again (SipHash) would only cost time.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }
}

/// What a span holds: its notes, and (recorded spans only) its events.
#[derive(Default)]
pub(crate) struct Held {
    pub(crate) notes: Vec<(String, String)>,
    pub(crate) events: Vec<SpanEvent>,
}

type Notes = HashMap<u64, Held, std::hash::BuildHasherDefault<IdHasher>>;

/// Most events one span keeps; later ones are dropped (counted: [`events_dropped`]).
pub const MAX_EVENTS: usize = 64;
/// Most attributes one event keeps.
pub const MAX_EVENT_ATTRIBUTES: usize = 16;
static EVENTS_DROPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

const SHARDS: usize = 16;

/// One shard on its own cache lines, so threads locking different shards never meet.
#[repr(align(128))]
#[derive(Default)]
struct Shard(Mutex<Notes>);

static NOTES: LazyLock<[Shard; SHARDS]> = LazyLock::new(Default::default);
static DROPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Spans holding notes now, over all shards: while zero (a program that does not annotate),
/// a recorded span's end reads this one line, written only by annotating threads, and locks
/// nothing.
static HELD: AtomicUsize = AtomicUsize::new(0);
/// Spans annotated through a handle (not as the current span) that still hold notes: while
/// any does, a call that ends unrecorded looks for its notes here, since the annotating thread
/// could not mark the call's own context.
static FOREIGN: AtomicUsize = AtomicUsize::new(0);
static FOREIGN_IDS: LazyLock<Mutex<std::collections::HashSet<u64>>> =
    LazyLock::new(Default::default);

fn shard(span_id: u64) -> &'static Mutex<Notes> {
    &NOTES[(span_id >> 7) as usize % SHARDS].0
}

/// `s` cut to at most `max` bytes at a character boundary, marked with `…` when cut.
fn bounded(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max.saturating_sub('…'.len_utf8());
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// Writes `value`'s `Display` form, stopping once past `max` bytes (so a huge value is
/// never formatted whole).
struct Capped {
    out: String,
    max: usize,
}

impl Write for Capped {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.out.len() > self.max {
            return Err(std::fmt::Error);
        }
        self.out.push_str(s);
        Ok(())
    }
}

/// `value`'s `Display` form, cut to [`MAX_VALUE`] bytes without formatting past it.
pub(crate) fn bounded_display(value: &dyn std::fmt::Display) -> String {
    display_within(value, MAX_VALUE)
}

/// `value` as text, cut to `max` bytes on a character boundary (formatting stops there).
pub(crate) fn display_within(value: &dyn std::fmt::Display, max: usize) -> String {
    let mut v = Capped {
        out: String::new(),
        max,
    };
    let _ = write!(v, "{value}");
    bounded(v.out, max)
}

/// A key cut to [`MAX_KEY`] bytes.
pub(crate) fn bounded_key(key: &str) -> String {
    bounded(key.to_owned(), MAX_KEY)
}

/// Adds a key/value annotation to the current span: shown in `/ps` while the span runs, and
/// handed with the span to observers (trace pages, exporters) when its trace is recorded.
/// Outside any span it does nothing.
///
/// ```
/// #[monkit::task]
/// fn checkout(order: u64) {
///     monkit::annotate("order", order);
/// }
/// checkout(7);
/// ```
pub fn annotate(key: &str, value: impl std::fmt::Display) {
    let mut cur = current_raw();
    if cur.span_id == 0 {
        return;
    }
    let (key, value) = (bounded_key(key), bounded_display(&value));
    if !push(&mut shard(cur.span_id).lock(), cur.span_id, key, value) {
        return;
    }
    if cur.flags & NOTED == 0 {
        cur.flags |= NOTED;
        set_current(cur);
    }
}

/// Adds a note to the span `span_id` from anywhere (another thread, a handle): the span's end
/// finds it although its own context was never marked. The caller knows the span runs.
pub(crate) fn annotate_span(span_id: u64, key: &str, value: &dyn std::fmt::Display) {
    let (key, value) = (bounded_key(key), bounded_display(value));
    let mut notes = shard(span_id).lock();
    if FOREIGN_IDS.lock().insert(span_id) {
        FOREIGN.fetch_add(1, Ordering::Relaxed);
    }
    push(&mut notes, span_id, key, value);
}

/// Adds one note to a span's list in its (locked) shard; `false` when the span holds
/// [`MAX_NOTES`] already (the note is dropped and counted).
fn push(notes: &mut Notes, span_id: u64, key: String, value: String) -> bool {
    let mine = &mut held_by(notes, span_id).notes;
    if mine.len() >= MAX_NOTES {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    mine.push((key, value));
    true
}

/// What `span_id` holds in its (locked) shard, made (and counted) at its first note.
fn held_by(notes: &mut Notes, span_id: u64) -> &mut Held {
    notes.entry(span_id).or_insert_with(|| {
        HELD.fetch_add(1, Ordering::Relaxed);
        Held::default()
    })
}

/// Adds a timestamped event to the current span when its trace is recorded (captured,
/// sampled for export, chosen by an observer): `/trace/json` lists it, the SVG marks it on the
/// span's bar, Zipkin gets it as an annotation and OTLP as a span event. In an unrecorded span,
/// or outside any, it does nothing and allocates nothing. At most [`MAX_EVENTS`] a span; the
/// rest are counted ([`events_dropped`]).
///
/// ```
/// #[monkit::task]
/// fn checkout(order: u64) {
///     monkit::trace::event("cart loaded");
///     monkit::trace::event_with("payment", &[("provider", "acme"), ("attempt", "2")]);
/// }
/// checkout(7);
/// ```
#[inline]
pub fn event(name: &str) {
    event_with(name, &[]);
}

/// [`event`] with attributes (at most [`MAX_EVENT_ATTRIBUTES`]; keys and values cut like
/// annotations').
#[inline]
pub fn event_with(name: &str, attributes: &[(&str, &str)]) {
    // Inlined into the caller down to this check: an unrecorded call pays a load and a test.
    let cur = current_raw();
    if cur.span_id == 0 || cur.flags & (RECORDED | SAMPLED) == 0 {
        return;
    }
    add_event_of(name, attributes);
}

#[inline(never)]
fn add_event_of(name: &str, attributes: &[(&str, &str)]) {
    add_event(
        name,
        attributes
            .iter()
            .map(|(k, v)| (*k, v as &dyn std::fmt::Display)),
    );
}

/// Adds an event to the current span, which the caller knows is recorded.
pub(crate) fn add_event<'a>(
    name: &str,
    attributes: impl Iterator<Item = (&'a str, &'a dyn std::fmt::Display)>,
) {
    let mut cur = current_raw();
    let time_unix_ns = crate::util::clock::Tick::now().unix_nanos();
    let event = SpanEvent {
        time_unix_ns,
        name: bounded(name.to_owned(), MAX_VALUE),
        attributes: attributes
            .take(MAX_EVENT_ATTRIBUTES)
            .map(|(k, v)| (bounded_key(k), bounded_display(v)))
            .collect(),
    };
    {
        let mut notes = shard(cur.span_id).lock();
        let events = &mut held_by(&mut notes, cur.span_id).events;
        if events.len() >= MAX_EVENTS {
            EVENTS_DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        events.push(event);
    }
    if cur.flags & NOTED == 0 {
        cur.flags |= NOTED;
        set_current(cur);
    }
}

/// Whether the current span is recorded: its events are kept.
#[cfg(any(feature = "log", feature = "tracing"))]
pub(crate) fn current_recorded() -> bool {
    let cur = current_raw();
    cur.span_id != 0 && cur.flags & (RECORDED | SAMPLED) != 0
}

/// Events dropped because their span already held [`MAX_EVENTS`].
pub fn events_dropped() -> u64 {
    EVENTS_DROPPED.load(Ordering::Relaxed)
}

/// Whether some span holds notes made through a handle (the one check an unrecorded call's
/// end makes besides its own flag).
#[inline(always)]
pub(crate) fn foreign_pending() -> bool {
    FOREIGN.load(Ordering::Relaxed) != 0
}

/// Annotations dropped because their span already held [`MAX_NOTES`].
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// The annotations and events of a finishing span, in order, removed from the store.
#[inline]
pub(crate) fn take(span_id: u64) -> Held {
    // The span's own notes were counted before its end (same thread, or handed over with
    // the span), so a zero here means it has none.
    if HELD.load(Ordering::Relaxed) == 0 {
        return Held::default();
    }
    take_held(span_id)
}

fn take_held(span_id: u64) -> Held {
    let mut notes = shard(span_id).lock();
    if notes.is_empty() {
        return Held::default();
    }
    let mine = notes.remove(&span_id);
    if mine.is_some() {
        HELD.fetch_sub(1, Ordering::Relaxed);
        if FOREIGN.load(Ordering::Relaxed) != 0 && FOREIGN_IDS.lock().remove(&span_id) {
            FOREIGN.fetch_sub(1, Ordering::Relaxed);
        }
    }
    mine.unwrap_or_default()
}

/// The annotations of a running span, copied.
pub(crate) fn peek(span_id: u64) -> Vec<(String, String)> {
    shard(span_id)
        .lock()
        .get(&span_id)
        .map(|h| h.notes.clone())
        .unwrap_or_default()
}

/// Annotated spans held now (for tests of bounded memory).
#[doc(hidden)]
pub fn held() -> usize {
    NOTES.iter().map(|s| s.0.lock().len()).sum()
}

/// Longest `Debug` form kept of one argument, in bytes.
const MAX_ARG: usize = 128;

/// Records a `#[task(args)]` function's arguments on the current span as the annotation
/// `args`: `name=<Debug>` pairs, each cut to 128 bytes (and never formatted further).
#[doc(hidden)]
pub fn record_args(args: &[(&str, &dyn std::fmt::Debug)]) {
    if current_raw().span_id == 0 {
        return;
    }
    let mut all = String::new();
    for (i, (name, value)) in args.iter().enumerate() {
        let mut v = Capped {
            out: String::new(),
            max: MAX_ARG,
        };
        let _ = write!(v, "{value:?}");
        if i > 0 {
            all.push_str(", ");
        }
        all.push_str(name);
        all.push('=');
        all.push_str(&bounded(v.out, MAX_ARG));
    }
    annotate("args", all);
}
