//! The accept loop: a free connection slot first (at most `max_connections` are open,
//! as the drain counts them; at the limit, new connections wait in the socket's backlog
//! until one closes), then the next connection, handed to its own task. Accept errors (usually `EMFILE`, out of
//! file descriptors) pause the loop briefly instead of spinning, and are logged at most
//! once every few seconds, like the limit being reached: either can last, and must not
//! flood the log.
//!
//! The first connection is accepted in the task that runs the server; from then on the
//! loop runs in a task of its own. `#[docker_plugin_sdk::main]` (like `#[tokio::main]`)
//! runs the server in `block_on`, on the main thread, outside the runtime's workers: a
//! connection accepted there is pushed to the runtime's shared queue and a worker is
//! woken for it, and the main thread itself is woken by the worker that polls the I/O
//! driver, two thread wake-ups for each batch of accepts. Accepted on a worker, a
//! connection's task is scheduled on that worker, which runs it next. In `benches/serve/`
//! (`main` setup, 16 clients each opening a new connection per call, load average 8–13
//! from other work), the server's wake-ups of other threads went from 0.36–0.52 to
//! 0.17 per connection and its context switches from 0.51–0.87 to 0.41 (`perf stat`
//! on the server; bare hyper: 0.29–0.58 and 0.38–1.03), and over 13 alternating
//! single-cell runs its CPU per call went from 0.99–1.07 to 0.82–0.95 times the bare
//! server's (calls/s, median of the runs: 0.94 to 1.08 times). Until the first
//! connection no worker runs anything, so an idle plugin never called does not touch
//! the pages of the workers' run loop (see [`super::alongside`]); the first call runs
//! on a worker anyway.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tokio_util::task::AbortOnDropHandle;

use super::drain::{Drain, Tracked};
use crate::transport::Accept;

/// How often a lasting condition (accept errors, the connection limit) is logged.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// The pause after an accept error.
const ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Accepts until `token` is cancelled, handing each connection's handshake and its
/// place in `drain` (which counts it against the limit from now on) to `spawn`: the
/// first connection in this task, the others in a task of its own (see the module
/// documentation). Returns once accepting has ended and `listener` is dropped; when
/// this future is dropped early, the loop's task is aborted (and drops `listener`).
pub(super) async fn accept_until<A: Accept>(
    listener: A,
    token: &CancellationToken,
    drain: &Arc<Drain>,
    spawn: impl FnMut(A::Handshake, Tracked) + Send + 'static,
) {
    let mut acceptor = Acceptor {
        listener,
        token: token.clone(),
        // One wait for the shutdown, registered once, and polled only when there is
        // nothing to accept: a `select!` on `token.cancelled()` per accept made,
        // registered and dropped a waiter each time, three locks per connection.
        cancelled: Box::pin(token.clone().cancelled_owned()),
        drain: Arc::clone(drain),
        spawn,
        errors: RateLimited::default(),
        full: RateLimited::default(),
    };
    if !acceptor.next().await {
        return;
    }
    // Aborted (dropping the listener) when this future is dropped while it waits.
    let task = AbortOnDropHandle::new(tokio::spawn(async move { while acceptor.next().await {} }));
    if let Err(err) = task.await {
        // Cancelled only when the runtime shuts down, which drops this task too.
        if let Ok(panic) = err.try_into_panic() {
            std::panic::resume_unwind(panic);
        }
    }
}

/// The accept loop's state: the listener, and what it waits for and logs.
struct Acceptor<A, S> {
    listener: A,
    token: CancellationToken,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    drain: Arc<Drain>,
    spawn: S,
    errors: RateLimited,
    full: RateLimited,
}

impl<A: Accept, S: FnMut(A::Handshake, Tracked)> Acceptor<A, S> {
    /// Accepts the next connection (after a free slot, and past accept errors) and
    /// hands it to `spawn`: true, or false once the token is cancelled.
    async fn next(&mut self) -> bool {
        loop {
            // Only this loop adds connections: a free slot stays free until the accept.
            if !self.drain.has_free_slot() {
                let max = self.drain.max();
                if let Some(suppressed) = self.full.allow(Instant::now()) {
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
                    () = &mut self.cancelled => return false,
                    () = self.drain.slot_freed() => {}
                }
            }
            let accepted = poll_fn(|cx| {
                // The shutdown first, as long as connections keep coming.
                if self.token.is_cancelled() {
                    return Poll::Ready(None);
                }
                if let Poll::Ready(accepted) = self.listener.poll_accept(cx) {
                    return Poll::Ready(Some(accepted));
                }
                self.cancelled.as_mut().poll(cx).map(|()| None)
            })
            .await;
            match accepted {
                None => return false,
                Some(Ok(handshake)) => {
                    (self.spawn)(handshake, Tracked::new(&self.drain));
                    return true;
                }
                Some(Err(err)) => {
                    if let Some(suppressed) = self.errors.allow(Instant::now()) {
                        tracing::warn!(%err, errors_since_last_report = suppressed, "accept failed");
                    }
                    tokio::time::sleep(ERROR_PAUSE).await;
                }
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
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread::ThreadId;

    use super::*;

    /// Connections handed over a channel; notes when it is dropped.
    struct Channel {
        connections: tokio::sync::mpsc::UnboundedReceiver<tokio::io::DuplexStream>,
        dropped: Arc<AtomicBool>,
    }

    impl Accept for Channel {
        type Io = tokio::io::DuplexStream;
        type Handshake = std::future::Ready<std::io::Result<Self::Io>>;

        fn url(&self) -> String {
            "memory://".to_owned()
        }

        fn poll_accept(
            &mut self,
            cx: &mut std::task::Context<'_>,
        ) -> Poll<std::io::Result<Self::Handshake>> {
            self.connections.poll_recv(cx).map(|io| {
                io.map(|io| std::future::ready(Ok(io)))
                    .ok_or_else(|| std::io::Error::other("no more connections"))
            })
        }
    }

    impl Drop for Channel {
        fn drop(&mut self) {
            self.dropped.store(true, Ordering::SeqCst);
        }
    }

    /// A channel listener with `connections` waiting, and its dropped flag.
    fn channel(connections: usize) -> (Channel, Arc<AtomicBool>) {
        let (send, receive) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..connections {
            send.send(tokio::io::duplex(64).0).unwrap();
        }
        // The sender is dropped: once the connections are taken, every accept fails.
        let dropped = Arc::new(AtomicBool::new(false));
        let channel = Channel {
            connections: receive,
            dropped: Arc::clone(&dropped),
        };
        (channel, dropped)
    }

    fn multi_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn after_the_first_connection_the_loop_runs_on_a_worker_not_in_block_on() {
        let runtime = multi_thread();
        let (listener, dropped) = channel(3);
        let token = CancellationToken::new();
        let drain = Arc::new(Drain::new(16));
        let threads: Arc<Mutex<Vec<ThreadId>>> = Arc::default();
        let recorded = Arc::clone(&threads);
        let stop = token.clone();
        runtime.block_on(accept_until(listener, &token, &drain, move |_, _| {
            let mut threads = recorded.lock().unwrap();
            threads.push(std::thread::current().id());
            if threads.len() == 3 {
                stop.cancel();
            }
        }));
        let main = std::thread::current().id();
        let threads = threads.lock().unwrap();
        assert_eq!(threads.len(), 3);
        assert_eq!(threads[0], main, "the first in the server's task");
        assert!(
            threads[1..].iter().all(|thread| *thread != main),
            "the others on a worker: {threads:?}, block_on on {main:?}"
        );
        assert!(
            dropped.load(Ordering::SeqCst),
            "the listener outlived the loop"
        );
    }

    #[test]
    fn a_shutdown_before_any_connection_drops_the_listener() {
        let runtime = multi_thread();
        let (listener, dropped) = channel(0);
        let token = CancellationToken::new();
        token.cancel();
        let drain = Arc::new(Drain::new(16));
        runtime.block_on(accept_until(listener, &token, &drain, |_, _| {
            panic!("nothing to accept")
        }));
        assert!(dropped.load(Ordering::SeqCst));
    }

    #[test]
    fn dropping_the_server_stops_the_loops_task_and_drops_the_listener() {
        let runtime = multi_thread();
        // One connection, then accept errors, every 50 ms, until stopped.
        let (listener, dropped) = channel(1);
        let token = CancellationToken::new();
        let drain = Arc::new(Drain::new(16));
        runtime.block_on(async {
            let serving = accept_until(listener, &token, &drain, |_, _| {});
            let ran = tokio::time::timeout(Duration::from_millis(200), serving).await;
            assert!(ran.is_err(), "the loop ended by itself");
            // Dropped: its task is aborted, and drops the listener.
            for _ in 0..100 {
                if dropped.load(Ordering::SeqCst) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("the loop's task still holds the listener 1 s after the server was dropped");
        });
    }

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
