//! How the SDK buffers a container's logs for the driver: [`Options`] (buffer size,
//! what happens when it is full, how long StopLogging waits for the driver) given to
//! [`Plugin::logging_with`](crate::Plugin::logging_with).

use std::path::PathBuf;
use std::time::Duration;

use super::counters::LogCounters;

/// What the SDK does with a new entry when a container's buffer is full (the driver's
/// consumer is slower than the container, or gone). The FIFO is read on in every case:
/// dockerd is never blocked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overflow {
    /// Drop the oldest buffered entries to make room (counted in
    /// [`CounterSnapshot::dropped_oldest`](super::CounterSnapshot::dropped_oldest)).
    /// The default: the newest lines usually say why a container failed.
    DropOldest,
    /// Drop the new entry (counted in
    /// [`CounterSnapshot::dropped_newest`](super::CounterSnapshot::dropped_newest)).
    DropNewest,
    /// Write new entries to a file under `dir` and replay them, in order, when the
    /// consumer catches up. Past `max_bytes` of unreplayed entries on disk (or when
    /// the disk fails) new entries are dropped and counted as `dropped_newest`. The
    /// file is removed when the container's stream ends.
    Spill {
        /// Where the spill files go (one per container, created when needed).
        dir: PathBuf,
        /// The most bytes of entries a container may have on disk.
        max_bytes: u64,
    },
}

/// The SDK's log-buffering settings.
///
/// ```
/// use std::time::Duration;
/// use docker_plugin_sdk::logging::{Options, Overflow};
///
/// let options = Options::new()
///     .buffer(16 << 20)
///     .overflow(Overflow::Spill { dir: "/var/lib/mylogs/spill".into(), max_bytes: 1 << 30 })
///     .flush_timeout(Duration::from_secs(5));
/// assert_eq!(options.buffer_bytes(), 16 << 20);
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) buffer: usize,
    pub(crate) overflow: Overflow,
    pub(crate) flush_timeout: Duration,
    pub(crate) max_line: usize,
    pub(crate) counters: LogCounters,
}

/// The default buffer: 8 MiB per container.
pub const DEFAULT_BUFFER: usize = 8 << 20;
/// The default flush timeout: 5 s (dockerd waits for StopLogging with no deadline, but
/// `docker stop` and `docker rm` wait for it).
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// The default longest line held back while its pieces arrive: 1 MiB.
pub const DEFAULT_MAX_LINE: usize = 1 << 20;

impl Default for Options {
    fn default() -> Self {
        Self {
            buffer: DEFAULT_BUFFER,
            overflow: Overflow::DropOldest,
            flush_timeout: DEFAULT_FLUSH_TIMEOUT,
            max_line: DEFAULT_MAX_LINE,
            counters: LogCounters::new(),
        }
    }
}

impl Options {
    /// The defaults: [`DEFAULT_BUFFER`], [`Overflow::DropOldest`],
    /// [`DEFAULT_FLUSH_TIMEOUT`], [`DEFAULT_MAX_LINE`].
    pub fn new() -> Self {
        Self::default()
    }

    /// How many bytes of entries each container's buffer holds before [`Overflow`]
    /// applies (each entry counts its line and 64 bytes). One entry is always taken,
    /// whatever its size.
    pub fn buffer(mut self, bytes: usize) -> Self {
        self.buffer = bytes;
        self
    }

    /// What happens to entries when the buffer is full.
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// How long StopLogging waits for the driver's consumer to finish the container's
    /// entries before it replies (the consumer is then cancelled, the entries it had
    /// not taken are lost, and a warning says how many).
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }

    /// The longest line held back while its pieces arrive; a longer one is delivered
    /// in parts of this size, all but the last with `complete: false`.
    pub fn max_line(mut self, bytes: usize) -> Self {
        self.max_line = bytes.max(1);
        self
    }

    /// Adds the plugin's counts to `counters` (every container's, summed).
    pub fn counters(mut self, counters: &LogCounters) -> Self {
        self.counters = counters.clone();
        self
    }

    /// The buffer size, in bytes.
    pub fn buffer_bytes(&self) -> usize {
        self.buffer
    }
}
