//! The spill file of [`Overflow::Spill`](super::Overflow::Spill): entries a full buffer
//! could not hold, written as log frames to a file under the configured directory and
//! read back in order when the consumer catches up. The file is written and read with
//! `spawn_blocking`, so a slow disk never stalls the runtime's threads; it is removed
//! when dropped.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::frame::{FrameDecoder, encode_frame};
use super::partial::Entry;

/// One container's spill file.
#[derive(Debug)]
pub(crate) struct SpillFile {
    path: PathBuf,
    file: Arc<File>,
}

impl SpillFile {
    /// Creates (or empties) `dir/name.spill`.
    pub(crate) async fn create(dir: &Path, name: &str) -> std::io::Result<Self> {
        let path = dir.join(format!("{name}.spill"));
        let dir = dir.to_owned();
        let at = path.clone();
        let file = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            let file = OpenOptions::new()
                .create(true)
                .read(true)
                .append(true)
                .open(&at)?;
            // A file left by a plugin that crashed: its entries were never replayed
            // in order with the new ones, so they are dropped.
            file.set_len(0)?;
            Ok::<_, std::io::Error>(file)
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(Self {
            path,
            file: Arc::new(file),
        })
    }

    /// Appends `entry`; returns the bytes written.
    pub(crate) async fn append(&self, entry: &Entry) -> std::io::Result<u64> {
        let frame = encode_frame(&entry.to_spill_entry());
        let file = Arc::clone(&self.file);
        tokio::task::spawn_blocking(move || (&*file).write_all(&frame).map(|()| frame.len() as u64))
            .await
            .map_err(std::io::Error::other)?
    }

    /// The entries in `from..to` (whole frames), with the offset after the last one
    /// read; at most about `limit` bytes.
    pub(crate) async fn read(
        &self,
        from: u64,
        to: u64,
        limit: u64,
    ) -> std::io::Result<(Vec<Entry>, u64)> {
        let file = Arc::clone(&self.file);
        let len = (to - from).min(limit.max(1)) as usize;
        let bytes = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0; len];
            file.read_exact_at(&mut buf, from).map(|()| buf)
        })
        .await
        .map_err(std::io::Error::other)??;
        let mut decoder = FrameDecoder::new();
        decoder.extend(&bytes);
        let mut entries = Vec::new();
        while let Some(entry) = decoder.decode().map_err(std::io::Error::other)? {
            entries.push(Entry::from_spill_entry(entry));
        }
        if entries.is_empty() && to > from {
            // One frame longer than `limit`: read it whole.
            return Box::pin(self.read(from, to, limit.saturating_mul(2))).await;
        }
        let used = bytes.len() - decoder.pending();
        Ok((entries, from + used as u64))
    }

    /// Empties the file (everything in it was replayed).
    pub(crate) fn reset(&self) -> std::io::Result<()> {
        self.file.set_len(0)
    }
}

impl Drop for SpillFile {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), "cannot remove the log spill file: {err}");
        }
    }
}
