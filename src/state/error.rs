//! [`StateError`], the one error type of the state layer. Each message names the file
//! and says what to do; returned from a driver method with `?` it becomes the
//! driver's error, so the user sees the same words.

use std::io;
use std::path::PathBuf;

/// Why state could not be loaded, saved or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Reading, writing or locking the file failed.
    #[error("{action} state file {}: {source}", path.display())]
    Io {
        /// What was being done: `reading`, `writing`, `locking`, ….
        action: &'static str,
        /// The state file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// The file exists but does not hold a value of the expected type: a write made
    /// outside the store, a disk error, or a newer version of the plugin. It is left
    /// as it is.
    #[error(
        "state file {} is unreadable ({problem}); it was left untouched: restore it from \
         a backup, or move it away to start from an empty state",
        path.display()
    )]
    Corrupt {
        /// The state file.
        path: PathBuf,
        /// What is wrong, e.g. `EOF while parsing an object at line 3 column 0`.
        problem: String,
    },
    /// Another store (in this process or another) holds the file's lock.
    #[error(
        "state file {} is in use by another process (its lock {} is held): stop the \
         other instance of this plugin, or give this one its own state directory",
        path.display(),
        lock.display()
    )]
    Locked {
        /// The state file.
        path: PathBuf,
        /// Its lock file.
        lock: PathBuf,
    },
    /// The value could not be turned into JSON (a map with non-string keys, say).
    #[error("encoding the state for {}: {source}", path.display())]
    Encode {
        /// The state file.
        path: PathBuf,
        /// What failed.
        source: serde_json::Error,
    },
    /// An Unmount for an ID that holds no mount of the volume.
    #[error("volume {volume} is not mounted with ID {id}")]
    NotMounted {
        /// The volume.
        volume: String,
        /// The mount ID dockerd sent.
        id: String,
    },
}
