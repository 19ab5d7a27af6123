//! One connection's task: its handshake, then HTTP/1.1 straight to the plugin's routes
//! until the connection closes, its timer expires (idle, or a request head that does
//! not arrive), the drain asks it to close, or the drain timeout drops it.

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;

use super::drain::{Drain, Tracked};
use super::idle::{Activity, Expired, IdleTimeout, Timeouts};
use crate::dispatch::{Dispatch, Reply, ReplyBody, ReplyFuture, RequestBody};

/// What every connection's task shares.
#[derive(Clone)]
pub(super) struct Shared {
    pub(super) http: http1::Builder,
    pub(super) dispatch: Arc<Dispatch>,
    pub(super) drain: Arc<Drain>,
    pub(super) timeouts: Timeouts,
}

/// One connection's task: its handshake, then HTTP, until it closes or is aborted. It
/// holds one of the server's connection slots until it ends.
pub(super) async fn serve_connection<H, I>(
    handshake: H,
    mut tracked: Tracked,
    _slot: OwnedSemaphorePermit,
    shared: Shared,
) where
    H: Future<Output = io::Result<I>>,
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut serve = pin!(async {
        match handshake.await {
            Ok(io) => serve_io(io, &shared).await,
            Err(err) => tracing::debug!(%err, "connection setup failed"),
        }
    });
    poll_fn(|cx| {
        if tracked.poll_aborted(cx) {
            return Poll::Ready(());
        }
        serve.as_mut().poll(cx)
    })
    .await;
}

async fn serve_io<I>(io: I, shared: &Shared)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::default());
    let service = PluginService {
        dispatch: Arc::clone(&shared.dispatch),
        activity: Arc::clone(&activity),
    };
    let io = CountingIo {
        io,
        activity: Arc::clone(&activity),
    };
    let mut connection = pin!(shared.http.serve_connection(TokioIo::new(io), service));
    let mut idle = IdleTimeout::new(activity, shared.timeouts);
    let mut closing = false;
    // The task's waker is registered with the drain by `Tracked`, around this.
    let served = poll_fn(|cx| {
        if !closing && shared.drain.is_closing() {
            // Finish the call in flight, if any, then close.
            closing = true;
            connection.as_mut().graceful_shutdown();
        }
        match idle.poll_expired(cx) {
            Some(Expired::Idle) => {
                tracing::debug!(
                    timeout_s = shared.timeouts.idle.as_secs(),
                    "closing a connection without calls"
                );
                return Poll::Ready(Ok(()));
            }
            Some(Expired::Head) => {
                tracing::debug!(
                    timeout_ms = shared.timeouts.head.as_millis() as u64,
                    "closing a connection whose request head did not arrive in time"
                );
                return Poll::Ready(Ok(()));
            }
            None => {}
        }
        connection.as_mut().poll(cx)
    })
    .await;
    if let Err(err) = served {
        tracing::debug!(%err, "connection ended with an error");
    }
}

/// The plugin's routes as the hyper service of one connection.
struct PluginService {
    dispatch: Arc<Dispatch>,
    activity: Arc<Activity>,
}

impl hyper::service::Service<http::Request<Incoming>> for PluginService {
    type Response = Reply;
    type Error = Infallible;
    type Future = CountedReply;

    fn call(&self, request: http::Request<Incoming>) -> CountedReply {
        self.activity.call_event();
        CountedReply {
            reply: self.dispatch.call(request.map(RequestBody::Hyper)),
            activity: Arc::clone(&self.activity),
        }
    }
}

/// A reply that ends its call on the connection's timer when it is ready or, for a
/// streaming reply (a `docker logs -f` that may stay silent for hours), when its body
/// ends: a follow stream is a call in progress, never an idle connection.
struct CountedReply {
    reply: ReplyFuture,
    activity: Arc<Activity>,
}

impl Future for CountedReply {
    type Output = Result<Reply, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut reply = ready!(Pin::new(&mut this.reply).poll(cx));
        if let Ok(reply) = &mut reply
            && let ReplyBody::Stream(body) = reply.body_mut()
        {
            body.on_end(Box::new(CallEnd(Arc::clone(&this.activity))));
        } else {
            this.activity.call_event();
        }
        Poll::Ready(reply)
    }
}

/// Ends a streaming call on its connection's timer when dropped with the body.
struct CallEnd(Arc<Activity>);

impl Drop for CallEnd {
    fn drop(&mut self) {
        self.0.call_event();
    }
}

/// A connection that tells its timer when bytes arrive (so that a request head that
/// trickles in is told from an idle connection).
struct CountingIo<I> {
    io: I,
    activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for CountingIo<I> {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = ready!(Pin::new(&mut this.io).poll_read(cx, buf));
        if buf.filled().len() > before {
            this.activity.read();
        }
        Poll::Ready(read)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for CountingIo<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
