//! Reading a container's files back for `docker logs`: the records of a snapshot
//! (every file, oldest first, each up to its length when the snapshot was taken), with
//! `--since` and `--until` applied, then `--tail` (the last N of what is left).
//!
//! A line that is not a record (a torn write, a file edited by hand) is skipped with
//! a warning naming the file and the line, never the end of the read.
//!
//! The I/O is blocking: callers run it on tokio's blocking threads.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::ops::ControlFlow;
use std::time::SystemTime;

use crate::record::Record;

/// Which records a read wants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// Records before it are left out.
    pub since: Option<SystemTime>,
    /// Records after it are left out (and the read ends at the first one).
    pub until: Option<SystemTime>,
    /// Only the last N records (after `since` and `until`); `None`: all.
    pub tail: Option<usize>,
}

impl Window {
    /// Whether `record` is before `since`.
    pub fn too_early(&self, record: &Record) -> bool {
        self.since.is_some_and(|since| record.system_time() < since)
    }

    /// Whether `record` is after `until`: the end of a read.
    pub fn too_late(&self, record: &Record) -> bool {
        self.until.is_some_and(|until| record.system_time() > until)
    }
}

/// What a read went through.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadStats {
    /// Lines that were not records, skipped.
    pub skipped: u64,
}

/// Gives each record of `files` that `window` wants to `emit`, in order; `emit`
/// breaking ends the read (the reader went away).
pub fn read_files(
    files: Vec<(File, u64)>,
    window: Window,
    mut emit: impl FnMut(Record) -> ControlFlow<()>,
) -> io::Result<ReadStats> {
    let mut stats = ReadStats::default();
    // `--tail` may be any number: the buffer grows with what is read, not with N.
    let mut tail: Option<VecDeque<Record>> =
        window.tail.map(|n| VecDeque::with_capacity(n.min(1024)));
    'files: for (index, (file, len)) in files.into_iter().enumerate() {
        let mut reader = BufReader::new(file.take(len));
        let mut line = Vec::new();
        let mut number = 0u64;
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            number += 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let record = match Record::from_line(&line) {
                Ok(record) => record,
                Err(err) => {
                    stats.skipped += 1;
                    tracing::warn!(
                        file = index,
                        line = number,
                        %err,
                        "skipping a line that is not a log record"
                    );
                    continue;
                }
            };
            if window.too_early(&record) {
                continue;
            }
            if window.too_late(&record) {
                break 'files;
            }
            match &mut tail {
                Some(kept) => {
                    let limit = window.tail.unwrap_or(0);
                    if limit == 0 {
                        continue;
                    }
                    if kept.len() == limit {
                        kept.pop_front();
                    }
                    kept.push_back(record);
                }
                None => {
                    if emit(record).is_break() {
                        return Ok(stats);
                    }
                }
            }
        }
    }
    for record in tail.into_iter().flatten() {
        if emit(record).is_break() {
            break;
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{LogFiles, Rotation};
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(second: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + second)
    }

    /// Ten records, one a second, rotated every two records over five files.
    fn ten_lines(dir: &std::path::Path) -> LogFiles {
        let one = Record::new("stdout", at(0), b"line 0", true)
            .to_line()
            .len() as u64;
        let mut files = LogFiles::open(
            dir,
            Rotation {
                max_size: 2 * one,
                max_file: 5,
            },
        )
        .unwrap();
        for n in 0..10 {
            let line = format!("line {n}");
            files
                .append(&Record::new("stdout", at(n), line.as_bytes(), true))
                .unwrap();
        }
        files
    }

    fn read(files: &LogFiles, window: Window) -> (Vec<String>, ReadStats) {
        let mut got = Vec::new();
        let stats = read_files(files.snapshot().unwrap(), window, |record| {
            got.push(record.log.trim_end().to_string());
            ControlFlow::Continue(())
        })
        .unwrap();
        (got, stats)
    }

    fn lines(range: std::ops::Range<u64>) -> Vec<String> {
        range.map(|n| format!("line {n}")).collect()
    }

    #[test]
    fn everything_in_order_across_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        let files = ten_lines(dir.path());
        assert_eq!(files.snapshot().unwrap().len(), 5);
        assert_eq!(read(&files, Window::default()).0, lines(0..10));
    }

    #[test]
    fn tail_reaches_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let files = ten_lines(dir.path());
        let tail = |n| {
            read(
                &files,
                Window {
                    tail: Some(n),
                    ..Window::default()
                },
            )
            .0
        };
        assert_eq!(tail(3), lines(7..10));
        assert_eq!(tail(5), lines(5..10));
        assert_eq!(tail(0), lines(0..0));
        assert_eq!(tail(50), lines(0..10));
    }

    #[test]
    fn since_and_until_bound_the_read_and_tail_counts_what_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let files = ten_lines(dir.path());
        let window = Window {
            since: Some(at(3)),
            until: Some(at(6)),
            tail: None,
        };
        assert_eq!(read(&files, window).0, lines(3..7));
        let window = Window {
            tail: Some(2),
            ..window
        };
        assert_eq!(read(&files, window).0, lines(5..7));
        let window = Window {
            since: Some(at(8)),
            ..Window::default()
        };
        assert_eq!(read(&files, window).0, lines(8..10));
    }

    #[test]
    fn a_corrupt_line_is_skipped_with_a_warning_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = LogFiles::open(
            dir.path(),
            Rotation {
                max_size: 1_000_000,
                max_file: 1,
            },
        )
        .unwrap();
        files
            .append(&Record::new("stdout", at(0), b"before", true))
            .unwrap();
        OpenOptions::new()
            .append(true)
            .open(dir.path().join(crate::store::CURRENT))
            .unwrap()
            .write_all(b"{\"log\": not json\n\xff\xfe\n")
            .unwrap();
        files
            .append(&Record::new("stderr", at(1), b"after", true))
            .unwrap();
        let (got, stats) = read(&files, Window::default());
        assert_eq!(got, ["before", "after"]);
        assert_eq!(stats, ReadStats { skipped: 2 });
    }

    #[test]
    fn a_reader_that_goes_away_ends_the_read() {
        let dir = tempfile::tempdir().unwrap();
        let files = ten_lines(dir.path());
        let mut got = 0;
        read_files(files.snapshot().unwrap(), Window::default(), |_| {
            got += 1;
            if got == 4 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
        assert_eq!(got, 4);
    }
}
