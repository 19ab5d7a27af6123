//! The network service's driver registry, as libnetwork's (moby v20.10.24
//! `vendor/github.com/docker/libnetwork/drvregistry/drvregistry.go`, registered by
//! `drivers/remote/driver.go` and `ipams/remote/remote.go` `Init`): a network or IPAM
//! plugin is usable once its handler registered it, under the name the handler was
//! given.
//!
//! - A **legacy** plugin's handlers run when its activation (the first lookup by
//!   name, `pkg/plugins` `Get`) finds it, one per subsystem in its `Implements`
//!   order, and register it under that name.
//! - A **managed** plugin's handlers run when it is enabled (`plugin/manager_linux.go`
//!   `pluginPostStart` → `plugin/store.go` `CallHandler`), one per interface type in
//!   its config's order, and register it under its normalized name (`name:latest`):
//!   a lookup asks nothing (`plugin/store.go` `Get` in `Lookup` mode), and only that
//!   name resolves (`-d name` alone fails with dockerd's `could not resolve driver
//!   name in registry`, `network.go` `resolveDriver`).
//!
//! The network handler asks `NetworkDriver.GetCapabilities` and registers nothing when
//! it fails; the IPAM handler asks `IpamDriver.GetCapabilities` (optional) then
//! `IpamDriver.GetDefaultAddressSpaces`, and registers nothing when that fails. A
//! registration is kept for the engine's life (libnetwork refuses a second one:
//! `ErrActiveRegistration`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use super::super::error::HarnessError;
use super::super::plugins::{ActivePlugin, Plugins, RuntimeHook};
use super::ipam::Ipam;
use crate::ipam;
use crate::network::{self, CapabilitiesResponse};
use crate::protocol::Empty;

/// What the handlers registered, by the name they registered under.
#[derive(Debug, Default)]
struct Registered {
    /// Network drivers and their capabilities.
    network: HashMap<String, CapabilitiesResponse>,
    /// IPAM drivers: whether they require MAC addresses, their local address space.
    ipam: HashMap<String, (bool, String)>,
}

/// The network and IPAM drivers the network service can use.
#[derive(Debug)]
pub(super) struct Drivers {
    plugins: Plugins,
    registered: Arc<Mutex<Registered>>,
}

fn lock(registered: &Mutex<Registered>) -> std::sync::MutexGuard<'_, Registered> {
    registered.lock().unwrap_or_else(|p| p.into_inner())
}

/// `drivers/remote/driver.go`'s handler: GetCapabilities, then `RegisterDriver`.
async fn register_network(registered: &Mutex<Registered>, plugin: &ActivePlugin) {
    let name = plugin.name().to_owned();
    match plugin.rpc.call::<network::GetCapabilities>(&Empty {}).await {
        Ok(caps) => {
            lock(registered).network.entry(name).or_insert(caps);
        }
        Err(err) => tracing::warn!(plugin = %name, %err, "error getting capability"),
    }
}

/// `ipams/remote/remote.go`'s handler: GetCapabilities (a failure means none), then
/// `RegisterIpamDriver`, which asks GetDefaultAddressSpaces.
async fn register_ipam(registered: &Mutex<Registered>, plugin: &ActivePlugin) {
    let name = plugin.name().to_owned();
    let requires_mac = plugin
        .rpc
        .call::<ipam::GetCapabilities>(&Empty {})
        .await
        .is_ok_and(|c| c.requires_mac_address);
    match plugin
        .rpc
        .call::<ipam::GetDefaultAddressSpaces>(&Empty {})
        .await
    {
        Ok(spaces) => {
            let entry = (requires_mac, spaces.local_default_address_space);
            lock(registered).ipam.entry(name).or_insert(entry);
        }
        Err(err) => tracing::warn!(plugin = %name, %err, "error registering remote ipam driver"),
    }
}

/// The handler of `subsystem` (an `Implements` value), if the network service has one.
async fn register(registered: &Mutex<Registered>, plugin: &ActivePlugin, subsystem: &str) {
    if subsystem == network::IMPLEMENTS {
        register_network(registered, plugin).await;
    } else if subsystem == ipam::IMPLEMENTS {
        register_ipam(registered, plugin).await;
    }
}

impl Drivers {
    /// The registry, its handlers registered with `plugins` for managed plugins.
    pub(super) fn new(plugins: Plugins) -> Self {
        let registered = Arc::<Mutex<Registered>>::default();
        for (subsystem, capability) in [
            (network::IMPLEMENTS, "networkdriver"),
            (ipam::IMPLEMENTS, "ipamdriver"),
        ] {
            // Weak: the plugin registry must not keep the network service alive.
            let weak: Weak<Mutex<Registered>> = Arc::downgrade(&registered);
            plugins.handle(RuntimeHook {
                capability,
                mounts: Arc::new(|| Ok(Vec::new())),
                on_start: Arc::new(move |plugin| {
                    let weak = weak.clone();
                    Box::pin(async move {
                        if let Some(registered) = weak.upgrade() {
                            register(&registered, &plugin, subsystem).await;
                        }
                    })
                }),
            });
        }
        Self {
            plugins,
            registered,
        }
    }

    /// A legacy plugin's activation handlers, once per plugin, for each subsystem
    /// it implements, in its `Implements` order.
    async fn activated(&self, plugin: &Arc<ActivePlugin>) {
        if plugin.is_managed() {
            return; // its handlers ran when it was enabled
        }
        let name = plugin.name();
        {
            let registered = lock(&self.registered);
            if registered.network.contains_key(name) || registered.ipam.contains_key(name) {
                return;
            }
        }
        for subsystem in &plugin.implements {
            register(&self.registered, plugin, subsystem).await;
        }
    }

    /// The network driver `name` (`-d`), registered under that name.
    pub(super) async fn network(&self, name: &str) -> Result<Arc<ActivePlugin>, HarnessError> {
        let plugin = self.plugins.get(name, network::IMPLEMENTS).await?;
        self.activated(&plugin).await;
        if !lock(&self.registered).network.contains_key(name) {
            return Err(HarnessError::UnresolvedDriver {
                name: name.to_owned(),
            });
        }
        Ok(plugin)
    }

    /// The IPAM driver plugin `name` (`--ipam-driver`), registered under that name.
    pub(super) async fn ipam(&self, name: &str) -> Result<Ipam, HarnessError> {
        let plugin = self.plugins.get(name, ipam::IMPLEMENTS).await?;
        self.activated(&plugin).await;
        let registered = lock(&self.registered).ipam.get(name).cloned();
        let (requires_mac, local_space) = registered.ok_or_else(|| HarnessError::Ipam {
            message: format!("invalid ipam driver: {name:?}"),
        })?;
        Ok(Ipam::Remote {
            plugin,
            requires_mac,
            local_space,
        })
    }
}
