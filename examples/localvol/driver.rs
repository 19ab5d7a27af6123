//! A volume driver that keeps each volume in a directory under a root dir:
//! `ROOT/NAME/data` holds the files, `ROOT/NAME/opts.json` the `-o` options it was
//! created with. Mounting is a no-op (the data dir is the mountpoint); the driver counts
//! mounts per ID in the SDK's [`MountTable`], saved in `ROOT/.mounts.json`, so that a
//! volume in use cannot be removed, and a plugin restarted while containers run still
//! accepts their Unmounts. (Docker volume names start with a letter or digit, so the
//! dot-file never meets a volume.)
//!
//! Options (`docker volume create -d localvol -o mode=0750 v1`) are a typed struct,
//! [`Options`], with `#[derive(DriverOptions)]`:
//! - `mode`: octal permissions of the data directory (default 0755).
//!
//! Any other option, or a bad value, is refused with a clear error naming every
//! problem, so a typo never silently creates a volume that differs from what the user
//! asked for.
//!
//! dockerd calls a driver concurrently (a `docker volume ls` while a container starts):
//! every file operation here is `tokio::fs`, so no call blocks the runtime's threads.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use docker_plugin_sdk::state::MountTable;
use docker_plugin_sdk::volume::{
    self, CapabilitiesResponse, CreateRequest, GetRequest, GetResponse, ListResponse, MountRequest,
    MountResponse, PathRequest, PathResponse, RemoveRequest, Scope, UnmountRequest, Volume,
};
use docker_plugin_sdk::{DriverOptions, Error, Result, async_trait};
use tokio::fs;

/// The `-o key=value` options of `docker volume create -d localvol`.
#[derive(Debug, DriverOptions)]
pub struct Options {
    /// Octal permissions of the volume's data directory.
    #[opt(default = "0755", expect = "octal permissions such as 0750")]
    pub mode: OctalMode,
}

/// Octal permissions, at most 7777: `0750`, `750`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OctalMode(pub u32);

impl FromStr for OctalMode {
    type Err = String;

    fn from_str(value: &str) -> std::result::Result<Self, String> {
        match u32::from_str_radix(value, 8) {
            Ok(mode) if mode <= 0o7777 => Ok(OctalMode(mode)),
            Ok(_) => Err("above 7777".to_owned()),
            Err(_) => Err("digits 0 to 7 only".to_owned()),
        }
    }
}

impl fmt::Display for OctalMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

/// Volumes as directories under `root`.
pub struct LocalVolumes {
    root: PathBuf,
    /// Mounts per volume and mount ID, saved in `ROOT/.mounts.json`.
    mounts: MountTable,
}

impl LocalVolumes {
    /// A driver storing volumes under `root` (created if missing), with the mount
    /// counts it saved before a restart, less those of volumes deleted meanwhile.
    pub async fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).await?;
        let mounts = MountTable::open(root.join(".mounts.json")).await?;
        let gone = mounts
            .reconcile(async |v| is_dir(&root.join(&v.volume).join("data")).await)
            .await?;
        for volume in gone {
            tracing::info!(volume = %volume.volume, "volume gone while stopped: its mounts are forgotten");
        }
        Ok(Self { root, mounts })
    }

    fn volume_dir(&self, name: &str) -> Result<PathBuf> {
        volume::volume_dir(&self.root, name)
    }

    fn data_dir(&self, name: &str) -> Result<PathBuf> {
        Ok(self.volume_dir(name)?.join("data"))
    }

    async fn existing(&self, name: &str) -> Result<PathBuf> {
        let data = self.data_dir(name)?;
        if is_dir(&data).await {
            Ok(data)
        } else {
            Err(Error::new(format!("no such volume: {name}")))
        }
    }

    async fn describe(&self, name: &str) -> Result<Volume> {
        let data = self.existing(name).await?;
        let mut volume = Volume::new(name).mountpoint(&data);
        if let Ok(created) = fs::metadata(&data).await.and_then(|m| m.modified()) {
            volume = volume.created_at(created);
        }
        let opts = read_opts(&self.volume_dir(name)?.join("opts.json")).await;
        volume = volume.status("options", serde_json::json!(opts));
        Ok(volume.status("mounts", self.mounts.users(name)))
    }
}

/// Whether `path` is a directory (false when it cannot be read).
async fn is_dir(path: &Path) -> bool {
    fs::metadata(path).await.is_ok_and(|m| m.is_dir())
}

async fn read_opts(path: &Path) -> BTreeMap<String, String> {
    fs::read(path)
        .await
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

#[async_trait]
impl volume::Driver for LocalVolumes {
    async fn create(&self, req: CreateRequest) -> Result<()> {
        let dir = self.volume_dir(&req.name)?;
        // Unknown options and bad values, all in one message for the user.
        let options = Options::from_map(&req.opts)?;
        let data = dir.join("data");
        if is_dir(&data).await {
            // dockerd only creates after Get failed, but `docker volume create` of an
            // existing name is idempotent for the user: succeed without touching data.
            return Ok(());
        }
        fs::create_dir_all(&data).await?;
        fs::set_permissions(&data, Permissions::from_mode(options.mode.0)).await?;
        let opts: BTreeMap<&String, &String> = req.opts.iter().collect();
        let tmp = dir.join("opts.json.tmp");
        fs::write(&tmp, serde_json::to_vec(&opts)?).await?;
        fs::rename(&tmp, dir.join("opts.json")).await?;
        Ok(())
    }

    async fn remove(&self, req: RemoveRequest) -> Result<()> {
        self.existing(&req.name).await?;
        // Held until the directory is gone: no Mount can slip in meanwhile.
        let volume = self.mounts.lock(&req.name).await;
        if volume.is_mounted() {
            return Err(Error::new(format!(
                "volume {} is in use by a container",
                req.name
            )));
        }
        fs::remove_dir_all(self.volume_dir(&req.name)?).await?;
        Ok(())
    }

    async fn mount(&self, req: MountRequest) -> Result<MountResponse> {
        let data = self.existing(&req.name).await?;
        self.mounts.lock(&req.name).await.add(&req.id).await?;
        Ok(MountResponse::new(data))
    }

    async fn unmount(&self, req: UnmountRequest) -> Result<()> {
        self.existing(&req.name).await?;
        // "volume v1 is not mounted with ID …" for an ID that holds no mount.
        self.mounts.lock(&req.name).await.release(&req.id).await?;
        Ok(())
    }

    async fn path(&self, req: PathRequest) -> Result<PathResponse> {
        let data = self.existing(&req.name).await?;
        Ok(PathResponse::new(data))
    }

    async fn get(&self, req: GetRequest) -> Result<GetResponse> {
        Ok(GetResponse {
            volume: self.describe(&req.name).await?,
        })
    }

    async fn list(&self) -> Result<ListResponse> {
        let mut volumes = Vec::new();
        let mut entries = fs::read_dir(&self.root).await?;
        while let Some(entry) = entries.next_entry().await? {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if is_dir(&entry.path().join("data")).await {
                volumes.push(Volume::new(&name).mountpoint(entry.path().join("data")));
            }
        }
        volumes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(ListResponse { volumes })
    }

    async fn capabilities(&self) -> Result<CapabilitiesResponse> {
        Ok(CapabilitiesResponse::scope(Scope::Local))
    }
}
