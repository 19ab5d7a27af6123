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
//! use docker_plugin_sdk::managed::bundle::Bundle;
//!
//! let bundle = Bundle::open("target/docker-plugin/localvol")?;
//! println!("{} asks for {:?}", bundle.config().description, bundle.config().privileges());
//! # Ok::<(), docker_plugin_sdk::managed::bundle::BundleError>(())
//! ```

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

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

/// How many symlinks [`resolve_in_rootfs`] follows before it gives up (Linux's
/// `MAXSYMLINKS`).
pub const MAX_SYMLINK_HOPS: usize = 40;

/// Where `path`, a path inside the plugin, is on the host under `rootfs`, with the
/// symlinks inside the rootfs resolved as the plugin would see them: as runc's
/// `securejoin` does.
///
/// Each component of `path` is looked up under `rootfs` with `symlink_metadata`; a
/// symlink is replaced by its target, an absolute target re-rooted at `rootfs` and a
/// relative one taken from the link's directory, and `..` never climbs above
/// `rootfs`. So the result is always under `rootfs`, even when a base rootfs has
/// `/var/run -> /run` or a link to `../../..`: writing to it cannot touch a host
/// file outside the rootfs (as long as nobody changes the rootfs meanwhile).
/// Components that do not exist are appended as they are; the last component is
/// resolved too (resolve the parent and join the file name to replace a link).
///
/// More than [`MAX_SYMLINK_HOPS`] symlinks is an error (the kind of `ELOOP`), as is
/// any error of `symlink_metadata` other than `NotFound` or `NotADirectory`.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let rootfs = dir.path();
/// std::fs::create_dir_all(rootfs.join("run"))?;
/// std::fs::create_dir_all(rootfs.join("var"))?;
/// std::os::unix::fs::symlink("/run", rootfs.join("var/run"))?;
/// let path = docker_plugin_sdk::managed::bundle::resolve_in_rootfs(rootfs, "/var/run/x.pid")?;
/// assert_eq!(path, rootfs.join("run/x.pid"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn resolve_in_rootfs(rootfs: &Path, path: &str) -> io::Result<PathBuf> {
    // The resolved components under `rootfs`, none of them a symlink.
    let mut resolved: Vec<OsString> = Vec::new();
    let mut pending: VecDeque<OsString> = VecDeque::new();
    push_front(&mut pending, Path::new(path));
    let mut hops = 0;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let mut candidate = rootfs.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&part);
        let meta = match std::fs::symlink_metadata(&candidate) {
            Ok(meta) => meta,
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.kind() == io::ErrorKind::NotADirectory =>
            {
                resolved.push(part);
                continue;
            }
            Err(e) => return Err(e),
        };
        if !meta.file_type().is_symlink() {
            resolved.push(part);
            continue;
        }
        hops += 1;
        if hops > MAX_SYMLINK_HOPS {
            return Err(io::Error::new(
                // `FilesystemLoop`, the kind of `ELOOP` (its name is not stable yet).
                io::Error::from(nix::errno::Errno::ELOOP).kind(),
                format!(
                    "{path}: more than {MAX_SYMLINK_HOPS} symlinks in {} (a symlink loop?)",
                    rootfs.display()
                ),
            ));
        }
        let target = std::fs::read_link(&candidate)?;
        if target.is_absolute() {
            resolved.clear();
        }
        push_front(&mut pending, &target);
    }
    let mut out = rootfs.to_path_buf();
    out.extend(&resolved);
    Ok(out)
}

/// Puts the `Normal` and `..` components of `path` in front of `pending`.
fn push_front(pending: &mut VecDeque<OsString>, path: &Path) {
    for component in path.components().rev() {
        match component {
            Component::Normal(name) => pending.push_front(name.to_os_string()),
            Component::ParentDir => pending.push_front(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
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

    #[test]
    fn absolute_links_are_rerooted_at_the_rootfs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("run")).expect("mkdir");
        std::fs::create_dir_all(rootfs.join("var")).expect("mkdir");
        std::os::unix::fs::symlink("/run", rootfs.join("var/run")).expect("symlink");
        // A link to a host path outside the rootfs stays inside it.
        let host = dir.path().join("host");
        std::fs::create_dir(&host).expect("mkdir");
        std::os::unix::fs::symlink(&host, rootfs.join("escape")).expect("symlink");
        assert_eq!(
            resolve_in_rootfs(&rootfs, "/var/run/docker/plugins").expect("resolve"),
            rootfs.join("run/docker/plugins")
        );
        let inside = resolve_in_rootfs(&rootfs, "/escape/f").expect("resolve");
        assert!(inside.starts_with(&rootfs), "{}", inside.display());
        assert_eq!(
            inside,
            rootfs
                .join(host.strip_prefix("/").expect("absolute"))
                .join("f")
        );
    }

    #[test]
    fn relative_links_are_taken_from_their_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rootfs = dir.path();
        std::fs::create_dir_all(rootfs.join("usr/lib")).expect("mkdir");
        std::os::unix::fs::symlink("usr/lib", rootfs.join("lib")).expect("symlink");
        std::os::unix::fs::symlink("../lib/x", rootfs.join("usr/lib/y")).expect("symlink");
        assert_eq!(
            resolve_in_rootfs(rootfs, "/lib/libc.so.6").expect("resolve"),
            rootfs.join("usr/lib/libc.so.6")
        );
        assert_eq!(
            resolve_in_rootfs(rootfs, "lib/y").expect("resolve"),
            rootfs.join("usr/lib/x")
        );
    }

    #[test]
    fn dot_dot_is_clamped_at_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("a")).expect("mkdir");
        std::os::unix::fs::symlink("../../../../etc", rootfs.join("a/up")).expect("symlink");
        assert_eq!(
            resolve_in_rootfs(&rootfs, "/../../etc/passwd").expect("resolve"),
            rootfs.join("etc/passwd")
        );
        assert_eq!(
            resolve_in_rootfs(&rootfs, "/a/up/passwd").expect("resolve"),
            rootfs.join("etc/passwd")
        );
        assert_eq!(
            resolve_in_rootfs(&rootfs, "/a/missing/../b").expect("resolve"),
            rootfs.join("a/b")
        );
    }

    #[test]
    fn a_symlink_loop_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rootfs = dir.path();
        std::os::unix::fs::symlink("/b", rootfs.join("a")).expect("symlink");
        std::os::unix::fs::symlink("a", rootfs.join("b")).expect("symlink");
        let err = resolve_in_rootfs(rootfs, "/a/x").expect_err("loop");
        assert_eq!(err.kind(), io::Error::from(nix::errno::Errno::ELOOP).kind());
        assert!(err.to_string().contains("more than 40 symlinks"), "{err}");
        std::os::unix::fs::symlink("self", rootfs.join("self")).expect("symlink");
        assert!(resolve_in_rootfs(rootfs, "/self").is_err());
    }
}
