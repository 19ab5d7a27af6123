//! The plugin registry, at the bottom of the harness as dockerd's plugin manager is at
//! the bottom of the daemon (moby v20.10.24 `plugin/store.go`, `plugin/manager.go`,
//! `pkg/plugins`): it finds plugins ([`discovery`]), calls them as dockerd does
//! ([`rpc`]), activates legacy plugins ([`legacy`]), runs managed ones ([`managed`],
//! [`launch`], [`supervise`]) and keeps their references. The services above it
//! (volumes, and the subsystems to come) ask it for a plugin implementing their
//! subsystem and never see how it was found or started.

mod active;
mod config;
mod discovery;
mod hooks;
#[cfg(feature = "registry")]
mod install;
mod launch;
mod legacy;
mod managed;
mod mounts;
mod names;
mod rpc;
mod supervise;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use active::{ActivePlugin, ScopedPaths};
pub use config::EngineConfig;
pub use discovery::{Discovery, Found};
pub(crate) use hooks::RuntimeHook;
#[cfg(feature = "registry")]
pub use install::InstallOptions;
pub use launch::{LaunchMode, PLUGIN_PATH, PluginLogLine, Stream, rootfs_command};
pub use managed::ManagedInfo;
#[cfg(feature = "packager")]
pub(crate) use managed::copy_tree;
pub use names::normalize_name;
pub use rpc::{PluginRpc, RetryPolicy};
pub use supervise::SocketProbe;

use super::calls::CallLog;
use super::error::HarnessError;
use crate::managed::config::Privilege;
use legacy::Legacy;
use managed::Managed;

/// The plugins the engine knows, legacy and managed: `docker plugin …`, and the
/// lookups every service makes (dockerd's `plugingetter`). Cheap to clone.
///
/// ```no_run
/// use docker_plugin_sdk::harness::Engine;
/// # async fn run() -> Result<(), docker_plugin_sdk::harness::HarnessError> {
/// let engine = Engine::rooted("/tmp/test-root");
/// let plugins = engine.plugins();
/// plugins.create("myplugin", "target/docker-plugin/myplugin").await?;
/// plugins.enable("myplugin").await?;
/// let driver = plugins.get("myplugin", "VolumeDriver").await?;
/// assert!(driver.is_managed());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Plugins {
    inner: Arc<Registry>,
}

#[derive(Debug)]
struct Registry {
    legacy: Legacy,
    managed: Managed,
}

impl Plugins {
    pub(crate) fn new(config: Arc<EngineConfig>, log: CallLog) -> Self {
        Self {
            inner: Arc::new(Registry {
                legacy: Legacy::new(config.discovery.clone(), config.retry, log.clone()),
                managed: Managed::new(config, log),
            }),
        }
    }

    /// Where legacy plugins are looked up.
    pub fn discovery(&self) -> &Discovery {
        self.inner.legacy.discovery()
    }

    /// The plugin `name`, checked to implement `subsystem` (an `Implements` value such
    /// as `VolumeDriver`), as dockerd's plugin store finds it (moby v20.10.24
    /// `plugin/store.go` `Get`): a managed plugin by name, ID or ID prefix first (a
    /// disabled one is an error, not a fallback: `plugin NAME found but disabled`),
    /// else a legacy plugin, activated on first use. Like dockerd, a legacy lookup
    /// that finds nothing is retried until the retry deadline, a failed activation is
    /// not cached, a successful one is kept for the engine's life (a restarted legacy
    /// plugin is not activated again), and legacy failures other than "not found" read
    /// `legacy plugin: …`.
    pub async fn get(
        &self,
        name: &str,
        subsystem: &str,
    ) -> Result<Arc<ActivePlugin>, HarnessError> {
        if let Some(plugin) = self.inner.managed.lookup(name, subsystem)? {
            return Ok(plugin);
        }
        let legacy = |source| HarnessError::Legacy {
            source: Box::new(source),
        };
        match self.inner.legacy.get(name, true).await {
            Ok(plugin) if plugin.implements(subsystem) => Ok(plugin),
            Ok(plugin) => Err(legacy(HarnessError::NotImplements {
                name: name.to_owned(),
                subsystem: subsystem.to_owned(),
                implements: plugin.implements.clone(),
            })),
            Err(err @ HarnessError::PluginNotFound { .. }) => Err(err),
            Err(err) => Err(legacy(err)),
        }
    }

    /// Waits until plugin `name` answers: a managed plugin enabled and accepting
    /// connections on its socket, or a legacy plugin found and accepting them. For
    /// tests that restart a plugin and must not race its start; fails with the last
    /// reason after `timeout`.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use docker_plugin_sdk::harness::Engine;
    /// # async fn run() -> Result<(), docker_plugin_sdk::harness::HarnessError> {
    /// let engine = Engine::for_tests("/tmp/t");
    /// // ... the plugin process was killed; the engine restarts it ...
    /// engine.plugins().wait_until_answering("myplugin", Duration::from_secs(10)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn wait_until_answering(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<(), HarnessError> {
        let start = std::time::Instant::now();
        loop {
            let attempt = match self.inner.managed.socket_of(name) {
                Ok(Some(socket)) => tokio::net::UnixStream::connect(&socket)
                    .await
                    .map(drop)
                    .map_err(|e| {
                        HarnessError::io(format!("connecting to {}", socket.display()), e)
                    }),
                Ok(None) => match self.discovery().find(name) {
                    Ok(found) => match found.addr.strip_prefix("unix://") {
                        Some(path) => tokio::net::UnixStream::connect(path)
                            .await
                            .map(drop)
                            .map_err(|e| HarnessError::io(format!("connecting to {path}"), e)),
                        None => Ok(()),
                    },
                    Err(err) => Err(err),
                },
                Err(err) => Err(err),
            };
            match attempt {
                Ok(()) => return Ok(()),
                Err(err) if start.elapsed() >= timeout => return Err(err),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Every plugin implementing `subsystem`: enabled managed plugins, then every
    /// discovered legacy plugin, looked up without retry (dockerd's `GetAllByCap`);
    /// legacy plugins that fail are skipped with a warning.
    pub async fn implementing(&self, subsystem: &str) -> Vec<Arc<ActivePlugin>> {
        let mut out = self.managed_implementing(subsystem);
        for name in self.discovery().scan() {
            if let Some(plugin) = self.try_legacy(&name, subsystem).await {
                out.push(plugin);
            }
        }
        out
    }

    /// The enabled managed plugins implementing `subsystem`.
    pub(crate) fn managed_implementing(&self, subsystem: &str) -> Vec<Arc<ActivePlugin>> {
        self.inner.managed.implementing(subsystem)
    }

    /// Legacy plugin `name`, looked up without retry, if it implements `subsystem`;
    /// `None` (with a warning) when it cannot be used.
    pub(crate) async fn try_legacy(
        &self,
        name: &str,
        subsystem: &str,
    ) -> Option<Arc<ActivePlugin>> {
        match self.inner.legacy.get(name, false).await {
            Ok(plugin) if plugin.implements(subsystem) => Some(plugin),
            Ok(_) => None,
            Err(err) => {
                tracing::warn!(plugin = %name, %err, "skipping plugin");
                None
            }
        }
    }

    /// Adds `hook` to every managed plugin of its type enabled from now on (dockerd's
    /// `Handle` and `RegisterRuntimeOpt`).
    pub(crate) fn handle(&self, hook: RuntimeHook) {
        self.inner.managed.handle(hook);
    }

    /// Forgets an activated legacy plugin.
    pub async fn forget(&self, name: &str) {
        self.inner.legacy.forget(name).await;
    }

    /// The name services record for plugin `name`: a managed plugin's normalized name
    /// (`localvol` → `localvol:latest`, as `docker volume ls` shows it), else `name`.
    pub(crate) fn display_name(&self, name: &str) -> String {
        self.inner
            .managed
            .normalized(name)
            .unwrap_or_else(|| name.to_owned())
    }

    /// Something (a volume) took (`take`) or dropped a reference on plugin `name`; only
    /// managed plugins count them (disable and rm are refused while referenced).
    pub(crate) fn reference(&self, name: &str, take: bool) {
        self.inner.managed.reference(name, take);
    }

    /// `docker plugin create NAME DIR`: a disabled managed plugin from the bundle in
    /// `dir`, run from its rootfs as dockerd runs it. Returns its ID.
    pub async fn create(&self, name: &str, dir: impl AsRef<Path>) -> Result<String, HarnessError> {
        self.inner
            .managed
            .create(name, dir, LaunchMode::Rootfs)
            .await
    }

    /// [`create`](Self::create), with the entrypoint taken from where `mode` says:
    /// [`LaunchMode::Host`] runs a host binary (an absolute path in the config's
    /// entrypoint) in the plugin's namespaces, without a rootfs.
    ///
    /// ```no_run
    /// use docker_plugin_sdk::harness::{Engine, LaunchMode};
    /// # async fn run() -> Result<(), docker_plugin_sdk::harness::HarnessError> {
    /// let engine = Engine::rooted("/tmp/test-root");
    /// // config.json's entrypoint: ["/path/to/target/debug/myplugin"]
    /// engine.plugins().create_as("myplugin", "bundle-dir", LaunchMode::Host).await?;
    /// engine.plugins().enable("myplugin").await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_as(
        &self,
        name: &str,
        dir: impl AsRef<Path>,
        mode: LaunchMode,
    ) -> Result<String, HarnessError> {
        self.inner.managed.create(name, dir, mode).await
    }

    /// `docker plugin upgrade NAME`, from the bundle in `dir` (dockerd pulls it from
    /// a registry): only while disabled. The rootfs and the config are replaced,
    /// state kept in the rootfs is lost; the ID, the volumes, the propagated mount and
    /// the old settings stay (env, args and devices new in the bundle are not applied).
    pub async fn upgrade(&self, name: &str, dir: impl AsRef<Path>) -> Result<(), HarnessError> {
        self.inner.managed.upgrade(name, dir).await
    }

    /// The privileges `docker plugin install` would ask for, in dockerd's order.
    pub fn privileges(&self, name: &str) -> Result<Vec<Privilege>, HarnessError> {
        self.inner.managed.privileges(name)
    }

    /// `docker plugin set NAME key=value…`: only while disabled.
    pub fn set<I, S>(&self, name: &str, args: I) -> Result<(), HarnessError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.inner.managed.set(name, args)
    }

    /// `docker plugin inspect NAME`.
    pub fn inspect(&self, name: &str) -> Result<ManagedInfo, HarnessError> {
        self.inner.managed.inspect(name)
    }

    /// `docker plugin ls`, sorted by name.
    pub fn ls(&self) -> Vec<ManagedInfo> {
        self.inner.managed.ls()
    }

    /// Every line the managed plugin printed on stdout and stderr, in order.
    pub fn logs(&self, name: &str) -> Result<Vec<PluginLogLine>, HarnessError> {
        self.inner.managed.logs(name)
    }

    /// Every line any managed plugin printed, removed plugins' too, in order: what
    /// dockerd's log holds of them (each line tagged with its plugin's ID).
    pub fn output(&self) -> Vec<PluginLogLine> {
        self.inner.managed.output()
    }

    /// `docker plugin enable NAME`: starts it, waits for its socket, then runs the
    /// services' start hooks for each of its interface types, in the config's order
    /// (moby v20.10.24 `plugin/manager_linux.go` `pluginPostStart`, `plugin/store.go`
    /// `CallHandler`): a network plugin is asked its capabilities here, before any
    /// `docker network create`.
    pub async fn enable(&self, name: &str) -> Result<(), HarnessError> {
        self.inner.managed.enable(name).await
    }

    /// `docker plugin disable [-f] NAME`: refused while in use unless `force`.
    pub async fn disable(&self, name: &str, force: bool) -> Result<(), HarnessError> {
        self.inner.managed.disable(name, force).await
    }

    /// What the daemon's restart does to managed plugins: each enabled one stopped,
    /// then enabled again with its start hooks (see [`Engine::restart`](super::Engine::restart)).
    pub(crate) async fn restart_enabled(&self) -> Result<(), HarnessError> {
        self.inner.managed.restart_enabled().await
    }

    /// `docker plugin rm [-f] NAME`: refused while in use or enabled unless `force`.
    pub async fn rm(&self, name: &str, force: bool) -> Result<(), HarnessError> {
        self.inner.managed.rm(name, force).await
    }
}
