//! The volume service's driver store, as dockerd's (moby v20.10.24
//! `volume/drivers/extpoint.go` `Store`, `volume/drivers/adapter.go`): a driver is
//! looked up by the name the user gave, through the plugin registry; a **legacy**
//! driver's adapter is then kept by that name for the engine's life and found first
//! ever after, so once a legacy `myplugin` was used, an enabled managed `myplugin`
//! is never reached by that name (`volume create -d myplugin` dials the legacy
//! socket). A managed driver gets a fresh adapter at every lookup, which asks its
//! Capabilities again. A legacy adapter caches a successful Capabilities answer; a
//! failure (404) means scope `local`, asked again next time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::super::error::HarnessError;
use super::super::plugins::{ActivePlugin, Plugins};
use crate::protocol::Empty;
use crate::volume::{self, IMPLEMENTS, Scope};

/// The drivers the volume service has looked up.
#[derive(Debug)]
pub(super) struct Drivers {
    plugins: Plugins,
    state: Mutex<DriverState>,
}

#[derive(Debug, Default)]
struct DriverState {
    /// Legacy adapters by the name they were looked up by (moby's `extensions`).
    extensions: HashMap<String, Arc<ActivePlugin>>,
    /// Driver → scope, once its Capabilities succeeded.
    scopes: HashMap<String, Scope>,
}

impl Drivers {
    pub(super) fn new(plugins: Plugins) -> Self {
        Self {
            plugins,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, DriverState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The volume driver `name` (moby's `lookup`): a legacy adapter kept under that
    /// name, else the registry's plugin, whose scope is asked (`validateDriver`); a
    /// legacy one is then kept.
    pub(super) async fn lookup(&self, name: &str) -> Result<Arc<ActivePlugin>, HarnessError> {
        let kept = self.state().extensions.get(name).cloned();
        if let Some(plugin) = kept {
            return Ok(plugin);
        }
        let plugin = self.plugins.get(name, IMPLEMENTS).await?;
        self.scope(&plugin).await;
        if !plugin.is_managed() {
            self.state()
                .extensions
                .insert(name.to_owned(), Arc::clone(&plugin));
        }
        Ok(plugin)
    }

    /// [`lookup`](Self::lookup) with dockerd's wording on failure: `create NAME: error
    /// looking up volume plugin D: …` when creating, `get NAME: error while checking if
    /// volume "NAME" exists in driver "D": error looking up volume plugin D: …`
    /// otherwise.
    pub(super) async fn lookup_for(
        &self,
        driver: &str,
        volume: &str,
        creating: bool,
    ) -> Result<Arc<ActivePlugin>, HarnessError> {
        self.lookup(driver)
            .await
            .map_err(|source| HarnessError::DriverLookup {
                volume: volume.to_owned(),
                driver: driver.to_owned(),
                creating,
                source: Box::new(source),
            })
    }

    /// Every volume driver, as dockerd's `GetAllDrivers`: the enabled managed ones,
    /// then the legacy adapters kept, then every other discovered legacy plugin,
    /// activated without the discovery retry and kept from now on (not asked its
    /// scope). A legacy plugin that cannot be activated is left out.
    pub(super) async fn all(&self) -> Vec<Arc<ActivePlugin>> {
        let mut out = self.plugins.managed_implementing(IMPLEMENTS);
        let mut kept: Vec<(String, Arc<ActivePlugin>)> = self
            .state()
            .extensions
            .iter()
            .map(|(name, plugin)| (name.clone(), Arc::clone(plugin)))
            .collect();
        kept.sort_by(|a, b| a.0.cmp(&b.0));
        out.extend(kept.into_iter().map(|(_, plugin)| plugin));
        for name in self.plugins.discovery().scan() {
            if self.state().extensions.contains_key(&name) {
                continue;
            }
            if let Some(plugin) = self.plugins.try_legacy(&name, IMPLEMENTS).await {
                self.state().extensions.insert(name, Arc::clone(&plugin));
                out.push(plugin);
            }
        }
        out
    }

    /// The extra Capabilities dockerd asks a managed driver around volume calls (its
    /// volume wrappers read the scope through a fresh adapter); nothing for a legacy
    /// driver, whose answer is cached.
    pub(super) async fn managed_scope(&self, plugin: &ActivePlugin) {
        if plugin.is_managed() {
            self.ask_scope(plugin).await;
        }
    }

    /// The driver's scope: a legacy adapter's cached answer, else asked (a managed
    /// plugin's adapter is always fresh).
    pub(super) async fn scope(&self, plugin: &ActivePlugin) -> Scope {
        self.try_scope(plugin).await.unwrap_or(Scope::Local)
    }

    /// [`scope`](Self::scope), `None` when Capabilities failed (an adapter then
    /// asks again the next time it needs the scope).
    pub(super) async fn try_scope(&self, plugin: &ActivePlugin) -> Option<Scope> {
        if !plugin.is_managed()
            && let Some(scope) = self.cached_scope(plugin)
        {
            return Some(scope);
        }
        self.ask_scope(plugin).await
    }

    /// Asks Capabilities; a successful answer is cached, a failure means `local`.
    async fn ask_scope(&self, plugin: &ActivePlugin) -> Option<Scope> {
        match plugin.rpc.call::<volume::Capabilities>(&Empty {}).await {
            Ok(caps) => {
                let scope = caps.capabilities.scope;
                self.state()
                    .scopes
                    .insert(plugin.rpc.name().to_owned(), scope);
                Some(scope)
            }
            Err(err) => {
                tracing::debug!(driver = plugin.rpc.name(), %err, "no capabilities, using scope local");
                None
            }
        }
    }

    /// The scope without asking, if known.
    pub(super) fn cached_scope(&self, plugin: &ActivePlugin) -> Option<Scope> {
        self.state().scopes.get(plugin.rpc.name()).copied()
    }
}
