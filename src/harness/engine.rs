//! The engine: the thin root that composes the harness as dockerd's `daemon/daemon.go`
//! composes the daemon: the plugin registry at the bottom, one service per subsystem on
//! it, containers on the services, and one call log they all write to.

use std::path::Path;
use std::sync::Arc;

use super::authz::Authz;
use super::calls::CallLog;
use super::containers::Containers;
use super::error::HarnessError;
use super::logging::Logging;
use super::metrics::Metrics;
use super::network::Networks;
use super::plugins::{Discovery, EngineConfig, Plugins};
use super::secrets::Secrets;
use super::volume::Volumes;

/// A test double of dockerd, as far as plugins can tell. Cheap to clone.
///
/// Each part of dockerd a plugin meets is a service reached from here:
/// [`plugins`](Engine::plugins) (`docker plugin …` and the lookups),
/// [`volumes`](Engine::volumes) (`docker volume …`),
/// [`containers`](Engine::containers) (`docker create/start/stop/cp/rm/run`) and
/// [`authz`](Engine::authz) (`--authorization-plugin` around each API call).
///
/// ```no_run
/// use docker_plugin_sdk::harness::{Discovery, Engine};
/// # async fn run() -> Result<(), docker_plugin_sdk::harness::HarnessError> {
/// let engine = Engine::new(Discovery::rooted("/tmp/test-root"));
/// engine.volumes().create("myplugin", "v1", [("size", "1G")]).await?;
/// assert_eq!(
///     engine.calls().take_methods(),
///     ["Plugin.Activate", "VolumeDriver.Capabilities", "VolumeDriver.Get", "VolumeDriver.Create"]
/// );
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Engine {
    config: Arc<EngineConfig>,
    log: CallLog,
    plugins: Plugins,
    volumes: Volumes,
    networks: Networks,
    secrets: Secrets,
    logging: Logging,
    metrics: Metrics,
    containers: Containers,
    authz: Authz,
}

impl Engine {
    /// An engine looking plugins up with `discovery`, otherwise as dockerd.
    pub fn new(discovery: Discovery) -> Self {
        Self::with_config(EngineConfig::with_discovery(discovery))
    }

    /// An engine with every directory under `root` ([`EngineConfig::rooted`]): legacy
    /// and managed plugins both work, and nothing outside `root` is touched.
    pub fn rooted(root: impl AsRef<Path>) -> Self {
        Self::with_config(EngineConfig::rooted(root))
    }

    /// An engine with every setting given.
    pub fn with_config(config: EngineConfig) -> Self {
        let config = Arc::new(config);
        let log = CallLog::default();
        let plugins = Plugins::new(Arc::clone(&config), log.clone());
        let volumes = Volumes::new(plugins.clone());
        // dockerd's `<exec-root>/netns`: beside the plugin socket dir's parent
        // (`/run/docker/netns`, or under the engine's root).
        let socket_dir = &config.discovery.socket_dir;
        let exec_root = socket_dir.parent().unwrap_or(socket_dir);
        let networks = Networks::new(plugins.clone(), exec_root.join("netns"));
        let metrics = Metrics::new(plugins.clone(), exec_root);
        let containers = Containers::new(volumes.clone(), networks.clone(), metrics.clone());
        let authz = Authz::new(plugins.clone());
        let secrets = Secrets::new(plugins.clone());
        let logging = Logging::new(plugins.clone(), exec_root);
        Self {
            config,
            log,
            plugins,
            volumes,
            networks,
            secrets,
            logging,
            metrics,
            containers,
            authz,
        }
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The log of every call made to a plugin.
    pub fn calls(&self) -> &CallLog {
        &self.log
    }

    /// Where legacy plugins are looked up.
    pub fn discovery(&self) -> &Discovery {
        &self.config.discovery
    }

    /// The plugins: `docker plugin …`, and the lookups the services make.
    pub fn plugins(&self) -> &Plugins {
        &self.plugins
    }

    /// The volume service: `docker volume …`.
    pub fn volumes(&self) -> &Volumes {
        &self.volumes
    }

    /// The network service: `docker network …`.
    pub fn networks(&self) -> &Networks {
        &self.networks
    }

    /// The swarm's secrets (one manager, one node): `docker secret create --driver`
    /// and the node's task assignments, which ask secret providers for values.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// The logging service: containers whose log driver is a plugin (`docker run
    /// --log-driver`, `docker logs`), their FIFOs under `<exec-root>/logging` for
    /// legacy plugins and in a managed plugin's rootfs.
    pub fn logging(&self) -> &Logging {
        &self.logging
    }

    /// The engine's metrics (`<exec-root>/metrics.sock`) and its metrics collectors.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The daemon shuts down, as far as plugins see it before they are stopped:
    /// StopMetrics to every enabled metrics collector (the only time dockerd sends
    /// it), then the metrics endpoint closes (moby v20.10.24 `daemon/daemon.go`
    /// `Shutdown`, `daemon/metrics.go` `cleanupMetricsPlugins`). The plugins stop when
    /// the engine is dropped.
    pub async fn shutdown(&self) {
        self.metrics.shutdown().await;
    }

    /// The daemon restarts without `--live-restore`, as far as its plugins see it:
    /// [`Engine::shutdown`] (StopMetrics), every enabled managed plugin stopped, then
    /// each enabled again in creation order, its start hooks run as at `docker plugin
    /// enable`: a metrics collector gets StartMetrics again, a network driver is asked
    /// its capabilities (moby v20.10.24 `plugin/manager.go` `Shutdown` and `reload`,
    /// `plugin/manager_linux.go` `pluginPostStart`; `daemon/daemon.go` registers the
    /// metrics handler before the plugin manager restores the plugins). The engine's
    /// own state (volumes, networks, containers) and the legacy plugins it activated
    /// are kept.
    ///
    /// Fails with the first plugin that does not start again; the plugins after it
    /// stay disabled.
    pub async fn restart(&self) -> Result<(), HarnessError> {
        self.shutdown().await;
        self.plugins.restart_enabled().await
    }

    /// Containers, as far as they reach plugins: `docker create/start/stop/cp/rm/run`.
    pub fn containers(&self) -> &Containers {
        &self.containers
    }

    /// The authorization middleware: the `--authorization-plugin` chain, and the entry
    /// point that runs one Engine API call through it.
    pub fn authz(&self) -> &Authz {
        &self.authz
    }

    /// An engine with [`EngineConfig::for_tests`]: rooted in `root`, fast retries and
    /// socket probe.
    ///
    /// ```no_run
    /// use docker_plugin_sdk::harness::Engine;
    /// # async fn run() -> Result<(), docker_plugin_sdk::harness::HarnessError> {
    /// // Your plugin listens on /tmp/t/run/docker/plugins/myplugin.sock.
    /// let engine = Engine::for_tests("/tmp/t");
    /// engine.volumes().create("myplugin", "v1", [("size", "1G")]).await?;
    /// # Ok(()) }
    /// ```
    pub fn for_tests(root: impl AsRef<Path>) -> Self {
        Self::with_config(EngineConfig::for_tests(root))
    }
}
