//! The unary endpoint: one JSON request, one JSON reply (every method but
//! `LogDriver.ReadLogs`). It turns "async fn(Request) -> Result<Response, Error>" into
//! a route: the shared request half, the driver called inside the call's span (and
//! optionally a deadline), a panic caught, and the reply encoded or Docker's
//! `{"Err": "..."}` sent with the error's status (with `Error` too for methods whose
//! error key it is: IPAM). The call runs to completion even when
//! its client goes away ([`detach`](super::detach)).
//!
//! This is every call's path, so it avoids what it can per call: one allocation for the
//! call's future, and the reply encoded into one buffer sent as it is.
//!
//! Logs: an error the driver returns is normal flow for dockerd (it probes with Get
//! before every Create, moby v20.10.24 `volume/service/store.go`), so it is logged at
//! debug; warn and error are for the SDK's own failures (a panic, an expired
//! deadline, a reply that cannot be encoded).

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use http::StatusCode;
use http::request::Parts;
use serde::Serialize;
use tracing::Instrument;

use super::reply::{Reply, method_error_reply, reply};
use super::request::Accepted;
use super::request::RequestBody;
use super::{CallContext, Encoder, Endpoint, ReplyFuture};
use crate::error::{Error, ErrorKind};
use crate::protocol::Method;

/// Method `M` served by `call(driver, request)`.
///
/// The driver and the function are kept apart, so that a call clones the shared `Arc`
/// once (into the driver's future), not twice (a closure holding it, then the `Arc` it
/// hands over): every clone and drop writes the one reference count all calls share,
/// and on a multi-thread runtime its cache line moves between the cores with each.
pub(crate) struct Unary<M: Method, D, F> {
    driver: Arc<D>,
    call: F,
    encode: Encoder<M::Response>,
    method: PhantomData<fn(M)>,
}

impl<M: Method, D, F> Unary<M, D, F> {
    pub(crate) fn new(driver: Arc<D>, call: F, encode: Encoder<M::Response>) -> Self {
        Self {
            driver,
            call,
            encode,
            method: PhantomData,
        }
    }
}

impl<M, D, F, Fut> Endpoint for Unary<M, D, F>
where
    M: Method,
    D: Send + Sync + 'static,
    F: Fn(Arc<D>, M::Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<M::Response, Error>> + Send + 'static,
{
    fn call(&self, context: CallContext<'_>, parts: &Parts, body: RequestBody) -> ReplyFuture {
        // What can be checked in the head is, before anything is allocated for the call.
        let accepted = match Accepted::new(M::NAME, parts, body, &context) {
            Ok(accepted) => accepted,
            Err(reply) => return ReplyFuture::ready(reply),
        };
        ReplyFuture::call(
            M::NAME,
            Box::pin(handle::<M, D, F, Fut>(
                accepted,
                context.call_timeout,
                Arc::clone(&self.driver),
                self.call.clone(),
                self.encode,
            )),
        )
    }
}

/// The call: its output is the reply future's (see [`UnaryCall`](super::UnaryCall)).
async fn handle<M, D, F, Fut>(
    accepted: Accepted,
    call_timeout: Option<Duration>,
    driver: Arc<D>,
    call: F,
    encode: Encoder<M::Response>,
) -> Result<Reply, Infallible>
where
    M: Method,
    F: Fn(Arc<D>, M::Request) -> Fut,
    Fut: Future<Output = Result<M::Response, Error>>,
{
    let content_type = accepted.content_type;
    let (request, span) = match accepted.decode::<M::Request>().await {
        Ok(decoded) => decoded,
        Err(reply) => return Ok(reply),
    };
    let guarded = run_guarded(call(driver, request), call_timeout, M::NAME);
    // A disabled span (no subscriber, or one at info) costs nothing to enter, but
    // `Instrumented` still checks it on every poll and on its drop.
    let outcome = if span.is_disabled() {
        guarded.await
    } else {
        guarded.instrument(span.clone()).await
    };
    Ok(match outcome {
        Ok(response) => match encode_with(encode, &response) {
            Ok(body) => {
                span.in_scope(|| tracing::debug!("call ok"));
                reply(content_type, StatusCode::OK, body)
            }
            Err(err) => {
                let message = format!("{}: could not encode the reply: {err}", M::NAME);
                span.in_scope(|| tracing::error!(method = M::NAME, "{message}"));
                method_error_reply(
                    content_type,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &message,
                    M::ERROR_KEY,
                )
            }
        },
        Err(err) => {
            span.in_scope(|| log_failure(&err));
            method_error_reply(content_type, err.status(), err.message(), M::ERROR_KEY)
        }
    })
}

/// Logs a driver's error, at debug: dockerd asks for what may not exist (Get before
/// every Create), and "not implemented" is normal for optional methods. Panics and
/// expired deadlines are logged louder where they are caught.
pub(super) fn log_failure(err: &Error) {
    match err.kind() {
        ErrorKind::NotImplemented => tracing::debug!(error = %err, "not implemented"),
        _ => tracing::debug!(error = %err, "call failed"),
    }
}

/// Encodes a reply with `encode`. Most replies are small: one allocation holds them,
/// and the buffer is sent as it is.
fn encode_with<T>(encode: Encoder<T>, value: &T) -> serde_json::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(128);
    encode(value, &mut buf)?;
    Ok(buf)
}

/// What encodes a reply unless its route says otherwise: serde_json.
pub(super) fn serde_encode<T: Serialize>(value: &T, buf: &mut Vec<u8>) -> serde_json::Result<()> {
    serde_json::to_writer(buf, value)
}

/// Runs a driver call, turning a panic or an expired deadline into an [`Error`].
pub(super) async fn run_guarded<T, Fut>(
    call: Fut,
    deadline: Option<Duration>,
    method: &str,
) -> Result<T, Error>
where
    Fut: Future<Output = Result<T, Error>>,
{
    let guarded = AssertUnwindSafe(call).catch_unwind();
    let caught = match deadline {
        None => guarded.await,
        // Boxed: the deadline's timer is large, and only this rarely used path needs it
        // (the call's future is smaller, and cheaper to set up, without it).
        Some(limit) => match Box::pin(tokio::time::timeout(limit, guarded)).await {
            Ok(caught) => caught,
            Err(_) => {
                let message = format!("{method} did not finish within {} ms", limit.as_millis());
                tracing::warn!(
                    method,
                    "{message}: the call was cancelled (Plugin::call_timeout)"
                );
                return Err(Error::new(message));
            }
        },
    };
    caught.unwrap_or_else(|panic| Err(panicked(method, panic.as_ref())))
}

/// The error a driver's panic becomes (logged once, here).
pub(super) fn panicked(method: &str, panic: &(dyn std::any::Any + Send)) -> Error {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    tracing::error!(method, panic = %detail, "driver panicked");
    Error::new(format!(
        "internal error: the plugin panicked in {method}: {detail}"
    ))
}
