//! The volume service, as dockerd's (moby v20.10.24 `volume/service`,
//! `volume/drivers/adapter.go`, `volume/drivers/extpoint.go`): what each volume action
//! sends to the plugin, in order; the containers ([`containers`](super::containers))
//! mount and unmount through it, as `daemon/volumes.go` does.
//!
//! The sequences below were recorded from dockerd 20.10 (`tests/fixtures/dockerd-sequences`,
//! replayed by `tests/harness_fixtures.rs`):
//!
//! - The first lookup of a driver activates it and asks `VolumeDriver.Capabilities`
//!   (dockerd's `validateDriver`); a successful answer is cached for good, a failure
//!   (404 "not implemented") means scope `local` and is asked again after each Create.
//! - `volume create`: `Get`, then `Create` only when the driver does not have the
//!   volume; options go through unchanged. A name another driver has: `Get` on that
//!   driver, then "driver 'X' already has volume 'NAME': volume name must be unique".
//! - `volume ls`: `List` on every discovered volume driver (activating idle ones).
//! - `volume inspect`: `Get`; an unknown name asks every driver.
//! - `volume rm`: `Get`, refused while a container references the volume, `Get`, `Remove`.
//! - `create` (container): `Get` per volume (or the volume create sequence when it names a
//!   driver and does not exist); `start`: `Get`, `Mount` with the mount point's 64-hex ID;
//!   `stop`: `Get`, `Unmount` with the same ID; `rm`: nothing; `cp` on a running
//!   container: `Get`, `Mount`, `Get`, `Unmount`, with the same ID again.
//!
//! A **managed** driver is never activated and its Capabilities is never cached:
//! dockerd asks it on every lookup and again when it wraps a volume, so `volume
//! create` is Capabilities, `Get`, `Create`; `inspect` Capabilities, `Get`,
//! Capabilities; `ls` `List`, Capabilities; a container's create Capabilities, `Get`;
//! start Capabilities, `Get`, Capabilities, `Mount`; stop the same with `Unmount`; `rm`
//! (Capabilities, `Get`, Capabilities) twice, then Capabilities, `Remove`,
//! Capabilities. A lookup that fails is worded as dockerd words it (`create NAME: error
//! looking up volume plugin D: …`, `get NAME: error while checking if volume "NAME"
//! exists in driver "D": …`).

mod drivers;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::error::HarnessError;
use super::plugins::{ActivePlugin, Plugins};
use crate::protocol::{Empty, Timestamp};
use crate::volume::{
    self, CreateRequest, GetRequest, GetResponse, ListResponse, MountRequest, MountResponse,
    RemoveRequest, Scope, UnmountRequest, Volume,
};
use drivers::Drivers;

/// `docker volume …` and the volume side of containers: dockerd's volume service.
/// Cheap to clone.
///
/// ```no_run
/// use docker_plugin_sdk::harness::{Discovery, Engine};
/// # async fn run() -> Result<(), docker_plugin_sdk::harness::HarnessError> {
/// let engine = Engine::new(Discovery::rooted("/tmp/test-root"));
/// let volumes = engine.volumes();
/// volumes.create("myplugin", "v1", [("size", "1G")]).await?;
/// assert_eq!(volumes.ls().await?.len(), 1);
/// volumes.rm("v1").await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Volumes {
    plugins: Plugins,
    drivers: Arc<Drivers>,
    state: Arc<Mutex<VolumeState>>,
}

/// What the engine remembers about volumes between actions.
#[derive(Debug, Default)]
struct VolumeState {
    /// Volume name → driver name (dockerd's volume database).
    known: HashMap<String, String>,
    /// Volume name → containers using it.
    users: HashMap<String, Vec<String>>,
}

/// What `docker volume ls` gets from dockerd: the volumes and the warnings about
/// drivers that could not be listed. Derefs to the volumes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VolumeList {
    /// Every volume listed, sorted by driver then name.
    pub volumes: Vec<VolumeInfo>,
    /// One `list DRIVER: …` per driver whose List failed (the API reply's
    /// `Warnings`).
    pub warnings: Vec<String>,
}

impl std::ops::Deref for VolumeList {
    type Target = [VolumeInfo];

    fn deref(&self) -> &[VolumeInfo] {
        &self.volumes
    }
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
    /// `CreatedAt`, if the driver gave one (without, `docker volume inspect` shows Go's
    /// zero time, `0001-01-01T00:00:00Z`). A text dockerd cannot parse fails the Get
    /// or List instead.
    pub created_at: Option<Timestamp>,
    /// The driver's `Status`.
    pub status: BTreeMap<String, Value>,
    /// The driver's scope.
    pub scope: Scope,
}

impl VolumeInfo {
    /// What `plugin` answered about volume `name`, as the engine shows it: the
    /// mountpoint mapped to the host, `Status` as a sorted map.
    fn from_driver(plugin: &ActivePlugin, name: String, volume: Volume, scope: Scope) -> Self {
        Self {
            name,
            driver: plugin.rpc.name().to_owned(),
            mountpoint: (!volume.mountpoint.as_os_str().is_empty())
                .then(|| plugin.host_path(&volume.mountpoint)),
            created_at: volume.created_at,
            status: volume.status.into_iter().collect(),
            scope,
        }
    }
}

impl Volumes {
    pub(crate) fn new(plugins: Plugins) -> Self {
        Self {
            drivers: Arc::new(Drivers::new(plugins.clone())),
            plugins,
            state: Arc::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, VolumeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The name volumes record for driver `name`: a managed plugin's normalized name
    /// (`localvol` → `localvol:latest`, as `docker volume ls` shows it), else `name`.
    fn driver_name(&self, name: &str) -> String {
        self.plugins.display_name(name)
    }

    async fn get_from(
        &self,
        plugin: &ActivePlugin,
        name: &str,
    ) -> Result<VolumeInfo, HarnessError> {
        let reply: GetResponse = plugin
            .rpc
            .call::<volume::Get>(&GetRequest {
                name: name.to_owned(),
            })
            .await?;
        let volume = reply.volume;
        if volume.name.is_empty() {
            // dockerd: a Get without a volume and without Err is "no such volume".
            return Err(HarnessError::NoSuchVolume {
                name: name.to_owned(),
            });
        }
        let scope = self.drivers.cached_scope(plugin).unwrap_or(Scope::Local);
        Ok(VolumeInfo::from_driver(
            plugin,
            name.to_owned(),
            volume,
            scope,
        ))
    }

    /// Records that `driver` has volume `name`. A volume new to the engine takes a
    /// reference on its driver, as dockerd's volume store does (`CreateDriver`); a
    /// name the engine knew (the driver had lost it and made it again) keeps its one.
    fn remember_volume(&self, name: &str, driver: &str) {
        let new = self
            .state()
            .known
            .insert(name.to_owned(), driver.to_owned())
            .is_none();
        if new {
            self.plugins.reference(driver, true);
        }
    }

    /// `docker volume create -d DRIVER -o k=v NAME`.
    pub async fn create<K, V>(
        &self,
        driver: &str,
        name: &str,
        opts: impl IntoIterator<Item = (K, V)>,
    ) -> Result<VolumeInfo, HarnessError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let given = driver;
        let driver = &self.driver_name(driver);
        // The driver that has the name, else the one asked for: asked with Get first.
        let existing = self.state().known.get(name).cloned();
        let plugin = match &existing {
            Some(owner) => self.drivers.lookup_for(owner, name, false).await?,
            // dockerd looks the driver up by the name as given.
            None => self.drivers.lookup_for(given, name, true).await?,
        };
        let found = self.get_from(&plugin, name).await;
        if let Some(existing) = existing
            && existing != *driver
        {
            return Err(HarnessError::VolumeConflict {
                name: name.to_owned(),
                existing,
            });
        }
        // The volume records its driver's name: the adapter's (a managed plugin's
        // normalized name, or the legacy plugin kept under the name given).
        let driver = &plugin.rpc.name().to_owned();
        if let Ok(info) = found {
            self.remember_volume(name, driver);
            return Ok(info);
        }
        // Unknown to the driver (or lost by it): create it.
        let request = CreateRequest {
            name: name.to_owned(),
            opts: opts
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        };
        plugin
            .rpc
            .call::<volume::Create>(&request)
            .await
            .map_err(|source| HarnessError::VolumeOp {
                op: "create",
                name: name.to_owned(),
                source: Box::new(source),
            })?;
        self.remember_volume(name, driver);
        // dockerd reads the new volume's scope, asking again when it is not cached; a
        // managed driver's adapter of this lookup already has it.
        let scope = if plugin.is_managed() {
            self.drivers.cached_scope(&plugin).unwrap_or(Scope::Local)
        } else {
            self.drivers.scope(&plugin).await
        };
        Ok(VolumeInfo {
            name: name.to_owned(),
            driver: driver.to_owned(),
            mountpoint: None,
            created_at: None,
            status: BTreeMap::new(),
            scope,
        })
    }

    /// The driver of `name`: the one the engine knows (no call), else the first driver
    /// whose Get knows it (every discovered driver is activated and asked, as dockerd
    /// does); then also what that Get answered.
    async fn owner(
        &self,
        name: &str,
    ) -> Result<(Arc<ActivePlugin>, Option<VolumeInfo>), HarnessError> {
        let known = self.state().known.get(name).cloned();
        if let Some(driver) = known {
            return Ok((self.drivers.lookup_for(&driver, name, false).await?, None));
        }
        for plugin in self.drivers.all().await {
            if let Ok(info) = self.get_from(&plugin, name).await {
                let driver = plugin.rpc.name().to_owned();
                self.state().known.insert(name.to_owned(), driver);
                return Ok((plugin, Some(info)));
            }
        }
        Err(HarnessError::NoSuchVolume {
            name: name.to_owned(),
        })
    }

    /// `docker volume inspect NAME`.
    pub async fn inspect(&self, name: &str) -> Result<VolumeInfo, HarnessError> {
        let (plugin, info) = match self.owner(name).await? {
            (plugin, Some(info)) => (plugin, info),
            (plugin, None) => {
                let info = self.get_from(&plugin, name).await?;
                (plugin, info)
            }
        };
        self.drivers.managed_scope(&plugin).await;
        Ok(info)
    }

    /// `docker volume ls`: every volume of every volume driver (enabled managed
    /// plugins, legacy plugins used or discovered), sorted by driver then name. A
    /// driver whose List fails gets a warning in dockerd's words (`list DRIVER: …`,
    /// which dockerd returns in the API reply's `Warnings`), and the volumes the
    /// engine knows on it are listed as they were.
    pub async fn ls(&self) -> Result<VolumeList, HarnessError> {
        let mut list = VolumeList::default();
        let mut bad = Vec::new();
        for plugin in self.drivers.all().await {
            if !self.list_from(&plugin, &mut list).await {
                bad.push(plugin.rpc.name().to_owned());
            }
        }
        // The volumes the engine knows on a driver that could not be listed are
        // listed all the same (moby `store.go` `list`, its `badDrivers`).
        let known: Vec<(String, String)> = self
            .state()
            .known
            .iter()
            .filter(|(_, driver)| bad.contains(driver))
            .map(|(name, driver)| (name.clone(), driver.clone()))
            .collect();
        for (name, driver) in known {
            list.volumes.push(VolumeInfo {
                name,
                driver,
                mountpoint: None,
                created_at: None,
                status: BTreeMap::new(),
                scope: Scope::Local,
            });
        }
        list.volumes
            .sort_by(|a, b| (&a.driver, &a.name).cmp(&(&b.driver, &b.name)));
        Ok(list)
    }

    /// One driver's part of `volume ls`, added to `out` (moby v20.10.24
    /// `volume/service/store.go` `list`): each volume wrapped with the driver's scope.
    /// False when the driver could not be listed (a warning says why).
    async fn list_from(&self, plugin: &ActivePlugin, out: &mut VolumeList) -> bool {
        let driver = plugin.rpc.name().to_owned();
        let list: ListResponse = match plugin.rpc.call::<volume::List>(&Empty {}).await {
            Ok(list) => list,
            Err(err) => {
                out.warnings.push(format!("list {driver}: {err}"));
                return false;
            }
        };
        // The adapter of this listing keeps the scope once Capabilities answered.
        let mut adapter_scope = None;
        for volume in list.volumes {
            let scope = match adapter_scope {
                Some(scope) => scope,
                None => {
                    adapter_scope = self.drivers.try_scope(plugin).await;
                    adapter_scope.unwrap_or(Scope::Local)
                }
            };
            self.state()
                .known
                .insert(volume.name.clone(), driver.clone());
            out.volumes.push(VolumeInfo::from_driver(
                plugin,
                volume.name.clone(),
                volume,
                scope,
            ));
        }
        true
    }

    /// `docker volume rm NAME`: refused while a container references it.
    pub async fn rm(&self, name: &str) -> Result<(), HarnessError> {
        let (plugin, found) = self.owner(name).await?;
        if found.is_none() {
            self.get_from(&plugin, name).await?;
        }
        self.drivers.managed_scope(&plugin).await;
        if let Some(users) = self.state().users.get(name).filter(|u| !u.is_empty()) {
            return Err(HarnessError::VolumeInUse {
                name: name.to_owned(),
                containers: users.clone(),
            });
        }
        self.drivers.managed_scope(&plugin).await;
        self.get_from(&plugin, name).await?;
        self.drivers.managed_scope(&plugin).await;
        self.drivers.managed_scope(&plugin).await;
        plugin
            .rpc
            .call::<volume::Remove>(&RemoveRequest {
                name: name.to_owned(),
            })
            .await?;
        self.drivers.managed_scope(&plugin).await;
        if let Some(driver) = self.state().known.remove(name) {
            self.plugins.reference(&driver, false);
        }
        Ok(())
    }

    /// The containers referencing volume `name`.
    pub fn users(&self, name: &str) -> Vec<String> {
        self.state().users.get(name).cloned().unwrap_or_default()
    }

    /// The driver of volume `use_.name` for a container being created, as dockerd's
    /// `daemon/volumes.go` finds it: a known volume is checked with `Get`, an unknown
    /// one is created through the driver the container names, or found by asking
    /// every driver.
    pub(crate) async fn driver_for(&self, use_: &VolumeUse) -> Result<String, HarnessError> {
        let known = self.state().known.get(&use_.name).cloned();
        let driver = match (known, &use_.driver) {
            (Some(driver), _) => {
                let plugin = self.drivers.lookup_for(&driver, &use_.name, false).await?;
                self.get_from(&plugin, &use_.name).await?;
                driver
            }
            (None, Some(driver)) => {
                self.create(driver, &use_.name, std::iter::empty::<(String, String)>())
                    .await?
                    .driver
            }
            (None, None) => self.owner(&use_.name).await?.0.rpc.name().to_owned(),
        };
        Ok(driver)
    }

    /// `container` holds a reference on each volume of `names`: `volume rm` is refused
    /// until it drops them.
    pub(crate) fn hold<'a>(&self, names: impl IntoIterator<Item = &'a str>, container: &str) {
        let mut state = self.state();
        for name in names {
            state
                .users
                .entry(name.to_owned())
                .or_default()
                .push(container.to_owned());
        }
    }

    /// Drops the reference `container` holds on volume `name`.
    pub(crate) fn release(&self, name: &str, container: &str) {
        if let Some(users) = self.state().users.get_mut(name)
            && let Some(i) = users.iter().position(|c| c == container)
        {
            users.remove(i);
        }
    }

    /// What dockerd does before it mounts or unmounts volume `name`: the driver looked
    /// up, `Get`, and a managed driver's scope asked again.
    async fn before_mount(
        &self,
        driver: &str,
        name: &str,
    ) -> Result<Arc<ActivePlugin>, HarnessError> {
        let plugin = self.drivers.lookup_for(driver, name, false).await?;
        self.get_from(&plugin, name).await?;
        self.drivers.managed_scope(&plugin).await;
        Ok(plugin)
    }

    /// Mounts volume `name` of `driver` for a container's mount point `id`: `Get`,
    /// then `Mount`. Returns the mountpoint on the host.
    pub(crate) async fn mount(
        &self,
        driver: &str,
        name: &str,
        id: &str,
    ) -> Result<PathBuf, HarnessError> {
        let plugin = self.before_mount(driver, name).await?;
        let request = MountRequest {
            name: name.to_owned(),
            id: id.to_owned(),
        };
        let reply: MountResponse = plugin.rpc.call::<volume::Mount>(&request).await?;
        if !reply.mountpoint.is_absolute() {
            return Err(HarnessError::BadMountpoint {
                plugin: plugin.rpc.name().to_owned(),
                volume: name.to_owned(),
                mountpoint: reply.mountpoint.display().to_string(),
            });
        }
        Ok(plugin.host_path(&reply.mountpoint))
    }

    /// Unmounts a container's mount point `id` of volume `name`: `Get`, then `Unmount`.
    pub(crate) async fn unmount(
        &self,
        driver: &str,
        name: &str,
        id: &str,
    ) -> Result<(), HarnessError> {
        let plugin = self.before_mount(driver, name).await?;
        let request = UnmountRequest {
            name: name.to_owned(),
            id: id.to_owned(),
        };
        plugin.rpc.call::<volume::Unmount>(&request).await.map(drop)
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
