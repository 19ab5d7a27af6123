//! Shutdown for the open connections: first asking them to close once their call is
//! answered, then, past the drain timeout, dropping them.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;

use tokio::sync::Notify;

/// The open connections, and the state of the shutdown.
///
/// hyper-util's `GracefulShutdown` and a `CancellationToken` per connection do the same,
/// but poll a channel (and take its lock) every time a connection is polled, several
/// times per call; here a connection's task checks two flags, and its waker is stored
/// only when it changes (for a tokio task, once).
#[derive(Default)]
pub(super) struct Drain {
    closing: AtomicBool,
    aborted: AtomicBool,
    connections: Mutex<Connections>,
    /// Notified when the last connection ends.
    idle: Notify,
    /// Notified when the last connection of a burst ends (see [`super::trim`]).
    burst: Notify,
}

#[derive(Default)]
struct Connections {
    next_id: u64,
    /// Every connection still open, with its task's waker once it has been polled.
    wakers: HashMap<u64, Option<Waker>>,
    /// The most connections open at once since memory was last trimmed.
    peak: usize,
}

impl Drain {
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
        let wakers: Vec<Waker> = self
            .connections()
            .wakers
            .values()
            .flatten()
            .cloned()
            .collect();
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Waits until the last connection of a burst has ended, since the last wait (one
    /// wake-up for several bursts that ended meanwhile).
    pub(super) async fn burst_ended(&self) {
        self.burst.notified().await;
    }

    /// Waits until every connection has ended.
    pub(super) async fn closed(&self) {
        loop {
            let mut idle = pin!(self.idle.notified());
            idle.as_mut().enable();
            if self.connections().wakers.is_empty() {
                return;
            }
            idle.await;
        }
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
    id: u64,
}

impl Tracked {
    pub(super) fn new(drain: &Arc<Drain>) -> Self {
        let mut connections = drain.connections();
        let id = connections.next_id;
        connections.next_id += 1;
        connections.wakers.insert(id, None);
        connections.peak = connections.peak.max(connections.wakers.len());
        drop(connections);
        Self {
            drain: Arc::clone(drain),
            id,
        }
    }

    /// True once the connection is to be dropped.
    pub(super) fn is_aborted(&self) -> bool {
        self.drain.aborted.load(Ordering::Acquire)
    }

    /// True once the connection is asked to close after its call in flight.
    pub(super) fn is_closing(&self) -> bool {
        self.drain.is_closing()
    }

    /// Keeps the task's (new) waker where the drain finds it; true once the connection
    /// is to be dropped.
    pub(super) fn register(&self, waker: Waker) -> bool {
        self.drain.connections().wakers.insert(self.id, Some(waker));
        // A shutdown that woke the connections before this waker was stored is seen
        // here: the lock orders it before this load.
        self.is_aborted()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut connections = self.drain.connections();
        connections.wakers.remove(&self.id);
        if connections.wakers.is_empty() {
            let burst = std::mem::take(&mut connections.peak) >= super::trim::BURST;
            if burst {
                // The table of a burst's connections goes too.
                connections.wakers.shrink_to_fit();
            }
            drop(connections);
            self.drain.idle.notify_waiters();
            if burst {
                self.drain.burst.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::task::Context;

    use super::*;

    #[tokio::test]
    async fn drain_wakes_connections_and_waits_for_the_last() {
        let drain = Arc::new(Drain::default());
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
        let drain = Arc::new(Drain::default());
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
