//! The server's own background work (the shutdown signals, the memory trim after
//! bursts, the metrics endpoint's accept loop) is polled by the task that runs the
//! server, alongside its accept loop and drain, rather than in tasks of its own.
//!
//! On a multi-thread runtime a spawned task runs on a worker thread, and the first task
//! a worker runs pulls in the scheduler's run loop and, through its poll-time
//! statistics, libm's `pow` with its tables: pages that an idle plugin, whose accept
//! loop runs in `block_on` on the main thread until its first connection (see
//! [`super::accept_loop`]), otherwise never touches. In
//! `benches/serve/` (median of 8 starts, SDK minus bare hyper) that took the idle RSS
//! from +0.95 to +0.64 MiB in the `main` setup and from +0.87 to +0.52 MiB in `multi`
//! (`/proc/PID/smaps`: libm's read-only data 220 kB to none, its code 300 to 256 kB).
//! Under load the workers run the connections' tasks anyway. None of this work needs a
//! thread of its own: it waits, and runs for microseconds (a trim walks glibc's arenas
//! once a burst of connections is over).
//!
//! The background is polled only when one of its own wake-ups came (it has a waker of
//! its own, which notes the wake-up and wakes the task): the task is woken for every
//! connection accepted, and polling the background each time polled the signals', the
//! trim's and the timer's waits, taking a lock or two each.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

/// Runs `body` to its end, polling `background` with it in the same task until then
/// (not after it finished), each time the background was woken; `background` is
/// dropped when `body` ends.
pub(super) async fn alongside<B: Future>(
    body: B,
    background: impl Future<Output = ()>,
) -> B::Output {
    let mut body = pin!(body);
    let mut background = pin!(background);
    let mut background_done = false;
    let woken = Arc::new(BackgroundWoken {
        // Polled a first time, for it to register its wake-ups.
        woken: AtomicBool::new(true),
        task: Mutex::new(None),
    });
    let background_waker = Waker::from(Arc::clone(&woken));
    // The task's waker as last given to `woken`.
    let mut task_waker: Option<Waker> = None;
    poll_fn(|cx| {
        if let Poll::Ready(output) = body.as_mut().poll(cx) {
            return Poll::Ready(output);
        }
        if background_done {
            return Poll::Pending;
        }
        if !task_waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            // For a tokio task, once.
            woken.set_task(cx.waker().clone());
            task_waker = Some(cx.waker().clone());
        }
        if woken.woken.swap(false, Ordering::AcqRel) {
            background_done = background
                .as_mut()
                .poll(&mut Context::from_waker(&background_waker))
                .is_ready();
        }
        Poll::Pending
    })
    .await
}

/// The background's waker: notes that the background is to be polled, and wakes the
/// task.
struct BackgroundWoken {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl BackgroundWoken {
    fn set_task(&self, waker: Waker) {
        *self.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(waker);
    }
}

impl Wake for BackgroundWoken {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        if let Some(task) = &*self.task.lock().unwrap_or_else(PoisonError::into_inner) {
            task.wake_by_ref();
        }
    }
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
    async fn the_background_is_polled_only_when_it_was_woken() {
        let polls = AtomicUsize::new(0);
        let wake = std::sync::Mutex::new(None::<std::task::Waker>);
        // Pending for ever; keeps its waker for the body to wake it once.
        let background = poll_fn(|cx| {
            polls.fetch_add(1, Ordering::SeqCst);
            *wake.lock().unwrap() = Some(cx.waker().clone());
            Poll::<()>::Pending
        });
        let body = async {
            // Woken ten times by the body's own wake-ups: polled once, to start.
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            let first = polls.load(Ordering::SeqCst);
            // Woken through its own waker: polled again.
            wake.lock().unwrap().take().unwrap().wake();
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            (first, polls.load(Ordering::SeqCst))
        };
        assert_eq!(alongside(body, background).await, (1, 2));
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
