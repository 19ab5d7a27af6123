//! A driver call runs to completion, even when its client goes away.
//!
//! When dockerd's timeout for a call fires (1 or 2 minutes for volume calls, 30 s for
//! every call of a managed plugin enabled with `docker plugin enable`), Go closes the
//! connection (moby v20.10.24 `pkg/plugins/client.go`, `volume/drivers/proxy.go`).
//! hyper then drops the reply's future at whatever `.await` the driver is parked on: a
//! mount finished by a child process would be orphaned and the driver's bookkeeping
//! would never run. go-plugins-helpers' handlers run to completion (Go's `net/http` does
//! not cancel a handler), and so do ours: a unary call's
//! [`ReplyFuture`](super::ReplyFuture), dropped before its call finished, hands the rest
//! of the call to [`finish_in_background`], which spawns it with `tokio::spawn`. The
//! reply is logged and dropped.
//!
//! This costs nothing per call in the common case: the call is polled in its
//! connection's task as before (no task, no cross-thread hop), and only a call whose
//! client left moves into a task of its own. `Plugin::call_timeout` is the explicit
//! opt-in that does cancel a driver future.

use super::UnaryCall;

/// Finishes `call`, a call of `method` whose reply's future was dropped before it
/// finished (the client closed the connection, or the drain timeout dropped the
/// connection), in a task of its own. The task holds the boxed call itself, so a task
/// dropped by a runtime that is shutting down ends there.
pub(super) fn finish_in_background(method: &'static str, call: UnaryCall) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(
            method,
            "a call was dropped outside the tokio runtime before it finished"
        );
        return;
    };
    tracing::info!(
        method,
        "the connection closed before the call finished (dockerd gave up waiting, or \
         the drain timed out): finishing it in the background"
    );
    runtime.spawn(async move {
        let Ok(reply) = call.await;
        tracing::debug!(
            method,
            status = reply.status().as_u16(),
            "finished a call whose connection had closed; its reply is dropped"
        );
    });
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::task::Context;

    use http::StatusCode;

    use crate::dispatch::reply::{Reply, error_reply};
    use crate::dispatch::{CallEnd, ReplyFuture};
    use crate::telemetry::CallMetrics;

    /// Counts the replies it is told of.
    struct Ends(Arc<AtomicUsize>);

    impl CallEnd for Ends {
        fn reply_ready(&self, _reply: &mut Reply) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A unary call that finishes when `released` fires, and says so in `finished`.
    fn slow_call(
        finished: &Arc<AtomicBool>,
        released: tokio::sync::oneshot::Receiver<()>,
    ) -> ReplyFuture {
        let finished = Arc::clone(finished);
        ReplyFuture::call(
            "Test.Slow",
            Box::pin(async move {
                let _ = released.await;
                finished.store(true, Ordering::SeqCst);
                let content_type = http::HeaderValue::from_static("application/json");
                Ok(error_reply(&content_type, StatusCode::OK, "done"))
            }),
        )
    }

    #[tokio::test]
    async fn a_call_dropped_midway_finishes_in_a_task_of_its_own_and_counts_as_abandoned() {
        let metrics = CallMetrics::new();
        let finished = Arc::new(AtomicBool::new(false));
        let ends = Arc::new(AtomicUsize::new(0));
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let call = slow_call(&finished, released)
            .timed(Some(&metrics.counters("Test.Slow")))
            .ended_by(Ends(Arc::clone(&ends)));
        let mut call = Box::pin(call);
        let noop = &mut Context::from_waker(std::task::Waker::noop());
        assert!(call.as_mut().poll(noop).is_pending(), "parked on its await");
        // The connection goes away mid-call.
        drop(call);
        let counted = metrics.method("Test.Slow").unwrap();
        assert_eq!((counted.calls, counted.abandoned), (0, 1));
        release.send(()).unwrap();
        for _ in 0..100 {
            if finished.load(Ordering::SeqCst) {
                // Its reply went nowhere, and was not counted again.
                assert_eq!(ends.load(Ordering::SeqCst), 0);
                let counted = metrics.method("Test.Slow").unwrap();
                assert_eq!((counted.calls, counted.abandoned), (0, 1));
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the dropped call did not run to its end");
    }

    #[tokio::test]
    async fn a_finished_call_is_counted_once_and_not_run_again_when_dropped() {
        let metrics = CallMetrics::new();
        let finished = Arc::new(AtomicBool::new(false));
        let ends = Arc::new(AtomicUsize::new(0));
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        release.send(()).unwrap();
        let call = slow_call(&finished, released)
            .timed(Some(&metrics.counters("Test.Slow")))
            .ended_by(Ends(Arc::clone(&ends)));
        let Ok(reply) = call.await;
        assert_eq!(reply.status(), StatusCode::OK);
        assert!(finished.load(Ordering::SeqCst));
        assert_eq!(ends.load(Ordering::SeqCst), 1);
        let counted = metrics.method("Test.Slow").unwrap();
        assert_eq!((counted.calls, counted.abandoned), (1, 0));
    }
}
