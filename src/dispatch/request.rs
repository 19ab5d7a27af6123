//! The request half every endpoint shares, unary or streaming: the head checked before
//! anything is allocated for the call (`Accept`, `POST`, a declared length over the
//! limit), then the body read within the limit and the read deadline (without
//! trusting `Content-Type`, which dockerd never sends) and decoded as the method's
//! request type, inside the call's `tracing` span.
//!
//! This is on every call's path, so it avoids what it can: a body that arrives in one
//! frame (dockerd's always do) is used as it came, without a copy, and the read
//! deadline's timer is armed only when the body has to be waited for.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method};
use hyper::body::{Body, Frame};
use tracing::Span;

use super::CallContext;
use super::rejection::{FALLBACK_CONTENT_TYPE, Rejection};
use super::reply::Reply;
use crate::protocol::{self, WireRequest};

/// A request whose head passed the checks, its body not read yet.
pub(crate) struct Accepted {
    /// The reply's `Content-Type`, negotiated from `Accept`.
    pub(crate) content_type: &'static HeaderValue,
    /// The method's name, e.g. `VolumeDriver.Mount`.
    pub(crate) method: &'static str,
    declared: Option<u64>,
    body: RequestBody,
    limit: usize,
    read_timeout: Duration,
}

impl Accepted {
    /// Checks the head of a call to `method`; the finished rejection when it fails.
    // The `Err` is the finished reply, built only for a bad request (see `check_head`).
    #[allow(clippy::result_large_err)]
    pub(crate) fn new(
        method: &'static str,
        parts: &Parts,
        body: RequestBody,
        context: &CallContext<'_>,
    ) -> Result<Self, Reply> {
        let content_type = check_head(parts)?;
        let declared = body.declared_length(&parts.headers);
        Ok(Self {
            content_type,
            method,
            declared,
            body,
            limit: context.body_limit,
            read_timeout: context.body_read_timeout,
        })
    }

    /// Reads and decodes the body as `Req`: the request and the call's span, or the
    /// rejection's reply.
    pub(crate) async fn decode<Req: WireRequest>(self) -> Result<(Req, Span), Reply> {
        let Accepted {
            content_type,
            method,
            declared,
            body,
            limit,
            read_timeout,
        } = self;
        let refuse = |rejection: Rejection| {
            // Only POST gets this far (see `check_head`).
            rejection.log(&Method::POST, &format!("/{method}"));
            rejection.into_reply(content_type)
        };
        let bytes: Bytes = body
            .read(declared, limit, read_timeout, method)
            .await
            .map_err(refuse)?;
        // At debug: a plugin's logs at info carry no per-call span (creating, entering
        // and leaving one is a fifth of a trivial call's cost); the SDK's own warnings
        // and errors name their method themselves. With debug on, every event in the
        // call (the driver's too) is inside `plugin_call{method name}`.
        let span = tracing::debug_span!("plugin_call", method, name = tracing::field::Empty);
        let request: Req = match protocol::decode_body(&bytes) {
            Ok(request) => request,
            Err(error) => {
                let trimmed = bytes.trim_ascii();
                let rejection = if trimmed.is_empty() || trimmed == b"null" {
                    Rejection::empty_body(method, &error)
                } else {
                    Rejection::MalformedJson { method, error }
                };
                return Err(span.in_scope(|| refuse(rejection)));
            }
        };
        drop(bytes);
        if !span.is_disabled()
            && let Some(subject) = request.subject()
        {
            span.record("name", subject);
        }
        Ok((request, span))
    }
}

/// A request body, straight from hyper (the plugin's own [`Server`](crate::Server)) or
/// from axum (a plugin embedded with [`Plugin::into_router`](crate::Plugin::into_router)).
/// An enum rather than a boxed body: the server's calls allocate nothing for it.
pub(crate) enum RequestBody {
    Hyper(hyper::body::Incoming),
    Axum(axum::body::Body),
}

impl RequestBody {
    /// The length the body declares, when known before reading it.
    pub(crate) fn declared_length(&self, headers: &http::HeaderMap) -> Option<u64> {
        match self {
            // hyper has parsed and checked `Content-Length` already.
            Self::Hyper(body) => body.size_hint().exact(),
            Self::Axum(_) => headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok()),
        }
    }

    /// Reads the whole body of a call to `method`, refusing more than `limit` bytes and
    /// a body still incomplete `timeout` after it was first waited for.
    pub(crate) fn read(
        self,
        declared: Option<u64>,
        limit: usize,
        timeout: Duration,
        method: &'static str,
    ) -> ReadBody {
        ReadBody {
            too_large: declared.is_some_and(|len| len > limit as u64),
            body: self,
            limit,
            timeout,
            method,
            deadline: None,
            first: Bytes::new(),
            joined: None,
            total: 0,
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Hyper(body) => body.is_end_stream(),
            Self::Axum(body) => body.is_end_stream(),
        }
    }

    /// The next frame, its error as text.
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, String>>> {
        match self {
            Self::Hyper(body) => map_error(Pin::new(body).poll_frame(cx)),
            Self::Axum(body) => map_error(Pin::new(body).poll_frame(cx)),
        }
    }
}

fn map_error<E: std::fmt::Display>(
    polled: Poll<Option<Result<Frame<Bytes>, E>>>,
) -> Poll<Option<Result<Frame<Bytes>, String>>> {
    polled.map(|frame| frame.map(|frame| frame.map_err(|err| err.to_string())))
}

/// A body being read: at most `limit` bytes, within `timeout` of the first time it has
/// to be waited for. A body that arrives in one frame is returned as it came, without
/// a copy (and without a timer); and a body known to be complete is not polled again.
///
/// A future written out rather than `async` functions nested three deep: each level
/// kept its own copy of the body and its arguments, and the call's future, boxed for
/// every call, was twice the size.
pub(crate) struct ReadBody {
    /// The declared length is over the limit: refused without reading.
    too_large: bool,
    body: RequestBody,
    limit: usize,
    timeout: Duration,
    method: &'static str,
    /// Armed, `timeout` from then, the first time the body is not ready.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    first: Bytes,
    joined: Option<Vec<u8>>,
    total: usize,
}

impl Future for ReadBody {
    type Output = Result<Bytes, Rejection>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let (method, limit) = (this.method, this.limit);
        if this.too_large {
            return Poll::Ready(Err(Rejection::TooLarge { method, limit }));
        }
        while !this.body.is_end_stream() {
            let frame = match this.body.poll_frame(cx) {
                Poll::Ready(frame) => frame,
                Poll::Pending => {
                    let timeout = this.timeout;
                    let timer = this
                        .deadline
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                    ready!(timer.as_mut().poll(cx));
                    return Poll::Ready(Err(Rejection::BodyTimeout { method, timeout }));
                }
            };
            let Some(frame) = frame else {
                break;
            };
            let frame = match frame {
                Ok(frame) => frame,
                Err(error) => return Poll::Ready(Err(Rejection::BodyRead { method, error })),
            };
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            this.total = this.total.saturating_add(data.len());
            if this.total > limit {
                return Poll::Ready(Err(Rejection::TooLarge { method, limit }));
            }
            match &mut this.joined {
                Some(buf) => buf.extend_from_slice(&data),
                None if this.first.is_empty() => this.first = data,
                None if data.is_empty() => {}
                None => {
                    let mut buf = Vec::with_capacity(this.total);
                    buf.extend_from_slice(&this.first);
                    buf.extend_from_slice(&data);
                    this.joined = Some(buf);
                }
            }
        }
        let first = std::mem::take(&mut this.first);
        Poll::Ready(Ok(this.joined.take().map_or(first, Bytes::from)))
    }
}

/// Checks what must hold before the body is read: an acceptable `Accept` and `POST`.
/// Returns the reply's `Content-Type`, or the finished rejection.
// The `Err` is the finished reply; it is built only on the rare bad request and moved
// straight out, so boxing it would only add an allocation.
#[allow(clippy::result_large_err)]
pub(crate) fn check_head(parts: &Parts) -> Result<&'static HeaderValue, Reply> {
    let Some(content_type) = protocol::negotiate(&parts.headers) else {
        let rejection = Rejection::NotAcceptable {
            accept: accept_list(&parts.headers),
        };
        rejection.log(&parts.method, parts.uri.path());
        return Err(rejection.into_reply(&FALLBACK_CONTENT_TYPE));
    };
    if parts.method != Method::POST {
        let rejection = Rejection::MethodNotAllowed {
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
        };
        rejection.log(&parts.method, parts.uri.path());
        return Err(rejection.into_reply(content_type));
    }
    Ok(content_type)
}

fn accept_list(headers: &http::HeaderMap) -> String {
    headers
        .get_all(http::header::ACCEPT)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::ACCEPT;
    use http::{Request, StatusCode};

    fn parts(method: Method, accept: Option<&str>) -> Parts {
        let mut request = Request::builder().method(method).uri("/Test.Echo");
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_head_check_answers_406_as_v1_and_405_as_negotiated() {
        let v12 = Some(protocol::MEDIA_TYPE_V1_2);
        let reply = check_head(&parts(Method::POST, Some("text/html"))).unwrap_err();
        assert_eq!(reply.status(), StatusCode::NOT_ACCEPTABLE);
        assert_eq!(reply.headers()["content-type"], protocol::MEDIA_TYPE_V1);
        let reply = check_head(&parts(Method::GET, v12)).unwrap_err();
        assert_eq!(reply.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(reply.headers()["content-type"], protocol::MEDIA_TYPE_V1_2);
        let negotiated = check_head(&parts(Method::POST, v12)).ok();
        assert_eq!(negotiated.unwrap(), protocol::MEDIA_TYPE_V1_2);
    }
}
