//! Shutdown for the open connections: first asking them to close once their call is
//! answered, then, past the drain timeout, dropping them.

use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::idle::{Activity, Expired, Timeouts, Watch};

/// The open connections, and the state of the shutdown.
///
/// hyper-util's `GracefulShutdown` and a `CancellationToken` per connection do the same,
/// but poll a channel (and take its lock) every time a connection is polled, several
/// times per call; here a connection's task checks two flags, and its waker is stored
/// (in its own [`Activity`], not under the table's lock) only when it changes (for a
/// tokio task, once).
///
/// The table also counts the connections against the server's limit (instead of a
/// semaphore's permit per connection) and is what the server's one timer checks (see
/// [`super::idle`]): a connection costs the table's lock twice, when it is accepted and
/// when it ends.
pub(super) struct Drain {
    closing: AtomicBool,
    aborted: AtomicBool,
    /// How many connections are open (the table's count, for readers without its lock).
    open: AtomicUsize,
    /// The most connections open at once.
    max: usize,
    connections: Mutex<Connections>,
    /// Notified when the last connection ends.
    idle: Notify,
    /// Notified when the last connection of a burst ends (see [`super::trim`]).
    burst: Notify,
    /// Notified when a connection opens while none was open (for the timer).
    opened: Notify,
    /// Notified when a connection ends while `max` were open (for the accept loop).
    slot_freed: Notify,
}

/// Every connection still open, in a slab: a connection's [`Tracked`] holds its index.
#[derive(Default)]
struct Connections {
    slots: Vec<Option<Slot>>,
    /// The indexes of the free slots.
    free: Vec<usize>,
    /// The most connections open at once since memory was last trimmed.
    peak: usize,
}

/// One open connection: what its task tells the timer, and what the timer remembers.
struct Slot {
    activity: Arc<Activity>,
    watch: Watch,
}

impl Drain {
    /// A drain for a server that keeps at most `max` connections open.
    pub(super) fn new(max: usize) -> Self {
        Self {
            closing: AtomicBool::new(false),
            aborted: AtomicBool::new(false),
            open: AtomicUsize::new(0),
            max,
            connections: Mutex::default(),
            idle: Notify::new(),
            burst: Notify::new(),
            opened: Notify::new(),
            slot_freed: Notify::new(),
        }
    }

    fn connections(&self) -> MutexGuard<'_, Connections> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Asks every connection to close after its call in flight.
    pub(super) fn close(&self) {
        self.closing.store(true, Ordering::Release);
        self.wake_all();
    }

    /// Drops every connection.
    fn abort(&self) {
        self.aborted.store(true, Ordering::Release);
        self.wake_all();
    }

    fn wake_all(&self) {
        let activities: Vec<Arc<Activity>> = self
            .connections()
            .slots
            .iter()
            .flatten()
            .map(|slot| Arc::clone(&slot.activity))
            .collect();
        activities.iter().for_each(|activity| activity.wake());
    }

    /// The most connections open at once.
    pub(super) fn max(&self) -> usize {
        self.max
    }

    /// True while fewer than [`max`](Self::max) connections are open.
    pub(super) fn has_free_slot(&self) -> bool {
        self.open.load(Ordering::Acquire) < self.max
    }

    /// Waits until fewer than [`max`](Self::max) connections are open.
    pub(super) async fn slot_freed(&self) {
        wait_until(&self.slot_freed, || self.has_free_slot()).await;
    }

    /// Waits until a connection is open.
    pub(super) async fn opened(&self) {
        wait_until(&self.opened, || self.open.load(Ordering::Acquire) > 0).await;
    }

    /// Checks every open connection at `now` for the timer: the expired ones, to be
    /// woken (by the caller, outside the table's lock).
    pub(super) fn check_connections(
        &self,
        timeouts: Timeouts,
        now: Instant,
    ) -> Vec<(Arc<Activity>, Expired)> {
        let mut connections = self.connections();
        let mut expired = Vec::new();
        for slot in connections.slots.iter_mut().flatten() {
            if slot.activity.expired().is_none()
                && let Some(why) = slot.watch.check(&slot.activity, timeouts, now)
            {
                expired.push((Arc::clone(&slot.activity), why));
            }
        }
        expired
    }

    /// Waits until the last connection of a burst has ended, since the last wait (one
    /// wake-up for several bursts that ended meanwhile).
    pub(super) async fn burst_ended(&self) {
        self.burst.notified().await;
    }

    /// Waits until every connection has ended.
    pub(super) async fn closed(&self) {
        wait_until(&self.idle, || self.open.load(Ordering::Acquire) == 0).await;
    }
}

/// Waits until `done`, checked whenever `notify` is notified: the wait is registered
/// before each check, so a notification between the check and the wait is not lost.
async fn wait_until(notify: &Notify, done: impl Fn() -> bool) {
    loop {
        let mut notified = pin!(notify.notified());
        notified.as_mut().enable();
        if done() {
            return;
        }
        notified.await;
    }
}

/// Aborts the connections when `run` returns or is dropped.
pub(super) struct AbortOnDrop(pub(super) Arc<Drain>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One connection, counted by its [`Drain`] from the moment it is accepted. Its task
/// keeps its waker (see [`super::connection`]) and gives it here when it changes.
pub(super) struct Tracked {
    drain: Arc<Drain>,
    activity: Arc<Activity>,
    index: usize,
}

impl Tracked {
    /// Counts a new connection (the accept loop has checked that a slot is free).
    pub(super) fn new(drain: &Arc<Drain>) -> Self {
        let activity = Arc::new(Activity::default());
        let slot = Slot {
            activity: Arc::clone(&activity),
            watch: Watch::default(),
        };
        let mut connections = drain.connections();
        let index = match connections.free.pop() {
            Some(index) => {
                connections.slots[index] = Some(slot);
                index
            }
            None => {
                connections.slots.push(Some(slot));
                connections.slots.len() - 1
            }
        };
        let open = connections.slots.len() - connections.free.len();
        connections.peak = connections.peak.max(open);
        drain.open.store(open, Ordering::Release);
        drop(connections);
        if open == 1 {
            // The timer may be waiting for a connection to check (without waiters,
            // one compare-and-swap).
            drain.opened.notify_one();
        }
        Self {
            drain: Arc::clone(drain),
            activity,
            index,
        }
    }

    /// What the connection tells the timer, and the timer the connection.
    pub(super) fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }

    /// True once the connection is to be dropped.
    pub(super) fn is_aborted(&self) -> bool {
        self.drain.aborted.load(Ordering::Acquire)
    }

    /// True once the connection is asked to close after its call in flight.
    pub(super) fn is_closing(&self) -> bool {
        self.drain.is_closing()
    }

    /// Keeps the task's (new) waker where the drain and the timer find it; true once
    /// the connection is to be dropped.
    pub(super) fn register(&self, waker: Waker) -> bool {
        self.activity.set_waker(waker);
        // A shutdown that woke the connections before this waker was stored is seen
        // here: the waker's lock orders it before this load.
        self.is_aborted()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut connections = self.drain.connections();
        connections.slots[self.index] = None;
        connections.free.push(self.index);
        let open = connections.slots.len() - connections.free.len();
        self.drain.open.store(open, Ordering::Release);
        if open == 0 {
            let burst = std::mem::take(&mut connections.peak) >= super::trim::BURST;
            // The table is emptied (its slots are all free), and the table of a
            // burst's connections goes too.
            connections.slots.clear();
            connections.free.clear();
            if burst {
                connections.slots.shrink_to_fit();
                connections.free.shrink_to_fit();
            }
            drop(connections);
            self.drain.idle.notify_waiters();
            if burst {
                self.drain.burst.notify_one();
            }
        } else {
            drop(connections);
        }
        if open + 1 == self.drain.max {
            self.drain.slot_freed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::task::{Context, Wake};
    use std::time::Duration;

    use super::*;

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct Counted(AtomicUsize);

    impl Wake for Counted {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn the_limit_counts_the_open_connections_and_an_ending_one_frees_a_slot() {
        let drain = Arc::new(Drain::new(2));
        let first = Tracked::new(&drain);
        assert!(drain.has_free_slot());
        let second = Tracked::new(&drain);
        assert!(!drain.has_free_slot());
        let freed = tokio::spawn({
            let drain = Arc::clone(&drain);
            async move { drain.slot_freed().await }
        });
        tokio::task::yield_now().await;
        assert!(!freed.is_finished());
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), freed)
            .await
            .expect("a freed slot is signalled")
            .unwrap();
        assert!(drain.has_free_slot());
        // The freed slot is used again.
        let third = Tracked::new(&drain);
        assert!(!drain.has_free_slot());
        drop((second, third));
        assert!(drain.has_free_slot());
    }

    #[tokio::test]
    async fn the_servers_timer_closes_the_idle_connections_and_wakes_them() {
        let drain = Arc::new(Drain::new(8));
        let timeouts = Timeouts {
            idle: Duration::from_millis(60),
            head: Duration::from_millis(60),
        };
        let timer = tokio::spawn(super::super::idle::expire_connections(
            Arc::clone(&drain),
            timeouts,
        ));
        let idle = Tracked::new(&drain);
        let woken = Arc::new(Counted::default());
        assert!(!idle.register(Waker::from(Arc::clone(&woken))));
        // Its handshake is over; another connection stays in its handshake.
        idle.activity().call_event();
        let handshaking = Tracked::new(&drain);
        tokio::time::timeout(Duration::from_secs(5), async {
            while idle.activity().expired().is_none() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the idle connection was not closed");
        assert_eq!(idle.activity().expired(), Some(Expired::Idle));
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
        assert_eq!(handshaking.activity().expired(), None);
        timer.abort();
    }

    #[tokio::test]
    async fn drain_wakes_connections_and_waits_for_the_last() {
        let drain = Arc::new(Drain::new(512));
        let first = Tracked::new(&drain);
        let second = Tracked::new(&drain);
        assert!(!first.register(Waker::noop().clone()));
        drain.close();
        assert!(first.is_closing() && !first.is_aborted());
        drain.abort();
        assert!(first.is_aborted());
        // A waker given after the drain woke the connections sees the abort.
        assert!(first.register(Waker::noop().clone()));
        let closed = tokio::spawn({
            let drain = Arc::clone(&drain);
            async move { drain.closed().await }
        });
        drop(first);
        tokio::task::yield_now().await;
        assert!(!closed.is_finished());
        drop(second);
        closed.await.unwrap();
    }

    /// Whether `burst_ended` has a wake-up waiting.
    fn burst_pending(drain: &Drain) -> bool {
        let mut ended = pin!(drain.burst_ended());
        ended
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_ready()
    }

    #[test]
    fn the_end_of_bursts_is_signalled_once_for_all_that_ended_since_the_last_wait() {
        let drain = Arc::new(Drain::new(512));
        // Fewer than a burst: no trim.
        drop(
            (0..super::super::trim::BURST - 1)
                .map(|_| Tracked::new(&drain))
                .collect::<Vec<_>>(),
        );
        assert!(!burst_pending(&drain));
        // Two bursts end before the trimmer looks: it trims once, not once per burst
        // (nor in the dropping connection's task).
        for _ in 0..2 {
            drop(
                (0..super::super::trim::BURST)
                    .map(|_| Tracked::new(&drain))
                    .collect::<Vec<_>>(),
            );
        }
        assert!(burst_pending(&drain));
        assert!(!burst_pending(&drain));
    }
}
