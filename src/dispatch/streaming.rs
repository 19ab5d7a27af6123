//! The streaming endpoint, sibling of the unary one (as tonic's `server_streaming` is
//! of `unary`): the same request half, then a body that streams the frames the driver
//! yields, for `LogDriver.ReadLogs` (moby v20.10.24 `daemon/logger/plugin.go`: dockerd
//! reads the reply as a stream of log frames, and keeps reading while following).
//!
//! It differs from a unary call in three ways: there is no call deadline (a follow
//! stream lasts as long as the container logs), the reply's length is unknown (sent
//! chunked, each frame as soon as it is yielded), and the stream ends when the server
//! starts shutting down, so a follow stream cannot hold the drain. A panic while the
//! stream is being set up is answered like a unary call's; one while it streams ends
//! the stream (the status is already sent).

use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::StatusCode;
use http::request::Parts;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::reply::{Reply, StreamBody, error_reply, reply};
use super::request::Accepted;
use super::request::RequestBody;
use super::unary::{log_failure, panicked, run_guarded};
use super::{CallContext, Endpoint, ReplyFuture};
use crate::error::Error;
use crate::protocol::Method;

/// Method `M` served by `call`, which returns the stream of the reply's frames.
pub(crate) struct Streaming<M, F> {
    call: F,
    method: PhantomData<fn(M)>,
}

impl<M, F> Streaming<M, F> {
    pub(crate) fn new(call: F) -> Self {
        Self {
            call,
            method: PhantomData,
        }
    }
}

impl<M, F, Fut, S> Endpoint for Streaming<M, F>
where
    M: Method,
    F: Fn(M::Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<S, Error>> + Send + 'static,
    S: Stream<Item = Bytes> + Send + 'static,
{
    fn call(&self, context: CallContext<'_>, parts: &Parts, body: RequestBody) -> ReplyFuture {
        let accepted = match Accepted::new(M::NAME, parts, body, &context) {
            Ok(accepted) => accepted,
            Err(reply) => return ReplyFuture::ready(reply),
        };
        ReplyFuture::stream(Box::pin(handle::<M, F, Fut, S>(
            accepted,
            context.shutdown.clone(),
            self.call.clone(),
        )))
    }
}

async fn handle<M, F, Fut, S>(accepted: Accepted, shutdown: CancellationToken, call: F) -> Reply
where
    M: Method,
    F: Fn(M::Request) -> Fut,
    Fut: Future<Output = Result<S, Error>>,
    S: Stream<Item = Bytes> + Send + 'static,
{
    let content_type = accepted.content_type;
    let (request, span) = match accepted.decode::<M::Request>().await {
        Ok(decoded) => decoded,
        Err(reply) => return reply,
    };
    match run_guarded(call(request), None, M::NAME)
        .instrument(span.clone())
        .await
    {
        Ok(frames) => {
            span.in_scope(|| tracing::debug!("streaming"));
            let span = span.clone();
            let frames = AssertUnwindSafe(frames)
                .catch_unwind()
                .scan(span, |span, frame| {
                    std::future::ready(match frame {
                        Ok(bytes) => Some(bytes),
                        Err(panic) => {
                            span.in_scope(|| panicked(M::NAME, panic.as_ref()));
                            None
                        }
                    })
                });
            let body = StreamBody::new(Box::pin(frames), shutdown.cancelled_owned());
            reply(content_type, StatusCode::OK, body)
        }
        Err(err) => {
            span.in_scope(|| log_failure(&err));
            error_reply(content_type, err.status(), err.message())
        }
    }
}
