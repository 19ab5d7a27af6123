//! Scraping the engine's metrics (feature `client`): `GET /metrics` on dockerd's
//! metrics socket, the Prometheus text read into a [`Scrape`].
//!
//! dockerd serves it with Go's `net/http` and `promhttp` (moby v20.10.24
//! `daemon/metrics_unix.go` `listenMetricsSock`); the request is sent through the
//! same client the SDK calls plugins with.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http::header::ACCEPT;
use http::{Request, StatusCode};
use http_body_util::Full;

use super::ENGINE_METRICS_SOCKET;
use super::text::{ParseError, Scrape};
use crate::client::{Client, ClientError};

/// What [`EngineMetrics::scrape`] fails with.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// The socket could not be reached, or the exchange failed.
    #[error(
        "scraping the engine's metrics at {socket}: {source} (a managed plugin of type \
         docker.metricscollector/1.0 gets the socket at /run/docker/metrics.sock; \
         elsewhere it is dockerd's <exec-root>/metrics.sock)"
    )]
    Unreachable {
        /// The socket.
        socket: PathBuf,
        /// Why.
        source: ClientError,
    },
    /// The endpoint answered with another status than 200.
    #[error("scraping the engine's metrics at {socket}: HTTP {status}: {body}")]
    Status {
        /// The socket.
        socket: PathBuf,
        /// The status.
        status: u16,
        /// The body (lossily decoded).
        body: String,
    },
    /// The text is not in the Prometheus text format.
    #[error("scraping the engine's metrics at {socket}: {source}")]
    Parse {
        /// The socket.
        socket: PathBuf,
        /// Where and why.
        source: ParseError,
    },
}

/// The engine's metrics endpoint: a unix socket answering `GET /metrics`.
///
/// ```no_run
/// use docker_plugin_sdk::metrics::EngineMetrics;
/// # async fn run() -> Result<(), docker_plugin_sdk::metrics::ScrapeError> {
/// let scrape = EngineMetrics::new().scrape().await?; // /run/docker/metrics.sock
/// let starts = scrape.value("engine_daemon_container_actions_seconds_count", &[("action", "start")]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct EngineMetrics {
    socket: PathBuf,
    client: Client,
}

impl Default for EngineMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl EngineMetrics {
    /// The socket inside a managed collector: [`ENGINE_METRICS_SOCKET`], with a 10 s
    /// timeout.
    pub fn new() -> Self {
        Self::at(ENGINE_METRICS_SOCKET)
    }

    /// The endpoint at `socket` (dockerd's `<exec-root>/metrics.sock` from the host),
    /// with a 10 s timeout.
    pub fn at(socket: impl AsRef<Path>) -> Self {
        let socket = socket.as_ref().to_path_buf();
        let client = Client::unix(&socket).timeout(Duration::from_secs(10));
        Self { socket, client }
    }

    /// Gives up on a scrape after `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.client = self.client.timeout(timeout);
        self
    }

    /// The socket scraped.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The metrics text as served.
    pub async fn scrape_text(&self) -> Result<String, ScrapeError> {
        let request = Request::get("/metrics")
            .header(ACCEPT, "text/plain;version=0.0.4")
            .body(Full::new(Bytes::new()))
            .map_err(|err| ScrapeError::Status {
                socket: self.socket.clone(),
                status: 0,
                body: err.to_string(),
            })?;
        let reply = self
            .client
            .send(request)
            .await
            .map_err(|source| ScrapeError::Unreachable {
                socket: self.socket.clone(),
                source,
            })?;
        if reply.status != StatusCode::OK {
            return Err(ScrapeError::Status {
                socket: self.socket.clone(),
                status: reply.status.as_u16(),
                body: reply.text(),
            });
        }
        Ok(reply.text())
    }

    /// The metrics, read.
    pub async fn scrape(&self) -> Result<Scrape, ScrapeError> {
        let text = self.scrape_text().await?;
        Scrape::parse(&text).map_err(|source| ScrapeError::Parse {
            socket: self.socket.clone(),
            source,
        })
    }
}
