//! The managed plugin `config.json`, as one Rust type.
//!
//! [`PluginConfig`] mirrors moby's `PluginConfig` (`api/types/plugin.go`, since moved
//! to `api/types/plugin/config.go`) field for field. It is what the packager writes
//! into a bundle, what the harness reads back from one, and what `push` sends as the
//! registry config blob.
//!
//! - **Decoding** is dockerd's: keys match case-insensitively (`propagatedmount`,
//!   `propagatedMount` and `PropagatedMount` are one field, as with Go's
//!   `encoding/json`), unknown keys are ignored, `null` leaves a field at its default,
//!   and a value of the wrong type is an error that names the field.
//! - **Encoding** uses moby's JSON keys (`Description`, `Interface.Types`, `rootfs`,
//!   `diff_ids`, …): the form dockerd itself writes and pushes.
//! - **The packager's TOML** (`[package.metadata.docker-plugin]`) decodes into the
//!   same types. Their serde-derived decoders read the kebab-case keys TOML uses
//!   (`destination`, `allow-all-devices`, `protocol-scheme`) and refuse unknown ones,
//!   so a typo in the metadata is an error; a `Mount` needs its `destination` and an
//!   `Env` its `name`. `config.json` never meets those rules: decode.rs first maps
//!   dockerd's keys onto the kebab-case ones, drops the keys no field matches and
//!   fills in every missing field with Go's zero value, as dockerd's decoder does.
//!   The nested types therefore encode with moby's keys and decode, on their own,
//!   from TOML's: decode a `config.json` with [`PluginConfig::from_json`] (or
//!   `PluginConfig`'s `Deserialize`), never a lone `Mount` from JSON.
//! - [`PluginConfig::validate`] lists every problem at once, one message per problem,
//!   each naming the field and the fix. dockerd itself validates nothing when a plugin
//!   is created (`validateConfig` in moby's `plugin/backend_linux.go` is `return nil //
//!   TODO`): mistakes surface later, as a plugin that never enables or never gets used.
//!   These rules catch them at packaging time; each [`Rule`] says what moby does.
//! - [`PluginConfig::privileges`] is moby's `computePrivileges`: the list `docker
//!   plugin install` asks the user to grant, in the same order.
//! - [`PluginConfig::set`] is moby's `Plugin.Set` (`docker plugin set NAME key=value`),
//!   with its error messages.
//!
//! ```
//! use docker_plugin_sdk::managed::config::PluginConfig;
//!
//! let config = PluginConfig::from_json(br#"{
//!     "description": "sshFS plugin for Docker",
//!     "entrypoint": ["/docker-volume-sshfs"],
//!     "env": [{"name": "DEBUG", "settable": ["value"], "value": "0"}],
//!     "interface": {"socket": "sshfs.sock", "types": ["docker.volumedriver/1.0"]},
//!     "linux": {"capabilities": ["CAP_SYS_ADMIN"], "devices": [{"path": "/dev/fuse"}]},
//!     "network": {"type": "host"},
//!     "propagatedmount": "/mnt/volumes"
//! }"#)?;
//! config.validate()?;
//!
//! let asked: Vec<String> = config.privileges().iter().map(|p| p.to_string()).collect();
//! assert_eq!(asked, ["network: [host]", "device: [/dev/fuse]", "capabilities: [CAP_SYS_ADMIN]"]);
//!
//! let mut config = config;
//! config.set(["DEBUG=1"])?;
//! assert_eq!(config.env[0].value.as_deref(), Some("1"));
//! assert_eq!(
//!     config.set(["PATH=/x"]).unwrap_err().to_string(),
//!     r#"setting "PATH" not found in the plugin configuration"#
//! );
//! # Ok::<(), docker_plugin_sdk::managed::config::ConfigError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod decode;
pub(crate) mod set;
mod validate;

#[cfg(feature = "harness")]
pub(crate) use validate::CAPABILITIES;
pub use validate::{ConfigProblem, MAX_SOCKET_NAME_LEN, Rule};

/// The interface types dockerd looks plugins up by, as `docker.<capability>/1.0`.
///
/// dockerd finds a managed plugin for a subsystem by comparing each entry's
/// capability with the subsystem's name in lower case, and requires the prefix
/// `docker` (`FilterByCap` in moby's `plugin/v2/plugin.go`). The names it asks for:
/// `VolumeDriver`, `NetworkDriver` (libnetwork `driverapi`), `IpamDriver`
/// (`ipamapi`), `authz` (`pkg/authorization`), `LogDriver` (`daemon/logger`),
/// `MetricsCollector` (`daemon/metrics.go`); in swarm mode also `secretprovider`
/// (swarmkit secrets) and `csicontroller` / `csinode` (cluster volumes).
pub const KNOWN_INTERFACE_TYPES: &[&str] = &[
    "docker.volumedriver/1.0",
    "docker.networkdriver/1.0",
    "docker.ipamdriver/1.0",
    "docker.authz/1.0",
    "docker.logdriver/1.0",
    "docker.metricscollector/1.0",
    "docker.secretprovider/1.0",
    "docker.csicontroller/1.0",
    "docker.csinode/1.0",
];

/// The one protocol scheme dockerd speaks to managed plugins besides the default
/// (`ProtocolSchemeHTTPV1` in moby's `pkg/plugins/plugins.go`).
pub const PROTOCOL_SCHEME_HTTP_V1: &str = "moby.plugins.http/v1";

/// A managed plugin's `config.json` (moby's `PluginConfig`).
///
/// Field order and JSON keys follow moby. Every field defaults to empty, so a
/// config can be built with `PluginConfig { description: …, ..Default::default() }`.
/// Decode with [`PluginConfig::from_json`] (or any serde deserializer: the
/// case-insensitive decoding applies either way); encode with
/// [`PluginConfig::to_json_pretty`] or `serde_json::to_vec`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(
    remote = "Self",
    default,
    deny_unknown_fields,
    rename_all(deserialize = "kebab-case")
)]
pub struct PluginConfig {
    /// The Docker version that created the plugin; dockerd fills it in on `docker
    /// plugin create` (`DockerVersion`, omitted when empty).
    #[serde(
        rename(serialize = "DockerVersion"),
        skip_serializing_if = "String::is_empty"
    )]
    pub docker_version: String,
    /// One line about the plugin, shown by `docker plugin ls` (`Description`).
    #[serde(rename(serialize = "Description"))]
    pub description: String,
    /// A link to the plugin's documentation (`Documentation`).
    #[serde(rename(serialize = "Documentation"))]
    pub documentation: String,
    /// What the plugin implements and where it listens (`Interface`).
    #[serde(rename(serialize = "Interface"))]
    pub interface: Interface,
    /// The command that starts the plugin; dockerd runs `entrypoint` followed by
    /// `args.value` (`Entrypoint`).
    #[serde(rename(serialize = "Entrypoint"))]
    pub entrypoint: Vec<String>,
    /// The working directory; empty means `/` (`WorkDir`).
    #[serde(rename(serialize = "WorkDir"))]
    pub work_dir: String,
    /// The user to run as (`User`). Current dockerd does not apply it: managed
    /// plugins run as root (`InitSpec` in moby's `plugin/v2/plugin_linux.go`).
    #[serde(rename(serialize = "User"))]
    pub user: User,
    /// The network namespace (`Network`).
    #[serde(rename(serialize = "Network"))]
    pub network: Network,
    /// Capabilities and devices (`Linux`).
    #[serde(rename(serialize = "Linux"))]
    pub linux: Linux,
    /// A path inside the plugin, mounted `rshared` and bind-mounted from the host's
    /// `<data-root>/plugins/<id>/propagated-mount`, so that mounts the plugin makes
    /// under it are visible to dockerd: where a volume plugin mounts volumes
    /// (`PropagatedMount`).
    #[serde(rename(serialize = "PropagatedMount"))]
    pub propagated_mount: String,
    /// Share the host's IPC namespace (`IpcHost`).
    #[serde(rename(serialize = "IpcHost"))]
    pub ipc_host: bool,
    /// Share the host's PID namespace (`PidHost`).
    #[serde(rename(serialize = "PidHost"))]
    pub pid_host: bool,
    /// Extra mounts into the plugin (`Mounts`).
    #[serde(rename(serialize = "Mounts"))]
    pub mounts: Vec<Mount>,
    /// Environment variables (`Env`).
    #[serde(rename(serialize = "Env"))]
    pub env: Vec<Env>,
    /// Arguments appended to the entrypoint (`Args`).
    #[serde(rename(serialize = "Args"))]
    pub args: Args,
    /// The plugin's layers; dockerd fills it in on `docker plugin create`
    /// (`rootfs`, lower case, omitted when absent).
    #[serde(rename(serialize = "rootfs"), skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<Rootfs>,
}

/// What the plugin implements and where dockerd reaches it (moby's
/// `PluginConfigInterface`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all(deserialize = "kebab-case"))]
pub struct Interface {
    /// The interface types, e.g. `docker.volumedriver/1.0` (`Types`).
    #[serde(rename(serialize = "Types"))]
    pub types: Vec<InterfaceType>,
    /// The socket's file name: the plugin listens on `/run/docker/plugins/<socket>`
    /// inside its rootfs, which is `/run/docker/plugins/<plugin id>/<socket>` on the
    /// host, where dockerd dials it (`Socket`).
    #[serde(rename(serialize = "Socket"))]
    pub socket: String,
    /// The protocol; empty means [`PROTOCOL_SCHEME_HTTP_V1`] (`ProtocolScheme`,
    /// omitted when empty).
    #[serde(
        rename(serialize = "ProtocolScheme"),
        skip_serializing_if = "String::is_empty"
    )]
    pub protocol_scheme: String,
}

/// One interface type, `<prefix>.<capability>/<version>` (moby's
/// `PluginInterfaceType`, now `CapabilityID`), e.g. `docker.volumedriver/1.0`.
///
/// In JSON it is one string. Decoding accepts whatever dockerd accepts (see
/// [`InterfaceType::parse_lenient`]); [`FromStr`] is strict, for input typed by a
/// person. [`PluginConfig::validate`] checks the type is one dockerd uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct InterfaceType {
    /// Always `docker` for a type dockerd looks up.
    pub prefix: String,
    /// The subsystem in lower case: `volumedriver`, `networkdriver`, `ipamdriver`,
    /// `authz`, `logdriver`, `metricscollector`, …
    pub capability: String,
    /// The plugin API version, `1.0`.
    pub version: String,
}

impl InterfaceType {
    /// A type from its three parts.
    pub fn new(
        prefix: impl Into<String>,
        capability: impl Into<String>,
        version: impl Into<String>,
    ) -> Self {
        Self {
            prefix: prefix.into(),
            capability: capability.into(),
            version: version.into(),
        }
    }

    /// `docker.<capability>/1.0`, e.g. `InterfaceType::docker("volumedriver")`.
    pub fn docker(capability: impl Into<String>) -> Self {
        Self::new("docker", capability, "1.0")
    }

    /// Parses `s` exactly as dockerd decodes an interface type (`UnmarshalText` of
    /// moby's `CapabilityID`): the version is what follows the first `/` (empty if
    /// none), the prefix what precedes the last `.` before it (empty if none), the
    /// capability the rest. It never fails; `"volume"` gives the capability `volume`
    /// with an empty prefix and version.
    pub fn parse_lenient(s: &str) -> Self {
        let (fqcap, version) = s.split_once('/').unwrap_or((s, ""));
        let (prefix, capability) = fqcap.rsplit_once('.').unwrap_or(("", fqcap));
        Self::new(prefix, capability, version)
    }

    /// Whether this is one of [`KNOWN_INTERFACE_TYPES`].
    pub fn is_known(&self) -> bool {
        KNOWN_INTERFACE_TYPES.contains(&self.to_string().as_str())
    }

    /// Why this type cannot be written as a string that decodes back to it (moby's
    /// `MarshalText` refuses the same ones), or `None`.
    fn unrepresentable(&self) -> Option<String> {
        if self.capability.contains('.') {
            Some(format!(
                "capability {} cannot contain a dot",
                go_quote(&self.capability)
            ))
        } else if self.prefix.contains('/') {
            Some(format!(
                "prefix {} cannot contain a slash",
                go_quote(&self.prefix)
            ))
        } else if self.capability.contains('/') {
            Some(format!(
                "capability {} cannot contain a slash",
                go_quote(&self.capability)
            ))
        } else {
            None
        }
    }
}

impl fmt::Display for InterfaceType {
    /// `<prefix>.<capability>/<version>`, as moby's `String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}/{}", self.prefix, self.capability, self.version)
    }
}

impl FromStr for InterfaceType {
    type Err = ConfigError;

    /// Parses `prefix.capability/version`, requiring all three parts (unlike
    /// decoding, which accepts anything dockerd does).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parsed = Self::parse_lenient(s);
        let reason = if !s.contains('/') {
            Some("missing \"/<version>\"")
        } else if parsed.prefix.is_empty() {
            Some("missing \"<prefix>.\" (\"docker.\")")
        } else if parsed.capability.is_empty() {
            Some("missing the capability")
        } else if parsed.version.is_empty() {
            Some("missing the version")
        } else if parsed.version.contains('/') {
            Some("more than one \"/\"")
        } else {
            None
        };
        match reason {
            None => Ok(parsed),
            Some(reason) => Err(ConfigError::InterfaceType {
                value: s.to_owned(),
                reason: format!(
                    "{reason}; write <prefix>.<capability>/<version>, e.g. docker.volumedriver/1.0"
                ),
            }),
        }
    }
}

impl Serialize for InterfaceType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if let Some(reason) = self.unrepresentable() {
            return Err(serde::ser::Error::custom(reason));
        }
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for InterfaceType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Self::parse_lenient(&s))
    }
}

/// The plugin's user (moby's `PluginConfigUser`). Not applied by current dockerd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all(deserialize = "kebab-case"))]
pub struct User {
    /// User ID (`UID`, omitted when 0).
    #[serde(rename(serialize = "UID"), skip_serializing_if = "is_zero")]
    pub uid: u32,
    /// Group ID (`GID`, omitted when 0).
    #[serde(rename(serialize = "GID"), skip_serializing_if = "is_zero")]
    pub gid: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The plugin's network (moby's `PluginConfigNetwork`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all(deserialize = "kebab-case"))]
pub struct Network {
    /// `host` shares the host's network namespace; anything else (`""`, `bridge`,
    /// `none`) gives the plugin a private one with only loopback, plus the host's
    /// `/etc/hosts` and `/etc/resolv.conf` when not empty (`Type`).
    #[serde(rename(serialize = "Type"))]
    pub r#type: String,
}

/// Linux settings (moby's `PluginConfigLinux`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all(deserialize = "kebab-case"))]
pub struct Linux {
    /// Capabilities added to the plugin's default set, e.g. `CAP_SYS_ADMIN`
    /// (`Capabilities`).
    #[serde(rename(serialize = "Capabilities"))]
    pub capabilities: Vec<String>,
    /// Allow `rwm` access to every device (`AllowAllDevices`).
    #[serde(rename(serialize = "AllowAllDevices"))]
    pub allow_all_devices: bool,
    /// Host devices made available to the plugin (`Devices`).
    #[serde(rename(serialize = "Devices"))]
    pub devices: Vec<Device>,
}

/// A host device (moby's `PluginDevice`). Settable field: `path`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all(deserialize = "kebab-case"))]
pub struct Device {
    /// The name `docker plugin set` refers to it by (`Name`).
    #[serde(rename(serialize = "Name"))]
    pub name: String,
    /// What it is for (`Description`).
    #[serde(rename(serialize = "Description"))]
    pub description: String,
    /// Which fields `docker plugin set` may change: only `path` is allowed
    /// (`Settable`).
    #[serde(rename(serialize = "Settable"))]
    pub settable: Vec<String>,
    /// The host device, e.g. `/dev/fuse` (`Path`, `null` when absent).
    #[serde(rename(serialize = "Path"))]
    pub path: Option<String>,
}

/// A mount into the plugin (moby's `PluginMount`). Settable field: `source`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all(deserialize = "kebab-case"))]
pub struct Mount {
    /// The name `docker plugin set` refers to it by (`Name`).
    #[serde(default, rename(serialize = "Name"))]
    pub name: String,
    /// What it is for (`Description`).
    #[serde(default, rename(serialize = "Description"))]
    pub description: String,
    /// Which fields `docker plugin set` may change: only `source` is allowed
    /// (`Settable`).
    #[serde(default, rename(serialize = "Settable"))]
    pub settable: Vec<String>,
    /// The host path (`Source`, `null` when absent).
    #[serde(default, rename(serialize = "Source"))]
    pub source: Option<String>,
    /// The path inside the plugin (`Destination`).
    #[serde(rename(serialize = "Destination"))]
    pub destination: String,
    /// The mount type, usually `bind` (`Type`).
    #[serde(default, rename(serialize = "Type"))]
    pub r#type: String,
    /// Mount options, e.g. `["rbind"]` (`Options`).
    #[serde(default, rename(serialize = "Options"))]
    pub options: Vec<String>,
}

/// An environment variable (moby's `PluginEnv`). Settable field: `value`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all(deserialize = "kebab-case"))]
pub struct Env {
    /// The variable's name (`Name`).
    #[serde(rename(serialize = "Name"))]
    pub name: String,
    /// What it is for (`Description`).
    #[serde(default, rename(serialize = "Description"))]
    pub description: String,
    /// Which fields `docker plugin set` may change: only `value` is allowed
    /// (`Settable`).
    #[serde(default, rename(serialize = "Settable"))]
    pub settable: Vec<String>,
    /// The value; the variable is not set at all when absent (`Value`, `null` when
    /// absent).
    #[serde(default, rename(serialize = "Value"))]
    pub value: Option<String>,
}

/// The arguments after the entrypoint (moby's `PluginConfigArgs`). Settable field:
/// `value` (`docker plugin set NAME args="a b"` splits at spaces).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all(deserialize = "kebab-case"))]
pub struct Args {
    /// The name `docker plugin set` refers to them by (`Name`).
    #[serde(rename(serialize = "Name"))]
    pub name: String,
    /// What they are for (`Description`).
    #[serde(rename(serialize = "Description"))]
    pub description: String,
    /// Which fields `docker plugin set` may change: only `value` is allowed
    /// (`Settable`).
    #[serde(rename(serialize = "Settable"))]
    pub settable: Vec<String>,
    /// The arguments (`Value`).
    #[serde(rename(serialize = "Value"))]
    pub value: Vec<String>,
}

/// The plugin's layers (moby's `PluginConfigRootfs`), filled in by dockerd.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rootfs {
    /// Always `layers` (`type`, omitted when empty).
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub r#type: String,
    /// The layer digests, `sha256:…` (`diff_ids`). dockerd's `docker plugin create`
    /// records the digest of the *gzipped* rootfs tar here (`CreateFromContext` in
    /// moby's `plugin/backend_linux.go`), not of the uncompressed tar.
    #[serde(rename = "diff_ids")]
    pub diff_ids: Vec<String>,
}

/// A privilege `docker plugin install` asks the user to grant (moby's
/// `PluginPrivilege`; JSON keys `Name`, `Description`, `Value`, as dockerd's
/// `/plugins/privileges` endpoint returns them and `/plugins/pull` takes them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Privilege {
    /// `network`, `host ipc namespace`, `host pid namespace`, `mount`, `device`,
    /// `allow-all-devices` or `capabilities`.
    #[serde(rename = "Name")]
    pub name: String,
    /// dockerd's description of it, e.g. `host path to mount`.
    #[serde(rename = "Description")]
    pub description: String,
    /// The values, e.g. `["host"]` or `["CAP_SYS_ADMIN"]`.
    #[serde(rename = "Value", default, deserialize_with = "null_as_empty")]
    pub value: Vec<String>,
}

fn null_as_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(deserializer)?.unwrap_or_default())
}

impl Privilege {
    fn new(name: &str, description: &str, value: Vec<String>) -> Self {
        Self {
            name: name.to_owned(),
            description: description.to_owned(),
            value,
        }
    }
}

impl fmt::Display for Privilege {
    /// The line the docker CLI prints for it (after ` - `): `network: [host]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: [{}]", self.name, self.value.join(" "))
    }
}

/// Why a config could not be decoded, encoded, validated or `set`.
///
/// The `set` variants print exactly what dockerd answers to `docker plugin set`
/// (moby's `plugin/v2/plugin.go` and `settable.go`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Not JSON (the message gives line and column), or a value that could not be
    /// decoded.
    #[error("config.json: {0}")]
    Json(#[from] serde_json::Error),
    /// A value of the wrong JSON type (dockerd: "json: cannot unmarshal …").
    #[error("config.json: {path}: expected {expected}, found {found}")]
    Type {
        /// The field, e.g. `linux.capabilities`.
        path: String,
        /// What it must be, e.g. `an array of strings`.
        expected: &'static str,
        /// What it was, e.g. `the string "CAP_SYS_ADMIN"`.
        found: String,
    },
    /// An interface type typed by a person that is not `prefix.capability/version`.
    #[error("interface type {}: {reason}", go_quote(.value))]
    InterfaceType {
        /// The text given.
        value: String,
        /// What is wrong and how to write it.
        reason: String,
    },
    /// [`PluginConfig::validate`] found problems; all of them are here.
    #[error("{}", display_problems(.problems))]
    Invalid {
        /// One entry per problem.
        problems: Vec<ConfigProblem>,
    },
    /// A `set` argument starting with `=`.
    #[error("invalid format, must be <name>[.<field>][=<value>]")]
    SetFormat {
        /// The argument.
        arg: String,
    },
    /// `set NAME=…` on an entry with more than one settable field.
    #[error("multiple fields are settable, one must be specified")]
    SetMultipleFields {
        /// The setting's name.
        name: String,
    },
    /// `set` of a field that is not settable, as `name` or `name.field`.
    #[error("{} is not settable", go_quote(.setting))]
    NotSettable {
        /// `name.field` (or `name` when no field could be determined).
        setting: String,
    },
    /// `set` of a name no env, mount, device or args entry has.
    #[error("setting {} not found in the plugin configuration", go_quote(.name))]
    SettingNotFound {
        /// The name.
        name: String,
    },
    /// `set` of a settable mount whose `source` is absent (`null`); dockerd's
    /// capital `P`.
    #[error("Plugin config has no mount source")]
    NoMountSource {
        /// The mount's name.
        name: String,
    },
    /// `set` of a settable device whose `path` is absent (`null`).
    #[error("Plugin config has no device path")]
    NoDevicePath {
        /// The device's name.
        name: String,
    },
}

fn display_problems(problems: &[ConfigProblem]) -> String {
    let mut out = match problems.len() {
        1 => "config.json has a problem:".to_owned(),
        n => format!("config.json has {n} problems:"),
    };
    for problem in problems {
        out.push_str("\n  - ");
        out.push_str(&problem.to_string());
    }
    out
}

impl PluginConfig {
    /// Decodes `config.json` the way dockerd does (see the [module docs](self)).
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        Self::from_json_value(serde_json::from_slice(bytes)?)
    }

    /// Decodes an already parsed JSON value the way dockerd does. A
    /// `serde_json::Value` keeps one value per key, in sorted order, so for keys
    /// that differ only in case this decides differently from dockerd (which takes
    /// the later one in the document); [`from_json`](Self::from_json) does not.
    pub fn from_value(value: serde_json::Value) -> Result<Self, ConfigError> {
        Self::from_json_value(decode::Json::from(value))
    }

    fn from_json_value(value: decode::Json) -> Result<Self, ConfigError> {
        let normalized = decode::normalize_config(value)?;
        // The serde-generated decoder of the normalized keys (`remote = "Self"`).
        Ok(PluginConfig::deserialize(normalized)?)
    }

    /// Encodes the config with moby's keys, indented, as a `config.json` to write.
    ///
    /// Fails only for an [`InterfaceType`] that cannot be written as a string that
    /// decodes back to it (a capability with `.` or `/`, a prefix with `/`).
    pub fn to_json_pretty(&self) -> Result<String, ConfigError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// The privileges `docker plugin install` asks to be granted, in dockerd's order:
    /// `network` (unless the type is `""`, `bridge` or `null`), `host ipc namespace`,
    /// `host pid namespace`, one `mount` per mount with a source, one `device` per
    /// device with a path, `allow-all-devices`, then `capabilities` (when any).
    ///
    /// Exactly moby's `computePrivileges` (`plugin/backend_linux.go`, now
    /// `daemon/pkg/plugin/backend_linux.go`). On `/plugins/pull` dockerd checks the
    /// list the client sends against this one and refuses the install with
    /// "incorrect privileges" (`validatePrivileges` in `plugin/manager.go`): the
    /// lengths must match, then both are sorted by name and compared by name and
    /// value, though moby's loop starts at the second entry, so the first is never
    /// compared.
    pub fn privileges(&self) -> Vec<Privilege> {
        let mut privileges = Vec::new();
        let net = self.network.r#type.as_str();
        if net != "null" && net != "bridge" && !net.is_empty() {
            privileges.push(Privilege::new(
                "network",
                "permissions to access a network",
                vec![net.to_owned()],
            ));
        }
        if self.ipc_host {
            privileges.push(Privilege::new(
                "host ipc namespace",
                "allow access to host ipc namespace",
                vec!["true".to_owned()],
            ));
        }
        if self.pid_host {
            privileges.push(Privilege::new(
                "host pid namespace",
                "allow access to host pid namespace",
                vec!["true".to_owned()],
            ));
        }
        for source in self.mounts.iter().filter_map(|m| m.source.as_ref()) {
            privileges.push(Privilege::new(
                "mount",
                "host path to mount",
                vec![source.clone()],
            ));
        }
        for path in self.linux.devices.iter().filter_map(|d| d.path.as_ref()) {
            privileges.push(Privilege::new(
                "device",
                "host device to access",
                vec![path.clone()],
            ));
        }
        if self.linux.allow_all_devices {
            privileges.push(Privilege::new(
                "allow-all-devices",
                "allow 'rwm' access to all devices",
                vec!["true".to_owned()],
            ));
        }
        if !self.linux.capabilities.is_empty() {
            privileges.push(Privilege::new(
                "capabilities",
                "list of additional capabilities required",
                self.linux.capabilities.clone(),
            ));
        }
        privileges
    }
}

impl Serialize for PluginConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The serde-generated encoder (`remote = "Self"`).
        PluginConfig::serialize(self, serializer)
    }
}

impl<'de> Deserialize<'de> for PluginConfig {
    /// Decodes the way dockerd does, from any self-describing format.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = decode::Json::deserialize(deserializer)?;
        Self::from_json_value(value).map_err(D::Error::custom)
    }
}

/// Quotes `s` the way Go's `%q` does, so messages read like dockerd's: `"a\"b"`.
///
/// ASCII is escaped exactly as Go does; other characters are escaped when they are
/// control, format or space characters, as `\uXXXX` / `\UXXXXXXXX`.
pub(crate) fn go_quote(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if !c.is_ascii() && !is_go_printable(c) => {
                let n = u32::from(c);
                let _ = if n < 0x10000 {
                    write!(out, "\\u{n:04x}")
                } else {
                    write!(out, "\\U{n:08x}")
                };
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `unicode.IsPrint` for non-ASCII characters.
fn is_go_printable(c: char) -> bool {
    !(c.is_control()
        || c.is_whitespace()
        || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}' | '\u{feff}'))
}

#[cfg(test)]
mod tests;
