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
//! The accept loop and its connection limit ([`accept_loop`]), each connection's task
//! ([`connection`]), the connections' timer ([`idle`]), the drain and its table of the
//! open connections ([`drain`]), the signals ([`signal`]) and the background work
//! polled alongside the accept loop ([`alongside`]) have files of their own.

mod accept_loop;
mod alongside;
mod connection;
mod drain;
mod idle;
mod metrics;
mod signal;
mod trim;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::OptionFuture;
use hyper::server::conn::http1;
use tokio_util::sync::CancellationToken;

use crate::dispatch::Dispatch;
use crate::error::ServeError;
use crate::spec::{SpecFile, WrittenSpec};
use crate::telemetry::CallMetrics;
use crate::transport::{Accept, Listener, notify_ready, notify_stopping};
use connection::{ConnectionTask, Shared};
use drain::{AbortOnDrop, Drain};
use idle::Timeouts;

/// How long in-flight calls get to finish after shutdown starts, by default: under
/// dockerd's 10 s between SIGTERM and SIGKILL for managed plugins (moby v20.10.24
/// `plugin/manager_linux.go` `shutdownTimeout`), so that the plugin exits by itself.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(8);
/// How long a keep-alive connection without calls is kept open, by default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// How long a request head may take to arrive, by default.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How many connections may be open at once, by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

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
    timeouts: Timeouts,
    max_connections: usize,
    metrics: Option<(Listener, CallMetrics)>,
}

impl<A: Accept> Server<A> {
    pub(crate) fn new(dispatch: Arc<Dispatch>, listener: A) -> Self {
        Self {
            dispatch,
            listener,
            spec: None,
            shutdown: None,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            timeouts: Timeouts::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            metrics: None,
        }
    }

    /// Serves `metrics` in the Prometheus text format at `GET /metrics` on `listener`
    /// (a unix socket, or TCP on loopback: `run` refuses any other address), while the
    /// plugin serves; never on the plugin's own socket. The plugin records into
    /// `metrics` when it was built with
    /// [`Plugin::call_metrics`](crate::Plugin::call_metrics); its
    /// [`readiness`](crate::Plugin::readiness), if any, is served too
    /// (`docker_plugin_ready`).
    ///
    /// ```no_run
    /// # use docker_plugin_sdk::{Plugin, telemetry::CallMetrics, transport::Listener};
    /// # async fn run(driver: impl docker_plugin_sdk::volume::Driver) -> Result<(), docker_plugin_sdk::ServeError> {
    /// let metrics = CallMetrics::new();
    /// Plugin::new()
    ///     .volume(driver)
    ///     .call_metrics(&metrics)
    ///     .server(Listener::unix("myplugin")?)
    ///     .metrics(Listener::tcp("127.0.0.1:9464")?, &metrics)
    ///     .run()
    ///     .await
    /// # }
    /// ```
    pub fn metrics(mut self, listener: Listener, metrics: &CallMetrics) -> Self {
        self.metrics = Some((listener, metrics.clone()));
        self
    }

    /// Writes this spec file once the server listens and removes it at shutdown (unless
    /// another process has replaced it since).
    pub fn spec_file(mut self, spec: SpecFile) -> Self {
        self.spec = Some(spec);
        self
    }

    /// Shuts down when `token` is cancelled, instead of on SIGTERM or SIGINT.
    pub fn shutdown_on(mut self, token: CancellationToken) -> Self {
        self.shutdown = Some(token);
        self
    }

    /// How long in-flight calls may run after shutdown starts (default 8 s, under the
    /// 10 s dockerd waits between SIGTERM and SIGKILL); then the connections are closed
    /// and `run` returns. Calls still running then go on in the background until the
    /// process exits. With the SIGTERM/SIGINT handling, a second signal ends the
    /// drain at once.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # async fn run(driver: impl docker_plugin_sdk::volume::Driver) -> Result<(), docker_plugin_sdk::ServeError> {
    /// use docker_plugin_sdk::{Plugin, transport::UnixSocket};
    /// let listener = UnixSocket::new("myplugin").bind()?;
    /// Plugin::new()
    ///     .volume(driver)
    ///     .server(listener)
    ///     .drain_timeout(Duration::from_secs(5))
    ///     .run()
    ///     .await
    /// # }
    /// ```
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// How long a keep-alive connection without calls stays open (default 5 minutes).
    ///
    /// dockerd's HTTP client keeps idle connections for ever and does not replay a call
    /// it wrote onto a connection the server was closing (its retry sends an empty
    /// body): closing idle connections often turns into failed calls, so the default is
    /// long. Each open connection holds a file descriptor and a few KiB.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # async fn run(driver: impl docker_plugin_sdk::volume::Driver) -> Result<(), docker_plugin_sdk::ServeError> {
    /// use docker_plugin_sdk::{Plugin, transport::UnixSocket};
    /// let listener = UnixSocket::new("myplugin").bind()?;
    /// Plugin::new()
    ///     .volume(driver)
    ///     .server(listener)
    ///     .idle_timeout(Duration::from_secs(15 * 60))
    ///     .run()
    ///     .await
    /// # }
    /// ```
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.idle = timeout;
        self
    }

    /// How long a request head (the request line and headers) may take to arrive once
    /// its first bytes have (default 30 s); the connection is closed after that.
    /// dockerd writes a whole request at once: this stops a client that trickles one in
    /// from holding a connection. Checked a few times per timeout, so it fires up to a
    /// third late.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # async fn run(driver: impl docker_plugin_sdk::volume::Driver) -> Result<(), docker_plugin_sdk::ServeError> {
    /// use docker_plugin_sdk::{Plugin, transport::UnixSocket};
    /// let listener = UnixSocket::new("myplugin").bind()?;
    /// Plugin::new()
    ///     .volume(driver)
    ///     .server(listener)
    ///     .header_read_timeout(Duration::from_secs(10))
    ///     .run()
    ///     .await
    /// # }
    /// ```
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.head = timeout;
        self
    }

    /// How many connections may be open at once (default 512). At the limit the server
    /// stops accepting, says so in a warning (at most every 10 s), and new connections
    /// wait in the socket's backlog until one closes. dockerd opens one connection per
    /// call in flight, and keeps a couple open between calls.
    ///
    /// ```no_run
    /// # async fn run(driver: impl docker_plugin_sdk::volume::Driver) -> Result<(), docker_plugin_sdk::ServeError> {
    /// use docker_plugin_sdk::{Plugin, transport::UnixSocket};
    /// let listener = UnixSocket::new("myplugin").bind()?;
    /// Plugin::new()
    ///     .volume(driver)
    ///     .server(listener)
    ///     .max_connections(64)
    ///     .run()
    ///     .await
    /// # }
    /// ```
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
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
            timeouts,
            max_connections,
            metrics,
        } = self;
        listener.ready()?;
        // Stopped when `run` returns, also early; awaited at the end, so that its socket
        // is gone when `run` returns.
        let metrics_stop = CancellationToken::new();
        let _stop_metrics = metrics_stop.clone().drop_guard();
        let metrics_serve = match metrics {
            Some((mut metrics_listener, metrics)) => {
                metrics::check_metrics_listener(&metrics_listener)?;
                metrics_listener.ready()?;
                tracing::info!(url = %metrics_listener.url(), "metrics listening");
                Some(metrics::serve_metrics(
                    metrics_listener,
                    metrics,
                    dispatch.telemetry().readiness.clone(),
                    metrics_stop.clone(),
                ))
            }
            None => None,
        };
        let url = listener.url();
        let (token, force, watch_signals) = match shutdown {
            Some(token) => (token, CancellationToken::new(), None),
            None => {
                let (signals, watch) = signal::signal_tokens()?;
                (signals.shutdown, signals.force, Some(watch))
            }
        };
        let _spec = SpecGuard(spec.as_ref().map(SpecFile::write).transpose()?);
        tracing::info!(%url, "plugin listening");
        notify_ready();

        let drain = Arc::new(Drain::new(max_connections));
        // Past the drain timeout (or when `run` is dropped), connections are dropped
        // (the calls on them finish in the background).
        let _abort_on_return = AbortOnDrop(Arc::clone(&drain));
        // The signals, the metrics endpoint, the memory trim after bursts of
        // connections and the connections' timer, in this task until `run` returns (see
        // `alongside`).
        let background = futures_util::future::join4(
            OptionFuture::from(watch_signals),
            OptionFuture::from(metrics_serve),
            trim::trim_after_bursts(Arc::clone(&drain)),
            idle::expire_connections(Arc::clone(&drain), timeouts),
        );
        let mut http = http1::Builder::new();
        // Connections without a call for a while, and request heads that do not arrive,
        // are closed by the server's timer instead of hyper's header read timeout,
        // which arms a timer for every call. A reply is copied behind its head and sent
        // with one write: hyper's queue of buffers for writev(2) runs 400 more
        // instructions per call (callgrind, `benches/serve/` plain, 64 connections).
        http.header_read_timeout(None).writev(false);
        let shared = Shared {
            http,
            dispatch: Arc::clone(&dispatch),
        };
        let serve = async {
            // Closes the listening socket (and removes its file) when it returns.
            accept_loop::accept_until(listener, &token, &drain, move |handshake, tracked| {
                tokio::spawn(ConnectionTask::new(handshake, tracked, shared.clone()));
            })
            .await;

            tracing::info!("shutting down: waiting for in-flight calls");
            notify_stopping();
            dispatch.begin_shutdown();
            drain.close();
            tokio::select! {
                () = drain.closed() => tracing::debug!("all connections closed"),
                () = tokio::time::sleep(drain_timeout) => {
                    tracing::warn!(timeout_ms = drain_timeout.as_millis() as u64, "drain timeout: closing the connections of the calls still running");
                }
                () = force.cancelled() => tracing::debug!("the drain was cut short"),
            }
            // Ends the metrics endpoint's connections; its listener (and socket file) is
            // dropped with the background below.
            metrics_stop.cancel();
        };
        alongside::alongside(serve, async {
            background.await;
        })
        .await;
        Ok(())
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
