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
    /// A legacy plugin activated but does not implement the subsystem asked for
    /// (moby's `ErrNotImplements`; dockerd wraps it as [`HarnessError::Legacy`]).
    #[error("Plugin does not implement the requested driver")]
    NotImplements {
        /// The plugin.
        name: String,
        /// The subsystem wanted, e.g. `VolumeDriver`.
        subsystem: String,
        /// What `/Plugin.Activate` answered.
        implements: Vec<String>,
    },
    /// A managed plugin has no interface type `docker.<capability>` (moby's
    /// `ErrInadequateCapability`).
    #[error("plugin does not provide {capability:?} capability")]
    NoCapability {
        /// The capability asked for, in lower case (`volumedriver`).
        capability: String,
    },
    /// A legacy plugin lookup failed otherwise than "not found": dockerd's wrapping
    /// (`legacy plugin: …`, moby v20.10.24 `plugin/store.go` `Get`).
    #[error("legacy plugin: {source}")]
    Legacy {
        /// Why.
        source: Box<HarnessError>,
    },
    /// A call to the plugin failed (after dockerd's retries, for transport errors). It
    /// reads as dockerd prints it: a plugin's error as `METHOD: MESSAGE`, without the
    /// HTTP status the [`client`](crate::client) adds and without the plugin's name
    /// (`plugin` is for matching; see [`HarnessError::Remote`]).
    #[error("{}", dockerd_words(source))]
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
    #[error("remove {name}: volume is in use - [{}]", containers.join(", "))]
    VolumeInUse {
        /// The volume name.
        name: String,
        /// The IDs of the containers referencing it.
        containers: Vec<String>,
    },
    /// A volume action failed in the driver (moby's `OpErr`: `create NAME: …`).
    #[error("{op} {name}: {source}")]
    VolumeOp {
        /// The action: `create`.
        op: &'static str,
        /// The volume name.
        name: String,
        /// Why.
        source: Box<HarnessError>,
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
    /// What swarm refused or failed with, in its words (a secret's assignment).
    #[error("{message}")]
    Swarm {
        /// swarmkit's or the worker's message.
        message: String,
    },
    /// No managed plugin of that name (dockerd: `plugin "NAME" not found`).
    #[error("plugin {name:?} not found")]
    NoSuchPlugin {
        /// The normalized name.
        name: String,
    },
    /// A name that is a prefix of more than one plugin ID.
    #[error("multiple plugins found for {name:?}")]
    AmbiguousPlugin {
        /// The name or prefix given.
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
    #[error("plugin already enabled: plugin {name} is enabled")]
    AlreadyEnabled {
        /// The normalized name.
        name: String,
    },
    /// `plugin disable` of a disabled plugin.
    #[error("plugin is already disabled: plugin {name} found but disabled")]
    AlreadyDisabled {
        /// The normalized name.
        name: String,
    },
    /// `plugin upgrade` of an enabled plugin.
    #[error("plugin must be disabled before upgrading: plugin {name} is enabled")]
    UpgradeEnabled {
        /// The normalized name.
        name: String,
    },
    /// `plugin set` while enabled.
    #[error("cannot set on an active plugin, disable plugin before setting")]
    SetWhileEnabled,
    /// `plugin enable` failed: the process did not start or never listened (dockerd's
    /// words where it has them, e.g. `dial unix …: connect: …`).
    #[error("{problem}")]
    EnableFailed {
        /// The plugin ID.
        id: String,
        /// What went wrong.
        problem: String,
    },
    /// The plugin's container could not be made or its entrypoint not started, in
    /// dockerd's words (`mount source is not specified`, `failed to create shim task:
    /// OCI runtime create failed: … exec: "/x": stat /x: no such file or directory:
    /// unknown`).
    #[error("{message}")]
    Runtime {
        /// dockerd's message.
        message: String,
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
    #[cfg(feature = "registry")]
    #[error("{0}")]
    Pull(#[from] crate::package::PackageError),
    /// `docker plugin install`: the privileges granted are not the ones the plugin
    /// asks for (moby v20.10.24 `plugin/manager.go`, `validatePrivileges`).
    #[error("incorrect privileges")]
    IncorrectPrivileges {
        /// What the plugin asks for.
        required: Vec<crate::managed::config::Privilege>,
    },
    /// A network or IPAM plugin answered an error, worded as dockerd's plugin client
    /// words it (moby v20.10.24 `pkg/plugins/client.go` `statusError`:
    /// `NetworkDriver.Join: <the plugin's message>`).
    #[error("{method}: {message}")]
    Remote {
        /// The method, e.g. `NetworkDriver.Join`.
        method: String,
        /// The plugin's `Err` (or `Error`).
        message: String,
    },
    /// A network or IPAM plugin answered HTTP 200 with `Err` set: libnetwork's remote
    /// driver and remote IPAM read the reply and word it `remote: <the plugin's
    /// message>` (moby v20.10.24 `vendor/github.com/docker/libnetwork/drivers/remote/driver.go`
    /// and `ipams/remote/remote.go`, `call`). The SDK's own server answers errors with
    /// 500; other plugins may not.
    #[error("remote: {message}")]
    RemoteReply {
        /// The method, e.g. `NetworkDriver.Join`.
        method: String,
        /// The plugin's `Err`.
        message: String,
    },
    /// `network create` of a name taken (moby v20.10.24 `libnetwork/error.go`).
    #[error("network with name {name} already exists")]
    NetworkExists {
        /// The name.
        name: String,
    },
    /// A network driver that was found but not registered under the name given: its
    /// GetCapabilities failed, or a managed plugin was named without its tag
    /// (libnetwork's `network.go` `resolveDriver`).
    #[error("could not resolve driver {name} in registry")]
    UnresolvedDriver {
        /// The driver's name as given (`-d`).
        name: String,
    },
    /// A network name or ID the engine does not know.
    #[error("network {name} not found")]
    NoSuchNetwork {
        /// The name or ID looked up.
        name: String,
    },
    /// `network rm` while containers are connected (`ActiveEndpointsError`, wrapped by
    /// `daemon/network.go`).
    #[error("error while removing network: network {name} id {id} has active endpoints")]
    NetworkInUse {
        /// The network's name.
        name: String,
        /// Its ID.
        id: String,
    },
    /// The built-in IPAM refused (`ipamapi`'s errors: `Address already in use`,
    /// `requested address is out of range`, …), or a network setting it cannot serve.
    #[error("{message}")]
    Ipam {
        /// dockerd's message.
        message: String,
    },
    /// A step of a network action failed, with dockerd's context (`failed to allocate
    /// gateway (10.0.0.1): …`, `failed to create endpoint c1 on network n1: …`,
    /// `Updating join info failed: …`).
    #[error("{context}: {source}")]
    NetworkStep {
        /// dockerd's words for the step.
        context: String,
        /// Why it failed.
        source: Box<HarnessError>,
    },
    /// An authorization plugin denied the API call (dockerd answers 403; moby
    /// v20.10.24 `pkg/authorization/authz.go` `newAuthorizationError`).
    #[error("authorization denied by plugin {plugin}: {msg}")]
    AuthzDenied {
        /// The plugin, as dockerd names it.
        plugin: String,
        /// The plugin's `Msg`.
        msg: String,
    },
    /// An authorization plugin could not be found or its call failed: dockerd refuses
    /// the API call (a 500).
    #[error("plugin {plugin} failed with error: {error}")]
    AuthzFailed {
        /// The plugin, as named in the chain.
        plugin: String,
        /// The failure in dockerd's words (`AuthZPlugin.AuthZReq: …`).
        error: String,
    },
    /// The API call itself failed (an [`ApiResponse::error`](super::ApiResponse::error)).
    #[error("{message}")]
    Api {
        /// The HTTP status dockerd answers with.
        status: u16,
        /// The message.
        message: String,
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

/// A failed call as dockerd words it: a plugin's answered error as `pkg/plugins`'
/// `statusError` prints it, `METHOD: MESSAGE` with no HTTP status and no plugin name
/// (moby v20.10.24 `pkg/plugins/errors.go`; each subsystem passes it on as is:
/// `volume/drivers/proxy.go` and `adapter.go`, then `volume/service/store.go`'s
/// `OpErr` adds `create NAME: `; `daemon/logger/proxy.go`, then `plugin.go` adds
/// `error creating logger: `). A 200 whose `Err` is set is no `statusError`: the
/// proxy fails with the bare message (`errors.New(ret.Err)` in both proxies,
/// `fmt.Errorf(secretResp.Err)` in swarmkit's secrets driver). Any other failure
/// (connection, timeout, bad reply) reads in the client's words.
fn dockerd_words(source: &ClientError) -> String {
    match source {
        ClientError::Plugin {
            status: 200,
            message,
            ..
        } => message.clone(),
        ClientError::Plugin {
            method, message, ..
        } => format!("{method}: {message}"),
        other => other.to_string(),
    }
}

impl HarnessError {
    /// A failed plugin call in dockerd's words for network and IPAM drivers: the
    /// plugin's own message after the method, without the HTTP status (an error
    /// status), or after `remote` (a 200 reply with `Err` set).
    pub(crate) fn remote(self) -> Self {
        match self {
            Self::Call {
                source:
                    ClientError::Plugin {
                        status: 200,
                        method,
                        message,
                    },
                ..
            } => Self::RemoteReply { method, message },
            Self::Call {
                source:
                    ClientError::Plugin {
                        method, message, ..
                    },
                ..
            } => Self::Remote { method, message },
            other => other,
        }
    }

    /// `self` with dockerd's context for the step that failed.
    pub(crate) fn context(self, context: impl Into<String>) -> Self {
        Self::NetworkStep {
            context: context.into(),
            source: Box::new(self),
        }
    }

    pub(crate) fn io(action: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            action: action.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(status: u16) -> HarnessError {
        HarnessError::Call {
            plugin: "strict".into(),
            source: ClientError::Plugin {
                method: "VolumeDriver.Create".into(),
                status,
                message: "disk full".into(),
            },
        }
    }

    #[test]
    fn a_failed_call_reads_as_dockerd_prints_it_without_the_plugins_name() {
        // pkg/plugins' statusError for any status but 200.
        assert_eq!(call(500).to_string(), "VolumeDriver.Create: disk full");
        // A 200 with `Err`: the proxy's errors.New(ret.Err).
        assert_eq!(call(200).to_string(), "disk full");
    }

    #[test]
    fn a_network_or_ipam_plugins_error_reads_as_libnetwork_words_it() {
        // pkg/plugins' statusError for an error status.
        assert_eq!(
            call(500).remote().to_string(),
            "VolumeDriver.Create: disk full"
        );
        // A 200 with `Err`: libnetwork's remote driver and IPAM, `remote: %s`.
        assert_eq!(call(200).remote().to_string(), "remote: disk full");
    }
}
