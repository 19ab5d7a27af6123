//! One line of a log file: a JSON object per log line, in the json-file driver's shape
//! (moby v20.10.24 daemon/logger/jsonfilelog/jsonlog/jsonlog.go): `log` is the line
//! with its `\n` when it was a complete line (an unterminated last line has none),
//! `stream` is `stdout` or `stderr`, `time` is RFC 3339 with nanoseconds. Bytes that
//! are not UTF-8 are written as U+FFFD, as json-file writes them.

use std::time::SystemTime;

use docker_plugin_sdk::protocol::Timestamp;
use serde::{Deserialize, Serialize};

/// One stored log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The line, with its `\n` when complete.
    pub log: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// When dockerd read it from the container.
    pub time: Timestamp,
}

impl Record {
    /// The record of `line` (without its `\n`), written by the container on `stream`
    /// at `time`; `complete` is false for an unterminated last line.
    pub fn new(stream: &str, time: SystemTime, line: &[u8], complete: bool) -> Self {
        let mut log = String::from_utf8_lossy(line).into_owned();
        if complete {
            log.push('\n');
        }
        Self {
            log,
            stream: stream.to_owned(),
            time: time.into(),
        }
    }

    /// Its JSON line, `\n` included.
    pub fn to_line(&self) -> Vec<u8> {
        // A struct of strings and a timestamp always serializes.
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }

    /// The record a file's line holds.
    pub fn from_line(line: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(line)
    }

    /// When it was written.
    pub fn system_time(&self) -> SystemTime {
        self.time.system_time()
    }

    /// The line without its `\n`, and whether it had one.
    pub fn line(&self) -> (&[u8], bool) {
        match self.log.strip_suffix('\n') {
            Some(line) => (line.as_bytes(), true),
            None => (self.log.as_bytes(), false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_record_is_a_json_file_line() {
        let time = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let record = Record::new("stdout", time, b"hello \"you\"", true);
        assert_eq!(
            String::from_utf8(record.to_line()).unwrap(),
            "{\"log\":\"hello \\\"you\\\"\\n\",\"stream\":\"stdout\",\
             \"time\":\"2023-11-14T22:13:20.123456789Z\"}\n"
        );
        let back = Record::from_line(&record.to_line()).unwrap();
        assert_eq!(back, record);
        assert_eq!(back.line(), (&b"hello \"you\""[..], true));
        assert_eq!(back.system_time(), time);
    }

    #[test]
    fn an_unterminated_line_keeps_no_newline() {
        let record = Record::new("stderr", UNIX_EPOCH, b"no end", false);
        assert_eq!(record.line(), (&b"no end"[..], false));
    }
}
