//! What dockerd's copier makes of a container's output: log entries, one per line,
//! lines over 16 KiB and an unterminated tail at EOF in pieces (moby v20.10.24
//! `daemon/logger/copier.go` `copySrc`, `daemon/logger/adapter.go` `Log`).
//!
//! The copier buffers up to 16 KiB per stream. Each complete line is one entry, without
//! its `\n`, stamped with the time it was read. When the buffer fills without a newline
//! its 16 KiB go out as a piece: `partial`, a new 64-hex id for the line's first piece,
//! ordinal 1, 2, …, every piece stamped with the first piece's time; the piece that
//! ends with the newline gets `last`. At EOF an unterminated tail goes out as one more
//! piece, never `last`.

use std::time::SystemTime;

use crate::harness::ids::random_id;
use crate::logging::{LogEntry, PartialLogEntryMetadata};

/// dockerd's copier buffer: 16 KiB per stream (`defaultBufSize`).
pub const COPIER_BUFFER: usize = 16 * 1024;

/// One stream's copier (stdout or stderr).
#[derive(Debug)]
pub(crate) struct Copier {
    source: &'static str,
    buf: Vec<u8>,
    /// The line in pieces: its id, the next ordinal, its first piece's time.
    partial: Option<(String, i32, i64)>,
}

impl Copier {
    pub(crate) fn new(source: &'static str) -> Self {
        Self {
            source,
            buf: Vec::new(),
            partial: None,
        }
    }

    /// The entries `output` completes.
    pub(crate) fn write(&mut self, output: &[u8]) -> Vec<LogEntry> {
        let mut entries = Vec::new();
        for chunk in output.chunks(COPIER_BUFFER) {
            self.buf.extend_from_slice(chunk);
            while let Some(at) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=at).take(at).collect();
                entries.push(self.line(line));
            }
            while self.buf.len() >= COPIER_BUFFER {
                let piece: Vec<u8> = self.buf.drain(..COPIER_BUFFER).collect();
                entries.push(self.piece(piece));
            }
        }
        entries
    }

    /// EOF: the unterminated tail, as a piece that is not `last`.
    pub(crate) fn close(&mut self) -> Vec<LogEntry> {
        if self.buf.is_empty() {
            return Vec::new();
        }
        let tail = std::mem::take(&mut self.buf);
        vec![self.piece(tail)]
    }

    /// A complete line: a whole entry, or the `last` piece of a split one.
    fn line(&mut self, line: Vec<u8>) -> LogEntry {
        match self.partial.take() {
            None => LogEntry::new(self.source, now(), line),
            Some((id, ordinal, time)) => LogEntry {
                partial: true,
                partial_log_metadata: Some(PartialLogEntryMetadata {
                    last: true,
                    id,
                    ordinal,
                }),
                ..LogEntry::new(self.source, time, line)
            },
        }
    }

    /// A piece of a line that has no newline yet.
    fn piece(&mut self, piece: Vec<u8>) -> LogEntry {
        let (id, ordinal, time) = self
            .partial
            .take()
            .unwrap_or_else(|| (random_id(), 1, now()));
        self.partial = Some((id.clone(), ordinal + 1, time));
        LogEntry {
            partial: true,
            partial_log_metadata: Some(PartialLogEntryMetadata {
                last: false,
                id,
                ordinal,
            }),
            ..LogEntry::new(self.source, time, piece)
        }
    }
}

/// Now, as `time_nano` (dockerd: `time.Now().UTC().UnixNano()`).
fn now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_lose_their_newline_and_long_ones_go_in_16k_pieces_with_one_id() {
        let mut copier = Copier::new("stdout");
        let mut output = b"short\n".to_vec();
        output.extend(vec![b'x'; 40_000]);
        output.extend(b"\nnext\n");
        let entries = copier.write(&output);
        let shape: Vec<_> = entries
            .iter()
            .map(|e| {
                let m = e.partial_log_metadata.as_ref();
                (e.line.len(), e.partial, m.map(|m| (m.ordinal, m.last)))
            })
            .collect();
        assert_eq!(
            shape,
            [
                (5, false, None),
                (16384, true, Some((1, false))),
                (16384, true, Some((2, false))),
                (40_000 - 32_768, true, Some((3, true))),
                (4, false, None),
            ]
        );
        let ids: Vec<_> = entries[1..4]
            .iter()
            .map(|e| e.partial_log_metadata.as_ref().unwrap().id.clone())
            .collect();
        assert!(ids.iter().all(|id| id == &ids[0] && id.len() == 64));
        assert!(
            entries[1..4]
                .iter()
                .all(|e| e.time_nano == entries[1].time_nano)
        );
    }

    #[test]
    fn an_unterminated_tail_at_eof_is_one_piece_never_last() {
        let mut copier = Copier::new("stderr");
        assert!(copier.write(b"no newline").is_empty());
        let tail = copier.close();
        let metadata = tail[0].partial_log_metadata.as_ref().unwrap();
        assert!(tail[0].partial && !metadata.last && metadata.ordinal == 1);
        assert_eq!(tail[0].line, b"no newline");
    }
}
