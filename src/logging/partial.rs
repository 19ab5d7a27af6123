//! Whole lines from dockerd's pieces: [`Entry`], what a driver receives and sends back,
//! and the [`Reassembler`] that joins the pieces of a split line.
//!
//! dockerd's copier (moby v20.10.24 `daemon/logger/copier.go`) reads a container's
//! output 2 KiB at a time into a 16 KiB buffer. A line longer than the buffer, or an
//! unterminated tail at EOF, goes out in pieces: each `partial`, all with one 64-hex
//! `id`, `ordinal` 1, 2, …, the first piece's time; the piece that ends with the
//! newline has `last` (a tail cut by EOF never gets one). stdout and stderr are copied
//! by two goroutines, so pieces of both streams interleave, each with its own id.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::frame::{LogEntry, PartialLogEntryMetadata};

/// Which of the container's streams a line came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// `stdout`.
    Stdout,
    /// `stderr`.
    Stderr,
    /// Anything else (dockerd drops such entries when it reads them back).
    Other(String),
}

impl Source {
    /// The name on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
            Self::Other(name) => name,
        }
    }
}

impl From<&str> for Source {
    fn from(name: &str) -> Self {
        match name {
            "stdout" => Self::Stdout,
            "stderr" => Self::Stderr,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// One log line, its pieces joined: what a driver's consumer receives, and what
/// [`Driver::read_logs`](super::Driver::read_logs) returns.
///
/// ```
/// use std::time::SystemTime;
/// use docker_plugin_sdk::logging::{Entry, Source};
///
/// let entry = Entry::line(Source::Stdout, SystemTime::now(), "hello");
/// assert!(entry.complete);
/// assert_eq!(entry.to_frame_entry().line, b"hello\n"); // ReadLogs writes `line` verbatim
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// stdout or stderr.
    pub source: Source,
    /// When dockerd read it (for a split line, its first piece).
    pub time: SystemTime,
    /// The text, without the `\n` dockerd strips.
    pub line: Vec<u8>,
    /// Whether the line ended with a newline: `false` for a tail cut by the
    /// container's exit or by StopLogging, and for the leading parts of a line longer
    /// than [`Options::max_line`](super::Options::max_line), delivered in parts.
    pub complete: bool,
}

impl Entry {
    /// A complete line.
    pub fn line(source: Source, time: SystemTime, line: impl Into<Vec<u8>>) -> Self {
        Self {
            source,
            time,
            line: line.into(),
            complete: true,
        }
    }

    /// The frame entry for a ReadLogs reply: dockerd writes `line` verbatim, so a
    /// complete line gets its `\n` back.
    pub fn to_frame_entry(&self) -> LogEntry {
        let mut line = Vec::with_capacity(self.line.len() + 1);
        line.extend_from_slice(&self.line);
        if self.complete {
            line.push(b'\n');
        }
        LogEntry::new(self.source.as_str(), nanos(self.time), line)
    }

    /// The entry of a frame dockerd wrote, read as is (a piece stays a piece).
    pub(crate) fn from_piece(entry: LogEntry, complete: bool) -> Self {
        Self {
            source: Source::from(entry.source.as_str()),
            time: time_of(entry.time_nano),
            line: entry.line,
            complete,
        }
    }

    /// The entry as the spill file keeps it (`partial` for an incomplete line).
    pub(crate) fn to_spill_entry(&self) -> LogEntry {
        LogEntry {
            partial: !self.complete,
            ..LogEntry::new(self.source.as_str(), nanos(self.time), self.line.clone())
        }
    }

    /// An entry read back from the spill file.
    pub(crate) fn from_spill_entry(entry: LogEntry) -> Self {
        let complete = !entry.partial;
        Self::from_piece(entry, complete)
    }

    /// The bytes this entry holds, for buffer accounting.
    pub(crate) fn weight(&self) -> usize {
        self.line.len() + 64
    }
}

/// Nanoseconds since the epoch, as `time_nano` holds them.
pub(crate) fn nanos(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

/// The time of `time_nano`.
pub(crate) fn time_of(nanos: i64) -> SystemTime {
    let magnitude = Duration::from_nanos(nanos.unsigned_abs());
    if nanos >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

/// Joins the pieces of split lines, by their id, into whole [`Entry`]s.
///
/// ```
/// use docker_plugin_sdk::logging::{LogEntry, PartialLogEntryMetadata, Reassembler};
///
/// let piece = |text: &str, ordinal, last| LogEntry {
///     partial: true,
///     partial_log_metadata: Some(PartialLogEntryMetadata { last, id: "a".into(), ordinal }),
///     ..LogEntry::new("stdout", 1, text.as_bytes().to_vec())
/// };
/// let mut joiner = Reassembler::new(1 << 20);
/// assert!(joiner.push(piece("abc", 1, false)).is_empty());
/// let whole = joiner.push(piece("def", 2, true));
/// assert_eq!(whole[0].line, b"abcdef");
/// assert!(whole[0].complete);
/// ```
#[derive(Debug)]
pub struct Reassembler {
    /// Lines in progress, by piece id.
    pending: HashMap<String, Entry>,
    /// The longest line held back; a longer one is delivered in parts.
    max_line: usize,
}

impl Reassembler {
    /// A reassembler that delivers a line longer than `max_line` bytes in parts, each
    /// at most about `max_line` (`complete` only on the last).
    pub fn new(max_line: usize) -> Self {
        Self {
            pending: HashMap::new(),
            max_line: max_line.max(1),
        }
    }

    /// Takes one frame entry; returns the entries it completes (none, one, or the
    /// parts of an over-long line).
    pub fn push(&mut self, entry: LogEntry) -> Vec<Entry> {
        let metadata = match (&entry.partial, &entry.partial_log_metadata) {
            (true, Some(metadata)) => metadata.clone(),
            // A piece without metadata (or metadata on a whole line) cannot be joined:
            // as dockerd's readers do, take it as it is.
            (true, None) => return vec![Entry::from_piece(entry, false)],
            (false, _) => return vec![Entry::from_piece(entry, true)],
        };
        let PartialLogEntryMetadata { last, id, .. } = metadata;
        let mut out = Vec::new();
        let line = match self.pending.remove(&id) {
            Some(mut held) => {
                held.line.extend_from_slice(&entry.line);
                held
            }
            None => Entry::from_piece(entry, false),
        };
        let mut line = line;
        while line.line.len() > self.max_line {
            let rest = line.line.split_off(self.max_line);
            out.push(Entry {
                complete: false,
                ..line.clone()
            });
            line.line = rest;
        }
        if last {
            line.complete = true;
            out.push(line);
        } else {
            self.pending.insert(id, line);
        }
        out
    }

    /// The lines still in pieces (cut by EOF or StopLogging), oldest first, each
    /// flagged incomplete.
    pub fn finish(&mut self) -> Vec<Entry> {
        let mut rest: Vec<Entry> = self.pending.drain().map(|(_, entry)| entry).collect();
        rest.sort_by_key(|entry| entry.time);
        rest
    }

    /// How many lines are in pieces.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A piece as dockerd's copier writes it: `partial`, the id, the ordinal, `last`
    /// only on the piece that ended with the newline, the first piece's time.
    fn piece(source: &str, id: &str, ordinal: i32, last: bool, text: &str) -> LogEntry {
        LogEntry {
            partial: true,
            partial_log_metadata: Some(PartialLogEntryMetadata {
                last,
                id: id.into(),
                ordinal,
            }),
            ..LogEntry::new(source, 1_000, text.as_bytes().to_vec())
        }
    }

    #[test]
    fn a_line_in_three_pieces_comes_out_whole_with_the_first_pieces_time() {
        let mut joiner = Reassembler::new(1 << 20);
        assert!(
            joiner
                .push(piece("stdout", "a", 1, false, "one-"))
                .is_empty()
        );
        assert!(
            joiner
                .push(piece("stdout", "a", 2, false, "two-"))
                .is_empty()
        );
        let whole = joiner.push(piece("stdout", "a", 3, true, "three"));
        assert_eq!(
            whole,
            [Entry::line(Source::Stdout, time_of(1_000), "one-two-three")]
        );
        assert_eq!(joiner.pending(), 0);
    }

    #[test]
    fn a_tail_cut_by_eof_is_delivered_flagged_incomplete() {
        let mut joiner = Reassembler::new(1 << 20);
        assert!(
            joiner
                .push(piece("stdout", "a", 1, false, "no newline"))
                .is_empty()
        );
        let rest = joiner.finish();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].line, b"no newline");
        assert!(!rest[0].complete);
    }

    #[test]
    fn interleaved_stdout_and_stderr_pieces_are_joined_by_their_ids() {
        let mut joiner = Reassembler::new(1 << 20);
        assert!(
            joiner
                .push(piece("stdout", "out", 1, false, "o1"))
                .is_empty()
        );
        assert!(
            joiner
                .push(piece("stderr", "err", 1, false, "e1"))
                .is_empty()
        );
        let whole = joiner.push(LogEntry::new("stdout", 5, b"short".to_vec()));
        assert_eq!(whole[0].line, b"short");
        assert!(
            joiner
                .push(piece("stdout", "out", 2, false, "o2"))
                .is_empty()
        );
        let err = joiner.push(piece("stderr", "err", 2, true, "e2"));
        assert_eq!(
            (err[0].source.clone(), err[0].line.clone()),
            (Source::Stderr, b"e1e2".to_vec())
        );
        let out = joiner.push(piece("stdout", "out", 3, true, "o3"));
        assert_eq!(
            (out[0].source.clone(), out[0].line.clone()),
            (Source::Stdout, b"o1o2o3".to_vec())
        );
    }

    #[test]
    fn a_line_over_max_line_comes_out_in_parts_complete_on_the_last() {
        let mut joiner = Reassembler::new(4);
        let parts = joiner.push(piece("stdout", "a", 1, false, "abcdefghij"));
        let lines: Vec<_> = parts.iter().map(|e| (e.line.clone(), e.complete)).collect();
        assert_eq!(
            lines,
            [(b"abcd".to_vec(), false), (b"efgh".to_vec(), false)]
        );
        let last = joiner.push(piece("stdout", "a", 2, true, "k"));
        assert_eq!(
            (last[0].line.clone(), last[0].complete),
            (b"ijk".to_vec(), true)
        );
    }
}
