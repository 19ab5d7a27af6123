//! Claiming a socket path before binding it: a lock held for the server's life, so
//! that two instances starting at once cannot both take the path, and the check of a
//! socket already there (a live plugin's is never stolen, a crashed plugin's is
//! replaced), which never hangs on a live owner that does not accept.
//!
//! The lock is `flock` on a hidden file beside the socket, `.NAME.sock.lock`. dockerd's
//! discovery only looks at sockets and at `.spec` / `.json` files (moby v20.10.24
//! `pkg/plugins/discovery.go`), so the file is never taken for a plugin. It is removed
//! when the server stops; an instance that locked a file removed meanwhile sees that
//! the path now names another file, and tries again.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};

use crate::error::ServeError;

/// How many times a lock file replaced under us is tried again.
const LOCK_ATTEMPTS: usize = 8;

/// The lock on a socket path, held until dropped (then the lock file is removed).
#[derive(Debug)]
pub(crate) struct SocketLock {
    path: PathBuf,
    /// Unlocked and closed when dropped, after the file is removed.
    _file: Flock<File>,
}

impl SocketLock {
    /// Takes the lock of the socket at `socket` (the file `.NAME.sock.lock` beside it);
    /// [`ServeError::SocketInUse`] when another server holds it.
    pub(crate) fn acquire(socket: &Path) -> Result<Self, ServeError> {
        let path = lock_path(socket);
        let io_error = |e| ServeError::io(format!("locking {}", path.display()), e);
        for _ in 0..LOCK_ATTEMPTS {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .map_err(io_error)?;
            let locked = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(locked) => locked,
                Err((_, Errno::EWOULDBLOCK)) => {
                    return Err(ServeError::SocketInUse {
                        path: socket.to_path_buf(),
                    });
                }
                Err((_, errno)) => return Err(io_error(io::Error::from(errno))),
            };
            // Locked: but the file may have been removed (by the server that held it
            // and just stopped) between our open and our lock.
            let ours = locked.metadata().map_err(io_error)?;
            match fs::metadata(&path) {
                Ok(now) if now.dev() == ours.dev() && now.ino() == ours.ino() => {
                    return Ok(Self {
                        path,
                        _file: locked,
                    });
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(e)),
            }
        }
        Err(io_error(io::Error::other(
            "the lock file keeps being replaced: is another instance starting in a loop?",
        )))
    }
}

impl Drop for SocketLock {
    fn drop(&mut self) {
        if let Err(err) = fs::remove_file(&self.path) {
            tracing::debug!(path = %self.path.display(), %err, "could not remove the lock file");
        }
    }
}

/// `DIR/.NAME.sock.lock` for `DIR/NAME.sock`.
fn lock_path(socket: &Path) -> PathBuf {
    let name = socket
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    socket.with_file_name(format!(".{name}.lock"))
}

/// Refuses a live socket or a non-socket at `path`; a stale socket is left for the
/// rename to replace.
///
/// A socket is live when a connection to it succeeds, or when its backlog is full (its
/// owner is alive but not accepting): the connection is attempted without blocking, so
/// a stuck owner cannot hang the new instance.
pub(crate) fn check_existing(path: &Path) -> Result<(), ServeError> {
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
    let in_use = || ServeError::SocketInUse {
        path: path.to_path_buf(),
    };
    match connect_nonblocking(path) {
        Ok(()) | Err(Errno::EAGAIN) => Err(in_use()),
        Err(Errno::ECONNREFUSED) => {
            tracing::info!(path = %path.display(), "replacing a stale socket");
            Ok(())
        }
        Err(Errno::ENOENT) => Ok(()),
        Err(errno) => Err(ServeError::io(
            format!("checking whether {} is in use", path.display()),
            io::Error::from(errno),
        )),
    }
}

fn connect_nonblocking(path: &Path) -> Result<(), Errno> {
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let addr = UnixAddr::new(path)?;
    connect(fd.as_raw_fd(), &addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_is_exclusive_and_its_file_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("p.sock");
        let lock = SocketLock::acquire(&socket).unwrap();
        assert!(dir.path().join(".p.sock.lock").exists());
        let err = SocketLock::acquire(&socket).unwrap_err();
        assert!(matches!(err, ServeError::SocketInUse { .. }), "{err}");
        drop(lock);
        assert!(!dir.path().join(".p.sock.lock").exists());
        SocketLock::acquire(&socket).unwrap();
    }
}
