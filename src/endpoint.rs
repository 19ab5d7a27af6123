//! The one generic endpoint every plugin method goes through.
//!
//! go-plugins-helpers repeats "decode, call the driver, encode" for every path. Here a
//! single function does it for all of them (design principle 2): check `Accept` and the
//! HTTP method, read the body without trusting `Content-Type` and within the size
//! limit, decode it with a clear error, call the driver inside a `tracing` span (and
//! optionally a deadline), catch a panic, and encode the reply or Docker's
//! `{"Err": "..."}`. A subsystem is then a list of `(path, method)` pairs.
//!
//! [`Dispatch`] routes a request to its method (or to `/Plugin.Activate`, or to the JSON
//! 404); the server calls it straight from hyper, `Plugin::into_router` through axum.
//! This is every call's path, so it avoids what it can per call: one allocation for the
//! call's future, the reply encoded into one buffer sent as it is, no router, no
//! hashing of the path.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures_util::FutureExt;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::error::{Error, ErrorKind};
use crate::protocol::{self, ACTIVATE_PATH, ErrorResponse};

/// The default limit on request bodies: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// Settings every endpoint of one plugin shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) body_limit: usize,
    pub(crate) call_timeout: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_limit: DEFAULT_BODY_LIMIT,
            call_timeout: None,
        }
    }
}

/// A request type of some plugin method.
pub trait WireRequest: DeserializeOwned + Send + 'static {
    /// What the call is about (a volume name, a network ID), recorded as the `name`
    /// field of the call's `tracing` span.
    fn subject(&self) -> Option<&str> {
        None
    }
}

impl WireRequest for protocol::Empty {}

/// Every reply: a status, the negotiated `Content-Type` and a JSON body.
pub(crate) type Reply = Response<JsonBody>;

/// A reply body: JSON already encoded, sent in one frame.
pub(crate) struct JsonBody(Option<Json>);

/// Encoded JSON: shared (the activation reply, encoded once) or owned (encoded for this
/// reply, and sent from the encoder's buffer as it is, without a copy or a `Bytes`
/// allocation).
pub(crate) enum Json {
    Shared(Bytes),
    Owned { buf: Vec<u8>, sent: usize },
}

impl JsonBody {
    /// The whole body, for a server that wants it as [`Bytes`].
    pub(crate) fn into_bytes(self) -> Bytes {
        match self.0 {
            None => Bytes::new(),
            Some(Json::Shared(bytes)) => bytes,
            Some(Json::Owned { mut buf, sent }) => {
                buf.drain(..sent);
                Bytes::from(buf)
            }
        }
    }
}

impl From<Bytes> for JsonBody {
    fn from(bytes: Bytes) -> Self {
        Self(Some(Json::Shared(bytes)))
    }
}

impl From<Vec<u8>> for JsonBody {
    fn from(buf: Vec<u8>) -> Self {
        Self(Some(Json::Owned { buf, sent: 0 }))
    }
}

impl Body for JsonBody {
    type Data = Json;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Json>, Infallible>>> {
        Poll::Ready(self.get_mut().0.take().map(|json| Ok(Frame::data(json))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.as_ref().map_or(0, |json| json.remaining() as u64))
    }
}

impl Buf for Json {
    fn remaining(&self) -> usize {
        match self {
            Self::Shared(bytes) => bytes.remaining(),
            Self::Owned { buf, sent } => buf.len() - sent,
        }
    }

    fn chunk(&self) -> &[u8] {
        match self {
            Self::Shared(bytes) => bytes.chunk(),
            Self::Owned { buf, sent } => &buf[*sent..],
        }
    }

    fn advance(&mut self, count: usize) {
        match self {
            Self::Shared(bytes) => bytes.advance(count),
            Self::Owned { buf, sent } => *sent = sent.saturating_add(count).min(buf.len()),
        }
    }
}

/// A request body, straight from hyper (the plugin's own [`Server`](crate::Server)) or
/// from axum (a plugin embedded with [`Plugin::into_router`](crate::Plugin::into_router)).
/// An enum rather than a boxed body: the server's calls allocate nothing for it.
pub(crate) enum RequestBody {
    Hyper(hyper::body::Incoming),
    Axum(axum::body::Body),
}

/// The routes of a plugin: every method of every subsystem, `/Plugin.Activate` and the
/// JSON 404 for everything else. The server and [`Plugin::into_router`] both answer
/// through it, so they behave the same.
///
/// [`Plugin::into_router`]: crate::Plugin::into_router
pub(crate) struct Dispatch {
    /// Looked up by a linear scan: a plugin has a few dozen paths at most, and comparing
    /// their lengths first is cheaper than hashing the request's path.
    routes: Vec<(String, Box<dyn Endpoint>)>,
    /// The `/Plugin.Activate` reply, encoded once.
    activation: Bytes,
    limits: Limits,
}

impl Dispatch {
    /// `routes` maps each path (`/VolumeDriver.Create`) to its method.
    pub(crate) fn new(
        routes: impl IntoIterator<Item = (String, Box<dyn Endpoint>)>,
        activation: Bytes,
        limits: Limits,
    ) -> Self {
        let mut unique: Vec<(String, Box<dyn Endpoint>)> = Vec::new();
        for (path, endpoint) in routes {
            // A path registered twice is served by the last registration.
            unique.retain(|(existing, _)| *existing != path);
            unique.push((path, endpoint));
        }
        Self {
            routes: unique,
            activation,
            limits,
        }
    }

    /// Answers one request, routed by its path.
    pub(crate) fn call(&self, request: Request<RequestBody>) -> ReplyFuture {
        let (parts, body) = request.into_parts();
        let path = parts.uri.path();
        if let Some((_, endpoint)) = self.routes.iter().find(|(route, _)| route == path) {
            return endpoint.call(self.limits, parts, body);
        }
        ReplyFuture::ready(if path == ACTIVATE_PATH {
            self.activate(&parts)
        } else {
            unknown_endpoint(&parts)
        })
    }

    /// The paths of the methods, in the order [`Dispatch::call_route`] numbers them.
    pub(crate) fn paths(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|(path, _)| path.as_str())
    }

    /// Answers a request routed (by a router) to the method numbered `index`.
    pub(crate) fn call_route(&self, index: usize, request: Request<RequestBody>) -> ReplyFuture {
        let (parts, body) = request.into_parts();
        match self.routes.get(index) {
            Some((_, endpoint)) => endpoint.call(self.limits, parts, body),
            None => ReplyFuture::ready(unknown_endpoint(&parts)),
        }
    }

    /// Answers a request routed to `/Plugin.Activate`.
    pub(crate) fn call_activate(&self, request: Request<RequestBody>) -> ReplyFuture {
        ReplyFuture::ready(self.activate(&request.into_parts().0))
    }

    /// Answers a request for a path this plugin does not serve.
    pub(crate) fn call_unknown(&self, request: Request<RequestBody>) -> ReplyFuture {
        ReplyFuture::ready(unknown_endpoint(&request.into_parts().0))
    }

    fn activate(&self, parts: &Parts) -> Reply {
        match check_request(parts) {
            Ok(content_type) => json_reply(content_type, StatusCode::OK, self.activation.clone()),
            Err(reply) => reply,
        }
    }
}

fn unknown_endpoint(parts: &Parts) -> Reply {
    let content_type = match check_request(parts) {
        Ok(content_type) => content_type,
        Err(reply) => return reply,
    };
    let message = format!(
        "unknown endpoint {}: this plugin does not implement it",
        parts.uri.path()
    );
    tracing::debug!("{message}");
    // dockerd reads a 404 as "not implemented", which is what an unknown method is.
    error_reply(content_type, StatusCode::NOT_FOUND, &message)
}

/// The reply to one request: ready at once (errors found in the head, activation), or
/// a method's call.
pub(crate) enum ReplyFuture {
    Ready(Option<Reply>),
    Call(Pin<Box<dyn Future<Output = Reply> + Send>>),
}

impl ReplyFuture {
    fn ready(reply: Reply) -> Self {
        Self::Ready(Some(reply))
    }
}

impl Future for ReplyFuture {
    type Output = Result<Reply, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Self::Call(call) => call.as_mut().poll(cx).map(Ok),
            Self::Ready(reply) => match reply.take() {
                Some(reply) => Poll::Ready(Ok(reply)),
                // Polled again after completion, which callers never do.
                None => Poll::Pending,
            },
        }
    }
}

/// One plugin method, its types erased.
pub(crate) trait Endpoint: Send + Sync + 'static {
    fn call(&self, limits: Limits, parts: Parts, body: RequestBody) -> ReplyFuture;
}

/// A plugin method: `name` is what dockerd puts in the path (`VolumeDriver.Create`),
/// `call` the driver method.
pub(crate) struct MethodEndpoint<Req, F> {
    name: &'static str,
    call: F,
    request: PhantomData<fn(Req)>,
}

impl<Req, F> MethodEndpoint<Req, F> {
    pub(crate) fn new(name: &'static str, call: F) -> Self {
        Self {
            name,
            call,
            request: PhantomData,
        }
    }
}

impl<Req, Resp, F, Fut> Endpoint for MethodEndpoint<Req, F>
where
    Req: WireRequest,
    Resp: Serialize + Send + 'static,
    F: Fn(Req) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, Error>> + Send + 'static,
{
    fn call(&self, limits: Limits, parts: Parts, body: RequestBody) -> ReplyFuture {
        // What can be checked in the head is, before anything is allocated for the call.
        let content_type = match check_request(&parts) {
            Ok(content_type) => content_type,
            Err(reply) => return ReplyFuture::ready(reply),
        };
        let declared = match &body {
            // hyper has parsed and checked `Content-Length` already.
            RequestBody::Hyper(body) => body.size_hint().exact(),
            RequestBody::Axum(_) => declared_length(&parts.headers),
        };
        drop(parts);
        ReplyFuture::Call(Box::pin(handle(
            limits,
            self.name,
            content_type,
            declared,
            body,
            self.call.clone(),
        )))
    }
}

async fn handle<Req, Resp, F, Fut>(
    limits: Limits,
    method: &'static str,
    content_type: &'static HeaderValue,
    declared: Option<u64>,
    body: RequestBody,
    call: F,
) -> Reply
where
    Req: WireRequest,
    Resp: Serialize,
    F: Fn(Req) -> Fut,
    Fut: Future<Output = Result<Resp, Error>>,
{
    let bytes = match read_body(body, declared, limits.body_limit, method).await {
        Ok(bytes) => bytes,
        Err((status, message)) => return error_reply(content_type, status, &message),
    };
    let span = tracing::info_span!("plugin_call", method, name = tracing::field::Empty);
    let request: Req = match protocol::decode_body(&bytes) {
        Ok(request) => request,
        Err(err) => {
            let message = format!("malformed JSON in {method} request: {err}");
            span.in_scope(|| tracing::warn!("{message}"));
            return error_reply(content_type, StatusCode::BAD_REQUEST, &message);
        }
    };
    drop(bytes);
    if let Some(subject) = request.subject() {
        span.record("name", subject);
    }
    let outcome = run_guarded(call(request), limits.call_timeout, method)
        .instrument(span.clone())
        .await;
    match outcome {
        Ok(reply) => match encode(&reply) {
            Ok(body) => {
                span.in_scope(|| tracing::debug!("call ok"));
                json_reply(content_type, StatusCode::OK, body)
            }
            Err(err) => {
                let message = format!("{method}: could not encode the reply: {err}");
                span.in_scope(|| tracing::error!("{message}"));
                error_reply(content_type, StatusCode::INTERNAL_SERVER_ERROR, &message)
            }
        },
        Err(err) => {
            span.in_scope(|| match err.kind() {
                ErrorKind::NotImplemented => tracing::debug!(error = %err, "not implemented"),
                _ => tracing::warn!(error = %err, "call failed"),
            });
            error_reply(content_type, err.status(), err.message())
        }
    }
}

/// Encodes a reply. Most replies are small: one allocation holds them, and the buffer
/// is sent as it is.
fn encode<T: Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(128);
    serde_json::to_writer(&mut buf, value)?;
    Ok(buf)
}

/// Runs a driver call, turning a panic or an expired deadline into an [`Error`].
async fn run_guarded<Resp, Fut>(
    call: Fut,
    deadline: Option<Duration>,
    method: &str,
) -> Result<Resp, Error>
where
    Fut: Future<Output = Result<Resp, Error>>,
{
    let guarded = AssertUnwindSafe(call).catch_unwind();
    let caught = match deadline {
        None => guarded.await,
        // Boxed: the deadline's timer is large, and only this rarely used path needs it
        // (the call's future is smaller, and cheaper to set up, without it).
        Some(limit) => match Box::pin(tokio::time::timeout(limit, guarded)).await {
            Ok(caught) => caught,
            Err(_) => {
                return Err(Error::new(format!(
                    "{method} did not finish within {} ms",
                    limit.as_millis()
                )));
            }
        },
    };
    caught.unwrap_or_else(|panic| {
        let detail = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned());
        tracing::error!(panic = %detail, "driver panicked");
        Err(Error::new(format!(
            "internal error: the plugin panicked in {method}: {detail}"
        )))
    })
}

/// Checks what must hold before the body is read: an acceptable `Accept` and `POST`.
/// Returns the reply's `Content-Type`.
// The `Err` is the finished reply; it is built only on the rare bad request and moved
// straight out, so boxing it would only add an allocation.
#[allow(clippy::result_large_err)]
pub(crate) fn check_request(parts: &Parts) -> Result<&'static HeaderValue, Reply> {
    let Some(content_type) = protocol::negotiate(&parts.headers) else {
        let message = format!(
            "cannot answer in any of the accepted formats ({}): this plugin speaks {}",
            accept_list(&parts.headers),
            protocol::MEDIA_TYPE_V1_2
        );
        return Err(error_reply(
            &FALLBACK_CONTENT_TYPE,
            StatusCode::NOT_ACCEPTABLE,
            &message,
        ));
    };
    if parts.method != Method::POST {
        let message = format!(
            "method {} is not allowed on {}: plugin endpoints take POST",
            parts.method,
            parts.uri.path()
        );
        return Err(error_reply(
            content_type,
            StatusCode::METHOD_NOT_ALLOWED,
            &message,
        ));
    }
    Ok(content_type)
}

static FALLBACK_CONTENT_TYPE: HeaderValue = HeaderValue::from_static(protocol::MEDIA_TYPE_V1);

fn accept_list(headers: &http::HeaderMap) -> String {
    headers
        .get_all(http::header::ACCEPT)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `Content-Length` a request declares, if it declares a valid one.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Reads the whole body, refusing more than `limit` bytes with a 413.
async fn read_body(
    body: RequestBody,
    declared: Option<u64>,
    limit: usize,
    method: &str,
) -> Result<Bytes, (StatusCode, String)> {
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large(method, limit));
    }
    let read = match body {
        RequestBody::Hyper(body) => collect(body, limit).await,
        RequestBody::Axum(body) => collect(body, limit).await,
    };
    match read {
        Ok(bytes) => Ok(bytes),
        Err(BodyError::TooLarge) => Err(too_large(method, limit)),
        Err(BodyError::Read(err)) => Err((
            StatusCode::BAD_REQUEST,
            format!("could not read the {method} request body: {err}"),
        )),
    }
}

fn too_large(method: &str, limit: usize) -> (StatusCode, String) {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("{method} request body is larger than the {limit}-byte limit"),
    )
}

enum BodyError {
    TooLarge,
    Read(String),
}

/// Collects a body of at most `limit` bytes. A body that arrives in one frame (dockerd's
/// always do) is returned as it came, without a copy; and a body known to be complete is
/// not polled again.
async fn collect<B>(body: B, limit: usize) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let mut body = std::pin::pin!(body);
    let mut first = Bytes::new();
    let mut joined: Option<Vec<u8>> = None;
    let mut total = 0usize;
    while !body.is_end_stream() {
        let Some(frame) = body.frame().await else {
            break;
        };
        let frame = frame.map_err(|err| BodyError::Read(err.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        total = total.saturating_add(data.len());
        if total > limit {
            return Err(BodyError::TooLarge);
        }
        match &mut joined {
            Some(buf) => buf.extend_from_slice(&data),
            None if first.is_empty() => first = data,
            None if data.is_empty() => {}
            None => {
                let mut buf = Vec::with_capacity(total);
                buf.extend_from_slice(&first);
                buf.extend_from_slice(&data);
                joined = Some(buf);
            }
        }
    }
    Ok(joined.map_or(first, Bytes::from))
}

/// A JSON reply with the negotiated content type.
pub(crate) fn json_reply(
    content_type: &HeaderValue,
    status: StatusCode,
    body: impl Into<JsonBody>,
) -> Reply {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, content_type.clone());
    response
}

/// Docker's `{"Err": "..."}` reply.
pub(crate) fn error_reply(content_type: &HeaderValue, status: StatusCode, message: &str) -> Reply {
    let body = serde_json::to_vec(&ErrorResponse {
        err: message.to_owned(),
    })
    .unwrap_or_else(|_| br#"{"Err":"internal error"}"#.to_vec());
    json_reply(content_type, status, body)
}
