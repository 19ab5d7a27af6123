//! [`SshfsDriver`]: the volume driver. A volume is a remote directory (`sshcmd`)
//! mounted by a supervised sshfs at `ROOT/NAME`, under the plugin's propagated mount
//! so that dockerd and containers see it.
//!
//! - **Mount** counts per mount ID in the SDK's [`MountTable`] (moby v20.10.24
//!   `volume/mounts/mounts.go`: one Mount per container start and per `docker cp`,
//!   the same ID in the matching Unmount). The first Mount starts sshfs; later ones
//!   check it still answers and start it again when it died (its child exited, or its
//!   mount point gives `ENOTCONN`).
//! - **Unmount** of the last ID runs `fusermount -u`; another container's Unmount
//!   never takes the volume from one still using it. A failed unmount keeps the
//!   count, so dockerd's retry of that Unmount finds it.
//! - **State**: the volumes and their options ([`Store`]) and the mount counts are
//!   saved on every change. At start ([`SshfsDriver::start`]) the plugin reconciles
//!   with `/proc/self/mountinfo`: a dead sshfs mount left by its previous instance is
//!   detached, and volumes that containers still hold are mounted again, so their
//!   Unmounts (and new Mounts) work after a crash. That remount runs in the
//!   background: the plugin answers dockerd at once, and only the calls for those
//!   volumes wait for it.
//! - **Secrets**: neither the password nor a password file's content ever reaches a
//!   log line, an error, `Status` or `Debug` (see [`crate::options`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use docker_plugin_sdk::state::{MountTable, Store};
use docker_plugin_sdk::volume::{
    self, CapabilitiesResponse, CreateRequest, GetRequest, GetResponse, ListResponse, MountRequest,
    MountResponse, PathRequest, PathResponse, RemoveRequest, Scope, UnmountRequest, Volume,
};
use docker_plugin_sdk::{Error, Result, async_trait};
use serde::{Deserialize, Serialize};

use crate::mountinfo::{self, Health};
use crate::options::VolumeOptions;
use crate::process::Running;
use crate::sshfs::{self, Tools};

/// The file holding the volumes, in the state directory.
pub const VOLUMES_FILE: &str = "sshfs-volumes.json";
/// The file holding the mount counts, in the state directory.
pub const MOUNTS_FILE: &str = "sshfs-mounts.json";

/// How long a mount point may take to answer before it is taken for slow (not dead).
const HEALTH_LIMIT: Duration = Duration::from_secs(5);
/// How long sshfs may take to exit after `fusermount -u`.
const EXIT_LIMIT: Duration = Duration::from_secs(10);

/// Every volume, by name.
pub type Volumes = BTreeMap<String, Record>;

/// A volume as saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// What it was created with.
    pub options: VolumeOptions,
    /// When.
    pub created_at: SystemTime,
}

/// The sshfs volume driver; clones share everything.
#[derive(Clone)]
pub struct SshfsDriver {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    tools: Tools,
    volumes: Store<Volumes>,
    mounts: MountTable,
    /// The sshfs of each mounted volume.
    running: Mutex<HashMap<String, Running>>,
}

impl std::fmt::Debug for SshfsDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshfsDriver")
            .field("root", &self.inner.root)
            .field("volumes", &self.inner.volumes.get())
            .field("mounts", &self.inner.mounts)
            .finish_non_exhaustive()
    }
}

impl SshfsDriver {
    /// Opens the state in `state_dir`, mounts volumes under `root`, and reconciles
    /// both with what is mounted (see the [module docs](self)).
    pub async fn start(root: impl Into<PathBuf>, state_dir: &Path, tools: Tools) -> Result<Self> {
        let root = root.into();
        tokio::fs::create_dir_all(&root).await?;
        let volumes: Store<Volumes> = Store::open(state_dir.join(VOLUMES_FILE)).await?;
        let mounts = MountTable::open(state_dir.join(MOUNTS_FILE)).await?;
        let driver = Self {
            inner: Arc::new(Inner {
                root,
                tools,
                volumes,
                mounts,
                running: Mutex::new(HashMap::new()),
            }),
        };
        driver.reconcile().await?;
        Ok(driver)
    }

    /// At start: detach every sshfs mount under the root (their sshfs died with the
    /// previous instance), forget the counts of volumes removed meanwhile, and mount
    /// again the volumes containers still hold.
    async fn reconcile(&self) -> Result<()> {
        let inner = &self.inner;
        for stale in mountinfo::read().await? {
            if stale.fs_type == mountinfo::SSHFS_TYPE && stale.mount_point.starts_with(&inner.root)
            {
                tracing::info!(point = %stale.mount_point.display(), "detaching the sshfs mount of a previous instance");
                if let Err(err) = sshfs::unmount(&inner.tools, &stale.mount_point, true).await {
                    tracing::warn!("{err}");
                }
            }
        }
        let known = inner.volumes.get();
        for gone in inner
            .mounts
            .reconcile(async |v| known.contains_key(&v.volume))
            .await?
        {
            tracing::info!(volume = %gone.volume, "volume removed while stopped: its mounts are forgotten");
        }
        // In the background, so that the plugin answers at once (dockerd gives it
        // 12.5 s) however slow the servers are; each volume stays locked meanwhile,
        // so its Mounts and Unmounts wait for the outcome.
        for held in inner.mounts.volumes() {
            let driver = self.clone();
            let (locked, is_locked) = tokio::sync::oneshot::channel();
            tokio::spawn(async move {
                let _lock = driver.inner.mounts.lock(&held.volume).await;
                let _ = locked.send(());
                driver.remount(&held.volume).await;
            });
            // Serving starts only once the volume is locked.
            let _ = is_locked.await;
        }
        Ok(())
    }

    /// Mounts again, at start, a volume containers held when the previous instance
    /// stopped.
    async fn remount(&self, name: &str) {
        match self.revive(name).await {
            Ok(point) => tracing::info!(
                volume = %name,
                users = self.inner.mounts.users(name),
                "mounted again at {} for the containers that hold it",
                point.display()
            ),
            Err(err) => tracing::warn!(
                volume = %name,
                "cannot mount again for the containers that hold it (retried at the next Mount): {}",
                err.message()
            ),
        }
    }

    /// Detaches every mount (lazily) and stops every sshfs; the counts stay saved so
    /// that the next instance mounts again what containers hold.
    pub async fn shutdown(&self) {
        let running: Vec<(String, Running)> = self
            .inner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .collect();
        for (name, sshfs) in running {
            if let Ok(point) = self.point(&name) {
                let _ = sshfs::unmount(&self.inner.tools, &point, true).await;
            }
            sshfs.kill();
            sshfs.exited().await;
            tracing::info!(volume = %name, "unmounted at shutdown");
        }
    }

    fn point(&self, name: &str) -> Result<PathBuf> {
        volume::volume_dir(&self.inner.root, name)
    }

    fn record(&self, name: &str) -> Result<Record> {
        self.inner
            .volumes
            .read(|v| v.get(name).cloned())
            .ok_or_else(|| Error::new(format!("no such volume: {name}")))
    }

    /// Whether volume `name` has a live sshfs mounted at `point`.
    async fn is_live(&self, name: &str, point: &Path) -> bool {
        let running = {
            let map = self
                .inner
                .running
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            map.get(name).map(|r| r.exit_status().is_none())
        };
        if running != Some(true) {
            return false;
        }
        let mounts = mountinfo::read().await.unwrap_or_default();
        if !mountinfo::is_sshfs_at(&mounts, point) {
            return false;
        }
        match mountinfo::health(point, HEALTH_LIMIT).await {
            Health::Answers => true,
            Health::Dead => false,
            Health::Slow => {
                tracing::warn!(volume = %name, "the mount does not answer yet; sshfs is left to time out itself");
                true
            }
        }
    }

    /// Stops what is left of volume `name`'s sshfs (a dead mount is detached), then
    /// mounts it anew; the caller holds the volume's lock.
    async fn revive(&self, name: &str) -> Result<PathBuf> {
        let record = self.record(name)?;
        let point = self.point(name)?;
        self.discard(name, &point).await;
        let running = sshfs::mount(&self.inner.tools, &record.options, &point, name).await?;
        tracing::info!(volume = %name, sshcmd = %record.options.sshcmd, auth = %record.options.auth.describe(), "mounted");
        self.inner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), running);
        Ok(point)
    }

    /// Volume `name`'s sshfs, taken out of the table.
    fn take_running(&self, name: &str) -> Option<Running> {
        self.inner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name)
    }

    /// Kills volume `name`'s sshfs if it has one, and detaches a mount left at `point`.
    async fn discard(&self, name: &str, point: &Path) {
        let old = self.take_running(name);
        if let Some(old) = old {
            // Only a dead sshfs is discarded (see `is_live`): exited, or still
            // exiting while its mount already answers ENOTCONN.
            old.kill();
            let status = old.exited().await;
            tracing::warn!(volume = %name, "sshfs had exited ({status}): {}; mounting again", old.stderr());
        }
        let mounts = mountinfo::read().await.unwrap_or_default();
        if mountinfo::is_sshfs_at(&mounts, point)
            && let Err(err) = sshfs::unmount(&self.inner.tools, point, true).await
        {
            tracing::warn!(volume = %name, "{err}");
        }
    }

    /// Unmounts volume `name` at the last Unmount; the caller holds its lock. On
    /// failure nothing changes (dockerd sends the Unmount again).
    async fn stop(&self, name: &str, point: &Path) -> Result<()> {
        let mounts = mountinfo::read().await.unwrap_or_default();
        if mountinfo::is_sshfs_at(&mounts, point) {
            let live = self.is_live(name, point).await;
            sshfs::unmount(&self.inner.tools, point, !live).await?;
        }
        let old = self.take_running(name);
        if let Some(old) = old {
            // After fusermount -u sshfs ends by itself; one that hangs is killed.
            if tokio::time::timeout(EXIT_LIMIT, old.exited())
                .await
                .is_err()
            {
                old.kill();
                old.exited().await;
            }
        }
        // The empty mount point goes too (a failure leaves only an empty directory).
        let _ = tokio::fs::remove_dir(point).await;
        tracing::info!(volume = %name, "unmounted");
        Ok(())
    }
}

#[async_trait]
impl volume::Driver for SshfsDriver {
    async fn create(&self, req: CreateRequest) -> Result<()> {
        self.point(&req.name)?;
        let options = VolumeOptions::parse(&req.opts)?;
        sshfs::check_password_file(&options, &self.inner.tools.keys).await?;
        if self.record(&req.name).is_ok() {
            // dockerd creates only after a failed Get; never clobber a volume.
            return Ok(());
        }
        tracing::info!(volume = %req.name, sshcmd = %options.sshcmd, port = options.port, auth = %options.auth.describe(), "created");
        let record = Record {
            options,
            created_at: SystemTime::now(),
        };
        self.inner
            .volumes
            .update(|v| v.insert(req.name.clone(), record))
            .await?;
        Ok(())
    }

    async fn remove(&self, req: RemoveRequest) -> Result<()> {
        self.record(&req.name)?;
        let volume = self.inner.mounts.lock(&req.name).await;
        if volume.is_mounted() {
            return Err(Error::new(format!(
                "volume {} is in use ({} mounts): stop the containers using it first",
                req.name,
                volume.users()
            )));
        }
        self.inner.volumes.update(|v| v.remove(&req.name)).await?;
        let _ = tokio::fs::remove_dir(self.point(&req.name)?).await;
        tracing::info!(volume = %req.name, "removed");
        Ok(())
    }

    async fn mount(&self, req: MountRequest) -> Result<MountResponse> {
        self.record(&req.name)?;
        let point = self.point(&req.name)?;
        let mut volume = self.inner.mounts.lock(&req.name).await;
        if !self.is_live(&req.name, &point).await {
            self.revive(&req.name).await.map_err(|err| {
                Error::new(format!(
                    "cannot mount volume {}: {}",
                    req.name,
                    err.message()
                ))
            })?;
        }
        let users = volume.add(&req.id).await?;
        tracing::debug!(volume = %req.name, users, "mount");
        Ok(MountResponse::new(point))
    }

    async fn unmount(&self, req: UnmountRequest) -> Result<()> {
        self.record(&req.name)?;
        let point = self.point(&req.name)?;
        let mut volume = self.inner.mounts.lock(&req.name).await;
        // "volume v1 is not mounted with ID …" for an ID that holds no mount.
        if volume.is_last(&req.id)? {
            self.stop(&req.name, &point).await?;
        }
        let users = volume.release(&req.id).await?;
        tracing::debug!(volume = %req.name, users, "unmount");
        Ok(())
    }

    async fn path(&self, req: PathRequest) -> Result<PathResponse> {
        self.record(&req.name)?;
        if self.inner.mounts.users(&req.name) == 0 {
            return Ok(PathResponse::not_mounted());
        }
        Ok(PathResponse::new(self.point(&req.name)?))
    }

    async fn get(&self, req: GetRequest) -> Result<GetResponse> {
        let record = self.record(&req.name)?;
        let mut volume = Volume::new(&req.name)
            .mountpoint(self.point(&req.name)?)
            .created_at(record.created_at);
        for (key, value) in record.options.status() {
            volume = volume.status(key, value);
        }
        let volume = volume.status("mounts", self.inner.mounts.users(&req.name));
        Ok(GetResponse { volume })
    }

    async fn list(&self) -> Result<ListResponse> {
        let names: Vec<String> = self.inner.volumes.read(|v| v.keys().cloned().collect());
        let mut volumes = Vec::with_capacity(names.len());
        for name in names {
            volumes.push(Volume::new(&name).mountpoint(self.point(&name)?));
        }
        Ok(ListResponse { volumes })
    }

    async fn capabilities(&self) -> Result<CapabilitiesResponse> {
        Ok(CapabilitiesResponse::scope(Scope::Local))
    }
}
