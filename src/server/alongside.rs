//! The server's own background work (the shutdown signals, the memory trim after
//! bursts, the metrics endpoint's accept loop) is polled by the task that runs the
//! server, alongside its accept loop and drain, rather than in tasks of its own.
//!
//! On a multi-thread runtime a spawned task runs on a worker thread, and the first task
//! a worker runs pulls in the scheduler's run loop and, through its poll-time
//! statistics, libm's `pow` with its tables: pages that an idle plugin, whose accept
//! loop runs in `block_on` on the main thread, otherwise never touches. In
//! `benches/serve/` (median of 8 starts, SDK minus bare hyper) that took the idle RSS
//! from +0.95 to +0.64 MiB in the `main` setup and from +0.87 to +0.52 MiB in `multi`
//! (`/proc/PID/smaps`: libm's read-only data 220 kB to none, its code 300 to 256 kB).
//! Under load the workers run the connections' tasks anyway. None of this work needs a
//! thread of its own: it waits, and runs for microseconds (a trim walks glibc's arenas
//! once a burst of connections is over).

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;

/// Runs `body` to its end, polling `background` with it in the same task until then
/// (not after it finished); `background` is dropped when `body` ends.
pub(super) async fn alongside<B: Future>(
    body: B,
    background: impl Future<Output = ()>,
) -> B::Output {
    let mut body = pin!(body);
    let mut background = pin!(background);
    let mut background_done = false;
    poll_fn(|cx| {
        if let Poll::Ready(output) = body.as_mut().poll(cx) {
            return Poll::Ready(output);
        }
        if !background_done {
            background_done = background.as_mut().poll(cx).is_ready();
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn the_background_runs_until_the_body_ends_then_is_dropped() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let ticks = Arc::new(AtomicUsize::new(0));
        let background = {
            let ticks = Arc::clone(&ticks);
            async move {
                // Keeps `tx` until dropped: the body ends only when the background
                // released it... or was dropped.
                let _tx = tx;
                loop {
                    ticks.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                }
            }
        };
        let body = async {
            while ticks.load(Ordering::SeqCst) < 3 {
                tokio::task::yield_now().await;
            }
            7
        };
        assert_eq!(alongside(body, background).await, 7);
        assert!(
            rx.await.is_err(),
            "the background is dropped with the body's end"
        );
    }

    #[tokio::test]
    async fn a_background_that_finishes_early_is_not_polled_again() {
        let body = async {
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
            "done"
        };
        // An `async` block panics when polled after it completed.
        assert_eq!(alongside(body, async {}).await, "done");
    }
}
