//! The timer of a connection: closes a keep-alive connection that has had no call for
//! the idle timeout, and one whose request head is still incomplete after the header
//! read timeout. One timer per connection, reset every few seconds, instead of one
//! armed and cancelled per call (hyper's header read timeout arms one per call).
//!
//! The idle timeout is long (5 minutes by default) because dockerd's client never
//! expires an idle connection and does not replay a POST written onto a connection the
//! server is closing: its retry then sends an empty body (moby v20.10.24
//! `pkg/plugins/client.go`; Go's `net/http` transport). A connection the server closes
//! while dockerd is about to use it costs a failed call; closing rarely makes that rare.
//! The header read timeout is what stops a client from holding a connection by sending
//! its request head a byte at a time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Context;
use std::time::Duration;

use tokio::time::Instant;

/// What a connection's task tells its timer: the calls that started and ended, and
/// whether bytes arrived. Both live in the connection's task; atomics only because the
/// task is `Send`.
#[derive(Default)]
pub(super) struct Activity {
    /// Incremented when a call starts and when it ends: odd while one is running.
    calls: AtomicU64,
    /// Set by every read that brought bytes, cleared by each check.
    received: AtomicBool,
}

impl Activity {
    /// A call started or ended.
    pub(super) fn call_event(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Bytes arrived: one store.
    #[inline]
    pub(super) fn read(&self) {
        self.received.store(true, Ordering::Relaxed);
    }
}

/// How long a connection may stay idle, and how long a request head may take.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    pub(super) idle: Duration,
    pub(super) head: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            idle: super::DEFAULT_IDLE_TIMEOUT,
            head: super::DEFAULT_HEADER_READ_TIMEOUT,
        }
    }
}

/// Why a connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expired {
    /// No call for the idle timeout.
    Idle,
    /// Bytes of a request head arrived, but not the whole head, within the header read
    /// timeout.
    Head,
}

/// Checks a connection every third of the shorter timeout (so a timeout fires at most a
/// third late). The timer itself lives in the connection's task, beside the fields every
/// poll reads (see [`super::connection`]).
pub(super) struct IdleTimeout {
    activity: Arc<Activity>,
    timeouts: Timeouts,
    tick: Duration,
    /// `activity.calls` at the last check.
    seen_calls: u64,
    /// When the last call ended (or was last seen running).
    last_active: Instant,
    /// When bytes of a request head were first seen, while no call has started since.
    head_since: Option<Instant>,
}

impl IdleTimeout {
    pub(super) fn new(activity: Arc<Activity>, timeouts: Timeouts) -> Self {
        let tick = (timeouts.idle.min(timeouts.head) / 3).max(Duration::from_millis(1));
        Self {
            activity,
            timeouts,
            tick,
            seen_calls: 0,
            last_active: Instant::now(),
            head_since: None,
        }
    }

    /// The timer this one is checked by, first due a tick from now.
    pub(super) fn timer(&self) -> tokio::time::Sleep {
        tokio::time::sleep(self.tick)
    }

    /// The connection starts being timed now (its handshake is over): `timer` is due a
    /// tick from now.
    pub(super) fn start(&mut self, timer: Pin<&mut tokio::time::Sleep>) {
        let now = Instant::now();
        self.last_active = now;
        timer.reset(now + self.tick);
    }

    /// The activity the connection reports to this timer.
    pub(super) fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }

    /// How long a connection may stay idle, and a request head take.
    pub(super) fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// One check at `now`.
    fn check(&mut self, now: Instant) -> Option<Expired> {
        let calls = self.activity.calls.load(Ordering::Relaxed);
        let received = self.activity.received.swap(false, Ordering::Relaxed);
        if calls % 2 == 1 || calls != self.seen_calls {
            // A call is running, or one ran since the last check.
            self.seen_calls = calls;
            self.last_active = now;
            self.head_since = None;
            return None;
        }
        if received {
            // Bytes arrived, yet no call started: a request head is on its way.
            self.head_since.get_or_insert(now);
        }
        match self.head_since {
            Some(since) if now - since >= self.timeouts.head => Some(Expired::Head),
            Some(_) => None,
            None if now - self.last_active >= self.timeouts.idle => Some(Expired::Idle),
            None => None,
        }
    }

    /// `Some` once the connection is to be closed. `registered` tells whether `timer`
    /// holds the task's current waker (the task keeps it beside the waker, and clears
    /// it when the waker changes).
    pub(super) fn poll_expired(
        &mut self,
        mut timer: Pin<&mut tokio::time::Sleep>,
        registered: &mut bool,
        cx: &mut Context<'_>,
    ) -> Option<Expired> {
        // The common case, on every poll of the connection: two loads.
        if *registered && !timer.is_elapsed() {
            return None;
        }
        loop {
            if timer.as_mut().poll(cx).is_pending() {
                *registered = true;
                return None;
            }
            let now = Instant::now();
            if let Some(expired) = self.check(now) {
                return Some(expired);
            }
            timer.as_mut().reset(now + self.tick);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUTS: Timeouts = Timeouts {
        idle: Duration::from_secs(300),
        head: Duration::from_secs(30),
    };

    fn timer() -> (Arc<Activity>, IdleTimeout, Instant) {
        let activity = Arc::new(Activity::default());
        let timer = IdleTimeout::new(Arc::clone(&activity), TIMEOUTS);
        let start = timer.last_active;
        (activity, timer, start)
    }

    fn at(start: Instant, secs: u64) -> Instant {
        start + Duration::from_secs(secs)
    }

    #[tokio::test]
    async fn by_default_an_idle_connection_is_kept_for_five_minutes() {
        let activity = Arc::new(Activity::default());
        let mut timer = IdleTimeout::new(Arc::clone(&activity), Timeouts::default());
        let start = timer.last_active;
        // dockerd's transport keeps idle connections for ever and comes back after
        // minutes: hyper's 30 to 40 s would close them under it.
        assert_eq!(timer.check(at(start, 270)), None);
        assert_eq!(timer.check(at(start, 300)), Some(Expired::Idle));
        // A head still incomplete after 30 s is closed.
        let mut timer = IdleTimeout::new(Arc::clone(&activity), Timeouts::default());
        activity.read();
        assert_eq!(timer.check(at(start, 1)), None);
        assert_eq!(timer.check(at(start, 31)), Some(Expired::Head));
    }

    #[tokio::test]
    async fn checks_come_every_third_of_the_shorter_timeout() {
        let (_, timer, _) = timer();
        assert_eq!(timer.tick, Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_connection_without_calls_is_closed_after_the_idle_timeout() {
        let (_, mut timer, start) = timer();
        assert_eq!(timer.check(at(start, 299)), None);
        assert_eq!(timer.check(at(start, 300)), Some(Expired::Idle));
    }

    #[tokio::test]
    async fn a_call_in_flight_or_a_recent_one_keeps_the_connection() {
        let (activity, mut timer, start) = timer();
        // A call that runs for ten minutes.
        activity.call_event();
        assert_eq!(timer.check(at(start, 600)), None);
        // It ends: the connection gets the idle timeout from then on.
        activity.call_event();
        assert_eq!(timer.check(at(start, 610)), None);
        assert_eq!(timer.check(at(start, 909)), None);
        assert_eq!(timer.check(at(start, 910)), Some(Expired::Idle));
    }

    #[tokio::test]
    async fn a_request_head_that_does_not_complete_is_closed_after_the_header_timeout() {
        let (activity, mut timer, start) = timer();
        assert_eq!(timer.check(at(start, 10)), None);
        // A few bytes of a head, then more, a byte at a time, never the whole head.
        activity.read();
        assert_eq!(timer.check(at(start, 20)), None);
        activity.read();
        assert_eq!(timer.check(at(start, 49)), None);
        assert_eq!(timer.check(at(start, 50)), Some(Expired::Head));
    }

    #[tokio::test]
    async fn bytes_that_start_a_call_are_no_slow_head() {
        let (activity, mut timer, start) = timer();
        activity.read();
        activity.call_event();
        activity.call_event();
        assert_eq!(timer.check(at(start, 10)), None);
        assert_eq!(timer.check(at(start, 60)), None, "idle, not a slow head");
    }
}
