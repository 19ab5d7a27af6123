//! A container's log files: `DIR/<container id>/container.log` is written to, and
//! rotated to `container.log.1` when the next record would take it past `max-size`
//! (`.1` becoming `.2`, …, the oldest beyond `max-file` files removed), as Docker's
//! json-file driver names them (moby v20.10.24 daemon/logger/loggerutils/logfile.go
//! `rotate`). A file exceeds `max-size` only when one record alone does.
//!
//! Files are opened to append, never truncated: a container started again (and a
//! `docker logs` of a stopped one, for which dockerd starts logging again) adds to
//! what is there. A file left ending in the middle of a line (a crash while writing)
//! gets a `\n` first, so that the broken line stays one line the reader skips.
//!
//! The I/O is blocking: callers run it on tokio's blocking threads.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::record::Record;

/// The name of the file written to.
pub const CURRENT: &str = "container.log";

/// When files rotate and how many are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// The size past which the file is rotated.
    pub max_size: u64,
    /// How many files are kept, the current one included (at least 1).
    pub max_file: u32,
}

/// The files of one container, open for appending.
#[derive(Debug)]
pub struct LogFiles {
    dir: PathBuf,
    rotation: Rotation,
    file: File,
    size: u64,
}

impl LogFiles {
    /// Opens (creating them if needed) the files in `dir`.
    pub fn open(dir: &Path, rotation: Rotation) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let mut file = open_append(&dir.join(CURRENT))?;
        let mut size = file.metadata()?.len();
        if size > 0 && !ends_with_newline(&mut file, size)? {
            file.write_all(b"\n")?;
            size += 1;
        }
        Ok(Self {
            dir: dir.to_owned(),
            rotation,
            file,
            size,
        })
    }

    /// The directory of the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Changes the rotation (the options of a later StartLogging); it applies from the
    /// next record on.
    pub fn set_rotation(&mut self, rotation: Rotation) {
        self.rotation = rotation;
    }

    /// Appends `record`, rotating first when it would not fit.
    pub fn append(&mut self, record: &Record) -> io::Result<()> {
        let line = record.to_line();
        let len = line.len() as u64;
        if self.size > 0 && self.size + len > self.rotation.max_size {
            self.rotate()?;
        }
        self.file.write_all(&line)?;
        self.size += len;
        Ok(())
    }

    /// `container.log` becomes `.1`, `.1` becomes `.2`, …; the files past `max-file`
    /// are removed; a new `container.log` is started.
    fn rotate(&mut self) -> io::Result<()> {
        let keep = self.rotation.max_file.max(1);
        // Files beyond what is kept (also after max-file was lowered).
        for n in (keep..).take_while(|n| rotated(&self.dir, *n).exists()) {
            remove_if_there(&rotated(&self.dir, n))?;
        }
        let current = self.dir.join(CURRENT);
        if keep == 1 {
            remove_if_there(&current)?;
        } else {
            for n in (1..keep - 1).rev() {
                let from = rotated(&self.dir, n);
                if from.exists() {
                    fs::rename(&from, rotated(&self.dir, n + 1))?;
                }
            }
            fs::rename(&current, rotated(&self.dir, 1))?;
        }
        self.file = open_append(&current)?;
        self.size = 0;
        Ok(())
    }

    /// The files, oldest first, each opened now with its length now: what a reader
    /// reads, unchanged by the rotations and appends that follow.
    pub fn snapshot(&self) -> io::Result<Vec<(File, u64)>> {
        snapshot(&self.dir)
    }
}

/// The files in `dir`, oldest first, each opened now with its length now (see
/// [`LogFiles::snapshot`]; without a writer, nothing moves them). A file removed
/// between the listing and its opening (a rotation) is left out.
pub fn snapshot(dir: &Path) -> io::Result<Vec<(File, u64)>> {
    let mut files = Vec::new();
    for path in existing_files(dir) {
        match File::open(path) {
            Ok(file) => {
                let len = file.metadata()?.len();
                files.push((file, len));
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
    }
    Ok(files)
}

/// The files in `dir`, oldest first (`container.log.N`, …, `.1`, `container.log`);
/// numbering stops at the first gap.
pub fn existing_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = (1..)
        .map(|n| rotated(dir, n))
        .take_while(|path| path.exists())
        .collect();
    files.reverse();
    let current = dir.join(CURRENT);
    if current.exists() {
        files.push(current);
    }
    files
}

/// `container.log.N`.
fn rotated(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("{CURRENT}.{n}"))
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
}

fn ends_with_newline(file: &mut File, size: u64) -> io::Result<bool> {
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(size - 1))?;
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

fn remove_if_there(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn record(text: &str) -> Record {
        Record::new("stdout", UNIX_EPOCH, text.as_bytes(), true)
    }

    /// The files in `dir`, rotated past `max_size`, `max_file` kept.
    fn open(dir: &Path, max_size: u64, max_file: u32) -> LogFiles {
        LogFiles::open(dir, Rotation { max_size, max_file }).unwrap()
    }

    /// The logs of each file, oldest file first.
    fn contents(dir: &Path) -> Vec<Vec<String>> {
        existing_files(dir)
            .iter()
            .map(|path| {
                fs::read_to_string(path)
                    .unwrap()
                    .lines()
                    .map(|l| Record::from_line(l.as_bytes()).unwrap().log)
                    .collect()
            })
            .collect()
    }

    fn names(dir: &Path) -> Vec<String> {
        existing_files(dir)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_file_rotates_when_the_next_record_would_pass_max_size() {
        let dir = tempfile::tempdir().unwrap();
        let one = record("aaaa").to_line().len() as u64;
        // Room for exactly two records.
        let rotation = Rotation {
            max_size: 2 * one,
            max_file: 3,
        };
        let mut files = LogFiles::open(dir.path(), rotation).unwrap();
        files.append(&record("aaaa")).unwrap();
        files.append(&record("bbbb")).unwrap();
        assert_eq!(names(dir.path()), ["container.log"]);
        assert_eq!(
            fs::metadata(dir.path().join(CURRENT)).unwrap().len(),
            2 * one
        );
        files.append(&record("cccc")).unwrap();
        assert_eq!(names(dir.path()), ["container.log.1", "container.log"]);
        assert_eq!(
            contents(dir.path()),
            [vec!["aaaa\n", "bbbb\n"], vec!["cccc\n"]]
        );
    }

    #[test]
    fn max_file_prunes_the_oldest_files() {
        let dir = tempfile::tempdir().unwrap();
        let one = record("0000").to_line().len() as u64;
        let rotation = Rotation {
            max_size: one,
            max_file: 3,
        };
        let mut files = LogFiles::open(dir.path(), rotation).unwrap();
        for n in 0..6 {
            files.append(&record(&format!("{n:04}"))).unwrap();
        }
        assert_eq!(
            names(dir.path()),
            ["container.log.2", "container.log.1", "container.log"]
        );
        assert_eq!(
            contents(dir.path()),
            [vec!["0003\n"], vec!["0004\n"], vec!["0005\n"]]
        );
    }

    #[test]
    fn max_file_1_keeps_only_the_current_file() {
        let dir = tempfile::tempdir().unwrap();
        let one = record("0000").to_line().len() as u64;
        let mut files = open(dir.path(), one, 1);
        for n in 0..3 {
            files.append(&record(&format!("{n:04}"))).unwrap();
        }
        assert_eq!(contents(dir.path()), [vec!["0002\n"]]);
    }

    #[test]
    fn a_record_larger_than_max_size_gets_a_file_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = open(dir.path(), 10, 3);
        let long = "x".repeat(20_000);
        files.append(&record(&long)).unwrap();
        files.append(&record("short")).unwrap();
        assert_eq!(
            contents(dir.path()),
            [vec![format!("{long}\n")], vec!["short\n".to_string()]]
        );
    }

    #[test]
    fn opening_again_appends_and_mends_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let rotation = Rotation {
            max_size: 1_000_000,
            max_file: 2,
        };
        LogFiles::open(dir.path(), rotation)
            .unwrap()
            .append(&record("first"))
            .unwrap();
        let mut torn = OpenOptions::new()
            .append(true)
            .open(dir.path().join(CURRENT))
            .unwrap();
        torn.write_all(b"{\"log\":\"tor").unwrap();
        LogFiles::open(dir.path(), rotation)
            .unwrap()
            .append(&record("second"))
            .unwrap();
        let text = fs::read_to_string(dir.path().join(CURRENT)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[1], "{\"log\":\"tor");
        assert_eq!(
            Record::from_line(lines[2].as_bytes()).unwrap().log,
            "second\n"
        );
    }

    #[test]
    fn a_snapshot_is_not_moved_by_later_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let one = record("0000").to_line().len() as u64;
        let mut files = open(dir.path(), one, 2);
        files.append(&record("0000")).unwrap();
        files.append(&record("0001")).unwrap();
        let snapshot = files.snapshot().unwrap();
        files.append(&record("0002")).unwrap();
        files.append(&record("0003")).unwrap();
        let read: Vec<String> = snapshot
            .into_iter()
            .map(|(mut file, len)| {
                let mut text = String::new();
                (&mut file).take(len).read_to_string(&mut text).unwrap();
                text
            })
            .collect();
        assert_eq!(read.len(), 2);
        assert!(
            read[0].contains("0000") && read[1].contains("0001"),
            "{read:?}"
        );
    }
}
