//! The volume service as dockerd drives volume plugins (moby `volume/service`,
//! `volume/drivers/adapter.go`, `daemon/volumes.go`): what each user action sends to
//! the plugin, in order.
//!
//! - The first use of a driver activates it and asks `VolumeDriver.Capabilities` for its
//!   scope (dockerd's `validateDriver`); a successful answer is cached, a failure
//!   (404 "not implemented") means scope `local` and is asked again next time.
//! - `volume create` asks `Get` first and only calls `Create` when the driver does not
//!   have the volume; options go through unchanged.
//! - `volume ls` lists every discovered volume driver (activating each, no retry).
//! - `volume inspect` asks the volume's driver with `Get`.
//! - `volume rm` is refused while a container uses the volume, else `Remove`.
//! - A container start mounts each volume with a fresh 64-hex ID; its stop unmounts
//!   with the same ID.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::engine::{ActivePlugin, Engine};
use super::error::HarnessError;
use crate::protocol::Empty;
use crate::volume::{
    CapabilitiesResponse, CreateRequest, GetRequest, GetResponse, IMPLEMENTS, ListResponse,
    MountRequest, MountResponse, RemoveRequest, Scope, UnmountRequest,
};

/// What the engine remembers about volumes between actions.
#[derive(Debug, Default)]
pub(crate) struct VolumeState {
    /// Volume name → driver name (dockerd's volume database).
    known: HashMap<String, String>,
    /// Volume name → containers using it.
    users: HashMap<String, Vec<String>>,
    /// Drivers looked up once already (dockerd caches the adapter).
    adapters: HashSet<String>,
    /// Driver → scope, once Capabilities succeeded.
    scopes: HashMap<String, Scope>,
}

/// A volume as `docker volume inspect` / `ls` show it.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeInfo {
    /// The name.
    pub name: String,
    /// The driver (plugin) name.
    pub driver: String,
    /// Where the driver says it is, if it said.
    pub mountpoint: Option<PathBuf>,
    /// `CreatedAt`, if the driver gave it.
    pub created_at: Option<String>,
    /// The driver's `Status`.
    pub status: BTreeMap<String, Value>,
    /// The driver's scope.
    pub scope: Scope,
}

/// One volume mounted into a [`Container`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerMount {
    /// The volume name.
    pub volume: String,
    /// The driver.
    pub driver: String,
    /// The ID sent with Mount and Unmount.
    pub mount_id: String,
    /// What Mount answered.
    pub mountpoint: PathBuf,
}

/// A "container" that mounted volumes: started by [`Engine::container_start`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// A 64-hex container ID.
    pub id: String,
    /// Its volume mounts, in the order asked.
    pub mounts: Vec<ContainerMount>,
}

impl Container {
    /// The mountpoint of `volume` in this container.
    pub fn mountpoint(&self, volume: &str) -> Option<&Path> {
        self.mounts
            .iter()
            .find(|m| m.volume == volume)
            .map(|m| m.mountpoint.as_path())
    }
}

/// A volume a container asks for: `-v NAME:/path`, with `--volume-driver` if given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeUse {
    /// The volume name.
    pub name: String,
    /// The driver to create it with if it does not exist.
    pub driver: Option<String>,
}

impl VolumeUse {
    /// `-v NAME:…` of an existing volume.
    pub fn existing(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            driver: None,
        }
    }

    /// `--volume-driver DRIVER -v NAME:…`: created through `driver` if missing.
    pub fn with_driver(name: impl Into<String>, driver: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            driver: Some(driver.into()),
        }
    }
}

/// A random 64-hex ID, as dockerd's `stringid.GenerateRandomID`.
fn random_id() -> String {
    let state = std::collections::hash_map::RandomState::new();
    (0..4u64)
        .map(|i| {
            let mut hasher = state.build_hasher();
            hasher.write_u64(i);
            hasher.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            format!("{:016x}", hasher.finish())
        })
        .collect()
}

impl Engine {
    fn state(&self) -> std::sync::MutexGuard<'_, VolumeState> {
        self.inner.volumes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The volume driver `name`: activated, and on first lookup its scope asked.
    async fn volume_driver(&self, name: &str) -> Result<Arc<ActivePlugin>, HarnessError> {
        let plugin = self.plugin(name, IMPLEMENTS).await?;
        let first = self.state().adapters.insert(name.to_owned());
        if first {
            self.scope(&plugin).await;
        }
        Ok(plugin)
    }

    /// The driver's scope: cached after a successful Capabilities; `local` (asked again
    /// next time) when it fails.
    async fn scope(&self, plugin: &ActivePlugin) -> Scope {
        let name = plugin.rpc.name();
        if let Some(scope) = self.state().scopes.get(name) {
            return *scope;
        }
        match plugin
            .rpc
            .call::<_, CapabilitiesResponse>("VolumeDriver.Capabilities", Some(&Empty {}))
            .await
        {
            Ok(caps) => {
                self.state()
                    .scopes
                    .insert(name.to_owned(), caps.capabilities.scope);
                caps.capabilities.scope
            }
            Err(err) => {
                tracing::debug!(driver = name, %err, "no capabilities, using scope local");
                Scope::Local
            }
        }
    }

    async fn get_from(
        &self,
        plugin: &ActivePlugin,
        name: &str,
    ) -> Result<VolumeInfo, HarnessError> {
        let reply: GetResponse = plugin
            .rpc
            .call(
                "VolumeDriver.Get",
                Some(&GetRequest {
                    name: name.to_owned(),
                }),
            )
            .await?;
        let volume = reply.volume;
        if volume.name.is_empty() {
            // dockerd: a Get without a volume and without Err is "no such volume".
            return Err(HarnessError::NoSuchVolume {
                name: name.to_owned(),
            });
        }
        Ok(VolumeInfo {
            name: name.to_owned(),
            driver: plugin.rpc.name().to_owned(),
            mountpoint: (!volume.mountpoint.as_os_str().is_empty()).then_some(volume.mountpoint),
            created_at: volume.created_at,
            status: volume.status.into_iter().collect(),
            scope: self.scope(plugin).await,
        })
    }

    /// `docker volume create -d DRIVER -o k=v NAME`.
    pub async fn volume_create<K, V>(
        &self,
        driver: &str,
        name: &str,
        opts: impl IntoIterator<Item = (K, V)>,
    ) -> Result<VolumeInfo, HarnessError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let existing = self.state().known.get(name).cloned();
        if let Some(existing) = existing
            && existing != driver
        {
            return Err(HarnessError::VolumeConflict {
                name: name.to_owned(),
                existing,
                requested: driver.to_owned(),
            });
        }
        let plugin = self.volume_driver(driver).await?;
        if let Ok(info) = self.get_from(&plugin, name).await {
            self.state()
                .known
                .insert(name.to_owned(), driver.to_owned());
            return Ok(info);
        }
        let request = CreateRequest {
            name: name.to_owned(),
            opts: opts
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        };
        plugin
            .rpc
            .call::<_, Empty>("VolumeDriver.Create", Some(&request))
            .await?;
        self.state()
            .known
            .insert(name.to_owned(), driver.to_owned());
        Ok(VolumeInfo {
            name: name.to_owned(),
            driver: driver.to_owned(),
            mountpoint: None,
            created_at: None,
            status: BTreeMap::new(),
            scope: self.scope(&plugin).await,
        })
    }

    /// The driver of `name`: the one the engine knows, else the first driver whose Get
    /// knows it.
    async fn owner(&self, name: &str) -> Result<Arc<ActivePlugin>, HarnessError> {
        let known = self.state().known.get(name).cloned();
        if let Some(driver) = known {
            return self.volume_driver(&driver).await;
        }
        for plugin in self.plugins_implementing(IMPLEMENTS).await {
            if self.get_from(&plugin, name).await.is_ok() {
                let driver = plugin.rpc.name().to_owned();
                self.state().known.insert(name.to_owned(), driver);
                return Ok(plugin);
            }
        }
        Err(HarnessError::NoSuchVolume {
            name: name.to_owned(),
        })
    }

    /// `docker volume inspect NAME`.
    pub async fn volume_inspect(&self, name: &str) -> Result<VolumeInfo, HarnessError> {
        let plugin = self.owner(name).await?;
        self.get_from(&plugin, name).await
    }

    /// `docker volume ls`: every volume of every discovered volume driver, sorted by
    /// driver then name.
    pub async fn volume_ls(&self) -> Result<Vec<VolumeInfo>, HarnessError> {
        let mut out = Vec::new();
        for plugin in self.plugins_implementing(IMPLEMENTS).await {
            let driver = plugin.rpc.name().to_owned();
            {
                let first = self.state().adapters.insert(driver.clone());
                if first {
                    self.scope(&plugin).await;
                }
            }
            let list: ListResponse =
                match plugin.rpc.call("VolumeDriver.List", Some(&Empty {})).await {
                    Ok(list) => list,
                    Err(err) => {
                        tracing::warn!(%driver, %err, "listing volumes failed");
                        continue;
                    }
                };
            let scope = self.scope(&plugin).await;
            for volume in list.volumes {
                self.state()
                    .known
                    .insert(volume.name.clone(), driver.clone());
                out.push(VolumeInfo {
                    mountpoint: (!volume.mountpoint.as_os_str().is_empty())
                        .then_some(volume.mountpoint),
                    name: volume.name,
                    driver: driver.clone(),
                    created_at: volume.created_at,
                    status: volume.status.into_iter().collect(),
                    scope,
                });
            }
        }
        out.sort_by(|a, b| (&a.driver, &a.name).cmp(&(&b.driver, &b.name)));
        Ok(out)
    }

    /// `docker volume rm NAME`: refused while a container uses it.
    pub async fn volume_rm(&self, name: &str) -> Result<(), HarnessError> {
        let plugin = self.owner(name).await?;
        if let Some(users) = self.state().users.get(name).filter(|u| !u.is_empty()) {
            return Err(HarnessError::VolumeInUse {
                name: name.to_owned(),
                containers: users.clone(),
            });
        }
        plugin
            .rpc
            .call::<_, Empty>(
                "VolumeDriver.Remove",
                Some(&RemoveRequest {
                    name: name.to_owned(),
                }),
            )
            .await?;
        self.state().known.remove(name);
        Ok(())
    }

    /// The volumes in use and by which containers.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.state().users.get(name).cloned().unwrap_or_default()
    }

    /// Starts a container using `volumes`: creates missing ones that name a driver, then
    /// mounts each with a fresh ID. If a mount fails, the ones done are unmounted.
    pub async fn container_start(&self, volumes: &[VolumeUse]) -> Result<Container, HarnessError> {
        let container = Container {
            id: random_id(),
            mounts: Vec::new(),
        };
        let mut container = container;
        for volume in volumes {
            match self.mount_one(&container.id, volume).await {
                Ok(mount) => container.mounts.push(mount),
                Err(err) => {
                    let _ = self.container_stop(container).await;
                    return Err(err);
                }
            }
        }
        Ok(container)
    }

    async fn mount_one(
        &self,
        container: &str,
        volume: &VolumeUse,
    ) -> Result<ContainerMount, HarnessError> {
        let known = self.state().known.get(&volume.name).cloned();
        let plugin = match (known, &volume.driver) {
            (Some(driver), _) => self.volume_driver(&driver).await?,
            (None, Some(driver)) => {
                self.volume_create(driver, &volume.name, std::iter::empty::<(String, String)>())
                    .await?;
                self.volume_driver(driver).await?
            }
            (None, None) => self.owner(&volume.name).await?,
        };
        let mount_id = random_id();
        let request = MountRequest {
            name: volume.name.clone(),
            id: mount_id.clone(),
        };
        let reply: MountResponse = plugin
            .rpc
            .call("VolumeDriver.Mount", Some(&request))
            .await?;
        if !reply.mountpoint.is_absolute() {
            return Err(HarnessError::BadMountpoint {
                plugin: plugin.rpc.name().to_owned(),
                volume: volume.name.clone(),
                mountpoint: reply.mountpoint.display().to_string(),
            });
        }
        self.state()
            .users
            .entry(volume.name.clone())
            .or_default()
            .push(container.to_owned());
        Ok(ContainerMount {
            volume: volume.name.clone(),
            driver: plugin.rpc.name().to_owned(),
            mount_id,
            mountpoint: reply.mountpoint,
        })
    }

    /// Stops a container: unmounts its volumes with their mount IDs, in reverse order.
    /// Every unmount is tried; the first error is returned.
    pub async fn container_stop(&self, container: Container) -> Result<(), HarnessError> {
        let mut first_error = None;
        for mount in container.mounts.iter().rev() {
            {
                let mut state = self.state();
                if let Some(users) = state.users.get_mut(&mount.volume)
                    && let Some(i) = users.iter().position(|c| *c == container.id)
                {
                    users.remove(i);
                }
            }
            let result = match self.volume_driver(&mount.driver).await {
                Ok(plugin) => plugin
                    .rpc
                    .call::<_, Empty>(
                        "VolumeDriver.Unmount",
                        Some(&UnmountRequest {
                            name: mount.volume.clone(),
                            id: mount.mount_id.clone(),
                        }),
                    )
                    .await
                    .map(drop),
                Err(err) => Err(err),
            };
            if let Err(err) = result {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// `docker run --rm -v …`: starts a container with `volumes`, runs `body` with it
    /// (write into its mountpoints to play the container), then stops it.
    pub async fn run_with_volumes<R>(
        &self,
        volumes: &[VolumeUse],
        body: impl FnOnce(&Container) -> R,
    ) -> Result<R, HarnessError> {
        let container = self.container_start(volumes).await?;
        let result = body(&container);
        self.container_stop(container).await?;
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::random_id;

    #[test]
    fn ids_are_64_hex_and_distinct() {
        let (a, b) = (random_id(), random_id());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
