//! The server: accepts connections on a [`Listener`], speaks HTTP/1.1 on each (dockerd's
//! plugin client speaks nothing else), and shuts down gracefully on one signal path:
//! stop accepting, let in-flight calls finish, remove the socket and the spec file.
//!
//! The accept loop is written here rather than taken from `axum::serve` for two reasons:
//! TLS handshakes run in each connection's own task (a slow client cannot stall the
//! accept loop), and connections go straight to hyper's HTTP/1 server without the
//! HTTP/2 sniffing a plugin never needs.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

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
    router: Router,
    listener: Listener,
    spec: Option<SpecFile>,
    shutdown: Option<CancellationToken>,
    drain_timeout: Duration,
}

impl Server {
    pub(crate) fn new(router: Router, listener: Listener) -> Self {
        Self {
            router,
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
            router,
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

        let graceful = GracefulShutdown::new();
        let abort = CancellationToken::new();
        let _abort_on_return = abort.clone().drop_guard();
        let service = TowerToHyperService::new(router);
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30));
        acceptor
            .run(&token, |connection| {
                let watcher = graceful.watcher();
                let service = service.clone();
                let http = http.clone();
                let abort = abort.clone();
                tokio::spawn(async move {
                    let serve = async {
                        match connection.await {
                            Ok(Connection::Unix(io)) => serve_io(io, &http, service, watcher).await,
                            Ok(Connection::Tcp(io)) => serve_io(io, &http, service, watcher).await,
                            #[cfg(feature = "tls")]
                            Ok(Connection::Tls(io)) => serve_io(*io, &http, service, watcher).await,
                            Err(err) => tracing::debug!(%err, "connection setup failed"),
                        }
                    };
                    // Past the drain timeout (or when `run` is dropped), the connection
                    // and any call on it are dropped.
                    tokio::select! {
                        () = serve => {}
                        () = abort.cancelled() => {}
                    }
                });
            })
            .await;

        tracing::info!("shutting down: waiting for in-flight calls");
        notify_stopping();
        tokio::select! {
            () = graceful.shutdown() => tracing::debug!("all connections closed"),
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

async fn serve_io<I>(
    io: I,
    http: &http1::Builder,
    service: TowerToHyperService<Router>,
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connection = http.serve_connection(TokioIo::new(io), service);
    if let Err(err) = watcher.watch(connection).await {
        tracing::debug!(%err, "connection ended with an error");
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
