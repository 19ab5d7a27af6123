//! Metrics collectors (`MetricsCollector`): the trait a collector implements, its two
//! declared methods, and the engine's metrics: the Prometheus text dockerd serves
//! ([`Scrape`], a strict reader and writer of the text format) and, with feature
//! `client`, [`EngineMetrics`], which scrapes it.
//!
//! A metrics collector is a **managed** plugin of type `docker.metricscollector/1.0`:
//! dockerd binds its own metrics endpoint read-only into the plugin's container at
//! [`ENGINE_METRICS_SOCKET`] (`/run/docker/metrics.sock`, the host's
//! `<exec-root>/metrics.sock`, listened on by every dockerd whether or not
//! `--metrics-addr` is set), and tells the plugin when to start. Implement
//! [`Collector`] and register it with
//! [`Plugin::metrics_collector`](crate::Plugin::metrics_collector).
//!
//! ```no_run
//! # #[cfg(feature = "client")]
//! # mod example {
//! use std::time::Duration;
//!
//! use docker_plugin_sdk::metrics::{self, EngineMetrics};
//! use docker_plugin_sdk::{async_trait, Plugin, Result};
//!
//! struct Printer;
//!
//! #[async_trait]
//! impl metrics::Collector for Printer {
//!     async fn start_metrics(&self) -> Result<()> {
//!         // Answer at once; collect in the background.
//!         tokio::spawn(async {
//!             let engine = EngineMetrics::new(); // /run/docker/metrics.sock
//!             loop {
//!                 match engine.scrape().await {
//!                     Ok(scrape) => println!(
//!                         "containers started: {:?}",
//!                         scrape.value(
//!                             "engine_daemon_container_actions_seconds_count",
//!                             &[("action", "start")],
//!                         )
//!                     ),
//!                     Err(err) => eprintln!("{err}"),
//!                 }
//!                 tokio::time::sleep(Duration::from_secs(15)).await;
//!             }
//!         });
//!         Ok(())
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     Plugin::new().metrics_collector(Printer).serve_unix("printer").await?;
//!     Ok(())
//! }
//! # }
//! # fn main() {}
//! ```
//!
//! How dockerd drives a collector (moby v20.10.24 `daemon/metrics.go`,
//! `daemon/metrics_unix.go`; `shared/protocol.md` section 8):
//!
//! - **StartMetrics**, with no body, each time the plugin's socket comes up: at
//!   `docker plugin enable`, after a crash (the plugin is restarted at once), and at
//!   every daemon start. dockerd only logs an error from it.
//! - **StopMetrics**, with no body, **only when the daemon shuts down**, never at
//!   `docker plugin disable`: a collector must not count on it, and must stop cleanly
//!   on SIGTERM (what a disable sends) without it. Its reply is not read.
//! - Nothing looks up a legacy (v1) collector: only managed plugins get these calls
//!   and the socket.

mod text;

#[cfg(feature = "client")]
mod scrape;

use std::sync::Arc;

use async_trait::async_trait;

#[cfg(feature = "client")]
pub use scrape::{EngineMetrics, ScrapeError};
pub use text::{MetricFamily, MetricKind, ParseError, Sample, Scrape};

use crate::dispatch::Subsystem;
use crate::error::Result;
use crate::protocol::{
    DEFAULT_BODY_LIMIT, Empty, RequestBody, SubsystemSpec, declare_method, method_list,
};

/// The value of `Implements` for metrics collectors; a managed collector declares the
/// interface type `docker.metricscollector/1.0`.
pub const IMPLEMENTS: &str = "MetricsCollector";

/// The metrics subsystem as dockerd knows it.
pub const SUBSYSTEM: SubsystemSpec = SubsystemSpec {
    implements: IMPLEMENTS,
    body_limit: DEFAULT_BODY_LIMIT,
    methods: METHODS,
    call_timeout: None,
};

/// Where dockerd binds its metrics socket inside a managed collector's container
/// (moby v20.10.24 `daemon/metrics_unix.go` `registerMetricsPluginCallback`:
/// read-only, from `<exec-root>/metrics.sock`, `/var/run/docker/metrics.sock` by
/// default). `GET /metrics` there answers the Prometheus text format.
pub const ENGINE_METRICS_SOCKET: &str = "/run/docker/metrics.sock";

/// Declares a method of `MetricsCollector`.
macro_rules! metrics_method {
    ($($tokens:tt)*) => {
        declare_method!("MetricsCollector", $($tokens)*);
    };
}

metrics_method!(
    /// `/MetricsCollector.StartMetrics`: sent with no body at every enable, crash
    /// restart and daemon start; reply `{}` (dockerd 20.10 decodes it and logs an
    /// `Err`).
    StartMetrics,
    Empty,
    Empty,
    const REQUEST_BODY: RequestBody = RequestBody::Empty;
);
metrics_method!(
    /// `/MetricsCollector.StopMetrics`: sent with no body only when the daemon shuts
    /// down, never at `docker plugin disable`; dockerd does not read the reply.
    StopMetrics,
    Empty,
    Empty,
    const REQUEST_BODY: RequestBody = RequestBody::Empty;
);

method_list!(StartMetrics, StopMetrics);

/// A metrics collector.
///
/// Answer both calls at once: dockerd waits for StartMetrics while it enables the
/// plugin or starts up. Do the collecting in a task of your own, reading the engine's
/// metrics from [`ENGINE_METRICS_SOCKET`] (see [`EngineMetrics`], feature `client`).
#[async_trait]
pub trait Collector: Send + Sync + 'static {
    /// The engine is ready for collection: start (or keep) collecting. Called again
    /// after every restart of the plugin and of the daemon; make it idempotent.
    async fn start_metrics(&self) -> Result<()>;

    /// The daemon is shutting down. Sent **only** then: a `docker plugin disable` sends
    /// SIGTERM without it, so never keep anything for this call alone. By default,
    /// nothing.
    async fn stop_metrics(&self) -> Result<()> {
        Ok(())
    }
}

/// The routes of a collector: one per declared method.
pub(crate) fn subsystem<C: Collector>(collector: C) -> Subsystem {
    let collector = Arc::new(collector);
    Subsystem::new(&SUBSYSTEM)
        .route(StartMetrics, &collector, |c, _| async move {
            c.start_metrics().await.map(|()| Empty {})
        })
        .route(StopMetrics, &collector, |c, _| async move {
            c.stop_metrics().await.map(|()| Empty {})
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;

    #[async_trait]
    impl Collector for Nothing {
        async fn start_metrics(&self) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_server_routes_exactly_the_declared_methods_without_bodies() {
        let served = subsystem(Nothing).method_names();
        let declared: Vec<&str> = METHODS.iter().map(|m| m.name).collect();
        assert_eq!(served, declared);
        assert_eq!(
            declared,
            [
                "MetricsCollector.StartMetrics",
                "MetricsCollector.StopMetrics"
            ]
        );
        assert!(METHODS.iter().all(|m| m.request_body == RequestBody::Empty));
    }
}
