//! One managed plugin as the engine keeps it (moby v20.10.24 `plugin/v2/plugin.go`
//! `Plugin`): its ID, name, dirs, config and settings, references and process state,
//! how `docker plugin inspect` shows it, and the files of its dir.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::oneshot;

use super::super::launch::LaunchMode;
use super::super::supervise::Shared;
use crate::harness::error::HarnessError;
use crate::managed::config::PluginConfig;
use crate::managed::settings::Settings;

/// What the engine keeps per managed plugin.
#[derive(Debug)]
pub(crate) struct ManagedPlugin {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) dir: PathBuf,
    pub(super) config: PluginConfig,
    pub(super) settings: Settings,
    pub(super) mode: LaunchMode,
    pub(super) refs: usize,
    /// Set while an enable is starting it: other lifecycle calls are refused.
    pub(super) enabling: bool,
    pub(super) shared: Arc<Shared>,
    pub(super) stop: Option<oneshot::Sender<oneshot::Sender<()>>>,
}

/// A managed plugin as `docker plugin inspect` shows it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ManagedInfo {
    /// The 64-hex plugin ID.
    pub id: String,
    /// The normalized name, e.g. `localvol:latest`.
    pub name: String,
    /// Whether it is enabled.
    pub enabled: bool,
    /// Its config (`Config`): the bundle's, with mount sources and device paths set.
    pub config: PluginConfig,
    /// Its settings (`Settings`): the env, args, devices and mounts it starts with.
    pub settings: Settings,
    /// Where its entrypoint comes from.
    pub mode: LaunchMode,
    /// `<data-root>/plugins/<id>/rootfs`.
    pub rootfs: PathBuf,
    /// `<data-root>/plugins/<id>/propagated-mount`.
    pub propagated_mount: PathBuf,
    /// Where the engine dials it: `<socket-dir>/<id>/<Socket>`.
    pub socket: PathBuf,
    /// The plugin's process ID while it runs.
    pub pid: Option<u32>,
    /// References held by volumes created through it.
    pub refs: usize,
}

fn save_config(plugin_dir: &Path, config: &PluginConfig) -> Result<(), HarnessError> {
    std::fs::write(plugin_dir.join("config.json"), config.to_json_pretty()?)
        .map_err(|e| HarnessError::io("writing config.json", e))
}

/// Copies a rootfs: dirs, files and symlinks as they are (a dir's mode is applied
/// after its contents, so read-only dirs copy too). Sockets, fifos and device nodes
/// are left out: a rootfs has none that a plugin can use (`/dev` is made at start).
pub(crate) fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    std::fs::set_permissions(to, std::fs::metadata(from)?.permissions())
}

/// Runs blocking file work off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, HarnessError> + Send + 'static,
) -> Result<T, HarnessError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(HarnessError::io(what, std::io::Error::other(e))))
}

impl ManagedPlugin {
    pub(super) fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub(super) fn propagated_source(&self) -> PathBuf {
        self.dir.join("propagated-mount")
    }

    pub(super) fn enabled(&self) -> bool {
        self.shared.enabled.load(Ordering::SeqCst)
    }

    /// Writes the config to `<plugin dir>/config.json` and the settings beside it, as
    /// dockerd keeps them.
    pub(super) fn save(&self) -> Result<(), HarnessError> {
        save_config(&self.dir, &self.config)?;
        std::fs::write(
            self.dir.join("settings.json"),
            self.settings.to_docker_json(),
        )
        .map_err(|e| HarnessError::io("writing settings.json", e))
    }

    pub(super) fn check_not_enabling(&self) -> Result<(), HarnessError> {
        if self.enabling {
            return Err(HarnessError::PluginEnabling {
                name: self.name.clone(),
            });
        }
        Ok(())
    }

    pub(super) fn info(&self, socket_dir: &Path) -> ManagedInfo {
        let pid = self.shared.pid.load(Ordering::SeqCst);
        ManagedInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            enabled: self.enabled(),
            config: self.config.clone(),
            settings: self.settings.clone(),
            mode: self.mode,
            rootfs: self.rootfs(),
            propagated_mount: self.propagated_source(),
            socket: socket_dir
                .join(&self.id)
                .join(&self.config.interface.socket),
            pid: (pid != 0).then_some(pid),
            refs: self.refs,
        }
    }

    /// dockerd's `FilterByCap`: an interface type of prefix `docker` whose capability
    /// is `subsystem` in lower case.
    pub(super) fn provides(&self, subsystem: &str) -> bool {
        let capability = subsystem.to_ascii_lowercase();
        self.config
            .interface
            .types
            .iter()
            .any(|t| t.prefix == "docker" && t.capability == capability)
    }
}
