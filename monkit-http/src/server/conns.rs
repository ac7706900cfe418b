//! The connections one listener serves: how many, from which addresses, what each is doing,
//! and which to close when a newer client or the response-byte budget needs the room.
//!
//! A connection counts as busy only while the server works on one of its requests. Time is
//! measured from the last *progress* (a request arriving, a request body frame received, a
//! response frame handed to the protocol), not from the last byte: HTTP/2 keep-alive PINGs
//! and their answers move bytes without serving anything, so a client that answers PINGs
//! but never reads its responses still goes idle.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// A connection whose responses made no progress for this long while the response-byte
/// budget is spent is closed to make room: a client reading its answers on any real link
/// takes a chunk far more often.
const STALLED: Duration = Duration::from_secs(1);

/// The connections being served.
pub(super) struct Conns {
    max: usize,
    per_address: usize,
    /// Response bytes rendered but not yet handed to the protocol, over all connections.
    max_unsent: u64,
    next_id: AtomicU64,
    live: parking_lot::Mutex<Live>,
    pub(super) stats: Arc<ListenerStats>,
}

#[derive(Default)]
struct Live {
    by_id: HashMap<u64, (IpAddr, Arc<Activity>, Arc<tokio::sync::Notify>)>,
    by_address: HashMap<IpAddr, usize>,
}

impl Live {
    /// Takes connection `id` out of the table and tells its task to close it.
    fn evict(&mut self, id: u64) {
        if let Some((a, _, evict)) = self.by_id.remove(&id) {
            self.forget_address(a);
            evict.notify_one();
        }
    }

    fn forget_address(&mut self, a: IpAddr) {
        if let Some(n) = self.by_address.get_mut(&a) {
            *n -= 1;
            if *n == 0 {
                self.by_address.remove(&a);
            }
        }
    }
}

/// A connection's place in the table, given back when dropped.
pub(super) struct Place {
    table: Arc<Conns>,
    id: u64,
    pub(super) activity: Arc<Activity>,
    /// Notified when the table needs the place for a newer connection.
    pub(super) evict: Arc<tokio::sync::Notify>,
}

impl Place {
    pub(super) fn table(&self) -> &Arc<Conns> {
        &self.table
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut live = self.table.live.lock();
        if let Some((addr, _, _)) = live.by_id.remove(&self.id) {
            live.forget_address(addr);
        }
    }
}

impl Conns {
    pub(super) fn new(options: &super::ServeOptions, local: Option<SocketAddr>) -> Conns {
        Conns {
            max: options.max_connections.max(1),
            per_address: options.max_connections_per_address.max(1),
            max_unsent: options.max_unsent_bytes as u64,
            next_id: AtomicU64::new(0),
            live: parking_lot::Mutex::new(Live::default()),
            stats: ListenerStats::register(local),
        }
    }

    /// A place for a connection from `addr`: a free one, or the place of the connection idle
    /// the longest (of that address, when it is the address's share that is full), which is
    /// told to close. `None` when every connection is busy.
    pub(super) fn admit(self: &Arc<Self>, addr: IpAddr) -> Option<Place> {
        let mut live = self.live.lock();
        let mine = live.by_address.get(&addr).copied().unwrap_or(0);
        if mine >= self.per_address || live.by_id.len() >= self.max {
            let only_mine = mine >= self.per_address;
            let victim = live
                .by_id
                .iter()
                .filter(|(_, (a, act, _))| (!only_mine || *a == addr) && !act.busy())
                .max_by_key(|(_, (_, act, _))| act.idle_for())
                .map(|(id, _)| *id);
            let Some(victim) = victim else {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                return None;
            };
            // Its place is ours now; its task closes it and finds its entry gone.
            live.evict(victim);
            self.stats.evicted.fetch_add(1, Ordering::Relaxed);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new());
        let evict = Arc::new(tokio::sync::Notify::new());
        live.by_id
            .insert(id, (addr, activity.clone(), evict.clone()));
        *live.by_address.entry(addr).or_insert(0) += 1;
        Some(Place {
            table: self.clone(),
            id,
            activity,
            evict,
        })
    }

    /// Whether a connection holding `on_conn` unsent bytes may hold `more`. Yes while the
    /// listener's unsent bytes stay within the budget with them. Past it, connections whose
    /// responses have stalled are closed, longest stalled first, until the rest leave room;
    /// and a connection that holds nothing unsent is still served (one response at a time
    /// is what every reading client asks, and scrapers of a page larger than the budget
    /// must get it), so only a client piling up unread answers is refused.
    pub(super) fn fits(&self, more: u64, on_conn: u64) -> bool {
        let unsent = self.stats.unsent.load(Ordering::Relaxed);
        if unsent + more <= self.max_unsent {
            return true;
        }
        let mut live = self.live.lock();
        // What connections still in the table hold (an evicted one frees its share as its
        // task ends).
        let mut held: u64 = live
            .by_id
            .values()
            .map(|(_, act, _)| act.unsent.load(Ordering::Relaxed))
            .sum();
        let mut stalled: Vec<(Duration, u64, u64)> = live
            .by_id
            .iter()
            .filter_map(|(id, (_, act, _))| {
                let unsent = act.unsent.load(Ordering::Relaxed);
                let idle = act.idle_for();
                (unsent > 0 && idle >= STALLED).then_some((idle, *id, unsent))
            })
            .collect();
        stalled.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
        for (_, id, unsent) in stalled {
            if held + more <= self.max_unsent {
                break;
            }
            live.evict(id);
            self.stats.stalled_closed.fetch_add(1, Ordering::Relaxed);
            held -= unsent;
        }
        let room = held + more <= self.max_unsent || on_conn == 0;
        if !room {
            self.stats.responses_refused.fetch_add(1, Ordering::Relaxed);
        }
        room
    }
}

/// What a connection is doing.
pub(super) struct Activity {
    start: Instant,
    /// Milliseconds after `start` of the last progress.
    last_ms: AtomicU64,
    /// Requests the server is working on.
    pub(super) answering: AtomicUsize,
    /// Of those, how many wait for their request body.
    pub(super) awaiting_body: AtomicUsize,
    /// Response bytes of this connection not yet handed to the protocol.
    pub(super) unsent: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            answering: AtomicUsize::new(0),
            awaiting_body: AtomicUsize::new(0),
            unsent: AtomicU64::new(0),
        }
    }

    /// Notes progress.
    pub(super) fn touch(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(now, Ordering::Relaxed);
    }

    /// Whether the server works on one of the connection's requests (one waiting for its
    /// client's body is the client's to move, not the server's).
    pub(super) fn busy(&self) -> bool {
        self.answering.load(Ordering::Relaxed) > self.awaiting_body.load(Ordering::Relaxed)
    }

    /// How long the connection has been neither busy nor making progress.
    pub(super) fn idle_for(&self) -> Duration {
        if self.busy() {
            return Duration::ZERO;
        }
        let now = self.start.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// What one listener turned away or closed, and the response bytes it holds: the series
/// `monkit_http` (tag `listener`) on the pages' `/metrics` and `/stats`.
#[derive(Debug, Default)]
pub(super) struct ListenerStats {
    listener: String,
    /// New connections answered `503` because every one was busy.
    pub(super) refused: AtomicU64,
    /// Idle connections closed to make room for a new one.
    pub(super) evicted: AtomicU64,
    /// Connections closed for making no progress for the idle timeout.
    pub(super) idle_closed: AtomicU64,
    /// Connections closed because their responses stalled while the byte budget was spent.
    pub(super) stalled_closed: AtomicU64,
    /// Requests answered `503` because the response-byte budget was spent.
    pub(super) responses_refused: AtomicU64,
    /// Request bodies that sent nothing for the body timeout.
    pub(super) body_timeouts: AtomicU64,
    /// Response bytes rendered but not yet handed to the protocol.
    pub(super) unsent: AtomicU64,
}

/// Every listener alive, for the pages to report.
static LISTENERS: parking_lot::Mutex<Vec<Weak<ListenerStats>>> =
    parking_lot::Mutex::new(Vec::new());

impl ListenerStats {
    fn register(local: Option<SocketAddr>) -> Arc<ListenerStats> {
        let stats = Arc::new(ListenerStats {
            listener: local.map_or_else(|| "unknown".to_owned(), |a| a.to_string()),
            ..ListenerStats::default()
        });
        let mut all = LISTENERS.lock();
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(&stats));
        stats
    }
}

/// The listeners' counts as a stat source: one series per live listener.
pub(crate) struct ListenerSource;

impl monkit::stats::StatSource for ListenerSource {
    fn stats(&self, cb: &mut dyn FnMut(&monkit::stats::SeriesKey, &str, f64)) {
        let all: Vec<_> = LISTENERS.lock().iter().filter_map(Weak::upgrade).collect();
        for l in all {
            let key = monkit::stats::SeriesKey::new(
                "monkit_http",
                monkit::stats::Tags::new(&[("listener", &l.listener)]),
            );
            let n = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
            cb(&key, "connections_refused_total", n(&l.refused));
            cb(&key, "connections_evicted_total", n(&l.evicted));
            cb(&key, "connections_idle_closed_total", n(&l.idle_closed));
            cb(
                &key,
                "connections_stalled_closed_total",
                n(&l.stalled_closed),
            );
            cb(&key, "responses_refused_total", n(&l.responses_refused));
            cb(&key, "body_timeouts_total", n(&l.body_timeouts));
            cb(&key, "unsent_bytes", n(&l.unsent));
        }
    }
}
