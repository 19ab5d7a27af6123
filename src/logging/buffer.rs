//! The bounded buffer between the task that reads a container's FIFO and the driver's
//! consumer, and [`Logs`], the consumer's end.
//!
//! dockerd writes into the FIFO synchronously: when the plugin stops reading, the
//! container blocks on its next write (moby v20.10.24 `daemon/logger/plugin_unix.go`;
//! a FIFO holds 64 KiB). So the reader never waits for the consumer: [`Queue::push`]
//! returns at once, and a full buffer applies the [`Overflow`] policy, which drops or
//! spills to disk, counting what it did. One task pushes, one consumer pops.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures_util::Stream;
use futures_util::stream::BoxStream;
use tokio::sync::Notify;

use super::counters::{ContainerCounters, Count, CounterSnapshot};
use super::options::{Options, Overflow};
use super::partial::Entry;
use super::spill::SpillFile;

/// How much of the spill file the consumer reads at once.
const REPLAY_CHUNK: u64 = 256 * 1024;

/// One container's buffer.
#[derive(Debug)]
pub(crate) struct Queue {
    state: Mutex<State>,
    ready: Notify,
    counters: ContainerCounters,
    capacity: usize,
    overflow: Overflow,
    /// Names the spill file.
    name: String,
}

#[derive(Debug, Default)]
struct State {
    entries: VecDeque<Entry>,
    bytes: usize,
    closed: bool,
    spill: Spill,
}

/// Where the spill file stands. Entries go to the file while `active`, so they stay in
/// order behind those in memory; the consumer reads `read..written` and, once it has
/// read everything and no append is in flight, ends the spill.
#[derive(Debug, Default)]
struct Spill {
    file: Option<Arc<SpillFile>>,
    active: bool,
    writing: bool,
    written: u64,
    read: u64,
}

impl Queue {
    pub(crate) fn new(name: &str, options: &Options, counters: ContainerCounters) -> Self {
        Self {
            state: Mutex::default(),
            ready: Notify::new(),
            counters,
            capacity: options.buffer,
            overflow: options.overflow.clone(),
            name: name.to_owned(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held left the state consistent (no step of it can
        // panic half-way), so a poisoned lock is taken as is.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The counters of this container.
    pub(crate) fn counters(&self) -> &ContainerCounters {
        &self.counters
    }

    /// Takes `entry` without ever waiting for the consumer (only for the spill file's
    /// disk, when spilling).
    pub(crate) async fn push(&self, entry: Entry) {
        self.counters.add(Count::Received, 1);
        let weight = entry.weight() as u64;
        let (file, max_bytes) = {
            let mut state = self.lock();
            if !state.spill.active {
                let fits = state.bytes + entry.weight() <= self.capacity;
                if fits || state.entries.is_empty() {
                    state.push(entry);
                    drop(state);
                    self.ready.notify_one();
                    return;
                }
                match &self.overflow {
                    Overflow::DropOldest => {
                        let mut dropped = 0;
                        while state.bytes + entry.weight() > self.capacity
                            && let Some(old) = state.entries.pop_front()
                        {
                            state.bytes -= old.weight();
                            dropped += 1;
                        }
                        state.push(entry);
                        drop(state);
                        self.counters.add(Count::DroppedOldest, dropped);
                        self.ready.notify_one();
                        return;
                    }
                    Overflow::DropNewest => {
                        drop(state);
                        self.counters.add(Count::DroppedNewest, 1);
                        return;
                    }
                    Overflow::Spill { .. } => state.spill.active = true,
                }
            }
            let Overflow::Spill { max_bytes, .. } = &self.overflow else {
                return;
            };
            if state.spill.written - state.spill.read + weight > *max_bytes {
                drop(state);
                self.counters.add(Count::DroppedNewest, 1);
                return;
            }
            state.spill.writing = true;
            (state.spill.file.clone(), *max_bytes)
        };
        let _ = max_bytes;
        let written = match file {
            Some(file) => file.append(&entry).await,
            None => self.create_spill_file(&entry).await,
        };
        let mut state = self.lock();
        state.spill.writing = false;
        match written {
            Ok(bytes) => {
                state.spill.written += bytes;
                drop(state);
                self.counters.add(Count::Spilled, 1);
            }
            Err(err) => {
                drop(state);
                tracing::warn!(
                    container = %self.name,
                    "cannot write to the log spill file: {err}: dropping the entry"
                );
                self.counters.add(Count::DroppedNewest, 1);
            }
        }
        self.ready.notify_one();
    }

    async fn create_spill_file(&self, entry: &Entry) -> std::io::Result<u64> {
        let Overflow::Spill { dir, .. } = &self.overflow else {
            return Err(std::io::Error::other("no spill directory"));
        };
        let file = Arc::new(SpillFile::create(dir, &self.name).await?);
        let written = file.append(entry).await;
        self.lock().spill.file = Some(file);
        written
    }

    /// No more entries will come: the consumer's stream ends once it has them all.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// The consumer's next entry, waiting for one; `None` once closed and empty.
    async fn pop(&self, replay: &mut VecDeque<Entry>) -> Option<Entry> {
        loop {
            if let Some(entry) = replay.pop_front() {
                self.counters.add(Count::Delivered, 1);
                return Some(entry);
            }
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let unread = {
                let mut state = self.lock();
                if let Some(entry) = state.entries.pop_front() {
                    state.bytes -= entry.weight();
                    drop(state);
                    self.counters.add(Count::Delivered, 1);
                    return Some(entry);
                }
                let spill = &mut state.spill;
                match &spill.file {
                    Some(file) if spill.read < spill.written => {
                        Some((Arc::clone(file), spill.read, spill.written))
                    }
                    _ => {
                        if spill.active && !spill.writing {
                            spill.active = false;
                            spill.read = 0;
                            spill.written = 0;
                            if let Some(file) = &spill.file
                                && let Err(err) = file.reset()
                            {
                                tracing::warn!(container = %self.name, "cannot empty the log spill file: {err}");
                            }
                        }
                        if state.closed && !state.spill.writing {
                            return None;
                        }
                        None
                    }
                }
            };
            match unread {
                Some((file, from, to)) => match file.read(from, to, REPLAY_CHUNK).await {
                    Ok((entries, next)) => {
                        self.lock().spill.read = next;
                        replay.extend(entries);
                    }
                    Err(err) => {
                        tracing::warn!(
                            container = %self.name,
                            "cannot read the log spill file back: {err}: skipping what it holds"
                        );
                        self.lock().spill.read = to;
                    }
                },
                None => notified.await,
            }
        }
    }
}

impl State {
    fn push(&mut self, entry: Entry) {
        self.bytes += entry.weight();
        self.entries.push_back(entry);
    }
}

/// One container's log entries, as the SDK reads them from dockerd's FIFO: whole lines,
/// their pieces joined, in order. The stream ends after the container's StopLogging
/// (once every entry read before it was taken), or after a malformed frame.
///
/// Take entries promptly: while they wait, they fill the container's buffer
/// ([`Options::buffer`]), past which the [`Overflow`] policy drops or spills them.
/// Dropping `Logs` (or never reading it) is allowed: the SDK keeps reading the FIFO,
/// and counts what it cannot keep.
pub struct Logs {
    entries: BoxStream<'static, Entry>,
    queue: Arc<Queue>,
}

impl Logs {
    pub(crate) fn new(queue: Arc<Queue>) -> Self {
        let entries = futures_util::stream::unfold(
            (Arc::clone(&queue), VecDeque::new()),
            |(queue, mut replay)| async move {
                let entry = queue.pop(&mut replay).await?;
                Some((entry, (queue, replay)))
            },
        );
        Self {
            entries: Box::pin(entries),
            queue,
        }
    }

    /// The next entry, waiting for it; `None` once the stream ended (after
    /// StopLogging, or a malformed frame). The same as `StreamExt::next`, without the
    /// import.
    pub async fn next(&mut self) -> Option<Entry> {
        std::future::poll_fn(|cx| self.entries.as_mut().poll_next(cx)).await
    }

    /// This container's counts so far: entries received, delivered, dropped, spilled.
    pub fn counters(&self) -> CounterSnapshot {
        self.queue.counters().snapshot()
    }
}

impl std::fmt::Debug for Logs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logs")
            .field("container", &self.queue.name)
            .finish_non_exhaustive()
    }
}

impl Stream for Logs {
    type Item = Entry;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Entry>> {
        self.entries.as_mut().poll_next(cx)
    }
}
