//! The harness's error type: what a user of dockerd would see, with the same wording
//! where dockerd has one, so tests can assert on messages users will really read.

use std::path::PathBuf;

use crate::client::ClientError;

/// What a harness action can fail with.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// No socket or spec file for the plugin (dockerd: "plugin not found").
    #[error("could not find plugin {name} in v1 plugin registry: plugin not found")]
    PluginNotFound {
        /// The plugin name looked up.
        name: String,
    },
    /// A spec file exists but cannot be used.
    #[error("spec file {path}: {problem}")]
    BadSpec {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The plugin activated but does not implement the subsystem asked for.
    #[error("plugin {name} does not implement {subsystem} (it implements {implements:?})")]
    NotImplements {
        /// The plugin.
        name: String,
        /// The subsystem wanted, e.g. `VolumeDriver`.
        subsystem: String,
        /// What `/Plugin.Activate` answered.
        implements: Vec<String>,
    },
    /// A call to the plugin failed (after dockerd's retries, for transport errors).
    #[error("{plugin}: {source}")]
    Call {
        /// The plugin.
        plugin: String,
        /// The failure.
        source: ClientError,
    },
    /// A volume name unknown to the engine and to every driver.
    #[error("get {name}: no such volume")]
    NoSuchVolume {
        /// The volume name.
        name: String,
    },
    /// `volume rm` (or plugin disable) while a container references the volume.
    #[error("remove {name}: volume is in use - [{}]", containers.join(" "))]
    VolumeInUse {
        /// The volume name.
        name: String,
        /// The IDs of the containers referencing it.
        containers: Vec<String>,
    },
    /// The volume name belongs to another driver.
    #[error(
        "create {name}: driver '{existing}' already has volume '{name}': volume name must be unique"
    )]
    VolumeConflict {
        /// The volume name.
        name: String,
        /// The driver that has it.
        existing: String,
    },
    /// The plugin answered Mount with an empty or relative mountpoint.
    #[error(
        "{plugin}: VolumeDriver.Mount of {volume} returned an unusable mountpoint {mountpoint:?}"
    )]
    BadMountpoint {
        /// The plugin.
        plugin: String,
        /// The volume.
        volume: String,
        /// What it returned.
        mountpoint: String,
    },
    /// A managed-plugin operation failed.
    #[error("{0}")]
    Managed(String),
    /// An I/O error of the harness itself.
    #[error("{action}: {source}")]
    Io {
        /// What the harness was doing.
        action: String,
        /// The error.
        source: std::io::Error,
    },
}

impl HarnessError {
    pub(crate) fn io(action: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            action: action.into(),
            source,
        }
    }
}
