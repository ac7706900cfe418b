//! A registry's span observers: the list every recorded span is shown to, and the shield that
//! keeps a panicking observer from failing the program's call.
//!
//! The list is read on every recorded span and changed only when an observer comes or goes,
//! so it is an `ArcSwap` of an immutable list: readers never lock or contend.

use crate::trace::observe::{FinishedSpan, SpanObserver, SpanStart};
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Clone)]
struct Registered {
    id: u64,
    observer: Arc<dyn SpanObserver>,
    chooses: bool,
    starts: bool,
}

/// The observers of one registry.
pub(crate) struct Observers {
    list: ArcSwap<Vec<Registered>>,
    next_id: AtomicU64,
    /// Observers that want span starts: while none does, starts skip the list.
    starters: AtomicU64,
    /// Observer hooks that panicked (each was caught; the call went on).
    panics: AtomicU64,
}

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observers")
            .field("count", &self.list.load().len())
            .finish()
    }
}

impl Observers {
    /// A list holding `first` already (the watchers' capture side, id 0).
    pub(crate) fn with(first: Arc<dyn SpanObserver>) -> Observers {
        Observers {
            starters: AtomicU64::new(u64::from(first.observes_starts())),
            list: ArcSwap::from_pointee(vec![Registered {
                id: 0,
                starts: first.observes_starts(),
                observer: first,
                chooses: false,
            }]),
            next_id: AtomicU64::new(1),
            panics: AtomicU64::new(0),
        }
    }

    /// Adds an observer: its id, and whether it chooses traces.
    pub(crate) fn add(&self, observer: Arc<dyn SpanObserver>) -> (u64, bool) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let chooses = observer.chooses_traces();
        let starts = observer.observes_starts();
        if starts {
            self.starters.fetch_add(1, Ordering::AcqRel);
        }
        self.list.rcu(|list| {
            let mut v: Vec<Registered> = list.to_vec();
            v.push(Registered {
                id,
                observer: observer.clone(),
                chooses,
                starts,
            });
            v
        });
        (id, chooses)
    }

    /// Removes the observer `id`; whether it chose traces.
    pub(crate) fn remove(&self, id: u64) -> bool {
        let (mut removed_chooser, mut removed_starter) = (false, false);
        self.list.rcu(|list| {
            removed_chooser = list.iter().any(|r| r.id == id && r.chooses);
            removed_starter = list.iter().any(|r| r.id == id && r.starts);
            list.iter()
                .filter(|r| r.id != id)
                .cloned()
                .collect::<Vec<_>>()
        });
        if removed_starter {
            self.starters.fetch_sub(1, Ordering::AcqRel);
        }
        removed_chooser
    }

    /// Whether an observer that chooses traces wants the trace this root starts.
    pub(crate) fn chosen(&self, root: &SpanStart) -> bool {
        let mut any = false;
        for r in self.list.load().iter() {
            if r.chooses && self.shielded(|| r.observer.new_trace(root)) == Some(true) {
                any = true;
            }
        }
        any
    }

    /// Whether some observer wants span starts.
    pub(crate) fn want_starts(&self) -> bool {
        self.starters.load(Ordering::Relaxed) > 0
    }

    /// A span of a recorded trace started.
    pub(crate) fn started(&self, span: &SpanStart) {
        for r in self.list.load().iter().filter(|r| r.starts) {
            self.shielded(|| r.observer.start(span));
        }
    }

    /// A span of a recorded trace finished.
    pub(crate) fn finished(&self, span: &FinishedSpan) {
        for r in self.list.load().iter() {
            self.shielded(|| r.observer.finish(span));
        }
    }

    /// Runs an observer's hook on the instrumented program's thread, so that a panicking
    /// observer costs a count, not the program's call (or, while the call itself unwinds, an
    /// abort). The other observers still run.
    fn shielded<R>(&self, hook: impl FnOnce() -> R) -> Option<R> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(hook)) {
            Ok(r) => Some(r),
            Err(_) => {
                self.panics.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    pub(crate) fn panics(&self) -> u64 {
        self.panics.load(Ordering::Relaxed)
    }

    /// Observers registered, the watchers' capture side not included.
    pub(crate) fn count(&self) -> usize {
        self.list.load().len() - 1
    }
}
