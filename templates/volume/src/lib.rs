//! The volume driver of `{{project-name}}`: {{description}}
//!
{% if backing == "mount" -%}
//! Each volume is a mount made when the first container mounts it and undone when the
//! last one unmounts it: `docker volume create -d {{project-name}} -o type=nfs
//! -o source=server:/export -o o=ro v1` runs `mount -t nfs -o ro server:/export
//! ROOT/v1/mnt` on first use. Needs root (and `CAP_SYS_ADMIN` as a managed plugin).
{%- else -%}
//! Each volume is a directory under a root dir: `ROOT/NAME/data`, with the options it
//! was created with in `ROOT/NAME/options.json`.
{%- endif %}
//!
//! Which container holds which volume is counted per mount ID in the SDK's
//! `MountTable`, saved in `ROOT/.mounts.json` (Docker volume names start with a letter
//! or digit, so it never meets a volume): a plugin restarted while containers run
//! still accepts their Unmounts.
//!
//! dockerd calls a driver concurrently (a `docker volume ls` while a container
//! starts): files are read and written with `tokio::fs`{% if backing == "mount" %} and `mount` runs as a
//! `tokio::process` child{% endif %}, so no call blocks the others.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use docker_plugin_sdk::state::MountTable;
use docker_plugin_sdk::volume::{
    self, CapabilitiesResponse, CreateRequest, GetRequest, GetResponse, ListResponse, MountRequest,
    MountResponse, PathRequest, PathResponse, RemoveRequest, Scope, UnmountRequest, Volume,
};
use docker_plugin_sdk::{DriverOptions, Error, Result, async_trait};
use tokio::fs;

/// The `-o key=value` options of `docker volume create`.
#[derive(Debug, DriverOptions)]
pub struct Options {
{%- if backing == "mount" %}
    /// The filesystem type, as for `mount -t` (nfs, cifs, tmpfs, …).
    #[opt(rename = "type")]
    pub fs_type: String,
    /// What to mount: `server:/export`, `//host/share`, `tmpfs`, …
    pub source: String,
    /// Mount options, as for `mount -o`.
    pub o: Option<String>,
{%- else %}
    /// Octal permissions of the volume's directory.
    #[opt(default = "755", parse_with = parse_mode, expect = "octal permissions such as 750")]
    pub mode: Mode,
{%- endif %}
}
{% if backing != "mount" %}
/// Permissions, shown in octal as `-o mode=` takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub u32);

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:o}", self.0)
    }
}

/// Reads `-o mode=750`: octal digits, at most 7777. The derive puts the reason after
/// "option `mode` must be octal permissions such as 750, got `…`: ".
fn parse_mode(text: &str) -> Result<Mode, &'static str> {
    match u32::from_str_radix(text, 8) {
        Ok(mode) if mode <= 0o7777 => Ok(Mode(mode)),
        Ok(_) => Err("above 7777"),
        Err(_) => Err("digits 0 to 7 only"),
    }
}
{% endif %}
/// Volumes under `root`.
pub struct Volumes {
    root: PathBuf,
    /// Mounts per volume and mount ID: a volume stays mounted while any container
    /// uses it.
    mounts: MountTable,
}

impl Volumes {
    /// A driver keeping its volumes under `root` (created if missing), with the mounts
    /// it counted before a restart, less those that are gone.
    pub async fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).await?;
        let mounts = MountTable::open(root.join(".mounts.json")).await?;
{%- if backing == "mount" %}
        // After a reboot nothing is mounted any more, and dockerd sends no Unmount.
        let gone = mounts
            .reconcile(async |v| is_mount_point(&Self::mountpoint(&root.join(&v.volume))).await)
            .await?;
{%- else %}
        // A volume deleted by hand while the plugin was stopped.
        let gone = mounts
            .reconcile(async |v| is_file(&root.join(&v.volume).join("options.json")).await)
            .await?;
{%- endif %}
        for volume in gone {
            tracing::info!(volume = %volume.volume, "no longer mounted: its mounts are forgotten");
        }
        Ok(Self { root, mounts })
    }

    fn dir(&self, name: &str) -> Result<PathBuf> {
        // One safe path component, or a clear error for the user.
        volume::volume_dir(&self.root, name)
    }

    async fn existing(&self, name: &str) -> Result<PathBuf> {
        let dir = self.dir(name)?;
        if is_file(&dir.join("options.json")).await {
            Ok(dir)
        } else {
            Err(Error::new(format!("no such volume: {name}")))
        }
    }

    async fn options(dir: &Path) -> Result<HashMap<String, String>> {
        let bytes = fs::read(dir.join("options.json")).await?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// Where containers see the volume.
    fn mountpoint(dir: &Path) -> PathBuf {
{%- if backing == "mount" %}
        dir.join("mnt")
{%- else %}
        dir.join("data")
{%- endif %}
    }

    async fn describe(&self, name: &str) -> Result<Volume> {
        let dir = self.existing(name).await?;
        let options = Options::from_map(&Self::options(&dir).await?)?;
        let mut volume = Volume::new(name);
        for (key, value) in options.to_status() {
            volume = volume.status(key, value);
        }
        let users = self.mounts.users(name);
{%- if backing == "mount" %}
        // The mountpoint exists for containers only while mounted.
        if users > 0 {
            volume = volume.mountpoint(Self::mountpoint(&dir));
        }
{%- else %}
        volume = volume.mountpoint(Self::mountpoint(&dir));
{%- endif %}
        Ok(volume.status("mounts", users))
    }
{% if backing == "mount" %}
    /// Runs `mount` or `umount` as a child the runtime waits for without blocking.
    async fn run(command: &mut tokio::process::Command) -> Result<()> {
        let output = command.output().await?;
        if output.status.success() {
            Ok(())
        } else {
            Err(Error::new(format!(
                "{:?} failed: {}",
                command.as_std(),
                String::from_utf8_lossy(&output.stderr).trim()
            )))
        }
    }
{% endif -%}
}

/// Whether `path` is a file (false when it cannot be read).
async fn is_file(path: &Path) -> bool {
    fs::metadata(path).await.is_ok_and(|m| m.is_file())
}

{% if backing == "mount" -%}
/// Whether `path` is a mount point: on another device than its parent.
async fn is_mount_point(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let parent = path.parent().unwrap_or(Path::new("/"));
    match (fs::metadata(path).await, fs::metadata(parent).await) {
        (Ok(meta), Ok(parent)) => meta.dev() != parent.dev(),
        _ => false,
    }
}

{% endif -%}
#[async_trait]
impl volume::Driver for Volumes {
    async fn create(&self, req: CreateRequest) -> Result<()> {
        // Refuses unknown, missing and bad options, all in one message, before
        // anything is written.
        let options = Options::from_map(&req.opts)?;
        let dir = self.dir(&req.name)?;
        if is_file(&dir.join("options.json")).await {
            return Ok(());
        }
        fs::create_dir_all(Self::mountpoint(&dir)).await?;
{%- if backing != "mount" %}
        fs::set_permissions(
            Self::mountpoint(&dir),
            std::os::unix::fs::PermissionsExt::from_mode(options.mode.0),
        )
        .await?;
{%- else %}
        tracing::info!(volume = %req.name, fs_type = %options.fs_type, "volume created");
{%- endif %}
        // Written last, atomically: a volume exists once its options file does.
        let tmp = dir.join("options.json.tmp");
        fs::write(&tmp, serde_json::to_vec(&req.opts)?).await?;
        fs::rename(tmp, dir.join("options.json")).await?;
        Ok(())
    }

    async fn remove(&self, req: RemoveRequest) -> Result<()> {
        let dir = self.existing(&req.name).await?;
        // Held throughout, so no Mount can start while the volume goes.
        let volume = self.mounts.lock(&req.name).await;
        if volume.is_mounted() {
            return Err(Error::new(format!("volume {} is in use", req.name)));
        }
{%- if backing == "mount" %}
        // A mount no count stands for (its state file was moved away, say): unmount
        // it first, and never delete recursively through it, or the files on the
        // share would go.
        let mountpoint = Self::mountpoint(&dir);
        if is_mount_point(&mountpoint).await {
            Self::run(tokio::process::Command::new("umount").arg(&mountpoint)).await?;
        }
        if fs::try_exists(&mountpoint).await? {
            fs::remove_dir(&mountpoint).await?;
        }
{%- endif %}
        fs::remove_dir_all(dir).await?;
        Ok(())
    }

    async fn mount(&self, req: MountRequest) -> Result<MountResponse> {
        let dir = self.existing(&req.name).await?;
        // Held across the check, the mount and the count: two Mounts at once must
        // not both mount.
        let mut volume = self.mounts.lock(&req.name).await;
{%- if backing == "mount" %}
        if !volume.is_mounted() && !is_mount_point(&Self::mountpoint(&dir)).await {
            let options = Options::from_map(&Self::options(&dir).await?)?;
            let mut command = tokio::process::Command::new("mount");
            command.arg("-t").arg(&options.fs_type);
            if let Some(o) = &options.o {
                command.arg("-o").arg(o);
            }
            command.arg(&options.source).arg(Self::mountpoint(&dir));
            Self::run(&mut command).await?;
        }
{%- endif %}
        volume.add(&req.id).await?;
        Ok(MountResponse::new(Self::mountpoint(&dir)))
    }

    async fn unmount(&self, req: UnmountRequest) -> Result<()> {
{%- if backing == "mount" %}
        let dir = self.existing(&req.name).await?;
        let mut volume = self.mounts.lock(&req.name).await;
        // "volume v1 is not mounted with ID …" when the ID holds no mount.
        if volume.is_last(&req.id)? {
            // On failure the count stays: dockerd sends this Unmount again later.
            Self::run(tokio::process::Command::new("umount").arg(Self::mountpoint(&dir))).await?;
        }
{%- else %}
        self.existing(&req.name).await?;
        let mut volume = self.mounts.lock(&req.name).await;
        // "volume v1 is not mounted with ID …" when the ID holds no mount.
{%- endif %}
        volume.release(&req.id).await?;
        Ok(())
    }

    async fn path(&self, req: PathRequest) -> Result<PathResponse> {
        let dir = self.existing(&req.name).await?;
        Ok(PathResponse::new(Self::mountpoint(&dir)))
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
            if let Some(name) = entry.file_name().to_str()
                && let Ok(volume) = self.describe(name).await
            {
                volumes.push(volume);
            }
        }
        volumes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(ListResponse { volumes })
    }

    async fn capabilities(&self) -> Result<CapabilitiesResponse> {
        Ok(CapabilitiesResponse::scope(Scope::Local))
    }
}
