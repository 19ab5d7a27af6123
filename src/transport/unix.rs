//! Unix socket binding the way a plugin must do it: in dockerd's discovery directory,
//! never connectable by anyone but root and the socket's group (mode 0660, group root
//! unless told otherwise, whatever the umask), with those permissions from the first
//! moment a client can connect, replacing a stale socket left by a crash but never
//! stealing one a live plugin listens on. Claiming the path (the lock, the stale-socket
//! check) is in `claim`.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use super::claim::{SocketLock, check_existing};
use crate::error::ServeError;

/// Where dockerd looks for plugin sockets.
pub const DEFAULT_SOCKET_DIR: &str = "/run/docker/plugins";

/// The permissions of a plugin socket unless [`UnixSocket::mode`] says otherwise: read
/// and write for the owner and the group, as go-plugins-helpers sets them.
pub const DEFAULT_SOCKET_MODE: u32 = 0o660;

/// The longest path a unix socket address holds on Linux (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// A unix socket to bind for a plugin: `DIR/NAME.sock`.
///
/// By default the socket has mode 0660 and, when the plugin runs as root, group root
/// (go-plugins-helpers does the same): only root (dockerd) can connect, whatever the
/// umask. [`group`](Self::group) lets a group's members in too.
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
    mode: u32,
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
/// still the same file; removed when dropped, and then the path's lock is released.
#[derive(Debug)]
pub(crate) struct OwnedSocket {
    path: PathBuf,
    dev: u64,
    ino: u64,
    /// Released after the socket file is removed (fields drop after `drop` runs).
    _lock: SocketLock,
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
    /// The socket `/run/docker/plugins/NAME.sock`, mode 0660, group root when the
    /// plugin runs as root.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            dir: PathBuf::from(DEFAULT_SOCKET_DIR),
            mode: DEFAULT_SOCKET_MODE,
            group: None,
        }
    }

    /// Puts the socket in `dir` instead (created, with its parents, if missing). A
    /// relative `dir` is taken from the current directory when the socket is bound:
    /// the address a spec file gets is always absolute.
    ///
    /// ```
    /// use docker_plugin_sdk::transport::UnixSocket;
    /// let socket = UnixSocket::new("myplugin").dir("run");
    /// assert_eq!(socket.path(), std::env::current_dir().unwrap().join("run/myplugin.sock"));
    /// ```
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = dir.into();
        self
    }

    /// Sets the socket's permission bits (default 0660), whatever the umask. `0o666`
    /// lets every local user call the plugin, which can then mount on the host as
    /// root: only for a plugin that cannot.
    ///
    /// ```no_run
    /// use docker_plugin_sdk::transport::UnixSocket;
    /// let listener = UnixSocket::new("myplugin").mode(0o600).bind()?; // root only
    /// # Ok::<(), docker_plugin_sdk::ServeError>(())
    /// ```
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Gives the socket to this group (a name, e.g. `docker`, or a gid), so that its
    /// members may connect. Without it the group is root's when the plugin runs as root
    /// (and the process's group otherwise).
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// The socket's path (absolute).
    pub fn path(&self) -> PathBuf {
        absolute(&self.dir).join(format!("{}.sock", self.name))
    }

    /// Binds the socket.
    ///
    /// First the path is claimed: a lock (the hidden file `.NAME.sock.lock` beside the
    /// socket, held while the listener lives) makes a second instance fail with
    /// [`ServeError::SocketInUse`] instead of racing the first; a socket already at the
    /// path is replaced when nothing listens on it (a crashed plugin's), and refused
    /// with [`ServeError::SocketInUse`] when something does (checked without blocking,
    /// so a stuck owner cannot hang the start); anything that is not a socket is never
    /// touched ([`ServeError::NotASocket`]).
    ///
    /// Then the socket is bound in a private directory (`.NAME.d`, mode 0700) beside
    /// the final path, given its mode and group, and renamed into place: no client can
    /// connect before its permissions are set, and dockerd never sees it half-made.
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
        let gid = match self.group.as_deref() {
            Some(group) => Some(resolve_group(group)?),
            // Root's group, as go-plugins-helpers; a plugin not run as root keeps its own.
            None if nix::unistd::geteuid().is_root() => Some(0),
            None => None,
        };
        let dir = absolute(&self.dir);
        fs::create_dir_all(&dir).map_err(|e| {
            ServeError::io(format!("creating socket directory {}", dir.display()), e)
        })?;
        let lock = SocketLock::acquire(&path)?;
        check_existing(&path)?;

        // `.NAME.d/s` is never longer than `NAME.sock`, so it fits where the path does.
        let staging = Staging::create(dir.join(format!(".{}.d", self.name)))?;
        let bound_at = staging.dir.join("s");
        let listener = UnixListener::bind(&bound_at)
            .map_err(|e| ServeError::io(format!("binding socket {}", bound_at.display()), e))?;
        fs::set_permissions(&bound_at, fs::Permissions::from_mode(self.mode)).map_err(|e| {
            ServeError::io(
                format!("setting mode {:o} on {}", self.mode, bound_at.display()),
                e,
            )
        })?;
        if let Some(gid) = gid {
            std::os::unix::fs::chown(&bound_at, None, Some(gid)).map_err(|e| {
                ServeError::io(format!("setting group {gid} on {}", bound_at.display()), e)
            })?;
        }
        fs::rename(&bound_at, &path)
            .map_err(|e| ServeError::io(format!("moving socket to {}", path.display()), e))?;
        drop(staging);
        let meta = fs::symlink_metadata(&path)
            .map_err(|e| ServeError::io(format!("inspecting socket {}", path.display()), e))?;
        Ok(crate::transport::Listener {
            kind: crate::transport::ListenerKind::Unix(BoundUnix {
                socket: super::Socket::Bound(listener),
                owned: Some(OwnedSocket {
                    path: path.clone(),
                    dev: meta.dev(),
                    ino: meta.ino(),
                    _lock: lock,
                }),
                path: Some(path),
            }),
        })
    }
}

/// `dir` made absolute from the current directory (as it is, if that cannot be read).
fn absolute(dir: &Path) -> PathBuf {
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// The private directory a socket is bound in, removed (with what is left in it) when
/// dropped. Only the holder of the path's lock creates it, so one left by a crash is
/// removed first.
struct Staging {
    dir: PathBuf,
}

impl Staging {
    fn create(dir: PathBuf) -> Result<Self, ServeError> {
        let io_error = |e| ServeError::io(format!("creating {}", dir.display()), e);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(&dir).map_err(io_error)?,
            Ok(_) => fs::remove_file(&dir).map_err(io_error)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(e)),
        }
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io_error)?;
        let staging = Self { dir };
        // The umask may have taken bits off; the owner needs all three.
        fs::set_permissions(&staging.dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| ServeError::io(format!("creating {}", staging.dir.display()), e))?;
        Ok(staging)
    }
}

impl Drop for Staging {
    /// Once the socket has been renamed out, the directory is empty: one `rmdir`
    /// removes it (`remove_dir_all` opens and lists it first, eight more system calls
    /// on every start). What a failed bind left in it goes with `remove_dir_all`.
    fn drop(&mut self) {
        if fs::remove_dir(&self.dir).is_err() {
            let _ = fs::remove_dir_all(&self.dir);
        }
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
