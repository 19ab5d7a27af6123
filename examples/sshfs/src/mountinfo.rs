//! What is really mounted, from `/proc/self/mountinfo` (the plugin's own mount
//! namespace: in a managed plugin, its container's), and whether a FUSE mount still
//! answers. The driver asks it at start (to reconcile its state with the kernel) and
//! at each Mount (to find an sshfs that died: its mount is still listed, but every
//! access fails with `ENOTCONN`, "Transport endpoint is not connected").

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One line of mountinfo: where, and which filesystem type (`fuse.sshfs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// The mount point.
    pub point: PathBuf,
    /// The filesystem type, e.g. `fuse.sshfs`.
    pub fstype: String,
}

/// The filesystem type sshfs mounts (libfuse 3's `fuse.` + the program's name).
pub const SSHFS_TYPE: &str = "fuse.sshfs";

/// Parses mountinfo text (see proc(5)): field 5 is the mount point, the first
/// field after ` - ` the type; `\ooo` escapes are decoded.
pub fn parse(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let fstype = right.split(' ').next()?;
            Some(MountEntry {
                point: PathBuf::from(unescape(point)),
                fstype: fstype.to_owned(),
            })
        })
        .collect()
}

/// The mounts of this process, in mount order.
pub async fn read() -> io::Result<Vec<MountEntry>> {
    Ok(parse(
        &tokio::fs::read_to_string("/proc/self/mountinfo").await?,
    ))
}

/// Whether an sshfs mount sits at `point` (the topmost mount there).
pub fn is_sshfs_at(mounts: &[MountEntry], point: &Path) -> bool {
    mounts
        .iter()
        .rev()
        .find(|m| m.point == point)
        .is_some_and(|m| m.fstype == SSHFS_TYPE)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let mut out = Vec::with_capacity(field.len());
    let bytes = field.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a look at a FUSE mount point found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// It answered.
    Answers,
    /// `ENOTCONN`: its sshfs is gone, the mount is dead.
    Dead,
    /// No answer within the time given (a slow or dropped network): sshfs is still
    /// there and will time out itself (`ServerAliveInterval`).
    Slow,
}

/// Stats `point` on the blocking pool, at most `limit` long.
pub async fn health(point: &Path, limit: Duration) -> Health {
    let point = point.to_path_buf();
    let stat = tokio::task::spawn_blocking(move || std::fs::metadata(point));
    match tokio::time::timeout(limit, stat).await {
        Ok(Ok(Err(err))) if err.raw_os_error() == Some(nix::libc::ENOTCONN) => Health::Dead,
        Ok(_) => Health::Answers,
        Err(_) => Health::Slow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 0:21 / / rw,relatime shared:1 - overlay overlay rw
40 22 0:45 / /mnt/volumes rw shared:20 - tmpfs tmpfs rw
41 40 0:46 / /mnt/volumes/v1 rw,nosuid,nodev shared:21 - fuse.sshfs root@127.0.0.1:/srv rw,user_id=0
42 40 0:47 / /mnt/volumes/with\\040space rw - fuse.sshfs h:/ rw
43 40 0:48 / /mnt/volumes/v2 rw - tmpfs tmpfs rw
44 43 0:49 / /mnt/volumes/v2 rw - fuse.sshfs h:/ rw
";

    #[test]
    fn the_mount_point_and_type_of_each_line() {
        let mounts = parse(SAMPLE);
        assert_eq!(mounts.len(), 6);
        assert_eq!(
            mounts[2],
            MountEntry {
                point: "/mnt/volumes/v1".into(),
                fstype: "fuse.sshfs".into()
            }
        );
        assert_eq!(mounts[3].point, Path::new("/mnt/volumes/with space"));
    }

    #[test]
    fn only_the_topmost_mount_counts() {
        let mounts = parse(SAMPLE);
        assert!(is_sshfs_at(&mounts, Path::new("/mnt/volumes/v1")));
        assert!(is_sshfs_at(&mounts, Path::new("/mnt/volumes/v2")));
        assert!(!is_sshfs_at(&mounts, Path::new("/mnt/volumes")));
        assert!(!is_sshfs_at(&mounts, Path::new("/mnt/volumes/v3")));
    }

    #[tokio::test]
    async fn a_plain_directory_answers() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            health(dir.path(), Duration::from_secs(5)).await,
            Health::Answers
        );
    }
}
