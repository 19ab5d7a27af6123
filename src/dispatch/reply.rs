//! Replies: a status, the negotiated `Content-Type` and a body that is either JSON
//! encoded at once (sent from the encoder's buffer as it is, in one frame) or, for a
//! streaming method, frames sent as the driver yields them until the stream ends or
//! the server starts shutting down.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::Stream;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::protocol::{ErrorKey, ErrorResponse};

/// Every reply: a status, the negotiated `Content-Type` and a body.
pub(crate) type Reply = Response<ReplyBody>;

/// A reply body: JSON already encoded and sent in one frame, or the frames of a
/// streaming method.
pub(crate) enum ReplyBody {
    Json(Option<Chunk>),
    Stream(StreamBody),
}

/// A piece of a reply: shared bytes (the activation reply, encoded once; a streamed
/// frame) or a buffer this reply owns (encoded JSON, sent from the encoder's buffer as
/// it is, without a copy or a `Bytes` allocation).
pub(crate) enum Chunk {
    Shared(Bytes),
    Owned { buf: Vec<u8>, sent: usize },
}

/// The frames a streaming method yields, until the stream ends or the server starts
/// shutting down (a follow stream never ends by itself, and must not hold the drain).
pub(crate) struct StreamBody {
    frames: Pin<Box<dyn Stream<Item = Bytes> + Send>>,
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Dropped with the body: what the server does when the stream is over.
    on_end: Option<Box<dyn Send>>,
}

impl StreamBody {
    pub(crate) fn new(
        frames: Pin<Box<dyn Stream<Item = Bytes> + Send>>,
        shutdown: WaitForCancellationFutureOwned,
    ) -> Self {
        Self {
            frames,
            shutdown: Box::pin(shutdown),
            on_end: None,
        }
    }

    /// Keeps `guard` until the body is dropped (sent in full, or its connection gone).
    pub(crate) fn on_end(&mut self, guard: Box<dyn Send>) {
        self.on_end = Some(guard);
    }
}

impl ReplyBody {
    /// The whole body, for a server that wants it as [`Bytes`] (axum). A stream is
    /// passed on as a stream by [`ReplyBody::into_axum`] instead.
    fn json_bytes(chunk: Option<Chunk>) -> Bytes {
        match chunk {
            None => Bytes::new(),
            Some(Chunk::Shared(bytes)) => bytes,
            Some(Chunk::Owned { mut buf, sent }) => {
                buf.drain(..sent);
                Bytes::from(buf)
            }
        }
    }

    /// The body as axum's.
    pub(crate) fn into_axum(self) -> axum::body::Body {
        match self {
            Self::Json(chunk) => axum::body::Body::from(Self::json_bytes(chunk)),
            Self::Stream(stream) => axum::body::Body::new(stream.map_frame(|frame| {
                frame.map_data(|mut chunk| chunk.copy_to_bytes(chunk.remaining()))
            })),
        }
    }
}

impl From<Bytes> for ReplyBody {
    fn from(bytes: Bytes) -> Self {
        Self::Json(Some(Chunk::Shared(bytes)))
    }
}

impl From<Vec<u8>> for ReplyBody {
    fn from(buf: Vec<u8>) -> Self {
        Self::Json(Some(Chunk::Owned { buf, sent: 0 }))
    }
}

impl From<StreamBody> for ReplyBody {
    fn from(stream: StreamBody) -> Self {
        Self::Stream(stream)
    }
}

impl Body for ReplyBody {
    type Data = Chunk;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Chunk>, Infallible>>> {
        match self.get_mut() {
            Self::Json(chunk) => Poll::Ready(chunk.take().map(|json| Ok(Frame::data(json)))),
            Self::Stream(stream) => Pin::new(stream).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Json(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Json(chunk) => {
                SizeHint::with_exact(chunk.as_ref().map_or(0, |json| json.remaining() as u64))
            }
            Self::Stream(_) => SizeHint::default(),
        }
    }
}

impl Body for StreamBody {
    type Data = Chunk;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Chunk>, Infallible>>> {
        let this = self.get_mut();
        if this.shutdown.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        this.frames
            .as_mut()
            .poll_next(cx)
            .map(|frame| frame.map(|bytes| Ok(Frame::data(Chunk::Shared(bytes)))))
    }
}

impl Buf for Chunk {
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

/// A reply with the negotiated content type.
pub(crate) fn reply(
    content_type: &HeaderValue,
    status: StatusCode,
    body: impl Into<ReplyBody>,
) -> Reply {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, content_type.clone());
    response
}

/// The reply to a method whose call failed: Docker's `{"Err": "..."}`, and for a
/// method whose replies carry their error in `Error` (IPAM) `{"Err": m, "Error": m}`.
/// The status is never 200, and for a non-200 reply dockerd's `pkg/plugins` client
/// reads `Err` (showing the whole body when there is none: moby v20.10.24
/// `pkg/plugins/client.go`), while IPAM clients look in `Error`
/// (`ipams/remote/api/api.go`): both find the message.
pub(crate) fn method_error_reply(
    content_type: &HeaderValue,
    status: StatusCode,
    message: &str,
    key: ErrorKey,
) -> Reply {
    if key != ErrorKey::Error {
        return error_reply(content_type, status, message);
    }
    /// Both keys, `Err` first.
    #[derive(serde::Serialize)]
    struct Both<'a> {
        #[serde(rename = "Err")]
        err: &'a str,
        #[serde(rename = "Error")]
        error: &'a str,
    }
    let body = serde_json::to_vec(&Both {
        err: message,
        error: message,
    })
    .unwrap_or_else(|_| br#"{"Err":"internal error","Error":"internal error"}"#.to_vec());
    reply(content_type, status, body)
}

/// Docker's `{"Err": "..."}` reply.
pub(crate) fn error_reply(content_type: &HeaderValue, status: StatusCode, message: &str) -> Reply {
    let body = serde_json::to_vec(&ErrorResponse {
        err: message.to_owned(),
    })
    .unwrap_or_else(|_| br#"{"Err":"internal error"}"#.to_vec());
    reply(content_type, status, body)
}
