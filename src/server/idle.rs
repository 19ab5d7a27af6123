//! The idle timer of a connection: closes a keep-alive connection that has had no
//! call for a while, with one timer per connection reset every few seconds instead of
//! one armed and cancelled per call (hyper's header read timeout arms one per call).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Waker};
use std::time::Duration;

/// Closes a connection that has had no call for [`IDLE_CHECKS`] checks in a row, made
/// every [`IDLE_CHECK`]: 30 to 40 s, like hyper's header read timeout (which also
/// covers a request head sent too slowly, and an idle keep-alive connection). One
/// timer per connection, reset every 10 s, instead of one armed and cancelled per call.
pub(super) struct IdleTimeout {
    activity: Arc<AtomicU64>,
    /// `activity` at the last check.
    seen: u64,
    /// Checks in a row without a call.
    quiet: u32,
    timer: Pin<Box<tokio::time::Sleep>>,
    /// The waker the timer holds.
    waker: Option<Waker>,
}

const IDLE_CHECK: Duration = Duration::from_secs(10);
const IDLE_CHECKS: u32 = 3;

impl IdleTimeout {
    /// One check: true once the connection has gone [`IDLE_CHECKS`] checks in a row
    /// without a call running or starting.
    fn check(&mut self) -> bool {
        let activity = self.activity.load(Ordering::Relaxed);
        if activity % 2 == 1 || activity != self.seen {
            self.seen = activity;
            self.quiet = 0;
            false
        } else {
            self.quiet += 1;
            self.quiet >= IDLE_CHECKS
        }
    }

    pub(super) fn new(activity: Arc<AtomicU64>) -> Self {
        Self {
            activity,
            seen: 0,
            quiet: 0,
            timer: Box::pin(tokio::time::sleep(IDLE_CHECK)),
            waker: None,
        }
    }

    /// True once the connection is to be closed.
    pub(super) fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let registered = self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        // The common case, on every poll of the connection: two loads.
        if registered && !self.timer.is_elapsed() {
            return false;
        }
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                if !registered {
                    self.waker = Some(cx.waker().clone());
                }
                return false;
            }
            if self.check() {
                return true;
            }
            self.timer
                .as_mut()
                .reset(tokio::time::Instant::now() + IDLE_CHECK);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checks(idle: &mut IdleTimeout, checks: u32) -> bool {
        (0..checks).fold(false, |expired, _| idle.check() || expired)
    }

    #[tokio::test]
    async fn connections_without_calls_are_closed_after_three_checks() {
        let activity = Arc::new(AtomicU64::new(0));
        let mut idle = IdleTimeout::new(Arc::clone(&activity));
        assert!(!checks(&mut idle, IDLE_CHECKS - 1));
        assert!(checks(&mut idle, 1));
    }

    #[tokio::test]
    async fn a_call_in_flight_or_a_recent_one_keeps_the_connection() {
        let activity = Arc::new(AtomicU64::new(0));
        let mut idle = IdleTimeout::new(Arc::clone(&activity));
        // A call that runs for ten checks.
        activity.fetch_add(1, Ordering::Relaxed);
        assert!(!checks(&mut idle, 10));
        // It ends: the connection gets three more checks from then on.
        activity.fetch_add(1, Ordering::Relaxed);
        assert!(!checks(&mut idle, IDLE_CHECKS));
        // Calls keep coming, one per check.
        for _ in 0..5 {
            activity.fetch_add(2, Ordering::Relaxed);
            assert!(!checks(&mut idle, 1));
        }
        assert!(!checks(&mut idle, IDLE_CHECKS - 1));
        assert!(checks(&mut idle, 1));
    }
}
