//! [`MountTable`]: per-ID mount reference counts, persisted in a [`Store`].
//!
//! What dockerd sends (moby v20.10.24 `volume/mounts/mounts.go` `Setup`/`Cleanup`,
//! `daemon/archive.go`): one `Mount` per container start and one more while a `docker
//! cp` reaches into the container, both with the container's mount ID; one `Unmount`
//! per `Mount`, with the same ID. When an Unmount fails, dockerd keeps the mount and
//! sends the same Unmount again later (at the container's next cleanup). So a driver
//! counts mounts per ID, unmounts for real only when the last count of the volume
//! goes, and releases a count only once its Unmount has succeeded.
//!
//! The counts are saved on every change, so a plugin restarted while containers run
//! still knows them: the Unmount a container sends after the restart finds its ID. At
//! start, [`MountTable::reconcile`] lets the driver check each volume it had mounted
//! (is the mount still there? after a host reboot it is not) and drop what is gone.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OwnedMutexGuard;

use super::error::StateError;
use super::store::Store;

/// Volume name → mount ID → how many Mounts that ID holds (never 0).
type Counts = BTreeMap<String, BTreeMap<String, u32>>;

/// Mount reference counts per volume and mount ID, saved on every change.
///
/// A driver opens it at start and [reconciles](Self::reconcile) it; each Mount and
/// Unmount [locks](Self::lock) its volume, mounts or unmounts for real when the
/// first count comes or the last goes, and changes the count. dockerd sends one
/// Mount per container start plus one per `docker cp` into a running container (with
/// the same ID), one Unmount per Mount, and sends a failed Unmount again later: so a
/// count is released only once its Unmount succeeded.
///
/// ```no_run
/// use std::path::PathBuf;
/// use docker_plugin_sdk::state::MountTable;
/// use docker_plugin_sdk::volume::{MountRequest, MountResponse, UnmountRequest};
/// use docker_plugin_sdk::{Error, Result};
///
/// struct Driver {
///     root: PathBuf,
///     mounts: MountTable,
/// }
///
/// impl Driver {
///     async fn new(root: PathBuf) -> Result<Self> {
///         let mounts = MountTable::open(root.join(".mounts.json")).await?;
///         // After a reboot nothing is mounted any more: forget those volumes.
///         let dropped = mounts
///             .reconcile(async |v| is_mounted(&root.join(&v.volume)).await)
///             .await?;
///         for gone in dropped {
///             tracing::info!(volume = %gone.volume, "no longer mounted, forgotten");
///         }
///         Ok(Self { root, mounts })
///     }
///
///     async fn mount(&self, req: MountRequest) -> Result<MountResponse> {
///         let target = self.root.join(&req.name);
///         // Held until the end: a second Mount of this volume waits, others do not.
///         let mut volume = self.mounts.lock(&req.name).await;
///         if !volume.is_mounted() {
///             mount(&target).await?;
///         }
///         volume.add(&req.id).await?;
///         Ok(MountResponse::new(target))
///     }
///
///     async fn unmount(&self, req: UnmountRequest) -> Result<()> {
///         let mut volume = self.mounts.lock(&req.name).await;
///         // "volume v1 is not mounted with ID …" when the ID holds no mount.
///         if volume.is_last(&req.id)? {
///             // On failure the count stays: dockerd sends this Unmount again.
///             unmount(&self.root.join(&req.name)).await?;
///         }
///         volume.release(&req.id).await?;
///         Ok(())
///     }
/// }
/// # async fn is_mounted(_: &std::path::Path) -> bool { true }
/// # async fn mount(_: &std::path::Path) -> Result<()> { Ok(()) }
/// # async fn unmount(_: &std::path::Path) -> Result<()> { Ok(()) }
/// ```
pub struct MountTable {
    store: Store<Counts>,
    /// One lock per volume, so a slow mount holds back only its own volume.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The mounts of one volume: each mount ID and its count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMounts {
    /// The volume's name.
    pub volume: String,
    /// Each mount ID holding it, and how many Mounts it holds (at least 1).
    pub ids: BTreeMap<String, u32>,
}

impl VolumeMounts {
    /// How many Mounts hold the volume, all IDs together.
    pub fn users(&self) -> u32 {
        self.ids.values().sum()
    }
}

impl std::fmt::Debug for MountTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MountTable")
            .field("path", &self.store.path())
            .field("volumes", &self.volumes())
            .finish()
    }
}

impl MountTable {
    /// Opens the table saved at `path` (a JSON file, created on the first change);
    /// see [`Store::open`] for the errors.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self, StateError> {
        Ok(Self {
            store: Store::open(path).await?,
            locks: Mutex::new(HashMap::new()),
        })
    }

    /// The file the table is saved in.
    pub fn path(&self) -> &Path {
        self.store.path()
    }

    /// How many Mounts hold `volume`, all IDs together (0 when none).
    pub fn users(&self, volume: &str) -> u32 {
        self.store
            .read(|counts| counts.get(volume).map_or(0, |ids| ids.values().sum()))
    }

    /// Every volume that holds at least one mount, by name.
    pub fn volumes(&self) -> Vec<VolumeMounts> {
        self.store.read(|counts| {
            counts
                .iter()
                .map(|(volume, ids)| VolumeMounts {
                    volume: volume.clone(),
                    ids: ids.clone(),
                })
                .collect()
        })
    }

    /// The hook to run when the driver starts, before it serves: calls
    /// `still_mounted` for each volume the table holds mounts of, forgets those for
    /// which it answers `false` (one save), and returns them.
    ///
    /// What "still mounted" means is the driver's: a mount-backed driver checks the
    /// mountpoint is still a mount (after a host reboot it is not, and dockerd will
    /// not send the Unmounts); a directory-backed one that the volume still exists.
    pub async fn reconcile<F>(&self, mut still_mounted: F) -> Result<Vec<VolumeMounts>, StateError>
    where
        F: AsyncFnMut(&VolumeMounts) -> bool,
    {
        let mut gone = Vec::new();
        for volume in self.volumes() {
            if !still_mounted(&volume).await {
                gone.push(volume);
            }
        }
        if !gone.is_empty() {
            self.store
                .update(|counts| {
                    for volume in &gone {
                        counts.remove(&volume.volume);
                    }
                })
                .await?;
        }
        Ok(gone)
    }

    /// Locks `volume` until the returned [`VolumeLock`] is dropped: hold it across the
    /// check, the real mount or unmount, and the count's change, so that two calls
    /// for one volume never both mount. Calls for other volumes do not wait.
    pub async fn lock(&self, volume: &str) -> VolumeLock<'_> {
        let slot = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(locks.entry(volume.to_owned()).or_default())
        };
        let guard = Arc::clone(&slot).lock_owned().await;
        VolumeLock {
            table: self,
            volume: volume.to_owned(),
            slot,
            guard: Some(guard),
        }
    }
}

/// One volume of a [`MountTable`], locked: see [`MountTable::lock`].
#[derive(Debug)]
pub struct VolumeLock<'a> {
    table: &'a MountTable,
    volume: String,
    slot: Arc<tokio::sync::Mutex<()>>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl VolumeLock<'_> {
    /// The volume's name.
    pub fn volume(&self) -> &str {
        &self.volume
    }

    /// How many Mounts hold the volume, all IDs together.
    pub fn users(&self) -> u32 {
        self.table.users(&self.volume)
    }

    /// Whether any Mount holds the volume.
    pub fn is_mounted(&self) -> bool {
        self.users() > 0
    }

    /// How many Mounts `id` holds (0 when none).
    pub fn count(&self, id: &str) -> u32 {
        self.table.store.read(|counts| {
            counts
                .get(&self.volume)
                .and_then(|ids| ids.get(id))
                .copied()
                .unwrap_or(0)
        })
    }

    /// Whether releasing `id` would leave the volume unused, so the driver unmounts
    /// for real first; [`StateError::NotMounted`] when `id` holds no mount of it.
    pub fn is_last(&self, id: &str) -> Result<bool, StateError> {
        match self.count(id) {
            0 => Err(self.not_mounted(id)),
            _ => Ok(self.users() == 1),
        }
    }

    /// Counts one more Mount by `id` and saves; returns the volume's users now.
    pub async fn add(&mut self, id: &str) -> Result<u32, StateError> {
        let volume = self.volume.clone();
        let id = id.to_owned();
        self.table
            .store
            .update(move |counts| {
                let ids = counts.entry(volume).or_default();
                *ids.entry(id).or_default() += 1;
                ids.values().sum()
            })
            .await
    }

    /// Counts one Mount by `id` less and saves; returns the volume's users left.
    /// [`StateError::NotMounted`] (and no change) when `id` holds no mount of it.
    pub async fn release(&mut self, id: &str) -> Result<u32, StateError> {
        if self.count(id) == 0 {
            return Err(self.not_mounted(id));
        }
        let volume = self.volume.clone();
        let id = id.to_owned();
        self.table
            .store
            .update(move |counts| {
                let Some(ids) = counts.get_mut(&volume) else {
                    return 0;
                };
                if let Some(count) = ids.get_mut(&id) {
                    *count -= 1;
                    if *count == 0 {
                        ids.remove(&id);
                    }
                }
                let left = ids.values().sum();
                if ids.is_empty() {
                    counts.remove(&volume);
                }
                left
            })
            .await
    }

    fn not_mounted(&self, id: &str) -> StateError {
        StateError::NotMounted {
            volume: self.volume.clone(),
            id: id.to_owned(),
        }
    }
}

impl Drop for VolumeLock<'_> {
    /// Unlocks, and forgets the volume's lock when nobody else holds or waits for it.
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut locks = self
            .table
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // The map's reference and ours: no other call has cloned it to wait.
        if Arc::strong_count(&self.slot) == 2 {
            locks.remove(&self.volume);
        }
    }
}
