//! [`Store`]: a typed value in memory, persisted crash-safe as JSON on every change.
//!
//! Reads are served from memory. A change is applied to a copy, saved, and only then
//! becomes the value in memory, so memory and disk always agree: when the save fails,
//! nothing changed. The save runs on the blocking pool and owns the writer lock until
//! it is done, so a caller that stops waiting (a dropped future) cannot make memory
//! and disk disagree, nor let a second writer in mid-save.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use nix::fcntl::Flock;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::StateError;
use super::file::{self, StatePaths};

/// A typed value persisted as a JSON file, crash-safe; see the [module docs](super).
/// Cheap to clone: clones share the value and its lock.
///
/// ```no_run
/// use std::collections::BTreeMap;
/// use docker_plugin_sdk::state::Store;
///
/// # async fn run() -> Result<(), docker_plugin_sdk::state::StateError> {
/// // Volume name → size in bytes, kept in /var/lib/myplugin/sizes.json.
/// let sizes: Store<BTreeMap<String, u64>> = Store::open("/var/lib/myplugin/sizes.json").await?;
/// sizes.update(|s| s.insert("v1".into(), 1 << 30)).await?;
/// assert_eq!(sizes.read(|s| s.get("v1").copied()), Some(1 << 30));
/// # Ok(()) }
/// ```
pub struct Store<T> {
    inner: Arc<Inner<T>>,
}

struct Inner<T> {
    paths: StatePaths,
    value: RwLock<T>,
    /// Held by the one save in progress; it owns the file lock (`flock`) too.
    writer: Arc<tokio::sync::Mutex<Flock<File>>>,
}

impl<T> Clone for Store<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> std::fmt::Debug for Store<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.paths.file)
            .finish_non_exhaustive()
    }
}

impl<T> Store<T>
where
    T: Serialize + DeserializeOwned + Clone + Default + Send + Sync + 'static,
{
    /// Opens the state at `path`: creates its directory if needed, takes the lock
    /// (`PATH.lock`), and loads the value, `T::default()` when there is no file yet.
    ///
    /// Fails with [`StateError::Corrupt`] when the file does not parse (it is left as
    /// it is), and with [`StateError::Locked`] when another store holds it.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self, StateError> {
        let paths = StatePaths::new(path.into())?;
        let (paths, lock, value) = blocking(&paths.clone(), move || {
            let lock = file::lock(&paths)?;
            let value = file::load::<T>(&paths)?;
            Ok((paths, lock, value))
        })
        .await?;
        Ok(Self {
            inner: Arc::new(Inner {
                paths,
                value: RwLock::new(value.unwrap_or_default()),
                writer: Arc::new(tokio::sync::Mutex::new(lock)),
            }),
        })
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.inner.paths.file
    }

    /// Reads the value (from memory) through `f`.
    pub fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self
            .inner
            .value
            .read()
            .unwrap_or_else(PoisonError::into_inner))
    }

    /// A copy of the value.
    pub fn get(&self) -> T {
        self.read(T::clone)
    }

    /// Changes the value with `change` and saves it; returns what `change` returned.
    /// Changes are applied one at a time, in the order they were called. When the
    /// save fails, the value is unchanged (in memory and on disk).
    pub async fn update<R>(&self, change: impl FnOnce(&mut T) -> R) -> Result<R, StateError> {
        let writer = Arc::clone(&self.inner.writer).lock_owned().await;
        let mut next = self.get();
        let out = change(&mut next);
        let mut bytes = serde_json::to_vec_pretty(&next).map_err(|source| StateError::Encode {
            path: self.inner.paths.file.clone(),
            source,
        })?;
        bytes.push(b'\n');
        let inner = Arc::clone(&self.inner);
        blocking(&self.inner.paths, move || {
            let _writer = writer;
            file::save(&inner.paths, &bytes)?;
            *inner.value.write().unwrap_or_else(PoisonError::into_inner) = next;
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Replaces the value and saves it.
    pub async fn set(&self, value: T) -> Result<(), StateError> {
        self.update(|current| *current = value).await
    }
}

/// Runs `f` on the blocking pool.
async fn blocking<R: Send + 'static>(
    paths: &StatePaths,
    f: impl FnOnce() -> Result<R, StateError> + Send + 'static,
) -> Result<R, StateError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        // A panic in std's file calls, or a runtime shutting down before the task ran
        // (then nothing was written).
        Err(err) => Err(StateError::Io {
            action: "saving",
            path: paths.file.clone(),
            source: std::io::Error::other(err),
        }),
    }
}
