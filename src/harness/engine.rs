//! The engine: finds plugins, activates them lazily and once, and keeps what dockerd
//! keeps between user actions (activated plugins, driver capabilities, known volumes,
//! which containers use which volume).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Mutex as AsyncMutex;

use super::calls::CallLog;
use super::discovery::{Discovery, Found};
use super::error::HarnessError;
use super::managed::{ManagedPlugin, ScopedPaths, SocketProbe};
use super::rpc::{PluginRpc, RetryPolicy};
use super::volumes::VolumeState;
use crate::client::Client;
use crate::protocol::{Activate, Empty};

/// How the engine behaves; the defaults are dockerd's.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where plugins are looked up. Managed plugins' sockets go in
    /// `<socket_dir>/<id>/`, as with dockerd's default exec root.
    pub discovery: Discovery,
    /// Retry of lookups and connection errors (dockerd: 30 s deadline, 1 s first backoff).
    pub retry: RetryPolicy,
    /// Stands for dockerd's `--data-root`: managed plugins are kept in
    /// `<data_root>/plugins/<id>/`. `None` (the default of [`Engine::new`]) refuses
    /// managed plugins rather than write into the real `/var/lib/docker`.
    pub data_root: Option<PathBuf>,
    /// How a freshly enabled plugin's socket is waited for.
    pub socket_probe: SocketProbe,
    /// The client timeout of managed plugins (`docker plugin enable --timeout`,
    /// default 30 s); it caps the per-method timeouts.
    pub plugin_timeout: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            discovery: Discovery::default(),
            retry: RetryPolicy::default(),
            data_root: None,
            socket_probe: SocketProbe::default(),
            plugin_timeout: Duration::from_secs(30),
        }
    }
}

impl EngineConfig {
    /// dockerd's settings with every directory under `root`: discovery as
    /// [`Discovery::rooted`], the data root in `root/var/lib/docker`.
    pub fn rooted(root: impl AsRef<Path>) -> Self {
        let root = root.as_ref();
        Self {
            discovery: Discovery::rooted(root),
            data_root: Some(root.join("var/lib/docker")),
            ..Self::default()
        }
    }
}

/// A plugin the engine activated.
#[derive(Debug)]
pub struct ActivePlugin {
    /// Its client.
    pub rpc: PluginRpc,
    /// What `/Plugin.Activate` answered.
    pub implements: Vec<String>,
    /// Where it was found (for a managed plugin: its socket).
    pub found: Found,
    /// For a managed plugin: how its paths map to the host.
    pub scope: Option<ScopedPaths>,
    /// For a managed plugin with a long socket path: its socket dir, kept open to be
    /// dialed through `/proc/self/fd`.
    pub(crate) _socket_dir: Option<Arc<std::fs::File>>,
}

impl ActivePlugin {
    /// Whether it implements `subsystem` (e.g. `VolumeDriver`).
    pub fn implements(&self, subsystem: &str) -> bool {
        self.implements.iter().any(|i| i == subsystem)
    }

    /// Where `path`, a path the plugin answered (e.g. a mountpoint), is on the host:
    /// itself for a legacy plugin, mapped as dockerd's `ScopedPath` for a managed one.
    pub fn host_path(&self, path: &Path) -> PathBuf {
        match &self.scope {
            Some(scope) => scope.host_path(path),
            None => path.to_path_buf(),
        }
    }
}

/// A test double of dockerd, as far as plugins can tell. Cheap to clone.
///
/// ```no_run
/// use docker_plugin_sdk::harness::{Discovery, Engine};
/// # async fn run() -> Result<(), docker_plugin_sdk::harness::HarnessError> {
/// let engine = Engine::new(Discovery::rooted("/tmp/test-root"));
/// engine.volume_create("myplugin", "v1", [("size", "1G")]).await?;
/// assert_eq!(
///     engine.calls().take_methods(),
///     ["Plugin.Activate", "VolumeDriver.Capabilities", "VolumeDriver.Get", "VolumeDriver.Create"]
/// );
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: EngineConfig,
    pub(crate) log: CallLog,
    plugins: AsyncMutex<HashMap<String, Arc<ActivePlugin>>>,
    pub(crate) volumes: Mutex<VolumeState>,
    pub(crate) managed: Mutex<BTreeMap<String, ManagedPlugin>>,
}

impl Engine {
    /// An engine looking plugins up with `discovery`, otherwise as dockerd.
    pub fn new(discovery: Discovery) -> Self {
        Self::with_config(EngineConfig {
            discovery,
            ..Default::default()
        })
    }

    /// An engine with every directory under `root` ([`EngineConfig::rooted`]): legacy
    /// and managed plugins both work, and nothing outside `root` is touched.
    pub fn rooted(root: impl AsRef<Path>) -> Self {
        Self::with_config(EngineConfig::rooted(root))
    }

    /// An engine with every setting given.
    pub fn with_config(config: EngineConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                log: CallLog::default(),
                plugins: AsyncMutex::new(HashMap::new()),
                volumes: Mutex::new(VolumeState::default()),
                managed: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// The log of every call made to a plugin.
    pub fn calls(&self) -> &CallLog {
        &self.inner.log
    }

    /// The discovery settings.
    pub fn discovery(&self) -> &Discovery {
        &self.inner.config.discovery
    }

    /// The plugin `name`, checked to implement `subsystem`: an enabled managed plugin
    /// of that name first (a disabled one is an error, not a fallback), else a legacy
    /// plugin, activated on first use. Like dockerd, a legacy lookup that finds nothing
    /// is retried until the retry deadline, a failed activation is not cached, and a
    /// successful one is kept for the engine's life (a restarted legacy plugin is not
    /// activated again).
    pub async fn plugin(
        &self,
        name: &str,
        subsystem: &str,
    ) -> Result<Arc<ActivePlugin>, HarnessError> {
        if let Some(plugin) = self.managed_plugin(name, subsystem)? {
            return Ok(plugin);
        }
        let plugin = self.load(name, true).await?;
        if plugin.implements(subsystem) {
            Ok(plugin)
        } else {
            Err(HarnessError::NotImplements {
                name: name.to_owned(),
                subsystem: subsystem.to_owned(),
                implements: plugin.implements.clone(),
            })
        }
    }

    /// Every plugin implementing `subsystem`: enabled managed plugins, then every
    /// discovered legacy plugin activated without retry (dockerd's `GetAllByCap`);
    /// legacy plugins that fail are skipped with a warning.
    pub async fn plugins_implementing(&self, subsystem: &str) -> Vec<Arc<ActivePlugin>> {
        let mut out = self.managed_implementing(subsystem);
        for name in self.discovery().scan() {
            if let Some(plugin) = self.try_plugin(&name, subsystem).await {
                out.push(plugin);
            }
        }
        out
    }

    /// Plugin `name` activated without retry if it implements `subsystem`; `None` (with
    /// a warning) when it cannot be used.
    pub(crate) async fn try_plugin(
        &self,
        name: &str,
        subsystem: &str,
    ) -> Option<Arc<ActivePlugin>> {
        match self.load(name, false).await {
            Ok(plugin) if plugin.implements(subsystem) => Some(plugin),
            Ok(_) => None,
            Err(err) => {
                tracing::warn!(plugin = %name, %err, "skipping plugin");
                None
            }
        }
    }

    /// Forgets an activated plugin, as dockerd does when a managed plugin is disabled.
    pub async fn forget(&self, name: &str) {
        self.inner.plugins.lock().await.remove(name);
    }

    async fn load(&self, name: &str, retry: bool) -> Result<Arc<ActivePlugin>, HarnessError> {
        let mut plugins = self.inner.plugins.lock().await;
        if let Some(plugin) = plugins.get(name) {
            return Ok(Arc::clone(plugin));
        }
        let policy = if retry {
            self.inner.config.retry
        } else {
            RetryPolicy::none()
        };
        let found = self.find_with_retry(name, policy).await?;
        let client = client_for(&found)?;
        let rpc = PluginRpc::new(name, client, policy, self.inner.log.clone());
        let activated = rpc.call::<Activate>(&Empty {}).await?;
        let plugin = Arc::new(ActivePlugin {
            rpc,
            implements: activated.implements,
            found,
            scope: None,
            _socket_dir: None,
        });
        plugins.insert(name.to_owned(), Arc::clone(&plugin));
        Ok(plugin)
    }

    async fn find_with_retry(
        &self,
        name: &str,
        policy: RetryPolicy,
    ) -> Result<Found, HarnessError> {
        let start = Instant::now();
        let mut retries = 0;
        loop {
            match self.discovery().find(name) {
                Ok(found) => return Ok(found),
                Err(err) => {
                    let backoff = policy.backoff(retries);
                    if policy.abort(start, backoff) {
                        return Err(err);
                    }
                    retries += 1;
                    tracing::warn!(plugin = name, ?backoff, "unable to locate plugin, retrying");
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    }
}

fn client_for(found: &Found) -> Result<Client, HarnessError> {
    if found.addr.starts_with("https://") {
        return Err(HarnessError::BadSpec {
            path: found.path.clone(),
            problem:
                "https:// plugins are not supported by the harness yet (use tcp:// or unix://)"
                    .into(),
        });
    }
    Client::from_url(&found.addr).map_err(|e| HarnessError::BadSpec {
        path: found.path.clone(),
        problem: e.to_string(),
    })
}
