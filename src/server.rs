//! The server: accepts connections on a [`Listener`], speaks HTTP/1.1 on each (dockerd's
//! plugin client speaks nothing else), and shuts down gracefully on one signal path:
//! stop accepting, let in-flight calls finish, remove the socket and the spec file.
//!
//! The accept loop is written here rather than taken from `axum::serve` for three
//! reasons: TLS handshakes run in each connection's own task (a slow client cannot stall
//! the accept loop), connections go straight to hyper's HTTP/1 server without the
//! HTTP/2 sniffing a plugin never needs, and requests go straight to the plugin's
//! routes without a router's per-call boxing and cloning (a call costs little more than
//! in a bare hyper server: see `benches/serve.rs`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::endpoint::{Dispatch, Reply, ReplyFuture, RequestBody};
use crate::error::ServeError;
use crate::spec::{SpecFile, WrittenSpec};
use crate::transport::{Listener, ListenerKind, OwnedSocket, notify_ready, notify_stopping};

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
pub struct Server {
    dispatch: Arc<Dispatch>,
    listener: Listener,
    spec: Option<SpecFile>,
    shutdown: Option<CancellationToken>,
    drain_timeout: Duration,
}

impl Server {
    pub(crate) fn new(dispatch: Arc<Dispatch>, listener: Listener) -> Self {
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

    /// The address dockerd reaches the server at (see [`Listener::url`]).
    pub fn url(&self) -> String {
        self.listener.url()
    }

    /// Serves until shutdown, then cleans up. Must run inside a tokio runtime.
    pub async fn run(self) -> Result<(), ServeError> {
        let Server {
            dispatch,
            listener,
            spec,
            shutdown,
            drain_timeout,
        } = self;
        let url = listener.url();
        let (acceptor, owned_socket) = Acceptor::new(listener)?;
        let mut cleanup = Cleanup {
            socket: owned_socket,
            spec: None,
        };
        let token = match shutdown {
            Some(token) => token,
            None => signal_token()?,
        };
        if let Some(spec) = spec {
            cleanup.spec = Some(spec.write()?);
        }
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
        acceptor
            .run(&token, |connection| {
                let mut tracked = Tracked::new(&drain);
                let dispatch = Arc::clone(&dispatch);
                let http = http.clone();
                let drain = Arc::clone(&drain);
                tokio::spawn(async move {
                    let mut serve = pin!(async {
                        match connection.await {
                            Ok(Connection::Unix(io)) => serve_io(io, &http, dispatch, &drain).await,
                            Ok(Connection::Tcp(io)) => serve_io(io, &http, dispatch, &drain).await,
                            #[cfg(feature = "tls")]
                            Ok(Connection::Tls(io)) => serve_io(*io, &http, dispatch, &drain).await,
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
                });
            })
            .await;

        tracing::info!("shutting down: waiting for in-flight calls");
        notify_stopping();
        drain.close();
        tokio::select! {
            () = drain.closed() => tracing::debug!("all connections closed"),
            () = tokio::time::sleep(drain_timeout) => {
                tracing::warn!(timeout_ms = drain_timeout.as_millis() as u64, "calls still running at the drain timeout were dropped");
            }
        }
        drop(cleanup);
        Ok(())
    }
}

/// Removes the socket and the spec file, also when `run` ends early.
struct Cleanup {
    socket: Option<OwnedSocket>,
    spec: Option<WrittenSpec>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(socket) = self.socket.take() {
            socket.remove();
        }
        if let Some(spec) = self.spec.take() {
            spec.remove();
        }
    }
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

/// Closes a connection that has had no call for [`IDLE_CHECKS`] checks in a row, made
/// every [`IDLE_CHECK`]: 30 to 40 s, like hyper's header read timeout (which also
/// covers a request head sent too slowly, and an idle keep-alive connection). One
/// timer per connection, reset every 10 s, instead of one armed and cancelled per call.
struct IdleTimeout {
    activity: Arc<AtomicU64>,
    /// `activity` at the last check.
    seen: u64,
    /// Checks in a row without a call.
    quiet: u32,
    timer: Pin<Box<tokio::time::Sleep>>,
    /// The waker the timer holds.
    waker: Option<Waker>,
}

const IDLE_CHECK: Duration = Duration::from_secs(10);
const IDLE_CHECKS: u32 = 3;

impl IdleTimeout {
    /// One check: true once the connection has gone [`IDLE_CHECKS`] checks in a row
    /// without a call running or starting.
    fn check(&mut self) -> bool {
        let activity = self.activity.load(Ordering::Relaxed);
        if activity % 2 == 1 || activity != self.seen {
            self.seen = activity;
            self.quiet = 0;
            false
        } else {
            self.quiet += 1;
            self.quiet >= IDLE_CHECKS
        }
    }

    fn new(activity: Arc<AtomicU64>) -> Self {
        Self {
            activity,
            seen: 0,
            quiet: 0,
            timer: Box::pin(tokio::time::sleep(IDLE_CHECK)),
            waker: None,
        }
    }

    /// True once the connection is to be closed.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let registered = self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        // The common case, on every poll of the connection: two loads.
        if registered && !self.timer.is_elapsed() {
            return false;
        }
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                if !registered {
                    self.waker = Some(cx.waker().clone());
                }
                return false;
            }
            if self.check() {
                return true;
            }
            self.timer
                .as_mut()
                .reset(tokio::time::Instant::now() + IDLE_CHECK);
        }
    }
}

/// Shutdown for the open connections: first asking them to close once their call is
/// answered, then, past the drain timeout, dropping them.
///
/// hyper-util's `GracefulShutdown` and a `CancellationToken` per connection do the same,
/// but poll a channel (and take its lock) every time a connection is polled, several
/// times per call; here a connection's task checks two flags, and its waker is stored
/// only when it changes (for a tokio task, once).
#[derive(Default)]
struct Drain {
    closing: AtomicBool,
    aborted: AtomicBool,
    connections: Mutex<Connections>,
    /// Notified when the last connection ends.
    idle: Notify,
}

#[derive(Default)]
struct Connections {
    next_id: u64,
    /// Every connection still open, with its task's waker once it has been polled.
    wakers: HashMap<u64, Option<Waker>>,
}

impl Drain {
    fn connections(&self) -> MutexGuard<'_, Connections> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Asks every connection to close after its call in flight.
    fn close(&self) {
        self.closing.store(true, Ordering::Release);
        self.wake_all();
    }

    /// Drops every connection.
    fn abort(&self) {
        self.aborted.store(true, Ordering::Release);
        self.wake_all();
    }

    fn wake_all(&self) {
        let wakers: Vec<Waker> = self
            .connections()
            .wakers
            .values()
            .flatten()
            .cloned()
            .collect();
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Waits until every connection has ended.
    async fn closed(&self) {
        loop {
            let mut idle = pin!(self.idle.notified());
            idle.as_mut().enable();
            if self.connections().wakers.is_empty() {
                return;
            }
            idle.await;
        }
    }
}

/// Aborts the connections when `run` returns or is dropped.
struct AbortOnDrop(Arc<Drain>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One connection, counted by its [`Drain`] from the moment it is accepted.
struct Tracked {
    drain: Arc<Drain>,
    id: u64,
    waker: Option<Waker>,
}

impl Tracked {
    fn new(drain: &Arc<Drain>) -> Self {
        let mut connections = drain.connections();
        let id = connections.next_id;
        connections.next_id += 1;
        connections.wakers.insert(id, None);
        drop(connections);
        Self {
            drain: Arc::clone(drain),
            id,
            waker: None,
        }
    }

    /// Keeps the task's waker where the drain finds it; true once the connection is to
    /// be dropped.
    fn poll_aborted(&mut self, cx: &mut Context<'_>) -> bool {
        if self.drain.aborted.load(Ordering::Acquire) {
            return true;
        }
        if self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return false;
        }
        let waker = cx.waker().clone();
        self.drain
            .connections()
            .wakers
            .insert(self.id, Some(waker.clone()));
        self.waker = Some(waker);
        // A shutdown that woke the connections before this waker was stored is seen
        // here: the lock orders it before this load.
        self.drain.aborted.load(Ordering::Acquire)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut connections = self.drain.connections();
        connections.wakers.remove(&self.id);
        if connections.wakers.is_empty() {
            drop(connections);
            self.drain.idle.notify_waiters();
        }
    }
}

/// A connection accepted and, for TLS, still to be set up in its own task.
enum Connection {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>),
}

type PendingConnection =
    std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Connection>> + Send>>;

enum Acceptor {
    Unix(tokio::net::UnixListener),
    Tcp(tokio::net::TcpListener),
    #[cfg(feature = "tls")]
    Tls(tokio::net::TcpListener, tokio_rustls::TlsAcceptor),
}

impl Acceptor {
    fn new(listener: Listener) -> Result<(Self, Option<OwnedSocket>), ServeError> {
        let nonblocking = |e| ServeError::io("making the listener non-blocking", e);
        let register = |e| ServeError::io("registering the listener with tokio", e);
        Ok(match listener.kind {
            ListenerKind::Unix(bound) => {
                bound.listener.set_nonblocking(true).map_err(nonblocking)?;
                let listener =
                    tokio::net::UnixListener::from_std(bound.listener).map_err(register)?;
                (Self::Unix(listener), bound.owned)
            }
            ListenerKind::Tcp(listener) => {
                listener.set_nonblocking(true).map_err(nonblocking)?;
                let listener = tokio::net::TcpListener::from_std(listener).map_err(register)?;
                (Self::Tcp(listener), None)
            }
            #[cfg(feature = "tls")]
            ListenerKind::Tls(listener, config) => {
                listener.set_nonblocking(true).map_err(nonblocking)?;
                let listener = tokio::net::TcpListener::from_std(listener).map_err(register)?;
                (Self::Tls(listener, config.acceptor), None)
            }
        })
    }

    /// Accepts until `token` is cancelled, handing each connection to `spawn`; the
    /// listening socket is closed when this returns.
    async fn run(self, token: &CancellationToken, mut spawn: impl FnMut(PendingConnection)) {
        loop {
            let accepted: std::io::Result<PendingConnection> = tokio::select! {
                biased;
                () = token.cancelled() => return,
                accepted = self.accept() => accepted,
            };
            match accepted {
                Ok(connection) => spawn(connection),
                Err(err) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn accept(&self) -> std::io::Result<PendingConnection> {
        match self {
            Self::Unix(l) => {
                let (io, _) = l.accept().await?;
                Ok(Box::pin(std::future::ready(Ok(Connection::Unix(io)))))
            }
            Self::Tcp(l) => {
                let (io, _) = l.accept().await?;
                let _ = io.set_nodelay(true);
                Ok(Box::pin(std::future::ready(Ok(Connection::Tcp(io)))))
            }
            #[cfg(feature = "tls")]
            Self::Tls(l, acceptor) => {
                let (io, _) = l.accept().await?;
                let _ = io.set_nodelay(true);
                let handshake = acceptor.accept(io);
                Ok(Box::pin(async move {
                    let stream = tokio::time::timeout(Duration::from_secs(30), handshake)
                        .await
                        .map_err(|_| {
                            std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                "TLS handshake timed out",
                            )
                        })??;
                    Ok(Connection::Tls(Box::new(stream)))
                }))
            }
        }
    }
}

/// A token cancelled on the first SIGTERM or SIGINT.
fn signal_token() -> Result<CancellationToken, ServeError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| ServeError::io("installing the SIGTERM handler", e))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| ServeError::io("installing the SIGINT handler", e))?;
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
        cancel.cancel();
        Ok::<(), Infallible>(())
    });
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checks(idle: &mut IdleTimeout, checks: u32) -> bool {
        (0..checks).fold(false, |expired, _| idle.check() || expired)
    }

    #[tokio::test]
    async fn connections_without_calls_are_closed_after_three_checks() {
        let activity = Arc::new(AtomicU64::new(0));
        let mut idle = IdleTimeout::new(Arc::clone(&activity));
        assert!(!checks(&mut idle, IDLE_CHECKS - 1));
        assert!(checks(&mut idle, 1));
    }

    #[tokio::test]
    async fn a_call_in_flight_or_a_recent_one_keeps_the_connection() {
        let activity = Arc::new(AtomicU64::new(0));
        let mut idle = IdleTimeout::new(Arc::clone(&activity));
        // A call that runs for ten checks.
        activity.fetch_add(1, Ordering::Relaxed);
        assert!(!checks(&mut idle, 10));
        // It ends: the connection gets three more checks from then on.
        activity.fetch_add(1, Ordering::Relaxed);
        assert!(!checks(&mut idle, IDLE_CHECKS));
        // Calls keep coming, one per check.
        for _ in 0..5 {
            activity.fetch_add(2, Ordering::Relaxed);
            assert!(!checks(&mut idle, 1));
        }
        assert!(!checks(&mut idle, IDLE_CHECKS - 1));
        assert!(checks(&mut idle, 1));
    }

    #[tokio::test]
    async fn drain_wakes_connections_and_waits_for_the_last() {
        let drain = Arc::new(Drain::default());
        let mut first = Tracked::new(&drain);
        let second = Tracked::new(&drain);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(!first.poll_aborted(&mut cx));
        drain.close();
        assert!(drain.is_closing() && !first.poll_aborted(&mut cx));
        drain.abort();
        assert!(first.poll_aborted(&mut cx));
        let closed = tokio::spawn({
            let drain = Arc::clone(&drain);
            async move { drain.closed().await }
        });
        drop(first);
        tokio::task::yield_now().await;
        assert!(!closed.is_finished());
        drop(second);
        closed.await.unwrap();
    }
}
