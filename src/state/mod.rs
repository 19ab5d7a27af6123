//! State a plugin can trust across restarts and crashes. The two top complaints in
//! volume plugins' issue trackers are volumes lost after a restart and mount counts
//! that go wrong; this module gives plugin authors both pieces, ready made:
//!
//! - [`Store`]: one typed value (`T: Serialize + DeserializeOwned`) kept in memory and
//!   persisted as JSON, crash-safe: each save writes a temporary file, fsyncs it,
//!   renames it over the state file and fsyncs the directory, so after a crash
//!   (SIGKILL, power loss) the file holds the old value or the new one, never a mix.
//!   A file that does not parse is reported with its path and what is wrong, and is
//!   never replaced. Writers are serialized: in the process by the store's lock, and
//!   across processes by an `flock` on `FILE.lock` held for the store's life, so a
//!   second instance of the plugin fails to open the same state instead of silently
//!   interleaving its writes.
//! - [`MountTable`]: per-ID mount reference counts on a [`Store`]. dockerd sends one
//!   Mount per container start (and one more for `docker cp` into a running
//!   container, with the same ID), and an Unmount for each; a volume is really
//!   unmounted only when the count of every ID reaches zero. The counts survive a
//!   plugin restart, and [`MountTable::reconcile`] is the hook a driver runs at start
//!   to check what it had mounted is still real.
//!
//! File I/O runs on tokio's blocking pool (`spawn_blocking`): a slow disk never stalls
//! the other calls dockerd sends at the same time.
//!
//! ```no_run
//! use docker_plugin_sdk::state::Store;
//!
//! #[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
//! struct Volumes {
//!     names: Vec<String>,
//! }
//!
//! # async fn run() -> Result<(), docker_plugin_sdk::state::StateError> {
//! let volumes: Store<Volumes> = Store::open("/var/lib/myplugin/volumes.json").await?;
//! volumes.update(|v| v.names.push("v1".into())).await?;
//! assert!(volumes.read(|v| v.names.contains(&"v1".to_owned())));
//! # Ok(()) }
//! ```

mod error;
mod file;
mod mounts;
mod store;

pub use error::StateError;
pub use mounts::{MountTable, VolumeLock, VolumeMounts};
pub use store::Store;
