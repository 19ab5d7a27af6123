//! A plugin bundle on disk: the directory `docker plugin create NAME DIR` takes.
//!
//! ```text
//! DIR/config.json   the plugin's PluginConfig
//! DIR/rootfs/       the plugin's root filesystem (the entrypoint, its libraries,
//!                   /run/docker/plugins, the propagated-mount dir, …)
//! ```
//!
//! The packager writes bundles, the harness creates managed plugins from them, and
//! `push` uploads them: all through [`Bundle`] (design principle 5).
//!
//! Opening a bundle checks what `docker plugin create` checks: that `config.json`
//! decodes (dockerd's decoder, see [`PluginConfig::from_json`]) and that `rootfs` is a
//! directory. dockerd validates nothing else at create time; the packager's stricter
//! rules are [`PluginConfig::validate`], which [`Bundle::validate`] runs.
//!
//! ```no_run
//! use docker_plugin_sdk::package::bundle::Bundle;
//!
//! let bundle = Bundle::open("target/docker-plugin/localvol")?;
//! println!("{} asks for {:?}", bundle.config().description, bundle.config().privileges());
//! # Ok::<(), docker_plugin_sdk::package::bundle::BundleError>(())
//! ```

use std::io;
use std::path::{Path, PathBuf};

use super::config::{ConfigError, PluginConfig};

/// The file name of the config in a bundle.
pub const CONFIG_FILE: &str = "config.json";
/// The directory name of the root filesystem in a bundle.
pub const ROOTFS_DIR: &str = "rootfs";

/// A bundle directory whose `config.json` decoded and whose `rootfs/` exists.
#[derive(Debug, Clone)]
pub struct Bundle {
    dir: PathBuf,
    config: PluginConfig,
}

/// Why a bundle cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The directory has no `config.json`.
    #[error("{}: not a plugin bundle: config.json is missing (a bundle is a directory with config.json and rootfs/)", .dir.display())]
    MissingConfig {
        /// The bundle directory.
        dir: PathBuf,
    },
    /// The directory has no `rootfs/` directory.
    #[error("{}: not a plugin bundle: rootfs/ is missing or not a directory (a bundle is a directory with config.json and rootfs/)", .dir.display())]
    MissingRootfs {
        /// The bundle directory.
        dir: PathBuf,
    },
    /// Reading a file of the bundle failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// `config.json` does not decode, or (for [`Bundle::validate`]) breaks a rule.
    #[error("{}: {source}", .path.display())]
    Config {
        /// The `config.json` path.
        path: PathBuf,
        /// What is wrong.
        source: ConfigError,
    },
}

impl Bundle {
    /// Opens the bundle in `dir`, decoding its `config.json` as dockerd does.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, BundleError> {
        let dir = dir.as_ref().to_path_buf();
        let config_path = dir.join(CONFIG_FILE);
        let bytes = match std::fs::read(&config_path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(BundleError::MissingConfig { dir });
            }
            Err(source) => {
                return Err(BundleError::Io {
                    path: config_path,
                    source,
                });
            }
        };
        let config = PluginConfig::from_json(&bytes).map_err(|source| BundleError::Config {
            path: config_path,
            source,
        })?;
        if !dir.join(ROOTFS_DIR).is_dir() {
            return Err(BundleError::MissingRootfs { dir });
        }
        Ok(Self { dir, config })
    }

    /// Checks the config against every packaging rule ([`PluginConfig::validate`]).
    pub fn validate(&self) -> Result<(), BundleError> {
        self.config
            .validate()
            .map_err(|source| BundleError::Config {
                path: self.config_path(),
                source,
            })
    }

    /// The bundle directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `DIR/config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    /// `DIR/rootfs`.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join(ROOTFS_DIR)
    }

    /// The decoded config.
    pub fn config(&self) -> &PluginConfig {
        &self.config
    }

    /// Takes the decoded config.
    pub fn into_config(self) -> PluginConfig {
        self.config
    }

    /// Where `path`, a path inside the plugin (e.g. its entrypoint), is on the host:
    /// under `rootfs/`.
    pub fn host_path(&self, path: &str) -> PathBuf {
        self.rootfs().join(path.trim_start_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_bundle(config: &str, rootfs: bool) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(CONFIG_FILE), config).expect("write config");
        if rootfs {
            std::fs::create_dir(dir.path().join(ROOTFS_DIR)).expect("mkdir rootfs");
        }
        dir
    }

    #[test]
    fn opens_a_bundle_and_maps_paths_into_rootfs() {
        let dir = write_bundle(
            r#"{"description":"d","entrypoint":["/bin/p"],"interface":{"socket":"p.sock","types":["docker.volumedriver/1.0"]}}"#,
            true,
        );
        let bundle = Bundle::open(dir.path()).expect("open");
        assert_eq!(bundle.config().description, "d");
        assert_eq!(bundle.host_path("/bin/p"), dir.path().join("rootfs/bin/p"));
        bundle.validate().expect("valid");
    }

    #[test]
    fn missing_parts_are_named() {
        let empty = tempfile::tempdir().expect("tempdir");
        let err = Bundle::open(empty.path()).unwrap_err().to_string();
        assert!(err.contains("config.json is missing"), "{err}");

        let no_rootfs = write_bundle("{}", false);
        let err = Bundle::open(no_rootfs.path()).unwrap_err().to_string();
        assert!(err.contains("rootfs/ is missing"), "{err}");
    }

    #[test]
    fn bad_json_names_the_file() {
        let dir = write_bundle(r#"{"entrypoint": "/bin/p"}"#, true);
        let err = Bundle::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("config.json: config.json: entrypoint"),
            "{err}"
        );
    }

    #[test]
    fn validate_reports_rule_problems() {
        let dir = write_bundle(
            r#"{"interface":{"socket":"p.sock","types":["volume"]}}"#,
            true,
        );
        let bundle = Bundle::open(dir.path()).expect("decodes");
        assert!(matches!(bundle.validate(), Err(BundleError::Config { .. })));
    }
}
