//! A plugin the registry can call: its client, what it implements, where it was found,
//! and, for a managed plugin, how the paths it answers map to the host (moby v20.10.24
//! `plugin/v2/plugin.go` `ScopedPath`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::discovery::Found;
use super::rpc::PluginRpc;

/// A plugin ready to be called: a legacy plugin once activated, a managed one while
/// enabled.
#[derive(Debug)]
pub struct ActivePlugin {
    /// Its client.
    pub rpc: PluginRpc,
    /// What it implements: for a legacy plugin what `/Plugin.Activate` answered
    /// (`VolumeDriver`), for a managed one the capabilities of its interface types
    /// (`volumedriver`, from `docker.volumedriver/1.0`).
    pub implements: Vec<String>,
    /// Where it was found (for a managed plugin: its socket).
    pub found: Found,
    /// For a managed plugin: how its paths map to the host.
    pub scope: Option<ScopedPaths>,
    /// For a managed plugin with a long socket path: its socket dir, kept open to be
    /// dialed through `/proc/self/fd`.
    pub(crate) _socket_dir: Option<Arc<std::fs::File>>,
}

impl ActivePlugin {
    /// Whether it implements `subsystem` (an `Implements` value such as
    /// `VolumeDriver`). A managed plugin's capabilities are compared with the
    /// subsystem lower-cased, as dockerd's `FilterByCap` does.
    pub fn implements(&self, subsystem: &str) -> bool {
        if self.is_managed() {
            let capability = subsystem.to_ascii_lowercase();
            self.implements.contains(&capability)
        } else {
            self.implements.iter().any(|i| i == subsystem)
        }
    }

    /// Whether it is a managed plugin.
    pub fn is_managed(&self) -> bool {
        self.scope.is_some()
    }

    /// The name it was looked up by (a managed plugin's normalized name).
    pub fn name(&self) -> &str {
        self.rpc.name()
    }

    /// Where `path`, a path the plugin answered (e.g. a mountpoint), is on the host:
    /// itself for a legacy plugin, mapped as dockerd's `ScopedPath` for a managed one.
    pub fn host_path(&self, path: &Path) -> PathBuf {
        match &self.scope {
            Some(scope) => scope.host_path(path),
            None => path.to_path_buf(),
        }
    }
}

/// Where a managed plugin's paths are on the host (moby `Plugin.ScopedPath`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedPaths {
    /// The plugin's rootfs on the host.
    pub rootfs: PathBuf,
    /// `PropagatedMount` inside the plugin (empty when none).
    pub propagated_mount: String,
    /// Where that is on the host: `<plugin dir>/propagated-mount`.
    pub propagated_source: PathBuf,
}

impl ScopedPaths {
    /// The host path of `path`, a path the plugin answered.
    pub fn host_path(&self, path: &Path) -> PathBuf {
        let text = path.to_string_lossy();
        // moby compares as strings (`strings.HasPrefix`), and so does this.
        if !self.propagated_mount.is_empty()
            && let Some(rest) = text.strip_prefix(self.propagated_mount.as_str())
        {
            return self.propagated_source.join(rest.trim_start_matches('/'));
        }
        self.rootfs.join(text.trim_start_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoped_paths_follow_moby() {
        let scope = ScopedPaths {
            rootfs: "/d/plugins/ID/rootfs".into(),
            propagated_mount: "/mnt/volumes".into(),
            propagated_source: "/d/plugins/ID/propagated-mount".into(),
        };
        assert_eq!(
            scope.host_path(Path::new("/mnt/volumes/v1")),
            Path::new("/d/plugins/ID/propagated-mount/v1")
        );
        assert_eq!(
            scope.host_path(Path::new("/data/v1")),
            Path::new("/d/plugins/ID/rootfs/data/v1")
        );
    }
}
