//! A plugin's own metrics and readiness, which no other plugin SDK offers.
//!
//! - [`CallMetrics`]: per-method call, error and abandoned-call counts and latency
//!   histograms, kept by the server for every call once a plugin asks for them
//!   ([`Plugin::call_metrics`](crate::Plugin::call_metrics)), readable from Rust
//!   ([`CallMetrics::snapshot`]) and served in the Prometheus text format on an address
//!   of their own ([`Server::metrics`](crate::Server::metrics): a unix socket or a
//!   loopback TCP port), never on the socket dockerd calls.
//! - [`Readiness`]: a plugin whose backend is not reachable yet (a managed plugin is
//!   started by `docker plugin enable` before it can reach its storage) answers every
//!   call at once with a clear error instead of hanging dockerd, and says so in its
//!   metrics.
//!
//! ```no_run
//! use docker_plugin_sdk::telemetry::{CallMetrics, Readiness};
//! use docker_plugin_sdk::transport::Listener;
//! use docker_plugin_sdk::{Plugin, ServeError};
//! # async fn run(driver: impl docker_plugin_sdk::volume::Driver) -> Result<(), ServeError> {
//! let metrics = CallMetrics::new();
//! let readiness = Readiness::not_ready("connecting to the storage backend");
//! let server = Plugin::new()
//!     .volume(driver)
//!     .call_metrics(&metrics)
//!     .readiness(&readiness)
//!     .server(Listener::unix("myplugin")?)
//!     // GET /metrics on 127.0.0.1:9464, while the plugin serves.
//!     .metrics(Listener::tcp("127.0.0.1:9464")?, &metrics);
//! tokio::spawn(async move {
//!     // ... once the backend answers:
//!     readiness.set_ready();
//! });
//! server.run().await
//! # }
//! ```
//!
//! Keeping the metrics costs a call two clock reads and a few relaxed atomic adds
//! (`benches/serve.rs` measures the SDK with them on).

mod counters;
mod prometheus;
mod readiness;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use counters::BUCKETS;
pub(crate) use counters::MethodCounters;
pub(crate) use prometheus::CONTENT_TYPE as TEXT_CONTENT_TYPE;
pub use readiness::Readiness;

/// A plugin's call metrics: a handle shared by the plugin's routes, which record into
/// it, and whoever reads them. Clones share the same counters.
///
/// ```
/// use docker_plugin_sdk::telemetry::CallMetrics;
///
/// let metrics = CallMetrics::new();
/// assert!(metrics.snapshot().is_empty()); // methods appear once a plugin registers them
/// assert!(metrics.render().contains("# TYPE docker_plugin_calls_total counter"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct CallMetrics {
    registry: Arc<Registry>,
}

#[derive(Debug, Default)]
struct Registry {
    /// In registration order. Locked only when a plugin's routes are built and when the
    /// metrics are read, never per call.
    methods: Mutex<Vec<Arc<MethodCounters>>>,
    unknown: AtomicU64,
    /// What a subsystem counts besides calls (a log driver's entries), rendered after
    /// the call metrics. Locked when a plugin's routes are built and when read.
    sections: Mutex<Vec<Arc<dyn Section>>>,
}

/// Metrics a subsystem keeps of its own, served by the metrics endpoint beside the
/// call metrics (the log driver's [`LogCounters`](crate::logging::LogCounters)).
pub(crate) trait Section: std::fmt::Debug + Send + Sync {
    /// Which counters these are: the same key is rendered once, however many plugins
    /// built with the same [`CallMetrics`] carry it.
    fn key(&self) -> usize;
    /// The families, in the Prometheus text format.
    fn render(&self) -> String;
}

impl CallMetrics {
    /// Empty metrics.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counters of `method` (`VolumeDriver.Mount`), made on first use.
    pub(crate) fn counters(&self, method: &str) -> Arc<MethodCounters> {
        let mut methods = self
            .registry
            .methods
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(found) = methods.iter().find(|m| m.name == method) {
            return Arc::clone(found);
        }
        let counters = Arc::new(MethodCounters::new(method.to_owned()));
        methods.push(Arc::clone(&counters));
        counters
    }

    /// Serves `section` with these metrics, once (see [`Section::key`]).
    pub(crate) fn add_section(&self, section: Arc<dyn Section>) {
        let mut sections = self
            .registry
            .sections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !sections.iter().any(|known| known.key() == section.key()) {
            sections.push(section);
        }
    }

    /// The sections' text, appended to the call metrics.
    fn render_sections(&self, mut text: String) -> String {
        let sections = self
            .registry
            .sections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for section in sections.iter() {
            text.push_str(&section.render());
        }
        text
    }

    /// A request for a path the plugin does not serve.
    pub(crate) fn record_unknown(&self) {
        self.registry.unknown.fetch_add(1, Ordering::Relaxed);
    }

    /// Every served method's metrics, in the order the plugin registered them
    /// (`Plugin.Activate` first).
    pub fn snapshot(&self) -> Vec<MethodMetrics> {
        self.registry
            .methods
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|m| m.snapshot())
            .collect()
    }

    /// One method's metrics (`"VolumeDriver.Mount"`), if the plugin serves it.
    pub fn method(&self, method: &str) -> Option<MethodMetrics> {
        self.snapshot().into_iter().find(|m| m.method == method)
    }

    /// Requests for paths the plugin does not serve (answered with a 404).
    pub fn unknown_calls(&self) -> u64 {
        self.registry.unknown.load(Ordering::Relaxed)
    }

    /// The metrics in the Prometheus text exposition format (version 0.0.4), as the
    /// metrics endpoint serves them.
    pub fn render(&self) -> String {
        self.render_sections(prometheus::render(
            &self.snapshot(),
            self.unknown_calls(),
            None,
        ))
    }

    /// [`CallMetrics::render`] with the readiness gauge (`docker_plugin_ready`), as the
    /// endpoint serves them for a plugin built with
    /// [`Plugin::readiness`](crate::Plugin::readiness).
    pub fn render_with_readiness(&self, readiness: &Readiness) -> String {
        self.render_sections(prometheus::render(
            &self.snapshot(),
            self.unknown_calls(),
            Some(readiness.is_ready()),
        ))
    }
}

/// One method's metrics at the time they were read.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct MethodMetrics {
    /// The method, as dockerd calls it without the leading `/` (`VolumeDriver.Mount`).
    pub method: String,
    /// Calls answered (whatever the answer).
    pub calls: u64,
    /// Calls answered with an error: any status but 200 (the driver's error, a request
    /// the SDK refused, a panic, a plugin not ready).
    pub errors: u64,
    /// Calls whose client closed the connection before the reply (dockerd's deadline
    /// passed, or the server's drain timed out): they are not in `calls`; a unary call
    /// goes on to its end in the background.
    pub abandoned: u64,
    /// How long the answered calls took, from the request head to the reply head.
    pub latency: Histogram,
}

/// A latency histogram with the bounds of [`BUCKETS`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Histogram {
    /// Cumulative counts: `buckets[i]` calls took at most `BUCKETS[i]` seconds.
    pub buckets: [u64; BUCKETS.len()],
    /// Every call (the `+Inf` bucket).
    pub count: u64,
    /// The sum of the latencies.
    pub sum: Duration,
}
