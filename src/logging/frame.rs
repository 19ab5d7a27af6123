//! Log frames: the bytes dockerd writes into a log driver's FIFO, and a driver writes
//! back as the reply to `/LogDriver.ReadLogs`.
//!
//! A frame is a 4-byte big-endian length and a protobuf `LogEntry` (moby v20.10.24
//! `api/types/plugins/logdriver/entry.proto` and `io.go`: `LogEntryEncoder`,
//! `LogEntryDecoder`). The messages are declared here by hand with prost's derive, with
//! entry.proto's field numbers, so no `protoc` or build script is needed. dockerd's
//! decoder allocates whatever length a frame announces; this one refuses a length over
//! [`MAX_FRAME_LEN`] instead (dockerd's frames carry at most 16 KiB of line).

use std::future::poll_fn;
use std::pin::Pin;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, ReadBuf};

/// One log message as dockerd encodes it (entry.proto's `LogEntry`).
///
/// ```
/// use docker_plugin_sdk::logging::{LogEntry, FrameDecoder, encode_frame};
///
/// let entry = LogEntry::new("stdout", 1_700_000_000_000_000_000, b"hello".to_vec());
/// let mut decoder = FrameDecoder::new();
/// decoder.extend(&encode_frame(&entry));
/// assert_eq!(decoder.decode().unwrap(), Some(entry));
/// ```
///
/// Its JSON form (for tools and the golden files only: frames travel as protobuf) is
/// Go's encoding of the generated struct (moby v20.10.24
/// `api/types/plugins/logdriver/entry.pb.go`): snake-case keys, `omitempty`, `line` in
/// base64.
#[derive(Clone, PartialEq, Eq, Message, Serialize, Deserialize)]
pub struct LogEntry {
    /// `stdout` or `stderr`.
    #[prost(string, tag = "1")]
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// When dockerd read the line, in nanoseconds since the Unix epoch (for the pieces
    /// of a split line, the time of the first piece).
    #[prost(int64, tag = "2")]
    #[serde(default, skip_serializing_if = "is_zero")]
    pub time_nano: i64,
    /// The line, **without** its `\n` (from dockerd); a piece of it when `partial`.
    #[prost(bytes = "vec", tag = "3")]
    #[serde(
        default,
        with = "crate::protocol::go_bytes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub line: Vec<u8>,
    /// Whether this is a piece of a line dockerd split (over 16 KiB, or cut by EOF).
    #[prost(bool, tag = "4")]
    #[serde(default, skip_serializing_if = "is_false")]
    pub partial: bool,
    /// Which line the piece belongs to, and where.
    #[prost(message, optional, tag = "5")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_log_metadata: Option<PartialLogEntryMetadata>,
}

/// Where a piece of a split line belongs (entry.proto's `PartialLogEntryMetadata`,
/// filled by moby v20.10.24 `daemon/logger/copier.go`).
#[derive(Clone, PartialEq, Eq, Message, Serialize, Deserialize)]
pub struct PartialLogEntryMetadata {
    /// Whether this is the last piece (the one dockerd found the `\n` after); never set
    /// for a line cut by EOF.
    #[prost(bool, tag = "1")]
    #[serde(default, skip_serializing_if = "is_false")]
    pub last: bool,
    /// The line's ID (64 hex digits), the same in every piece.
    #[prost(string, tag = "2")]
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// The piece's position, from 1.
    #[prost(int32, tag = "3")]
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ordinal: i32,
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_zero<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl LogEntry {
    /// A whole line (not a piece).
    pub fn new(source: impl Into<String>, time_nano: i64, line: Vec<u8>) -> Self {
        Self {
            source: source.into(),
            time_nano,
            line,
            partial: false,
            partial_log_metadata: None,
        }
    }
}

/// The largest frame accepted: 1 MiB and some room for the message's other fields.
/// dockerd's own frames carry at most 16 KiB of line.
pub const MAX_FRAME_LEN: usize = (1 << 20) + 1024;

/// The length prefix of a frame.
const LEN_PREFIX: usize = 4;

/// A frame that cannot be decoded. Each names what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream ended inside a frame.
    #[error(
        "log stream ended inside a frame ({have} of {need} bytes): the writer stopped mid-frame"
    )]
    Truncated {
        /// The bytes of the frame that arrived (its length prefix included).
        have: usize,
        /// The bytes it needed.
        need: usize,
    },
    /// A length prefix over [`MAX_FRAME_LEN`].
    #[error(
        "log frame of {len} bytes is over the {MAX_FRAME_LEN}-byte limit: not a dockerd log stream, or out of step"
    )]
    TooLong {
        /// The announced length.
        len: usize,
    },
    /// A frame whose message is not a `LogEntry`.
    #[error("log frame is not a protobuf LogEntry: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// The stream could not be read.
    #[error("reading the log stream: {0}")]
    Io(#[from] std::io::Error),
}

/// Frames from bytes: feed it what arrives ([`FrameDecoder::extend`]) and take the
/// complete frames ([`FrameDecoder::decode`]); or let it read an [`AsyncRead`]
/// ([`FrameDecoder::read_frame`]). A length over [`MAX_FRAME_LEN`] is an error, not an
/// allocation.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: BytesMut,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes that arrived.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `None` until one has fully arrived.
    pub fn decode(&mut self) -> Result<Option<LogEntry>, FrameError> {
        let Some(len) = self.announced_len()? else {
            return Ok(None);
        };
        if self.buf.len() < LEN_PREFIX + len {
            self.buf.reserve(LEN_PREFIX + len - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(LEN_PREFIX);
        let message = self.buf.split_to(len);
        Ok(Some(LogEntry::decode(message.freeze())?))
    }

    /// The bytes of an incomplete frame still held.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// At the end of the stream: an error if it ended inside a frame.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let need = match self.announced_len() {
            Ok(Some(len)) => LEN_PREFIX + len,
            _ => LEN_PREFIX,
        };
        Err(FrameError::Truncated {
            have: self.buf.len(),
            need,
        })
    }

    /// The next frame read from `reader`: `Ok(None)` at the end of the stream between
    /// two frames, [`FrameError::Truncated`] at an end inside one.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use docker_plugin_sdk::logging::FrameDecoder;
    ///
    /// let bytes = b"\0\0\0\x0a\x0a\x06stdout\x1a\x00";
    /// let mut reader = &bytes[..];
    /// let mut decoder = FrameDecoder::new();
    /// let entry = decoder.read_frame(&mut reader).await.unwrap().unwrap();
    /// assert_eq!(entry.source, "stdout");
    /// assert!(decoder.read_frame(&mut reader).await.unwrap().is_none());
    /// # });
    /// ```
    pub async fn read_frame<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
    ) -> Result<Option<LogEntry>, FrameError> {
        loop {
            if let Some(entry) = self.decode()? {
                return Ok(Some(entry));
            }
            if self.read_some(reader).await? == 0 {
                self.finish()?;
                return Ok(None);
            }
        }
    }

    /// Reads what `reader` has into the buffer; 0 at the end of the stream.
    pub(crate) async fn read_some<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
    ) -> std::io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let mut read = ReadBuf::new(&mut chunk);
        poll_fn(|cx| Pin::new(&mut *reader).poll_read(cx, &mut read)).await?;
        let n = read.filled().len();
        self.buf.extend_from_slice(read.filled());
        Ok(n)
    }

    fn announced_len(&self) -> Result<Option<usize>, FrameError> {
        let Some(prefix) = self.buf.get(..LEN_PREFIX) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        if len > MAX_FRAME_LEN {
            return Err(FrameError::TooLong { len });
        }
        Ok(Some(len))
    }
}

/// One frame: the entry's length, big-endian, then the entry (what dockerd's
/// `LogEntryEncoder` writes).
pub fn encode_frame(entry: &LogEntry) -> Bytes {
    let len = entry.encoded_len();
    let mut buf = BytesMut::with_capacity(LEN_PREFIX + len);
    buf.put_u32(len as u32);
    // Cannot fail: the buffer has the room.
    let _ = entry.encode(&mut buf);
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_length_is_an_error_not_an_allocation() {
        let mut decoder = FrameDecoder::new();
        decoder.extend(&u32::MAX.to_be_bytes());
        let err = decoder.decode().unwrap_err();
        assert_eq!(
            err.to_string(),
            "log frame of 4294967295 bytes is over the 1049600-byte limit: not a dockerd log stream, or out of step"
        );
        assert!(decoder.buf.capacity() < 1024);
    }

    #[test]
    fn a_frame_arrives_in_pieces() {
        let frame = encode_frame(&LogEntry::new("stderr", 7, b"x".to_vec()));
        let mut decoder = FrameDecoder::new();
        for byte in &frame[..frame.len() - 1] {
            decoder.extend(&[*byte]);
            assert_eq!(decoder.decode().unwrap(), None);
        }
        assert_eq!(
            decoder.finish().unwrap_err().to_string(),
            format!(
                "log stream ended inside a frame ({} of {} bytes): the writer stopped mid-frame",
                frame.len() - 1,
                frame.len()
            )
        );
        decoder.extend(&frame[frame.len() - 1..]);
        assert_eq!(decoder.decode().unwrap().unwrap().line, b"x");
        decoder.finish().unwrap();
    }
}
