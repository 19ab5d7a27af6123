//! `docker logs` through `/LogDriver.ReadLogs`: the helpers a driver answers with
//! ([`select`] for `Since`/`Until`/`Tail`, [`ReadContext`] for `Follow`), and the
//! encoding of its entries into the reply's frames.
//!
//! dockerd passes `docker logs`' options through and applies only `Since`/`Until`
//! itself: it decodes the reply with `LogEntryDecoder`, drops entries before `Since`,
//! stops at the first after `Until`, and writes each entry's `line` **verbatim**
//! (moby v20.10.24 `daemon/logger/adapter.go` `pluginAdapterWithRead.ReadLogs`). So a
//! complete line goes back with its `\n`, and a line split into pieces gets it on its
//! last piece only. dockerd's decoder takes a frame of any length; the SDK sends a line
//! whole up to [`MAX_REPLY_PIECE`] and in pieces beyond. A follow stream is never ended
//! by dockerd: it ends at the container's StopLogging ([`ReadContext::live`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::frame::{LogEntry, PartialLogEntryMetadata, encode_frame};
use super::partial::{Entry, nanos};
use super::wire::ReadConfig;

/// The entries of a ReadLogs reply, in order.
pub type EntryStream = BoxStream<'static, Entry>;

/// The longest piece of line the SDK puts in one reply frame: 1 MiB.
pub const MAX_REPLY_PIECE: usize = 1 << 20;

/// The entries of `entries` that `config` asks for: those within `Since` and `Until`,
/// then the last `Tail` of them. Memory stays within `Tail` entries when it is set.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use docker_plugin_sdk::logging::{select, Entry, ReadConfig, Source};
///
/// let at = |s| Entry::line(Source::Stdout, UNIX_EPOCH + Duration::from_secs(s), format!("line {s}"));
/// let config = ReadConfig { tail: 2, ..ReadConfig::default() };
/// let lines: Vec<_> = select((1..=5).map(at), &config).into_iter().map(|e| e.line).collect();
/// assert_eq!(lines, [b"line 4".to_vec(), b"line 5".to_vec()]);
/// ```
pub fn select(entries: impl IntoIterator<Item = Entry>, config: &ReadConfig) -> Vec<Entry> {
    let within = entries.into_iter().filter(|e| config.includes(e.time));
    match config.tail() {
        None => within.collect(),
        Some(0) => Vec::new(),
        Some(n) => {
            let mut last = VecDeque::with_capacity(n.min(4096));
            for entry in within {
                if last.len() == n {
                    last.pop_front();
                }
                last.push_back(entry);
            }
            last.into()
        }
    }
}

/// What the SDK knows about the container a ReadLogs call is about: whether it is
/// still logging, and the entries it reads from now on, for `docker logs -f`.
///
/// Subscribed when the call arrives, before the driver reads its history: an entry
/// the SDK reads meanwhile is in [`ReadContext::live`] (and perhaps in the history too:
/// [`ReadContext::reply`] drops live entries not newer than the history's last).
pub struct ReadContext {
    live: Option<broadcast::Receiver<Entry>>,
    stopped: CancellationToken,
}

impl ReadContext {
    pub(crate) fn new(
        live: Option<broadcast::Receiver<Entry>>,
        stopped: CancellationToken,
    ) -> Self {
        Self { live, stopped }
    }

    /// Cancelled at the container's StopLogging, once the SDK has read its FIFO to the
    /// end (already cancelled for a container that is not logging).
    pub fn stopped(&self) -> CancellationToken {
        self.stopped.clone()
    }

    /// The entries the SDK reads for this container from the moment the call arrived,
    /// until its StopLogging (empty for a container that is not logging). A follower
    /// that falls more than 4096 entries behind skips the ones it missed (logged).
    pub fn live(self) -> EntryStream {
        let Some(receiver) = self.live else {
            return futures_util::stream::empty().boxed();
        };
        futures_util::stream::unfold(receiver, |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(entry) => return Some((entry, receiver)),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!("docker logs -f fell behind: {missed} entries skipped");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    }

    /// The whole reply from the driver's stored entries: [`select`] of `history`, then,
    /// with `Follow`, the [`live`](ReadContext::live) entries newer than the last of
    /// them, up to `Until`, until the container's StopLogging.
    ///
    /// ```
    /// # use docker_plugin_sdk::logging::{ReadContext, ReadLogsRequest, Entry, EntryStream};
    /// # fn stored(id: &str) -> Vec<Entry> { Vec::new() }
    /// fn read_logs(req: ReadLogsRequest, context: ReadContext) -> EntryStream {
    ///     context.reply(stored(&req.info.container_id), &req.config)
    /// }
    /// ```
    pub fn reply(
        self,
        history: impl IntoIterator<Item = Entry>,
        config: &ReadConfig,
    ) -> EntryStream {
        let history = select(history, config);
        if !config.follow {
            return futures_util::stream::iter(history).boxed();
        }
        let newest = history.last().map(|e| e.time);
        let config = *config;
        let live = self
            .live()
            .filter(move |e| std::future::ready(newest.is_none_or(|t| e.time > t)))
            .take_while(move |e| {
                std::future::ready(config.until().is_none_or(|until| e.time <= until))
            })
            .filter(move |e| std::future::ready(config.includes(e.time)));
        futures_util::stream::iter(history).chain(live).boxed()
    }
}

impl std::fmt::Debug for ReadContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadContext")
            .field("running", &!self.stopped.is_cancelled())
            .finish_non_exhaustive()
    }
}

/// The reply frames of one entry: one frame, or pieces of at most
/// [`MAX_REPLY_PIECE`] bytes with the `\n` on the last (dockerd writes each verbatim).
///
/// ```
/// use std::time::SystemTime;
/// use docker_plugin_sdk::logging::{reply_frames, Entry, FrameDecoder, Source};
///
/// let frames = reply_frames(&Entry::line(Source::Stderr, SystemTime::now(), "oops"));
/// let mut decoder = FrameDecoder::new();
/// decoder.extend(&frames[0]);
/// assert_eq!(decoder.decode().unwrap().unwrap().line, b"oops\n");
/// ```
pub fn reply_frames(entry: &Entry) -> Vec<Bytes> {
    let whole = entry.to_frame_entry();
    if whole.line.len() <= MAX_REPLY_PIECE {
        return vec![encode_frame(&whole)];
    }
    let id = piece_id();
    let pieces = whole.line.chunks(MAX_REPLY_PIECE);
    let count = pieces.len();
    pieces
        .enumerate()
        .map(|(index, piece)| {
            let last = index + 1 == count;
            encode_frame(&LogEntry {
                partial: true,
                partial_log_metadata: Some(PartialLogEntryMetadata {
                    last: last && entry.complete,
                    id: id.clone(),
                    ordinal: i32::try_from(index + 1).unwrap_or(i32::MAX),
                }),
                ..LogEntry::new(entry.source.as_str(), nanos(entry.time), piece.to_vec())
            })
        })
        .collect()
}

/// A 64-hex id for the pieces of one reply line (dockerd does not read it).
fn piece_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{:064x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The reply body: every entry's frames, in order.
pub(crate) fn frames(entries: EntryStream) -> BoxStream<'static, Bytes> {
    entries
        .flat_map(|entry| futures_util::stream::iter(reply_frames(&entry)))
        .boxed()
}
