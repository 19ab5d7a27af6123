//! The blocking file operations behind [`Store`](super::Store): the lock, the read
//! and the crash-safe write. They run on tokio's blocking pool.
//!
//! A save is the classic sequence: write `FILE.tmp`, `fsync` it, `rename` it over
//! `FILE`, `fsync` the directory. The rename is atomic, so a reader (or the next start
//! after a crash) sees the old file or the new one; the first fsync makes sure the
//! renamed file has its data, the second that the rename itself survives a power
//! loss. A `FILE.tmp` left by a crash
//! is never read, and the next save overwrites it.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::de::DeserializeOwned;

use super::error::StateError;

/// A state file and its two companions in the same directory.
#[derive(Debug, Clone)]
pub(super) struct StatePaths {
    /// The state: `DIR/NAME`.
    pub(super) file: PathBuf,
    /// Where a save is written before the rename: `DIR/NAME.tmp`.
    pub(super) tmp: PathBuf,
    /// Locked (`flock`) for the store's life: `DIR/NAME.lock`.
    pub(super) lock: PathBuf,
}

impl StatePaths {
    pub(super) fn new(file: PathBuf) -> Result<Self, StateError> {
        let Some(name) = file.file_name() else {
            return Err(StateError::Io {
                action: "opening",
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a state file path must end in a file name, e.g. /var/lib/myplugin/state.json",
                ),
                path: file,
            });
        };
        let sibling = |suffix: &str| {
            let mut name = OsString::from(name);
            name.push(suffix);
            file.with_file_name(name)
        };
        Ok(Self {
            tmp: sibling(".tmp"),
            lock: sibling(".lock"),
            file,
        })
    }

    /// The directory holding the three files (`.` for a bare file name).
    fn dir(&self) -> &Path {
        match self.file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        }
    }

    fn io(&self, action: &'static str) -> impl FnOnce(io::Error) -> StateError + '_ {
        move |source| StateError::Io {
            action,
            path: self.file.clone(),
            source,
        }
    }
}

/// Creates the directory if needed and takes the exclusive lock, without waiting: a
/// held lock is [`StateError::Locked`]. The lock goes with the returned file (closed
/// on drop, or by the kernel when the process dies, SIGKILL included).
pub(super) fn lock(paths: &StatePaths) -> Result<Flock<File>, StateError> {
    fs::create_dir_all(paths.dir()).map_err(paths.io("creating the directory of"))?;
    let file = open_private(&paths.lock, false).map_err(paths.io("creating the lock file of"))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(locked) => Ok(locked),
        Err((_, Errno::EWOULDBLOCK)) => Err(StateError::Locked {
            path: paths.file.clone(),
            lock: paths.lock.clone(),
        }),
        Err((_, errno)) => Err(paths.io("locking")(io::Error::from(errno))),
    }
}

/// The value in the state file, `None` when there is no file yet.
pub(super) fn load<T: DeserializeOwned>(paths: &StatePaths) -> Result<Option<T>, StateError> {
    let bytes = match fs::read(&paths.file) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(paths.io("reading")(err)),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(StateError::Corrupt {
            path: paths.file.clone(),
            problem: "the file is empty".to_owned(),
        });
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|err| StateError::Corrupt {
            path: paths.file.clone(),
            problem: err.to_string(),
        })
}

/// Replaces the state file with `bytes`, crash-safe (see the module docs). The
/// caller holds the store's lock, so `FILE.tmp` is this writer's alone.
pub(super) fn save(paths: &StatePaths, bytes: &[u8]) -> Result<(), StateError> {
    let mut tmp = open_private(&paths.tmp, true).map_err(paths.io("writing"))?;
    tmp.write_all(bytes).map_err(paths.io("writing"))?;
    tmp.sync_all().map_err(paths.io("syncing"))?;
    drop(tmp);
    fs::rename(&paths.tmp, &paths.file).map_err(paths.io("replacing"))?;
    File::open(paths.dir())
        .and_then(|dir| dir.sync_all())
        .map_err(paths.io("syncing the directory of"))
}

/// Opens `path` for writing, created readable by the owner only (state may hold
/// what a user gave as a secret option), emptied if `truncate`.
fn open_private(path: &Path, truncate: bool) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(truncate)
        .write(true)
        .mode(0o600)
        .open(path)
}
