//! The accept loop: a free connection slot first (at most `max_connections` are open,
//! as the drain counts them; at the limit, new connections wait in the socket's backlog
//! until one closes), then the next connection, handed to its own task. Accept errors (usually `EMFILE`, out of
//! file descriptors) pause the loop briefly instead of spinning, and are logged at most
//! once every few seconds, like the limit being reached: either can last, and must not
//! flood the log.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::drain::{Drain, Tracked};
use crate::transport::Accept;

/// How often a lasting condition (accept errors, the connection limit) is logged.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// The pause after an accept error.
const ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Accepts until `token` is cancelled, handing each connection's handshake and its
/// place in `drain` (which counts it against the limit from now on) to `spawn`.
pub(super) async fn accept_until<A: Accept>(
    listener: &mut A,
    token: &CancellationToken,
    drain: &Arc<Drain>,
    mut spawn: impl FnMut(A::Handshake, Tracked),
) {
    let max = drain.max();
    let mut errors = RateLimited::default();
    let mut full = RateLimited::default();
    // One wait for the shutdown, registered once, and polled only when there is nothing
    // to accept: a `select!` on `token.cancelled()` per accept made, registered and
    // dropped a waiter each time, three locks per connection.
    let mut cancelled = pin!(token.cancelled());
    loop {
        // Only this loop adds connections: a free slot stays free until the accept.
        if !drain.has_free_slot() {
            if let Some(suppressed) = full.allow(Instant::now()) {
                tracing::warn!(
                    limit = max,
                    times_since_last_report = suppressed,
                    "connection limit reached: {max} connections are open, new ones \
                     wait in the socket's backlog until one closes (raise it with \
                     Server::max_connections)"
                );
            }
            tokio::select! {
                biased;
                () = &mut cancelled => return,
                () = drain.slot_freed() => {}
            }
        }
        let accepted = poll_fn(|cx| {
            // The shutdown first, as long as connections keep coming.
            if token.is_cancelled() {
                return Poll::Ready(None);
            }
            if let Poll::Ready(accepted) = listener.poll_accept(cx) {
                return Poll::Ready(Some(accepted));
            }
            cancelled.as_mut().poll(cx).map(|()| None)
        })
        .await;
        let Some(accepted) = accepted else {
            return;
        };
        match accepted {
            Ok(handshake) => spawn(handshake, Tracked::new(drain)),
            Err(err) => {
                if let Some(suppressed) = errors.allow(Instant::now()) {
                    tracing::warn!(%err, errors_since_last_report = suppressed, "accept failed");
                }
                tokio::time::sleep(ERROR_PAUSE).await;
            }
        }
    }
}

/// Lets an event be logged at most once every [`LOG_EVERY`], counting the others.
#[derive(Default)]
struct RateLimited {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimited {
    /// `Some(events not logged since the last one)` when this one, at `now`, may be
    /// logged.
    fn allow(&mut self, now: Instant) -> Option<u64> {
        if self.last.is_some_and(|last| now - last < LOG_EVERY) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lasting_condition_is_logged_once_every_ten_seconds_with_a_count() {
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let mut limited = RateLimited::default();
        assert_eq!(limited.allow(at(0)), Some(0));
        for secs in 1..=9 {
            assert_eq!(limited.allow(at(secs)), None, "{secs} s");
        }
        assert_eq!(limited.allow(at(10)), Some(9));
        assert_eq!(limited.allow(at(11)), None);
    }
}
