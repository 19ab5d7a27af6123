//! A streaming reply ([`ReplyStream`]): the body of `LogDriver.ReadLogs` as it
//! arrives, readable as an [`AsyncRead`] (what dockerd's `Client.Stream` returns, an
//! `io.ReadCloser` its log decoder reads: moby v20.10.24 `pkg/plugins/client.go`).
//! Dropping it closes the connection, as dockerd's `Close` does.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use hyper::body::{Body, Incoming};
use tokio::io::{AsyncRead, ReadBuf};

use super::conn::Conn;

/// The body of a streaming reply, as it arrives.
pub struct ReplyStream {
    method: &'static str,
    /// Kept open while the body is read.
    _conn: Conn,
    body: Incoming,
    pending: Bytes,
}

impl ReplyStream {
    pub(super) fn new(method: &'static str, conn: Conn, body: Incoming) -> Self {
        Self {
            method,
            _conn: conn,
            body,
            pending: Bytes::new(),
        }
    }
}

impl std::fmt::Debug for ReplyStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyStream")
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

impl AsyncRead for ReplyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.pending.is_empty() {
            match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
                None => return Poll::Ready(Ok(())),
                Some(Err(err)) => {
                    let method = self.method;
                    return Poll::Ready(Err(io::Error::other(format!(
                        "reading the {method} reply: {err}"
                    ))));
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.pending = data;
                    }
                }
            }
        }
        let n = self.pending.len().min(buf.remaining());
        buf.put_slice(&self.pending[..n]);
        self.pending.advance(n);
        Poll::Ready(Ok(()))
    }
}
