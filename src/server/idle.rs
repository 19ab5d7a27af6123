//! The connections' timer: closes a keep-alive connection that has had no call for the
//! idle timeout, and one whose request head is still incomplete after the header read
//! timeout. One timer for the whole server ([`expire_connections`]), which every third
//! of the shorter timeout checks the connections the drain keeps (see
//! [`super::drain`]) and wakes the expired ones, instead of one per connection (armed,
//! reset and removed in tokio's timer wheel, under its lock, for every connection) or
//! one per call (hyper's header read timeout arms one per call). A connection only
//! counts its calls and notes that bytes arrived, in its [`Activity`].
//!
//! The idle timeout is long (5 minutes by default) because dockerd's client never
//! expires an idle connection and does not replay a POST written onto a connection the
//! server is closing: its retry then sends an empty body (moby v20.10.24
//! `pkg/plugins/client.go`; Go's `net/http` transport). A connection the server closes
//! while dockerd is about to use it costs a failed call; closing rarely makes that rare.
//! The header read timeout is what stops a client from holding a connection by sending
//! its request head a byte at a time.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Waker;
use std::time::Duration;

use tokio::time::Instant;

use super::drain::Drain;

/// What a connection's task tells the timer (the calls that started and ended, and
/// whether bytes arrived), where the timer and the drain find its task's waker, and
/// what the timer tells the task (that it expired). Shared by the connection's task and
/// the drain's table.
pub(super) struct Activity {
    /// Incremented when a call starts and when it ends: odd while one is running. It
    /// starts at 1: the connection's handshake counts as a call, which its end ends
    /// (the timer never closes a connection in its handshake).
    calls: AtomicU64,
    /// Set by every read that brought bytes, cleared by each check.
    received: AtomicBool,
    /// Why the timer closes the connection ([`Expired`] as a `u8`), 0 while it does not.
    expired: AtomicU8,
    /// The connection's task's waker, once it has been polled.
    waker: Mutex<Option<Waker>>,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            calls: AtomicU64::new(1),
            received: AtomicBool::new(false),
            expired: AtomicU8::new(0),
            waker: Mutex::new(None),
        }
    }
}

impl Activity {
    /// A call started or ended (or the handshake ended).
    pub(super) fn call_event(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Bytes arrived: one store.
    #[inline]
    pub(super) fn read(&self) {
        self.received.store(true, Ordering::Relaxed);
    }

    /// `Some` once the timer has closed the connection.
    #[inline]
    pub(super) fn expired(&self) -> Option<Expired> {
        match self.expired.load(Ordering::Acquire) {
            0 => None,
            1 => Some(Expired::Idle),
            _ => Some(Expired::Head),
        }
    }

    /// Keeps the connection's task's (new) waker, for the timer and the drain.
    pub(super) fn set_waker(&self, waker: Waker) {
        *self.waker.lock().unwrap_or_else(PoisonError::into_inner) = Some(waker);
    }

    /// Wakes the connection's task, if it has been polled (else its first poll sees
    /// why it was to be woken).
    pub(super) fn wake(&self) {
        if let Some(waker) = &*self.waker.lock().unwrap_or_else(PoisonError::into_inner) {
            waker.wake_by_ref();
        }
    }

    /// The timer closes the connection: tells its task why, and wakes it.
    fn expire(&self, expired: Expired) {
        let code = match expired {
            Expired::Idle => 1,
            Expired::Head => 2,
        };
        self.expired.store(code, Ordering::Release);
        self.wake();
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

impl Timeouts {
    /// How often the connections are checked: every third of the shorter timeout (so a
    /// timeout fires at most a third late).
    fn tick(&self) -> Duration {
        (self.idle.min(self.head) / 3).max(Duration::from_millis(1))
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

/// `Activity::calls` once the handshake is over, before the first call.
const SERVING: u64 = 2;

/// What the timer remembers of one connection between its checks (kept in the drain's
/// table, beside the connection's [`Activity`]).
#[derive(Default)]
pub(super) struct Watch {
    /// `activity.calls` at the last check.
    seen_calls: u64,
    /// When the last call ended (or was last seen running): the check that saw it.
    last_active: Option<Instant>,
    /// When bytes of a request head were first seen, while no call has started since.
    head_since: Option<Instant>,
}

impl Watch {
    /// One check of `activity` at `now`.
    pub(super) fn check(
        &mut self,
        activity: &Activity,
        timeouts: Timeouts,
        now: Instant,
    ) -> Option<Expired> {
        let calls = activity.calls.load(Ordering::Relaxed);
        let received = activity.received.swap(false, Ordering::Relaxed);
        if calls == SERVING && self.seen_calls != SERVING {
            // The handshake ended since the last check, and no call started: the bytes
            // that came since are a request head on its way.
            self.seen_calls = calls;
            self.last_active = Some(now);
        } else if calls % 2 == 1 || calls != self.seen_calls {
            // A call (or the handshake) is running, or one ran since the last check:
            // the bytes that came were its.
            self.seen_calls = calls;
            self.last_active = Some(now);
            self.head_since = None;
            return None;
        }
        if received {
            // Bytes arrived, yet no call started: a request head is on its way.
            self.head_since.get_or_insert(now);
        }
        let last_active = *self.last_active.get_or_insert(now);
        match self.head_since {
            Some(since) if now - since >= timeouts.head => Some(Expired::Head),
            Some(_) => None,
            None if now - last_active >= timeouts.idle => Some(Expired::Idle),
            None => None,
        }
    }
}

/// Checks the open connections every tick ([`Timeouts::tick`]) while there are any
/// (an idle server has no timer), and closes the expired ones: polled by the server's
/// task until the server drops it.
pub(super) async fn expire_connections(drain: Arc<Drain>, timeouts: Timeouts) {
    let tick = timeouts.tick();
    loop {
        drain.opened().await;
        tokio::time::sleep(tick).await;
        for (activity, expired) in drain.check_connections(timeouts, Instant::now()) {
            log_expired(expired, timeouts);
            activity.expire(expired);
        }
    }
}

fn log_expired(expired: Expired, timeouts: Timeouts) {
    match expired {
        Expired::Idle => tracing::debug!(
            timeout_s = timeouts.idle.as_secs(),
            "closing a connection without calls"
        ),
        Expired::Head => tracing::debug!(
            timeout_ms = timeouts.head.as_millis() as u64,
            "closing a connection whose request head did not arrive in time"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUTS: Timeouts = Timeouts {
        idle: Duration::from_secs(300),
        head: Duration::from_secs(30),
    };

    /// A connection whose handshake is over, first checked at `start`.
    fn watched() -> (Activity, Watch, Instant) {
        let activity = Activity::default();
        activity.call_event();
        let mut watch = Watch::default();
        let start = Instant::now();
        assert_eq!(watch.check(&activity, TIMEOUTS, start), None);
        (activity, watch, start)
    }

    fn at(start: Instant, secs: u64) -> Instant {
        start + Duration::from_secs(secs)
    }

    #[tokio::test]
    async fn by_default_an_idle_connection_is_kept_for_five_minutes() {
        let timeouts = Timeouts::default();
        let (activity, mut watch, start) = watched();
        // dockerd's transport keeps idle connections for ever and comes back after
        // minutes: hyper's 30 to 40 s would close them under it.
        assert_eq!(watch.check(&activity, timeouts, at(start, 270)), None);
        assert_eq!(
            watch.check(&activity, timeouts, at(start, 300)),
            Some(Expired::Idle)
        );
        // A head still incomplete after 30 s is closed.
        let (activity, mut watch, start) = watched();
        activity.read();
        assert_eq!(watch.check(&activity, timeouts, at(start, 1)), None);
        assert_eq!(
            watch.check(&activity, timeouts, at(start, 31)),
            Some(Expired::Head)
        );
    }

    #[tokio::test]
    async fn checks_come_every_third_of_the_shorter_timeout() {
        assert_eq!(TIMEOUTS.tick(), Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_connection_without_calls_is_closed_after_the_idle_timeout() {
        let (activity, mut watch, start) = watched();
        assert_eq!(watch.check(&activity, TIMEOUTS, at(start, 299)), None);
        assert_eq!(
            watch.check(&activity, TIMEOUTS, at(start, 300)),
            Some(Expired::Idle)
        );
    }

    #[tokio::test]
    async fn a_connection_in_its_handshake_is_never_idle() {
        let activity = Activity::default();
        let mut watch = Watch::default();
        let start = Instant::now();
        assert_eq!(watch.check(&activity, TIMEOUTS, start), None);
        assert_eq!(watch.check(&activity, TIMEOUTS, at(start, 600)), None);
        // The handshake ends: the idle timeout runs from the check that saw it.
        activity.call_event();
        assert_eq!(watch.check(&activity, TIMEOUTS, at(start, 610)), None);
        assert_eq!(watch.check(&activity, TIMEOUTS, at(start, 909)), None);
        assert_eq!(
            watch.check(&activity, TIMEOUTS, at(start, 910)),
            Some(Expired::Idle)
        );
    }

    #[tokio::test]
    async fn a_call_in_flight_or_a_recent_one_keeps_the_connection() {
        let (activity, mut watch, start) = watched();
        // A call that runs for ten minutes.
        activity.call_event();
        assert_eq!(watch.check(&activity, TIMEOUTS, at(start, 600)), None);
        // It ends: the connection gets the idle timeout from then on.
        activity.call_event();
        assert_eq!(watch.check(&activity, TIMEOUTS, at(start, 610)), None);
        assert_eq!(watch.check(&activity, TIMEOUTS, at(start, 909)), None);
        assert_eq!(
            watch.check(&activity, TIMEOUTS, at(start, 910)),
            Some(Expired::Idle)
        );
    }

    #[tokio::test]
    async fn a_request_head_that_does_not_complete_is_closed_after_the_header_timeout() {
        let (activity, mut watch, start) = watched();
        assert_eq!(watch.check(&activity, TIMEOUTS, at(start, 10)), None);
        // A few bytes of a head, then more, a byte at a time, never the whole head.
        activity.read();
        assert_eq!(watch.check(&activity, TIMEOUTS, at(start, 20)), None);
        activity.read();
        assert_eq!(watch.check(&activity, TIMEOUTS, at(start, 49)), None);
        assert_eq!(
            watch.check(&activity, TIMEOUTS, at(start, 50)),
            Some(Expired::Head)
        );
    }

    #[tokio::test]
    async fn a_first_head_that_stops_halfway_is_a_slow_head() {
        // The handshake ends and part of a head arrives, all before the first check.
        let activity = Activity::default();
        activity.call_event();
        activity.read();
        let mut watch = Watch::default();
        let start = Instant::now();
        assert_eq!(watch.check(&activity, TIMEOUTS, start), None);
        assert_eq!(watch.check(&activity, TIMEOUTS, at(start, 29)), None);
        assert_eq!(
            watch.check(&activity, TIMEOUTS, at(start, 30)),
            Some(Expired::Head)
        );
    }

    #[tokio::test]
    async fn bytes_that_start_a_call_are_no_slow_head() {
        let (activity, mut watch, start) = watched();
        activity.read();
        activity.call_event();
        activity.call_event();
        assert_eq!(watch.check(&activity, TIMEOUTS, at(start, 10)), None);
        assert_eq!(
            watch.check(&activity, TIMEOUTS, at(start, 60)),
            None,
            "idle, not a slow head"
        );
    }

    #[test]
    fn an_expired_connection_is_told_why() {
        let activity = Activity::default();
        assert_eq!(activity.expired(), None);
        activity.expire(Expired::Head);
        assert_eq!(activity.expired(), Some(Expired::Head));
        let activity = Activity::default();
        activity.expire(Expired::Idle);
        assert_eq!(activity.expired(), Some(Expired::Idle));
    }
}
