//! The harness's error type: what a user of dockerd would see, with the same wording
//! where dockerd has one, so tests can assert on messages users will really read.

use std::path::PathBuf;

use crate::client::ClientError;
use crate::protocol::Method;

/// What a harness action can fail with.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// No managed plugin of that name and no socket or spec file for it, after
    /// dockerd's retries (moby's plugin store: `plugin "NAME" not found`).
    #[error("plugin {name:?} not found")]
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
        "{plugin}: {} of {volume} returned an unusable mountpoint {mountpoint:?}",
        crate::volume::Mount::NAME
    )]
    BadMountpoint {
        /// The plugin.
        plugin: String,
        /// The volume.
        volume: String,
        /// What it returned.
        mountpoint: String,
    },
    /// No managed plugin of that name (dockerd: `plugin "NAME" not found`).
    #[error("plugin {name:?} not found")]
    NoSuchPlugin {
        /// The normalized name.
        name: String,
    },
    /// `plugin create` with a name already taken.
    #[error("plugin {name} already exists")]
    PluginExists {
        /// The normalized name.
        name: String,
    },
    /// A managed plugin that is disabled was asked for by a driver lookup.
    #[error("plugin {name} found but disabled")]
    PluginDisabled {
        /// The name as asked for.
        name: String,
    },
    /// A volume's driver could not be looked up (dockerd's wording, with the lookup
    /// failure as `source`).
    #[error(
        "{}error looking up volume plugin {driver}: {source}",
        if *.creating {
            format!("create {volume}: ")
        } else {
            format!("get {volume}: error while checking if volume {volume:?} exists in driver {driver:?}: ")
        }
    )]
    DriverLookup {
        /// The volume.
        volume: String,
        /// The driver name.
        driver: String,
        /// Whether the volume was being created.
        creating: bool,
        /// Why the lookup failed.
        source: Box<HarnessError>,
    },
    /// `docker start`: mounting a volume failed.
    #[error("error while mounting volume '{source_path}': {source}")]
    MountFailed {
        /// The mount's host path (empty: not mounted yet).
        source_path: String,
        /// Why.
        source: Box<HarnessError>,
    },
    /// `plugin disable` or `rm` while volumes hold references (use force).
    #[error("plugin {name} is in use")]
    PluginInUse {
        /// The normalized name.
        name: String,
    },
    /// `plugin rm` of an enabled plugin (disable it first, or force).
    #[error("plugin {name} is enabled")]
    PluginEnabled {
        /// The normalized name.
        name: String,
    },
    /// A lifecycle call while `plugin enable` is still starting the plugin.
    #[error("plugin {name} is being enabled: try again once the enable has finished")]
    PluginEnabling {
        /// The normalized name.
        name: String,
    },
    /// `plugin enable` of an enabled plugin.
    #[error("plugin {name} is already enabled")]
    AlreadyEnabled {
        /// The normalized name.
        name: String,
    },
    /// `plugin disable` of a disabled plugin.
    #[error("plugin {name} is already disabled")]
    AlreadyDisabled {
        /// The normalized name.
        name: String,
    },
    /// `plugin set` while enabled.
    #[error("cannot set on an active plugin, disable plugin before setting")]
    SetWhileEnabled,
    /// `plugin enable` failed: the process did not start or never listened.
    #[error("enabling plugin {id}: {problem}")]
    EnableFailed {
        /// The plugin ID.
        id: String,
        /// What went wrong.
        problem: String,
    },
    /// The bundle cannot be used.
    #[error(transparent)]
    Bundle(#[from] crate::managed::bundle::BundleError),
    /// A `set` argument or the config is wrong.
    #[error(transparent)]
    Config(#[from] crate::managed::config::ConfigError),
    /// Managed plugins need a data root and the engine has none.
    #[error(
        "managed plugins need a data root: build the engine with Engine::rooted(dir) or set EngineConfig::data_root"
    )]
    NoDataRoot,
    /// `docker plugin install`: the pull failed (dockerd's words where it has
    /// some, e.g. "did not find plugin config for specified reference").
    #[cfg(feature = "packager")]
    #[error("{0}")]
    Pull(#[from] crate::package::PackageError),
    /// `docker plugin install`: the privileges granted are not the ones the plugin
    /// asks for (moby v20.10.24 `plugin/manager.go`, `validatePrivileges`).
    #[error("incorrect privileges")]
    IncorrectPrivileges {
        /// What the plugin asks for.
        required: Vec<crate::managed::config::Privilege>,
    },
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
