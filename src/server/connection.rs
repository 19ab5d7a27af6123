//! One connection's task: its handshake, then HTTP/1.1 straight to the plugin's routes
//! until the connection closes, the server's timer expires it (idle, or a request head
//! that does not arrive), the drain asks it to close, or the drain timeout drops it.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::drain::Tracked;
use super::idle::Activity;
use crate::dispatch::{CallEnd, Dispatch, Reply, ReplyBody, ReplyFuture, RequestBody};

/// What every connection's task shares.
#[derive(Clone)]
pub(super) struct Shared {
    pub(super) http: http1::Builder,
    pub(super) dispatch: Arc<Dispatch>,
}

pin_project! {
    /// One connection's task: its handshake, then HTTP, until it closes or is aborted.
    /// It holds one of the server's connection slots (its place in the drain) until it
    /// ends.
    ///
    /// A future written out rather than nested `async` blocks, so that what every poll
    /// reads (the task's waker, kept once for the drain and the timer; the drain's flags
    /// and the timer's verdict through two pointers) sits in the first cache line of the
    /// task, ahead of hyper's connection. With hundreds of connections, a
    /// connection's state has left the core's caches by the time its next call comes,
    /// and every line a call touches is a miss: with the nested blocks (their states,
    /// and their references to each other's locals, spread over the task) a call missed
    /// 46 lines of a 512 KiB L2 at 256 connections, the bare hyper server 38; with this
    /// task 39 (callgrind's cache simulation, `benches/serve/` plain).
    //
    // `repr(C)`: in this order, what every poll reads is in the first cache line (a
    // test checks where each field is).
    #[repr(C)]
    pub(super) struct ConnectionTask<H, I> {
        // The task's waker, as given to the drain and the timer.
        waker: Option<Waker>,
        tracked: Tracked,
        // The drain asked the connection to close after its call in flight.
        closing: bool,
        #[pin]
        stage: Stage<H, I>,
    }
}

pin_project! {
    #[project = StageProj]
    enum Stage<H, I> {
        Handshake {
            #[pin]
            handshake: H,
            // Taken when the handshake is over.
            shared: Option<Shared>,
        },
        Serving {
            #[pin]
            connection: http1::Connection<TokioIo<CountingIo<I>>, PluginService>,
        },
        Done,
    }
}

impl<H, I> ConnectionTask<H, I>
where
    H: Future<Output = io::Result<I>>,
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    pub(super) fn new(handshake: H, tracked: Tracked, shared: Shared) -> Self {
        Self {
            waker: None,
            tracked,
            closing: false,
            stage: Stage::Handshake {
                handshake,
                shared: Some(shared),
            },
        }
    }
}

impl<H, I> Future for ConnectionTask<H, I>
where
    H: Future<Output = io::Result<I>>,
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        if this.tracked.is_aborted() {
            return Poll::Ready(());
        }
        if !this.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            // For a tokio task, once.
            if this.tracked.register(cx.waker().clone()) {
                return Poll::Ready(());
            }
            *this.waker = Some(cx.waker().clone());
        }
        loop {
            match this.stage.as_mut().project() {
                StageProj::Handshake { handshake, shared } => {
                    let handshake = ready!(handshake.poll(cx));
                    let Some(shared) = shared.take() else {
                        return Poll::Ready(()); // polled after the handshake failed
                    };
                    match handshake {
                        Ok(io) => {
                            let activity = this.tracked.activity();
                            let connection = serve_io(io, &shared, activity);
                            this.stage.set(Stage::Serving { connection });
                            // The timer counts the connection's idle time from now.
                            activity.call_event();
                        }
                        Err(err) => {
                            tracing::debug!(%err, "connection setup failed");
                            this.stage.set(Stage::Done);
                            return Poll::Ready(());
                        }
                    }
                }
                StageProj::Serving { mut connection } => {
                    if !*this.closing && this.tracked.is_closing() {
                        // Finish the call in flight, if any, then close.
                        *this.closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                    if this.tracked.activity().expired().is_some() {
                        // Closed by the server's timer (which logged why).
                        this.stage.set(Stage::Done);
                        return Poll::Ready(());
                    }
                    let served = ready!(connection.poll(cx));
                    if let Err(err) = served {
                        tracing::debug!(%err, "connection ended with an error");
                    }
                    this.stage.set(Stage::Done);
                    return Poll::Ready(());
                }
                StageProj::Done => return Poll::Ready(()),
            }
        }
    }
}

/// HTTP/1.1 on `io`, answered by the plugin's routes, its activity told to `activity`.
fn serve_io<I>(
    io: I,
    shared: &Shared,
    activity: &Arc<Activity>,
) -> http1::Connection<TokioIo<CountingIo<I>>, PluginService>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = PluginService {
        dispatch: Arc::clone(&shared.dispatch),
        activity: Arc::clone(activity),
    };
    let io = CountingIo {
        io,
        activity: Arc::clone(activity),
    };
    shared.http.serve_connection(TokioIo::new(io), service)
}

/// The plugin's routes as the hyper service of one connection.
struct PluginService {
    dispatch: Arc<Dispatch>,
    activity: Arc<Activity>,
}

impl hyper::service::Service<http::Request<Incoming>> for PluginService {
    type Response = Reply;
    type Error = Infallible;
    type Future = ReplyFuture<EndsCall>;

    fn call(&self, request: http::Request<Incoming>) -> ReplyFuture<EndsCall> {
        self.activity.call_event();
        let (parts, body) = request.into_parts();
        self.dispatch
            .call_parts(&parts, RequestBody::Hyper(body))
            .ended_by(EndsCall(Arc::clone(&self.activity)))
    }
}

/// Ends a call on the connection's timer when its reply is ready or, for a streaming
/// reply (a `docker logs -f` that may stay silent for hours), when its body ends: a
/// follow stream is a call in progress, never an idle connection.
struct EndsCall(Arc<Activity>);

impl CallEnd for EndsCall {
    fn reply_ready(&self, reply: &mut Reply) {
        if let ReplyBody::Stream(body) = reply.body_mut() {
            body.on_end(Box::new(StreamEnd(Arc::clone(&self.0))));
        } else {
            self.0.call_event();
        }
    }
}

/// Ends a streaming call on its connection's timer when dropped with the body.
struct StreamEnd(Arc<Activity>);

impl Drop for StreamEnd {
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

#[cfg(test)]
mod tests {
    use std::mem::offset_of;

    use super::*;
    use crate::transport::{Connection, Handshake};

    type Task = ConnectionTask<Handshake, Connection>;

    #[test]
    fn what_every_poll_reads_comes_first_in_the_task() {
        // The waker, the pointers to the drain and to the timer's verdict, and the
        // flag: in the first cache line, then hyper's connection.
        let hot_end = [
            offset_of!(Task, waker) + size_of::<Option<Waker>>(),
            offset_of!(Task, tracked) + size_of::<Tracked>(),
            offset_of!(Task, closing) + 1,
        ]
        .into_iter()
        .max();
        assert!(hot_end <= Some(offset_of!(Task, stage)));
        assert!(hot_end <= Some(64), "{hot_end:?}");
    }
}
