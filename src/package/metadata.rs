//! `[package.metadata.docker-plugin]`: what a crate says about the plugin it builds.
//!
//! The packager turns this table (or the same keys in a standalone TOML file) into the
//! plugin's `config.json` ([`Metadata::to_config`]) and into the extra content of its
//! root filesystem (`binaries`, `files`, `dirs`, `base-rootfs`). Every table is
//! decoded with `deny_unknown_fields`, so a typo is an error naming the field and
//! its line instead of a silently ignored setting.
//!
//! The nested tables decode straight into the config's own types: `user` is
//! [`config::User`], `mounts` [`config::Mount`], `env` [`config::Env`], `args`
//! [`config::Args`], `linux` [`config::Linux`] (with its [`config::Device`]s). Their
//! serde decoders read exactly these kebab-case keys and refuse others (see
//! [`crate::managed::config`]), so the metadata cannot drift from `config.json`.
//! [`Metadata`] keeps its own fields only where the TOML differs from the config:
//!
//! - `network = "host"` is a string, not a `{ type = … }` table;
//! - `description`, `documentation` and `entrypoint` default to the package's;
//!   `workdir` is spelt as one word;
//! - `binaries`, `files`, `dirs`, `base-rootfs`, `verify` and `examples` are the
//!   packager's;
//! - `interface` is [`InterfaceMeta`]: its `types` stay text until
//!   [`Metadata::to_config`] parses them with the strict
//!   [`InterfaceType::from_str`]. [`config::Interface`] decodes them as dockerd does,
//!   which never fails and keeps only the three parts, so the error could no longer
//!   quote what was written (`volumedriver` would come back as `.volumedriver/`).
//!
//! ```toml
//! [package.metadata.docker-plugin]
//! description = "sshFS volumes"                # default: the package description
//! interface = { types = ["docker.volumedriver/1.0"], socket = "sshfs.sock" }
//! entrypoint = ["/docker-volume-sshfs"]        # default: ["/<binary>"]
//! network = "host"
//! propagated-mount = "/mnt/volumes"
//! env = [{ name = "DEBUG", settable = ["value"], value = "0" }]
//! linux = { capabilities = ["CAP_SYS_ADMIN"], devices = [{ path = "/dev/fuse" }] }
//! binaries = ["/usr/bin/sshfs", "/usr/bin/ssh"] # copied with their libraries
//!
//! # Metadata for an example of the package: `cargo docker-plugin package --example localvol`.
//! [package.metadata.docker-plugin.examples.localvol]
//! interface = { types = ["docker.volumedriver/1.0"], socket = "localvol.sock" }
//! ```
//!
//! ```
//! use docker_plugin_sdk::package::metadata::{Metadata, PackageInfo};
//!
//! let manifest = r#"
//! [package]
//! name = "myvol"
//! description = "My volumes"
//!
//! [package.metadata.docker-plugin]
//! interface = { types = ["docker.volumedriver/1.0"], socket = "myvol.sock" }
//! propagated-mount = "/mnt/volumes"
//! "#;
//! let (package, metadata) = Metadata::from_manifest_str(manifest, "Cargo.toml".as_ref(), None)?;
//! let config = metadata.to_config(&package, "myvol", "Cargo.toml".as_ref())?;
//! assert_eq!(config.description, "My volumes");
//! assert_eq!(config.entrypoint, ["/myvol"]);
//!
//! let typo = manifest.replace("propagated-mount", "propagated-mnt");
//! let err = Metadata::from_manifest_str(&typo, "Cargo.toml".as_ref(), None).unwrap_err();
//! assert!(err.to_string().contains("unknown field `propagated-mnt`"), "{err}");
//! # Ok::<(), docker_plugin_sdk::package::PackageError>(())
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;

use super::error::{IoContext, PackageError};
use super::rootfs::BundleWriter;
use crate::managed::config::{self, InterfaceType, PluginConfig};

/// The plugin's metadata: the keys of `[package.metadata.docker-plugin]`.
///
/// The nested tables are the config's own types (see the [module docs](self)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Metadata {
    /// `description` (default: the package's).
    #[serde(default)]
    pub description: Option<String>,
    /// `documentation` (default: the package's `documentation`, `homepage` or
    /// `repository`).
    #[serde(default)]
    pub documentation: Option<String>,
    /// `interface = { types = [...], socket = "x.sock", protocol-scheme = "..." }`.
    #[serde(default)]
    pub interface: InterfaceMeta,
    /// `entrypoint` (default: the binary, at `/<binary name>`).
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// `workdir`.
    #[serde(default)]
    pub workdir: Option<String>,
    /// `user = { uid, gid }`.
    #[serde(default)]
    pub user: config::User,
    /// `network`: the network type, e.g. `host` (default: none).
    #[serde(default)]
    pub network: Option<String>,
    /// `propagated-mount`: where the plugin mounts volumes, shared with the host.
    #[serde(default)]
    pub propagated_mount: Option<String>,
    /// `ipc-host`: use the host's IPC namespace.
    #[serde(default)]
    pub ipc_host: bool,
    /// `pid-host`: use the host's PID namespace.
    #[serde(default)]
    pub pid_host: bool,
    /// `mounts = [{ name, description, settable, source, destination, type, options }]`
    /// (`destination` required).
    #[serde(default)]
    pub mounts: Vec<config::Mount>,
    /// `env = [{ name, description, settable, value }]` (`name` required).
    #[serde(default)]
    pub env: Vec<config::Env>,
    /// `args = { name, description, settable, value }`: arguments after the
    /// entrypoint that `docker plugin set NAME args=...` may replace.
    #[serde(default)]
    pub args: config::Args,
    /// `linux = { capabilities, allow-all-devices, devices = [{ name, description,
    /// settable, path }] }`.
    #[serde(default)]
    pub linux: config::Linux,
    /// `binaries`: host programs copied into the rootfs at the same path, with the
    /// shared libraries they need (e.g. `/usr/bin/sshfs`).
    #[serde(default)]
    pub binaries: Vec<String>,
    /// `files = [{ source, destination }]`: extra files (source relative to the
    /// manifest's directory).
    #[serde(default)]
    pub files: Vec<FileMeta>,
    /// `dirs`: extra empty directories in the rootfs.
    #[serde(default)]
    pub dirs: Vec<String>,
    /// `base-rootfs`: a tarball (`.tar` or `.tar.gz`, relative to the manifest's
    /// directory) unpacked into the rootfs first.
    #[serde(default)]
    pub base_rootfs: Option<PathBuf>,
    /// `verify = true`: every `package` runs each program of the rootfs inside it, as
    /// `--verify` does, and fails when one does not start (for plugins whose
    /// `binaries` must run there, e.g. sshfs and ssh; needs root).
    #[serde(default)]
    pub verify: bool,
    /// `examples.NAME`: the metadata of the package's example `NAME`.
    #[serde(default)]
    pub examples: BTreeMap<String, Metadata>,
}

/// `interface = { ... }`: [`config::Interface`] with its `types` still text, parsed
/// strictly by [`Metadata::to_config`] (see the [module docs](self)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct InterfaceMeta {
    /// `types`, e.g. `["docker.volumedriver/1.0"]`.
    #[serde(default)]
    pub types: Vec<String>,
    /// `socket`: the socket's file name in `/run/docker/plugins`, e.g. `x.sock`.
    #[serde(default)]
    pub socket: String,
    /// `protocol-scheme`, e.g. `moby.plugins.http/v1`.
    #[serde(default)]
    pub protocol_scheme: Option<String>,
}

/// One entry of `files`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMeta {
    /// `source`: the file on the host (relative to the manifest's directory).
    pub source: PathBuf,
    /// `destination`: its absolute path in the rootfs.
    pub destination: String,
}

/// What the packager takes from `[package]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageInfo {
    /// `name`.
    pub name: String,
    /// `description`.
    pub description: Option<String>,
    /// `documentation`, else `homepage`, else `repository`.
    pub documentation: Option<String>,
}

/// The parts of `Cargo.toml` the packager reads; everything else is ignored.
#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    package: Option<ManifestPackage>,
}

#[derive(Deserialize)]
struct ManifestPackage {
    name: String,
    // `toml::Value`: `description.workspace = true` is not a string and means
    // "none that we can use here".
    #[serde(default)]
    description: Option<toml::Value>,
    #[serde(default)]
    documentation: Option<toml::Value>,
    #[serde(default)]
    homepage: Option<toml::Value>,
    #[serde(default)]
    repository: Option<toml::Value>,
    #[serde(default)]
    metadata: Option<ManifestMetadata>,
}

#[derive(Deserialize)]
struct ManifestMetadata {
    #[serde(default, rename = "docker-plugin")]
    docker_plugin: Option<Metadata>,
}

impl PackageInfo {
    /// Reads `[package]` from the `Cargo.toml` at `path`.
    pub fn from_manifest(path: &Path) -> Result<Self, PackageError> {
        let text = std::fs::read_to_string(path).at(path)?;
        Ok(parse_manifest(&text, path)?.0)
    }
}

fn parse_manifest(
    text: &str,
    path: &Path,
) -> Result<(PackageInfo, Option<Metadata>), PackageError> {
    let manifest: Manifest = toml::from_str(text).map_err(|e| PackageError::Metadata {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let Some(package) = manifest.package else {
        return Err(PackageError::MetadataValue {
            path: path.to_path_buf(),
            message: "no [package] table: point --manifest-path at a package's Cargo.toml, not a virtual workspace".into(),
        });
    };
    let info = PackageInfo {
        name: package.name,
        description: string(package.description),
        documentation: string(package.documentation)
            .or_else(|| string(package.homepage))
            .or_else(|| string(package.repository)),
    };
    Ok((info, package.metadata.and_then(|m| m.docker_plugin)))
}

fn string(value: Option<toml::Value>) -> Option<String> {
    match value {
        Some(toml::Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

impl Metadata {
    /// Reads `[package]` and the plugin metadata from the `Cargo.toml` at `path`:
    /// `[package.metadata.docker-plugin]`, or with `example`,
    /// `[package.metadata.docker-plugin.examples.EXAMPLE]`.
    pub fn from_manifest(
        path: &Path,
        example: Option<&str>,
    ) -> Result<(PackageInfo, Metadata), PackageError> {
        let text = std::fs::read_to_string(path).at(path)?;
        Self::from_manifest_str(&text, path, example)
    }

    /// [`from_manifest`](Self::from_manifest) on the manifest's text (`path` is only
    /// used in error messages).
    pub fn from_manifest_str(
        text: &str,
        path: &Path,
        example: Option<&str>,
    ) -> Result<(PackageInfo, Metadata), PackageError> {
        let (info, root) = parse_manifest(text, path)?;
        let missing = |what: String| PackageError::MetadataValue {
            path: path.to_path_buf(),
            message: format!(
                "no [{what}] table: add it to say what the plugin implements, e.g.\n[{what}]\ninterface = {{ types = [\"docker.volumedriver/1.0\"], socket = \"{}.sock\" }}",
                example.unwrap_or(&info.name)
            ),
        };
        let root = root.ok_or_else(|| missing(section(example)))?;
        let mut metadata = match example {
            None => root,
            Some(name) => {
                let mut root = root;
                root.examples
                    .remove(name)
                    .ok_or_else(|| missing(section(example)))?
            }
        };
        if example.is_some() && !metadata.examples.is_empty() {
            return Err(PackageError::MetadataValue {
                path: path.to_path_buf(),
                message: format!("[{}.examples]: examples cannot be nested", section(example)),
            });
        }
        if example.is_none() {
            metadata.examples.clear();
        }
        Ok((info, metadata))
    }

    /// Reads a standalone metadata file: the keys of `[package.metadata.docker-plugin]`
    /// at its top level.
    pub fn from_file(path: &Path) -> Result<Metadata, PackageError> {
        let text = std::fs::read_to_string(path).at(path)?;
        toml::from_str(&text).map_err(|e| PackageError::Metadata {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// The `config.json` for the plugin built from binary `binary` of `package`, not
    /// yet validated (see [`PluginConfig::validate`]). `path` (the manifest) is used
    /// in error messages.
    pub fn to_config(
        &self,
        package: &PackageInfo,
        binary: &str,
        path: &Path,
    ) -> Result<PluginConfig, PackageError> {
        let mut types = Vec::with_capacity(self.interface.types.len());
        for t in &self.interface.types {
            types.push(
                InterfaceType::from_str(t).map_err(|e| PackageError::MetadataValue {
                    path: path.to_path_buf(),
                    message: format!("interface.types: {e}"),
                })?,
            );
        }
        Ok(PluginConfig {
            description: self
                .description
                .clone()
                .or_else(|| package.description.clone())
                .unwrap_or_default(),
            documentation: self
                .documentation
                .clone()
                .or_else(|| package.documentation.clone())
                .unwrap_or_default(),
            interface: config::Interface {
                types,
                socket: self.interface.socket.clone(),
                protocol_scheme: self.interface.protocol_scheme.clone().unwrap_or_default(),
            },
            entrypoint: self
                .entrypoint
                .clone()
                .unwrap_or_else(|| vec![binary_path(binary)]),
            work_dir: self.workdir.clone().unwrap_or_default(),
            user: self.user,
            network: config::Network {
                r#type: self.network.clone().unwrap_or_default(),
            },
            linux: self.linux.clone(),
            propagated_mount: self.propagated_mount.clone().unwrap_or_default(),
            ipc_host: self.ipc_host,
            pid_host: self.pid_host,
            mounts: self.mounts.clone(),
            env: self.env.clone(),
            args: self.args.clone(),
            ..PluginConfig::default()
        })
    }
}

impl Metadata {
    /// The bundle of this metadata in `dir`, ready to [`write`](BundleWriter::write):
    /// `config` (from [`to_config`](Self::to_config)), the plugin's `executable` at
    /// `/<binary>`, then `binaries`, `files` and `base-rootfs` (relative to
    /// `base_dir`, the manifest's directory) and `dirs`. It is what `cargo
    /// docker-plugin package` writes once cargo has built the binary; a plugin's own
    /// test packages the binary cargo built for it the same way.
    ///
    /// ```no_run
    /// use std::path::Path;
    /// use docker_plugin_sdk::package::metadata::Metadata;
    ///
    /// let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    /// let (package, metadata) = Metadata::from_manifest(&manifest, None)?;
    /// let config = metadata.to_config(&package, "myvol", &manifest)?;
    /// let written = metadata
    ///     .bundle_writer("target/bundle", config, "myvol", "target/debug/myvol", Path::new("."))
    ///     .write()?;
    /// assert!(written.bundle.rootfs().join("myvol").is_file());
    /// # Ok::<(), docker_plugin_sdk::package::PackageError>(())
    /// ```
    pub fn bundle_writer(
        &self,
        dir: impl Into<PathBuf>,
        config: PluginConfig,
        binary: &str,
        executable: impl Into<PathBuf>,
        base_dir: &Path,
    ) -> BundleWriter {
        let mut writer = BundleWriter::new(dir, config).program(binary_path(binary), executable);
        for program in &self.binaries {
            writer = writer.host_program(program.clone());
        }
        for file in &self.files {
            writer = writer.file(file.destination.clone(), base_dir.join(&file.source));
        }
        for dir in &self.dirs {
            writer = writer.dir(dir.clone());
        }
        if let Some(base) = &self.base_rootfs {
            writer = writer.base_rootfs(base_dir.join(base));
        }
        writer
    }
}

/// Where the packager puts the plugin binary `binary` in the rootfs: `/<binary>`.
pub fn binary_path(binary: &str) -> String {
    format!("/{binary}")
}

fn section(example: Option<&str>) -> String {
    match example {
        None => "package.metadata.docker-plugin".to_owned(),
        Some(name) => format!("package.metadata.docker-plugin.examples.{name}"),
    }
}

#[cfg(test)]
mod tests;
