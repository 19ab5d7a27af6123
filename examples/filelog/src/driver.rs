//! The log driver: each container's entries appended to its files (`store`), and
//! `docker logs` answered from them (`read`), following the container's new entries
//! with `-f` until its StopLogging.
//!
//! The SDK reads dockerd's FIFO and hands `consume` whole lines (a line
//! over 16 KiB arrives joined); the files are written on tokio's blocking threads, in
//! batches of what is ready. A container's files have one writer at a time (a
//! `docker logs` of a stopped container makes dockerd start logging again while
//! nothing runs): the writers of one container share its open files.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::SystemTime;

use docker_plugin_sdk::logging::{
    self, Capability, Entry, EntryStream, Info, Logs, ReadContext, ReadLogsRequest, Source,
};
use docker_plugin_sdk::{Error, Result, async_trait};
use futures_util::StreamExt;

use crate::options::FileLogOptions;
use crate::read::{Window, read_files};
use crate::record::Record;
use crate::store::{self, LogFiles, Rotation};

/// How many ready entries are written in one go.
const BATCH: usize = 512;

/// Entries read from the files and not yet sent to dockerd, per `docker logs`.
const READ_AHEAD: usize = 256;

/// Log files under one directory, one subdirectory per container.
#[derive(Debug)]
pub struct FileLog {
    root: PathBuf,
    /// The open files of the containers being written, by container ID.
    open: Mutex<HashMap<String, Weak<Mutex<LogFiles>>>>,
}

impl FileLog {
    /// Files under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The directory of the container `id`; an ID that is not one path component is
    /// refused (dockerd sends 64 hex digits).
    pub fn dir_of(&self, id: &str) -> Result<PathBuf> {
        let mut parts = Path::new(id).components();
        match (parts.next(), parts.next()) {
            (Some(Component::Normal(_)), None) => Ok(self.root.join(id)),
            _ => Err(Error::new(format!(
                "container ID `{id}` is not a name filelog can use as a directory"
            ))),
        }
    }

    /// The container's open files, shared with another writer of it, or opened.
    async fn open(&self, id: &str, rotation: Rotation) -> Result<Arc<Mutex<LogFiles>>> {
        if let Some(files) = self.writing(id) {
            lock(&files).set_rotation(rotation);
            return Ok(files);
        }
        let dir = self.dir_of(id)?;
        let what = format!("opening the log files in {}", dir.display());
        let opened = blocking(what, move || LogFiles::open(&dir, rotation)).await?;
        let mut open = lock(&self.open);
        // Another writer may have opened them meanwhile: use theirs.
        if let Some(files) = open.get(id).and_then(Weak::upgrade) {
            return Ok(files);
        }
        open.retain(|_, files| files.strong_count() > 0);
        let files = Arc::new(Mutex::new(opened));
        open.insert(id.to_owned(), Arc::downgrade(&files));
        Ok(files)
    }

    /// The container's files if a writer has them open.
    fn writing(&self, id: &str) -> Option<Arc<Mutex<LogFiles>>> {
        lock(&self.open).get(id).and_then(Weak::upgrade)
    }
}

#[async_trait]
impl logging::Driver for FileLog {
    async fn validate(&self, info: &Info) -> Result<()> {
        info.options::<FileLogOptions>()?;
        // A directory that cannot be made fails `docker run` now, not each write later.
        let dir = self.dir_of(&info.container_id)?;
        let what = format!("creating the log directory {}", dir.display());
        blocking(what, move || std::fs::create_dir_all(&dir)).await
    }

    async fn consume(&self, info: Info, logs: Logs) -> Result<()> {
        let options: FileLogOptions = info.options()?;
        let rotation = Rotation {
            max_size: options.max_size.0,
            max_file: options.max_file,
        };
        let files = self.open(&info.container_id, rotation).await?;
        tracing::info!(
            container = info.name(),
            dir = %lock(&files).dir().display(),
            max_size = rotation.max_size,
            max_file = rotation.max_file,
            "writing logs"
        );
        let what = format!("writing to {}", lock(&files).dir().display());
        let mut batches = logs.ready_chunks(BATCH);
        while let Some(batch) = batches.next().await {
            let files = Arc::clone(&files);
            blocking(what.clone(), move || {
                let mut files = lock(&files);
                batch
                    .iter()
                    .try_for_each(|entry| files.append(&to_record(entry)))
            })
            .await?;
        }
        Ok(())
    }

    fn capabilities(&self) -> Capability {
        Capability { read_logs: true }
    }

    async fn read_logs(&self, req: ReadLogsRequest, context: ReadContext) -> Result<EntryStream> {
        let config = req.config;
        let dir = self.dir_of(&req.info.container_id)?;
        // The files as they are now; while a writer holds them, under its lock, so
        // that no rotation moves them half-way.
        let writer = self.writing(&req.info.container_id);
        let what = format!("reading the log files in {}", dir.display());
        let files = blocking(what, move || match writer {
            Some(files) => lock(&files).snapshot(),
            None => store::snapshot(&dir),
        })
        .await?;
        let window = Window {
            since: config.since(),
            until: config.until(),
            tail: config.tail(),
        };
        let (send, history) = tokio::sync::mpsc::channel(READ_AHEAD);
        tokio::task::spawn_blocking(move || {
            let read = read_files(files, window, |record| {
                match send.blocking_send(to_entry(&record)) {
                    Ok(()) => std::ops::ControlFlow::Continue(()),
                    Err(_) => std::ops::ControlFlow::Break(()),
                }
            });
            match read {
                Ok(stats) if stats.skipped > 0 => {
                    tracing::warn!(
                        skipped = stats.skipped,
                        "docker logs: lines that are not records were skipped"
                    );
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(%err, "docker logs: reading the files failed"),
            }
        });
        let history = tokio_stream_of(history);
        if !config.follow {
            return Ok(history.boxed());
        }
        // The live entries the files already had (the writer may have written some of
        // them before the snapshot) are those not newer than the history's last.
        let newest: Arc<Mutex<Option<SystemTime>>> = Arc::default();
        let seen = Arc::clone(&newest);
        let history = history.inspect(move |entry| {
            *lock(&seen) = Some(entry.time);
        });
        let live = context
            .live()
            .filter(move |entry| {
                let newer = lock(&newest).is_none_or(|newest| entry.time > newest);
                std::future::ready(newer)
            })
            .take_while(move |entry| {
                std::future::ready(config.until().is_none_or(|until| entry.time <= until))
            })
            .filter(move |entry| std::future::ready(config.includes(entry.time)));
        Ok(history.chain(live).boxed())
    }
}

/// The stored record of an entry.
fn to_record(entry: &Entry) -> Record {
    Record::new(
        entry.source.as_str(),
        entry.time,
        &entry.line,
        entry.complete,
    )
}

/// The entry of a stored record.
fn to_entry(record: &Record) -> Entry {
    let (line, complete) = record.line();
    Entry {
        source: Source::from(record.stream.as_str()),
        time: record.system_time(),
        line: line.to_vec(),
        complete,
    }
}

/// The entries a blocking reader sends, as a stream.
fn tokio_stream_of(
    mut receiver: tokio::sync::mpsc::Receiver<Entry>,
) -> impl futures_util::Stream<Item = Entry> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

/// `work` on tokio's blocking threads; its I/O error, saying `what` it was doing, as
/// the driver's error (what `docker logs` prints, or the plugin logs).
async fn blocking<T: Send + 'static>(
    what: String,
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(Error::new(format!(
            "filelog: {what}: {err} (check the directory given with --dir, the `logs` \
             mount of the managed plugin: it must exist and be writable)"
        ))),
        Err(err) => Err(Error::new(format!(
            "filelog: {what}: the task failed: {err}"
        ))),
    }
}

/// A lock that a panicked holder did not poison for good.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
