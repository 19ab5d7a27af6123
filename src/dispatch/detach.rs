//! A driver call runs to completion, even when its client goes away.
//!
//! When dockerd's timeout for a call fires (1 or 2 minutes for volume calls, 30 s for
//! every call of a managed plugin enabled with `docker plugin enable`), Go closes the
//! connection (moby v20.10.24 `pkg/plugins/client.go`, `volume/drivers/proxy.go`).
//! hyper then drops the reply's future at whatever `.await` the driver is parked on: a
//! mount finished by a child process would be orphaned and the driver's bookkeeping
//! would never run. go-plugins-helpers' handlers run to completion (Go's `net/http` does
//! not cancel a handler), and so do ours: [`RunToCompletion`] is the call's future, and
//! when it is dropped before it finished, its `Drop` hands the rest of the call to
//! `tokio::spawn`. The reply is logged and dropped.
//!
//! This costs nothing per call in the common case: the call is polled in its
//! connection's task as before (no task, no cross-thread hop), and only a call whose
//! client left moves into a task of its own. `Plugin::call_timeout` is the explicit
//! opt-in that does cancel a driver future.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::reply::Reply;

/// A unary call's future: the request half, the driver call and the reply, run to
/// completion even when dropped first.
pub(crate) struct RunToCompletion {
    /// `None` once the call has finished.
    call: Option<Pin<Box<dyn Future<Output = Reply> + Send>>>,
    method: &'static str,
}

impl RunToCompletion {
    /// The call's future comes boxed: built in place in its box, it is not moved (a
    /// call's future is a few hundred bytes).
    pub(crate) fn new(
        method: &'static str,
        call: Pin<Box<dyn Future<Output = Reply> + Send>>,
    ) -> Self {
        Self {
            call: Some(call),
            method,
        }
    }
}

impl Future for RunToCompletion {
    type Output = Reply;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Reply> {
        let this = self.get_mut();
        let Some(call) = this.call.as_mut() else {
            // Polled again after completion, which callers never do.
            return Poll::Pending;
        };
        let reply = ready!(call.as_mut().poll(cx));
        this.call = None;
        Poll::Ready(reply)
    }
}

impl Drop for RunToCompletion {
    /// Dropped before it finished (the client closed the connection, or the drain
    /// timeout dropped the connection): the call finishes in a task of its own. The
    /// task holds the boxed call itself, not a `RunToCompletion`, so a task dropped by a
    /// runtime that is shutting down ends there.
    fn drop(&mut self) {
        let Some(call) = self.call.take() else {
            return;
        };
        let method = self.method;
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
            let reply = call.await;
            tracing::debug!(
                method,
                status = reply.status().as_u16(),
                "finished a call whose connection had closed; its reply is dropped"
            );
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use http::StatusCode;

    use super::*;
    use crate::dispatch::reply::error_reply;

    #[tokio::test]
    async fn a_call_dropped_midway_finishes_in_a_task_of_its_own() {
        let finished = Arc::new(AtomicBool::new(false));
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let call = RunToCompletion::new("Test.Slow", {
            let finished = Arc::clone(&finished);
            Box::pin(async move {
                let _ = released.await;
                finished.store(true, Ordering::SeqCst);
                let content_type = http::HeaderValue::from_static("application/json");
                error_reply(&content_type, StatusCode::OK, "done")
            })
        });
        let mut call = Box::pin(call);
        let noop = &mut Context::from_waker(std::task::Waker::noop());
        assert!(call.as_mut().poll(noop).is_pending(), "parked on its await");
        // The connection goes away mid-call.
        drop(call);
        release.send(()).unwrap();
        for _ in 0..100 {
            if finished.load(Ordering::SeqCst) {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the dropped call did not run to its end");
    }
}
