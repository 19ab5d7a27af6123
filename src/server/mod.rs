//! The server: accepts connections from an [`Accept`] (a unix socket, TCP, TLS, or
//! anything else), speaks HTTP/1.1 on each (dockerd's plugin client speaks nothing
//! else), and shuts down gracefully on one signal path: stop accepting (the listener is
//! dropped, which removes its socket file), let in-flight calls finish, remove the spec
//! file.
//!
//! The accept loop is written here rather than taken from `axum::serve` for three
//! reasons: handshakes run in each connection's own task (a slow TLS client cannot
//! stall the accept loop), connections go straight to hyper's HTTP/1 server without the
//! HTTP/2 sniffing a plugin never needs, and requests go straight to the plugin's
//! routes without a router's per-call boxing and cloning (a call costs little more than
//! in a bare hyper server: see `benches/serve.rs`).
//!
//! The drain ([`drain`]), each connection's idle timer ([`idle`]) and the signals
//! ([`signal`]) have files of their own.

mod drain;
mod idle;
mod signal;

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use crate::dispatch::{Dispatch, Reply, ReplyFuture, RequestBody};
use crate::error::ServeError;
use crate::spec::{SpecFile, WrittenSpec};
use crate::transport::{Accept, Listener, notify_ready, notify_stopping};
use drain::{AbortOnDrop, Drain, Tracked};
use idle::IdleTimeout;

/// How long in-flight calls get to finish after shutdown starts, by default.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A plugin server, built by [`Plugin::server`](crate::Plugin::server).
///
/// ```no_run
/// use docker_plugin_sdk::{Plugin, transport::Listener, spec::SpecFile};
/// use tokio_util::sync::CancellationToken;
/// # async fn run(driver: impl docker_plugin_sdk::volume::Driver) -> Result<(), docker_plugin_sdk::ServeError> {
/// let listener = Listener::tcp("127.0.0.1:9000")?;
/// let spec = SpecFile::url("myplugin", listener.url());
/// let stop = CancellationToken::new();
/// Plugin::new()
///     .volume(driver)
///     .server(listener)
///     .spec_file(spec)              // written once listening, removed at shutdown
///     .shutdown_on(stop.clone())    // instead of SIGTERM/SIGINT
///     .run()
///     .await
/// # }
/// ```
pub struct Server<A: Accept = Listener> {
    dispatch: Arc<Dispatch>,
    listener: A,
    spec: Option<SpecFile>,
    shutdown: Option<CancellationToken>,
    drain_timeout: Duration,
}

impl<A: Accept> Server<A> {
    pub(crate) fn new(dispatch: Arc<Dispatch>, listener: A) -> Self {
        Self {
            dispatch,
            listener,
            spec: None,
            shutdown: None,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }

    /// Writes this spec file once the server listens and removes it at shutdown.
    pub fn spec_file(mut self, spec: SpecFile) -> Self {
        self.spec = Some(spec);
        self
    }

    /// Shuts down when `token` is cancelled, instead of on SIGTERM or SIGINT.
    pub fn shutdown_on(mut self, token: CancellationToken) -> Self {
        self.shutdown = Some(token);
        self
    }

    /// How long in-flight calls may run after shutdown starts (default 30 s); calls still
    /// running then are dropped.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// The address dockerd reaches the server at (see [`Accept::url`]).
    pub fn url(&self) -> String {
        self.listener.url()
    }

    /// Serves until shutdown, then cleans up. Must run inside a tokio runtime.
    pub async fn run(self) -> Result<(), ServeError> {
        let Server {
            dispatch,
            mut listener,
            spec,
            shutdown,
            drain_timeout,
        } = self;
        listener.ready()?;
        let url = listener.url();
        let token = match shutdown {
            Some(token) => token,
            None => signal::signal_token()?,
        };
        let _spec = SpecGuard(spec.as_ref().map(SpecFile::write).transpose()?);
        tracing::info!(%url, "plugin listening");
        notify_ready();

        let drain = Arc::new(Drain::default());
        // Past the drain timeout (or when `run` is dropped), connections and the calls
        // on them are dropped.
        let _abort_on_return = AbortOnDrop(Arc::clone(&drain));
        let mut http = http1::Builder::new();
        // Connections without a call for a while are closed by `IdleTimeout` instead of
        // hyper's header read timeout, which arms a timer for every call.
        http.header_read_timeout(None).writev(false);
        accept_until(&mut listener, &token, |handshake| {
            let tracked = Tracked::new(&drain);
            let dispatch = Arc::clone(&dispatch);
            let http = http.clone();
            let drain = Arc::clone(&drain);
            tokio::spawn(serve_connection(handshake, tracked, http, dispatch, drain));
        })
        .await;
        // Closes the listening socket (and removes its file).
        drop(listener);

        tracing::info!("shutting down: waiting for in-flight calls");
        notify_stopping();
        dispatch.begin_shutdown();
        drain.close();
        tokio::select! {
            () = drain.closed() => tracing::debug!("all connections closed"),
            () = tokio::time::sleep(drain_timeout) => {
                tracing::warn!(timeout_ms = drain_timeout.as_millis() as u64, "calls still running at the drain timeout were dropped");
            }
        }
        Ok(())
    }
}

/// Accepts until `token` is cancelled, handing each connection's handshake to `spawn`.
async fn accept_until<A: Accept>(
    listener: &mut A,
    token: &CancellationToken,
    mut spawn: impl FnMut(A::Handshake),
) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = token.cancelled() => return,
            accepted = poll_fn(|cx| listener.poll_accept(cx)) => accepted,
        };
        match accepted {
            Ok(handshake) => spawn(handshake),
            Err(err) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(%err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// One connection's task: its handshake, then HTTP, until it closes or is aborted.
async fn serve_connection<H, I>(
    handshake: H,
    mut tracked: Tracked,
    http: http1::Builder,
    dispatch: Arc<Dispatch>,
    drain: Arc<Drain>,
) where
    H: Future<Output = std::io::Result<I>>,
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut serve = pin!(async {
        match handshake.await {
            Ok(io) => serve_io(io, &http, dispatch, &drain).await,
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

async fn serve_io<I>(io: I, http: &http1::Builder, dispatch: Arc<Dispatch>, drain: &Drain)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(AtomicU64::new(0));
    let service = PluginService {
        dispatch,
        activity: Arc::clone(&activity),
    };
    let mut connection = pin!(http.serve_connection(TokioIo::new(io), service));
    let mut idle = IdleTimeout::new(activity);
    let mut closing = false;
    // The task's waker is registered with `drain` by `Tracked`, around this.
    let served = poll_fn(|cx| {
        if !closing && drain.is_closing() {
            // Finish the call in flight, if any, then close.
            closing = true;
            connection.as_mut().graceful_shutdown();
        }
        if idle.poll_expired(cx) {
            tracing::debug!("closing a connection without calls");
            return Poll::Ready(Ok(()));
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
    /// Counts calls starting and ending on this connection: odd while one is running.
    activity: Arc<AtomicU64>,
}

impl hyper::service::Service<http::Request<Incoming>> for PluginService {
    type Response = Reply;
    type Error = Infallible;
    type Future = CountedReply;

    fn call(&self, request: http::Request<Incoming>) -> CountedReply {
        self.activity.fetch_add(1, Ordering::Relaxed);
        CountedReply {
            reply: self.dispatch.call(request.map(RequestBody::Hyper)),
            activity: Arc::clone(&self.activity),
        }
    }
}

/// A reply that counts as activity on its connection when it is ready.
struct CountedReply {
    reply: ReplyFuture,
    activity: Arc<AtomicU64>,
}

impl Future for CountedReply {
    type Output = Result<Reply, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let reply = ready!(Pin::new(&mut this.reply).poll(cx));
        this.activity.fetch_add(1, Ordering::Relaxed);
        Poll::Ready(reply)
    }
}

/// Removes the spec file when the server is done, also when `run` ends early.
struct SpecGuard(Option<WrittenSpec>);

impl Drop for SpecGuard {
    fn drop(&mut self) {
        if let Some(spec) = self.0.take() {
            spec.remove();
        }
    }
}
