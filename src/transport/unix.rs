//! Unix socket binding the way a plugin must do it: in dockerd's discovery directory,
//! with chosen permissions from the first moment it is visible, replacing a stale socket
//! left by a crash but never stealing one a live plugin listens on.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use crate::error::ServeError;

/// Where dockerd looks for plugin sockets.
pub const DEFAULT_SOCKET_DIR: &str = "/run/docker/plugins";

/// The longest path a unix socket address holds on Linux (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// A unix socket to bind for a plugin: `DIR/NAME.sock`.
///
/// ```no_run
/// use docker_plugin_sdk::transport::UnixSocket;
/// let listener = UnixSocket::new("myplugin")
///     .dir("/run/docker/plugins")
///     .mode(0o660)
///     .group("docker")
///     .bind()?;
/// # Ok::<(), docker_plugin_sdk::ServeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct UnixSocket {
    name: String,
    dir: PathBuf,
    mode: Option<u32>,
    group: Option<String>,
}

/// A bound unix socket; the socket file is removed when it is dropped, if this process
/// created it.
#[derive(Debug)]
pub struct BoundUnix {
    pub(crate) socket: super::Socket<UnixListener, tokio::net::UnixListener>,
    /// The path and identity of the socket file, when this process created it: the
    /// file is removed when this is dropped, after `socket` is closed.
    #[allow(dead_code)] // read by its `Drop`
    pub(crate) owned: Option<OwnedSocket>,
    pub(crate) path: Option<PathBuf>,
}

/// The socket file a server created, identified so that it is only removed while it is
/// still the same file; removed when dropped.
#[derive(Debug)]
pub(crate) struct OwnedSocket {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for OwnedSocket {
    /// Removes the socket file if it is still the one this process created.
    fn drop(&mut self) {
        match fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.dev() == self.dev && meta.ino() == self.ino => {
                if let Err(err) = fs::remove_file(&self.path) {
                    tracing::warn!(path = %self.path.display(), %err, "could not remove the socket");
                }
            }
            _ => {}
        }
    }
}

impl UnixSocket {
    /// The socket `/run/docker/plugins/NAME.sock`, mode and group left as the umask and
    /// the process make them.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            dir: PathBuf::from(DEFAULT_SOCKET_DIR),
            mode: None,
            group: None,
        }
    }

    /// Puts the socket in `dir` instead (created, with its parents, if missing).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = dir.into();
        self
    }

    /// Sets the socket's permission bits, e.g. `0o660`.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Gives the socket to this group (e.g. `docker`), so that its members may connect.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// The socket's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(format!("{}.sock", self.name))
    }

    /// Binds the socket.
    ///
    /// The socket is bound under a temporary name, given its mode and group, then renamed
    /// into place, so dockerd never sees it with the wrong permissions. A socket already at
    /// the path is replaced when nothing listens on it (a crashed plugin's), and refused
    /// with [`ServeError::SocketInUse`] when something does; anything that is not a socket
    /// is never touched ([`ServeError::NotASocket`]).
    pub fn bind(self) -> Result<crate::transport::Listener, ServeError> {
        validate_name(&self.name)?;
        let path = self.path();
        let len = path.as_os_str().len();
        if len > MAX_SOCKET_PATH {
            return Err(ServeError::PathTooLong {
                path,
                len,
                max: MAX_SOCKET_PATH,
            });
        }
        let gid = self.group.as_deref().map(resolve_group).transpose()?;
        fs::create_dir_all(&self.dir).map_err(|e| {
            ServeError::io(
                format!("creating socket directory {}", self.dir.display()),
                e,
            )
        })?;
        check_existing(&path)?;

        let staging = self
            .dir
            .join(format!(".{}.sock.{}.tmp", self.name, std::process::id()));
        if staging.as_os_str().len() > MAX_SOCKET_PATH {
            // No room for a staging name: bind in place (permissions set right after).
            return finish(bind_at(&path)?, &path, None, self.mode, gid);
        }
        remove_if_socket(&staging)?;
        let listener = bind_at(&staging)?;
        let result = finish(listener, &staging, Some(&path), self.mode, gid);
        if result.is_err() {
            let _ = fs::remove_file(&staging);
        }
        result
    }
}

fn bind_at(path: &Path) -> Result<UnixListener, ServeError> {
    UnixListener::bind(path)
        .map_err(|e| ServeError::io(format!("binding socket {}", path.display()), e))
}

/// Sets mode and group on the socket at `bound_at`, moves it to `final_path` if given.
fn finish(
    listener: UnixListener,
    bound_at: &Path,
    final_path: Option<&Path>,
    mode: Option<u32>,
    gid: Option<u32>,
) -> Result<crate::transport::Listener, ServeError> {
    if let Some(mode) = mode {
        fs::set_permissions(bound_at, fs::Permissions::from_mode(mode)).map_err(|e| {
            ServeError::io(
                format!("setting mode {mode:o} on {}", bound_at.display()),
                e,
            )
        })?;
    }
    if let Some(gid) = gid {
        std::os::unix::fs::chown(bound_at, None, Some(gid)).map_err(|e| {
            ServeError::io(format!("setting group {gid} on {}", bound_at.display()), e)
        })?;
    }
    let path = match final_path {
        Some(final_path) => {
            fs::rename(bound_at, final_path).map_err(|e| {
                ServeError::io(format!("moving socket to {}", final_path.display()), e)
            })?;
            final_path
        }
        None => bound_at,
    };
    let meta = fs::symlink_metadata(path)
        .map_err(|e| ServeError::io(format!("inspecting socket {}", path.display()), e))?;
    Ok(crate::transport::Listener {
        kind: crate::transport::ListenerKind::Unix(BoundUnix {
            socket: super::Socket::Bound(listener),
            owned: Some(OwnedSocket {
                path: path.to_path_buf(),
                dev: meta.dev(),
                ino: meta.ino(),
            }),
            path: Some(path.to_path_buf()),
        }),
    })
}

/// Refuses a live socket or a non-socket at `path`; removes a stale socket.
fn check_existing(path: &Path) -> Result<(), ServeError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ServeError::io(format!("inspecting {}", path.display()), e)),
    };
    if !meta.file_type().is_socket() {
        return Err(ServeError::NotASocket {
            path: path.to_path_buf(),
        });
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(ServeError::SocketInUse {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "replacing a stale socket");
            Ok(()) // the rename replaces it atomically
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ServeError::io(
            format!("checking whether {} is in use", path.display()),
            e,
        )),
    }
}

fn remove_if_socket(path: &Path) -> Result<(), ServeError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => fs::remove_file(path)
            .map_err(|e| ServeError::io(format!("removing {}", path.display()), e)),
        Ok(_) => Err(ServeError::NotASocket {
            path: path.to_path_buf(),
        }),
        Err(_) => Ok(()),
    }
}

fn resolve_group(group: &str) -> Result<u32, ServeError> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(ServeError::UnknownGroup {
            group: group.to_owned(),
        }),
        Err(errno) => Err(ServeError::io(
            format!("looking up group {group:?}"),
            io::Error::from(errno),
        )),
    }
}

/// Checks that a plugin name can be a file name in the plugin directories.
pub(crate) fn validate_name(name: &str) -> Result<(), ServeError> {
    let valid = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(ServeError::InvalidName {
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_not_file_names_are_refused() {
        for bad in ["", ".", "..", "a/b", ".hidden", "sp ace", "nul\0"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        for good in ["sshfs", "my-plugin_2", "vieux.sshfs"] {
            validate_name(good).unwrap();
        }
    }

    #[test]
    fn numeric_groups_need_no_lookup() {
        assert_eq!(resolve_group("0").unwrap(), 0);
        assert!(matches!(
            resolve_group("no-such-group-dps"),
            Err(ServeError::UnknownGroup { .. })
        ));
    }
}
