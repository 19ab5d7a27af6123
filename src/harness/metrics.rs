//! The metrics service: dockerd's side of metrics collectors (moby v20.10.24
//! `daemon/metrics.go`, `daemon/metrics_unix.go`).
//!
//! - The engine serves its metrics, Prometheus text at `GET /metrics`, on
//!   `<exec-root>/metrics.sock`: here the container actions the harness performs
//!   (`engine_daemon_container_actions_seconds`, one 0 s observation of each action at
//!   start as dockerd's `init` makes them) and `engine_daemon_engine_info`.
//! - A managed plugin of type `docker.metricscollector/1.0` gets that socket bound
//!   read-only at `/run/docker/metrics.sock`, and `StartMetrics` each time its socket
//!   comes up: at enable, after a crash restart, and when the engine restarts with
//!   the collector enabled ([`Engine::restart`](super::Engine::restart), dockerd's own
//!   start). An error is only logged.
//! - `StopMetrics` is sent to every enabled collector only at the engine's shutdown
//!   ([`Engine::shutdown`](super::Engine::shutdown)), never at `plugin disable`; its
//!   reply is not read.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::error::HarnessError;
use super::plugins::{Plugins, RuntimeHook};
use crate::managed::config::Mount;
use crate::metrics::{self, MetricFamily, MetricKind, Sample, Scrape, StartMetrics, StopMetrics};
use crate::protocol::Empty;

/// Prometheus' default buckets, which go-metrics' timers use.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The actions dockerd observes once at start (moby v20.10.24 `daemon/metrics.go`).
const INIT_ACTIONS: [&str; 5] = ["start", "changes", "commit", "create", "delete"];

/// The engine's metrics and its collectors. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Metrics {
    plugins: Plugins,
    endpoint: Endpoint,
}

/// The endpoint and what it serves: what the plugin registry's hooks hold (not the
/// registry itself, which holds the hooks: no cycle keeps the engine's plugins alive
/// once it is dropped).
#[derive(Debug, Clone)]
struct Endpoint {
    socket: PathBuf,
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    /// Observations per action: (seconds each).
    actions: Vec<(String, Vec<f64>)>,
    /// The endpoint, once bound.
    listener: Option<std::os::unix::net::UnixListener>,
    serving: Option<tokio::task::JoinHandle<()>>,
}

impl Metrics {
    /// The service; its endpoint is `<exec-root>/metrics.sock`, bound when the first
    /// collector is enabled (or [`Metrics::endpoint`] is asked for).
    pub(crate) fn new(plugins: Plugins, exec_root: &Path) -> Self {
        let state = State {
            actions: INIT_ACTIONS
                .iter()
                .map(|a| ((*a).to_owned(), vec![0.0]))
                .collect(),
            ..State::default()
        };
        let endpoint = Endpoint {
            socket: exec_root.join("metrics.sock"),
            state: Arc::new(Mutex::new(state)),
        };
        let for_mounts = endpoint.clone();
        let for_start = endpoint.clone();
        plugins.handle(RuntimeHook {
            capability: "metricscollector",
            mounts: Arc::new(move || {
                let source = for_mounts.bind()?;
                Ok(vec![Mount {
                    name: String::new(),
                    description: String::new(),
                    settable: Vec::new(),
                    source: Some(source.display().to_string()),
                    destination: metrics::ENGINE_METRICS_SOCKET.to_owned(),
                    r#type: "bind".to_owned(),
                    options: vec!["bind".to_owned(), "ro".to_owned()],
                }])
            }),
            on_start: Arc::new(move |plugin| {
                let endpoint = for_start.clone();
                async move {
                    endpoint.serve();
                    if let Err(err) = plugin.rpc.call::<StartMetrics>(&Empty {}).await {
                        tracing::error!(plugin = %plugin.rpc.name(), %err, "Error starting metrics collector plugin");
                    }
                }
                .boxed()
            }),
        });
        Self { plugins, endpoint }
    }

    /// The endpoint's path (`<exec-root>/metrics.sock`), bound and served from now on.
    pub fn endpoint(&self) -> Result<PathBuf, HarnessError> {
        let path = self.endpoint.bind()?;
        self.endpoint.serve();
        Ok(path)
    }

    /// Records a container action that took `took` (what dockerd's container actions
    /// observe: `create`, `start`, `delete`, …).
    pub fn observe(&self, action: &str, took: Duration) {
        let mut state = self.endpoint.state();
        let seconds = took.as_secs_f64();
        match state.actions.iter_mut().find(|(a, _)| a == action) {
            Some((_, observed)) => observed.push(seconds),
            None => state.actions.push((action.to_owned(), vec![seconds])),
        }
    }

    /// The engine's metrics as the endpoint serves them.
    pub fn scrape(&self) -> Scrape {
        self.endpoint.scrape()
    }

    /// dockerd's `cleanupMetricsPlugins` at shutdown: StopMetrics to every enabled
    /// collector at once (errors logged, replies not read), then the endpoint closes.
    pub(crate) async fn shutdown(&self) {
        let collectors = self.plugins.managed_implementing(metrics::IMPLEMENTS);
        let stops = collectors.iter().map(|plugin| async move {
            if let Err(err) = plugin.rpc.call_raw::<StopMetrics>(&Empty {}).await {
                tracing::error!(plugin = %plugin.rpc.name(), %err, "Error stopping plugin metrics collection");
            }
        });
        futures_util::future::join_all(stops).await;
        let mut state = self.endpoint.state();
        state.listener = None;
        if let Some(task) = state.serving.take() {
            task.abort();
        }
        let _ = std::fs::remove_file(&self.endpoint.socket);
    }
}

impl Endpoint {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Binds the endpoint if it is not bound yet (dockerd's `listenMetricsSock`:
    /// a stale file is unlinked first); its path.
    fn bind(&self) -> Result<PathBuf, HarnessError> {
        let mut state = self.state();
        if state.listener.is_none() && state.serving.is_none() {
            if let Some(dir) = self.socket.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| HarnessError::io(format!("creating {}", dir.display()), e))?;
            }
            let _ = std::fs::remove_file(&self.socket);
            let listener = std::os::unix::net::UnixListener::bind(&self.socket).map_err(|e| {
                HarnessError::io(
                    format!(
                        "error setting up metrics plugin listener at {}",
                        self.socket.display()
                    ),
                    e,
                )
            })?;
            state.listener = Some(listener);
        }
        Ok(self.socket.clone())
    }

    /// Starts answering on the bound endpoint (in the current runtime), once.
    fn serve(&self) {
        let mut state = self.state();
        let Some(listener) = state.listener.take() else {
            return;
        };
        let service = self.clone();
        let task = async move {
            let _ = listener.set_nonblocking(true);
            let Ok(listener) = tokio::net::UnixListener::from_std(listener) else {
                return;
            };
            while let Ok((mut conn, _)) = listener.accept().await {
                let body = service.render();
                tokio::spawn(async move {
                    // One request per connection (Go's client sends it at once); the
                    // head is read to its end, the reply closes the connection.
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let (status, body) = match head.starts_with(b"GET /metrics ") {
                        true => ("200 OK", body),
                        false => ("404 Not Found", "404 page not found\n".to_owned()),
                    };
                    let reply = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; \
                         charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(reply.as_bytes()).await;
                });
            }
        };
        state.serving = Some(tokio::spawn(task));
    }

    fn scrape(&self) -> Scrape {
        let state = self.state();
        let mut actions = state.actions.clone();
        actions.sort_by(|a, b| a.0.cmp(&b.0));
        let mut samples = Vec::new();
        let name = "engine_daemon_container_actions_seconds";
        for (action, observed) in &actions {
            let label = |extra: Option<String>| {
                let mut labels = vec![("action".to_owned(), action.clone())];
                if let Some(le) = extra {
                    labels.push(("le".to_owned(), le));
                }
                labels
            };
            let sample = |suffix: &str, labels, value| Sample {
                name: format!("{name}{suffix}"),
                labels,
                value,
                timestamp_ms: None,
            };
            for bound in BUCKETS {
                let count = observed.iter().filter(|s| **s <= bound).count();
                samples.push(sample(
                    "_bucket",
                    label(Some(bound.to_string())),
                    count as f64,
                ));
            }
            let total = observed.len() as f64;
            samples.push(sample("_bucket", label(Some("+Inf".into())), total));
            samples.push(sample("_sum", label(None), observed.iter().sum()));
            samples.push(sample("_count", label(None), total));
        }
        Scrape {
            families: vec![
                MetricFamily {
                    name: name.to_owned(),
                    help: Some(
                        "The number of seconds it takes to process each container action"
                            .to_owned(),
                    ),
                    kind: MetricKind::Histogram,
                    samples,
                },
                MetricFamily {
                    name: "engine_daemon_engine_info".to_owned(),
                    help: Some(
                        "The information related to the engine and the OS it is running on"
                            .to_owned(),
                    ),
                    kind: MetricKind::Gauge,
                    samples: vec![Sample {
                        name: "engine_daemon_engine_info".to_owned(),
                        labels: vec![
                            ("architecture".into(), std::env::consts::ARCH.into()),
                            ("os_type".into(), "linux".into()),
                            ("version".into(), "docker-plugin-sdk harness".into()),
                        ],
                        value: 1.0,
                        timestamp_ms: None,
                    }],
                },
            ],
        }
    }

    fn render(&self) -> String {
        self.scrape().render()
    }
}
