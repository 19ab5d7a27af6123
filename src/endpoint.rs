//! The one generic endpoint every plugin method goes through.
//!
//! go-plugins-helpers repeats "decode, call the driver, encode" for every path. Here a
//! single function does it for all of them (design principle 2): check `Accept` and the
//! HTTP method, read the body without trusting `Content-Type` and within the size
//! limit, decode it with a clear error, call the driver inside a `tracing` span (and
//! optionally a deadline), catch a panic, and encode the reply or Docker's
//! `{"Err": "..."}`. A subsystem is then a list of `(path, method)` pairs.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::MethodRouter;
use bytes::Bytes;
use futures_util::FutureExt;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::error::{Error, ErrorKind};
use crate::protocol::{self, ErrorResponse};

/// The default limit on request bodies: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// Settings every endpoint of one plugin shares.
#[derive(Debug, Clone)]
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

/// The state every route receives.
pub(crate) type Shared = Arc<Limits>;

/// A request type of some plugin method.
pub trait WireRequest: DeserializeOwned + Send + 'static {
    /// What the call is about (a volume name, a network ID), recorded as the `name`
    /// field of the call's `tracing` span.
    fn subject(&self) -> Option<&str> {
        None
    }
}

impl WireRequest for protocol::Empty {}

/// Builds the route of one plugin method: `method` is the name dockerd uses in the path
/// (`VolumeDriver.Create`), `call` the driver method.
pub(crate) fn route<Req, Resp, F, Fut>(method: &'static str, call: F) -> MethodRouter<Shared>
where
    Req: WireRequest,
    Resp: Serialize + Send + 'static,
    F: Fn(Req) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, Error>> + Send + 'static,
{
    axum::routing::any(move |State(limits): State<Shared>, request: Request| {
        let call = call.clone();
        async move { handle(&limits, method, request, call).await }
    })
}

async fn handle<Req, Resp, F, Fut>(
    limits: &Limits,
    method: &'static str,
    request: Request,
    call: F,
) -> Response
where
    Req: WireRequest,
    Resp: Serialize,
    F: Fn(Req) -> Fut,
    Fut: Future<Output = Result<Resp, Error>>,
{
    let (parts, body) = request.into_parts();
    let content_type = match check_request(&parts) {
        Ok(content_type) => content_type,
        Err(reply) => return reply,
    };
    let bytes = match read_body(body, &parts.headers, limits.body_limit, method).await {
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
    if let Some(subject) = request.subject() {
        span.record("name", subject);
    }
    let outcome = run_guarded(call(request), limits.call_timeout, method)
        .instrument(span.clone())
        .await;
    match outcome {
        Ok(reply) => match serde_json::to_vec(&reply) {
            Ok(body) => {
                span.in_scope(|| tracing::debug!("call ok"));
                json_reply(content_type, StatusCode::OK, Bytes::from(body))
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
        Some(limit) => match tokio::time::timeout(limit, guarded).await {
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
pub(crate) fn check_request(
    parts: &http::request::Parts,
) -> Result<&'static HeaderValue, Response> {
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

/// Reads the whole body, refusing more than `limit` bytes with a 413.
async fn read_body(
    body: Body,
    headers: &http::HeaderMap,
    limit: usize,
    method: &str,
) -> Result<Bytes, (StatusCode, String)> {
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{method} request body is larger than the {limit}-byte limit"),
        )
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(err) => Err((
            StatusCode::BAD_REQUEST,
            format!("could not read the {method} request body: {err}"),
        )),
    }
}

/// A JSON reply with the negotiated content type.
pub(crate) fn json_reply(content_type: &HeaderValue, status: StatusCode, body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, content_type.clone());
    response
}

/// Docker's `{"Err": "..."}` reply.
pub(crate) fn error_reply(
    content_type: &HeaderValue,
    status: StatusCode,
    message: &str,
) -> Response {
    let body = serde_json::to_vec(&ErrorResponse {
        err: message.to_owned(),
    })
    .unwrap_or_else(|_| br#"{"Err":"internal error"}"#.to_vec());
    json_reply(content_type, status, Bytes::from(body))
}
