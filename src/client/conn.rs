//! The connections of a [`Client`](super::Client), kept alive and reused as dockerd's
//! Go transport keeps them (Go 1.19 `net/http` `Transport`; moby v20.10.24
//! `pkg/plugins/client.go` builds one per plugin and never expires idle connections):
//!
//! - after a reply has been read in full, its connection is kept for the next call
//!   (one idle connection per client, shared by its clones; Go keeps up to two, which
//!   matters only to concurrent calls);
//! - a kept connection the plugin has closed is dropped and a fresh one dialed: Go's
//!   `readLoop` waits on every idle connection and drops it at the plugin's EOF (a
//!   restarted plugin gets a new connection); here a non-blocking peek at the socket
//!   before reuse sees that EOF, which the runtime may not have reported yet. So is
//!   one that fails before any byte of the request was written (Go's
//!   `nothingWrittenError`, retried because its body can be rewound);
//! - a request that fails on a kept connection after it was written is **not**
//!   replayed: a POST is not idempotent (`Request.isReplayable`), so the error is the
//!   caller's, marked [`written`](super::ClientError::Http). dockerd's own retry then
//!   sends an empty body, its buffer drained by the first attempt (the harness does
//!   the same);
//! - dropping a call (its timeout) closes its connection, as Go closes it.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, recv};
use tokio::task::AbortHandle;

/// One HTTP/1.1 connection; dropping it closes the socket.
pub(super) struct Conn {
    sender: SendRequest<Full<Bytes>>,
    task: AbortHandle,
    /// A duplicate of the socket, to peek at while the connection is idle.
    probe: OwnedFd,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How a request failed on a connection.
pub(super) enum SendError {
    /// Nothing was written: the request is handed back.
    Unsent(Box<Request<Full<Bytes>>>),
    /// The request was (at least partly) written: it must not be sent again.
    Failed(hyper::Error),
}

impl Conn {
    /// What [`handshake`](Self::handshake) needs to tell, later, whether the plugin
    /// closed the connection: a duplicate of the socket, close-on-exec like the socket
    /// itself (`F_DUPFD_CLOEXEC`). A plain `dup` is inherited by every process started
    /// while the connection is open (a plugin the harness restarts, say), which then
    /// holds the client's end open for its whole life: the plugin never sees the
    /// connection close.
    pub(super) fn probe(stream: &impl AsFd) -> io::Result<OwnedFd> {
        stream.as_fd().try_clone_to_owned()
    }

    /// An HTTP/1.1 connection over `stream` (whose [`probe`](Self::probe) is
    /// `probe`), writing header names as Go does (`User-Agent`, not `user-agent`).
    pub(super) async fn handshake<S>(stream: S, probe: OwnedFd) -> Result<Self, hyper::Error>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let (sender, connection) = http1::Builder::new()
            .title_case_headers(true)
            .handshake(TokioIo::new(stream))
            .await?;
        let task = tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%err, "plugin client connection ended with an error");
            }
        })
        .abort_handle();
        Ok(Self {
            sender,
            task,
            probe,
        })
    }

    /// Whether this idle connection can still carry a request: hyper has not closed
    /// it, and the plugin has neither closed its end nor sent anything unasked (Go
    /// drops an idle connection that receives bytes too).
    fn is_usable(&self) -> bool {
        if self.sender.is_closed() {
            return false;
        }
        let mut byte = [0u8; 1];
        let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
        matches!(
            recv(self.probe.as_raw_fd(), &mut byte, flags),
            Err(Errno::EAGAIN | Errno::EINTR)
        )
    }

    /// Sends `request`; on failure, says whether it was written.
    pub(super) async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<http::Response<Incoming>, SendError> {
        if self.sender.ready().await.is_err() {
            return Err(SendError::Unsent(Box::new(request)));
        }
        self.sender
            .try_send_request(request)
            .await
            .map_err(|mut err| match err.take_message() {
                Some(request) => SendError::Unsent(Box::new(request)),
                None => SendError::Failed(err.into_error()),
            })
    }
}

/// The idle connection a client and its clones share.
#[derive(Default)]
pub(super) struct Pool {
    idle: Mutex<Option<Conn>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").finish_non_exhaustive()
    }
}

impl Pool {
    pub(super) fn new() -> Arc<Self> {
        Arc::default()
    }

    /// The kept connection, unless the plugin has closed it.
    pub(super) fn take(&self) -> Option<Conn> {
        self.slot().take().filter(Conn::is_usable)
    }

    /// Keeps `conn`, whose reply was read in full, for the next call; dropped (closed)
    /// when another one is kept already or the plugin closed it.
    pub(super) fn put(&self, conn: Conn) {
        if conn.sender.is_closed() {
            return;
        }
        let mut slot = self.slot();
        if slot.is_none() {
            *slot = Some(conn);
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Conn>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}
