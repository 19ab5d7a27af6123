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

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use docker_plugin_sdk::volume::{
    self, CapabilitiesResponse, CreateRequest, GetRequest, GetResponse, ListResponse, MountRequest,
    MountResponse, PathRequest, PathResponse, RemoveRequest, Scope, UnmountRequest, Volume,
};
use docker_plugin_sdk::{DriverOptions, Error, Result, async_trait};

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
    #[opt(default = "755")]
    pub mode: String,
{%- endif %}
}

/// Volumes under `root`.
pub struct Volumes {
    root: PathBuf,
    /// Mount IDs per volume: a volume stays mounted while any container uses it.
    mounts: Mutex<HashMap<String, Vec<String>>>,
}

impl Volumes {
    /// A driver keeping its volumes under `root` (created if missing).
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        Ok(Self {
            root,
            mounts: Mutex::new(HashMap::new()),
        })
    }

    fn dir(&self, name: &str) -> Result<PathBuf> {
        // One safe path component, or a clear error for the user.
        volume::volume_dir(&self.root, name)
    }

    fn existing(&self, name: &str) -> Result<PathBuf> {
        let dir = self.dir(name)?;
        if dir.join("options.json").is_file() {
            Ok(dir)
        } else {
            Err(Error::new(format!("no such volume: {name}")))
        }
    }

    fn options(dir: &Path) -> Result<HashMap<String, String>> {
        let bytes = fs::read(dir.join("options.json"))?;
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

    fn describe(&self, name: &str) -> Result<Volume> {
        let dir = self.existing(name)?;
        let options = Options::from_map(&Self::options(&dir)?)?;
        let mut volume = Volume::new(name);
        for (key, value) in options.to_status() {
            volume = volume.status(key, value);
        }
{%- if backing == "mount" %}
        // The mountpoint exists for containers only while mounted.
        if self.users(name) > 0 {
            volume = volume.mountpoint(Self::mountpoint(&dir));
        }
{%- else %}
        volume = volume.mountpoint(Self::mountpoint(&dir));
{%- endif %}
        Ok(volume.status("mounts", self.users(name)))
    }

    fn users(&self, name: &str) -> usize {
        let mounts = self.mounts.lock().unwrap_or_else(|p| p.into_inner());
        mounts.get(name).map_or(0, Vec::len)
    }
{% if backing == "mount" %}
    fn run(command: &mut std::process::Command) -> Result<()> {
        let output = command.output()?;
        if output.status.success() {
            Ok(())
        } else {
            Err(Error::new(format!(
                "{:?} failed: {}",
                command,
                String::from_utf8_lossy(&output.stderr).trim()
            )))
        }
    }
{% endif -%}
}

{% if backing == "mount" -%}
/// Whether `path` is a mount point: on another device than its parent.
fn is_mount_point(path: &Path) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = fs::metadata(path) else {
        return Ok(false);
    };
    let parent = path.parent().unwrap_or(Path::new("/"));
    Ok(meta.dev() != fs::metadata(parent)?.dev())
}

{% endif -%}
#[async_trait]
impl volume::Driver for Volumes {
    async fn create(&self, req: CreateRequest) -> Result<()> {
        // Refuses unknown, missing and bad options, all in one message.
        let options = Options::from_map(&req.opts)?;
        let dir = self.dir(&req.name)?;
        if dir.join("options.json").is_file() {
            return Ok(());
        }
        fs::create_dir_all(Self::mountpoint(&dir))?;
{%- if backing != "mount" %}
        let mode = u32::from_str_radix(&options.mode, 8).map_err(|_| {
            Error::new(format!(
                "option `mode` must be octal permissions such as 750, got `{}`",
                options.mode
            ))
        })?;
        fs::set_permissions(
            Self::mountpoint(&dir),
            std::os::unix::fs::PermissionsExt::from_mode(mode),
        )?;
{%- else %}
        tracing::info!(volume = %req.name, fs_type = %options.fs_type, "volume created");
{%- endif %}
        // Written last, atomically: a volume exists once its options file does.
        let tmp = dir.join("options.json.tmp");
        fs::write(&tmp, serde_json::to_vec(&req.opts)?)?;
        fs::rename(tmp, dir.join("options.json"))?;
        Ok(())
    }

    async fn remove(&self, req: RemoveRequest) -> Result<()> {
        let dir = self.existing(&req.name)?;
        // Held throughout, so no Mount can start while the volume goes.
        let mounts = self.mounts.lock().unwrap_or_else(|p| p.into_inner());
        if mounts.get(&req.name).is_some_and(|ids| !ids.is_empty()) {
            return Err(Error::new(format!("volume {} is in use", req.name)));
        }
{%- if backing == "mount" %}
        // After a plugin restart the mount may still be there while `mounts` is
        // empty: unmount it first, and never delete recursively through it, or the
        // files on the share would go.
        let mountpoint = Self::mountpoint(&dir);
        if is_mount_point(&mountpoint)? {
            Self::run(std::process::Command::new("umount").arg(&mountpoint))?;
        }
        if mountpoint.exists() {
            fs::remove_dir(&mountpoint)?;
        }
{%- endif %}
        fs::remove_dir_all(dir)?;
        Ok(())
    }

    async fn mount(&self, req: MountRequest) -> Result<MountResponse> {
        let dir = self.existing(&req.name)?;
        // Held across the check, the mount and the bookkeeping: two Mounts at once
        // must not both mount.
        let mut mounts = self.mounts.lock().unwrap_or_else(|p| p.into_inner());
{%- if backing == "mount" %}
        let first = mounts.get(&req.name).is_none_or(Vec::is_empty);
        if first && !is_mount_point(&Self::mountpoint(&dir))? {
            let options = Options::from_map(&Self::options(&dir)?)?;
            let mut command = std::process::Command::new("mount");
            command.arg("-t").arg(&options.fs_type);
            if let Some(o) = &options.o {
                command.arg("-o").arg(o);
            }
            command.arg(&options.source).arg(Self::mountpoint(&dir));
            Self::run(&mut command)?;
        }
{%- endif %}
        mounts.entry(req.name).or_default().push(req.id);
        Ok(MountResponse::new(Self::mountpoint(&dir)))
    }

    async fn unmount(&self, req: UnmountRequest) -> Result<()> {
        let dir = self.existing(&req.name)?;
        let mut mounts = self.mounts.lock().unwrap_or_else(|p| p.into_inner());
        let ids = mounts.entry(req.name.clone()).or_default();
        let Some(at) = ids.iter().position(|id| *id == req.id) else {
            return Err(Error::new(format!(
                "volume {} is not mounted with ID {}",
                req.name, req.id
            )));
        };
        ids.remove(at);
{%- if backing == "mount" %}
        if ids.is_empty() {
            Self::run(std::process::Command::new("umount").arg(Self::mountpoint(&dir)))?;
        }
{%- else %}
        let _ = dir;
{%- endif %}
        Ok(())
    }

    async fn path(&self, req: PathRequest) -> Result<PathResponse> {
        let dir = self.existing(&req.name)?;
        Ok(PathResponse::new(Self::mountpoint(&dir)))
    }

    async fn get(&self, req: GetRequest) -> Result<GetResponse> {
        Ok(GetResponse {
            volume: self.describe(&req.name)?,
        })
    }

    async fn list(&self) -> Result<ListResponse> {
        let mut volumes = Vec::new();
        for entry in fs::read_dir(&self.root)? {
            if let Some(name) = entry?.file_name().to_str()
                && let Ok(volume) = self.describe(name)
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
