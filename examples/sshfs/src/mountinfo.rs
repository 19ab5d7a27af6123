//! What is really mounted, from `/proc/self/mountinfo` (the plugin's own mount
//! namespace: in a managed plugin, its container's), and whether a FUSE mount still
//! answers. The driver asks it at start (to reconcile its state with the kernel) and
//! at each Mount (to find an sshfs that died: its mount is still listed, but every
//! access fails with `ENOTCONN`, "Transport endpoint is not connected").

use std::io;
use std::path::Path;
use std::time::Duration;

pub use docker_plugin_sdk::mountinfo::MountEntry;
use docker_plugin_sdk::mountinfo::{PATH, parse};

/// The filesystem type sshfs mounts (libfuse 3's `fuse.` + the program's name).
pub const SSHFS_TYPE: &str = "fuse.sshfs";

/// The mounts of this process, in mount order (the SDK's reader, the file read
/// without blocking the runtime).
pub async fn read() -> io::Result<Vec<MountEntry>> {
    Ok(parse(&tokio::fs::read_to_string(PATH).await?).collect())
}

/// Whether an sshfs mount sits at `point` (the topmost mount there).
pub fn is_sshfs_at(mounts: &[MountEntry], point: &Path) -> bool {
    mounts
        .iter()
        .rev()
        .find(|m| m.mount_point == point)
        .is_some_and(|m| m.fs_type == SSHFS_TYPE)
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
    fn only_the_topmost_mount_counts() {
        let mounts: Vec<_> = parse(SAMPLE).collect();
        assert!(is_sshfs_at(&mounts, Path::new("/mnt/volumes/v1")));
        assert!(is_sshfs_at(&mounts, Path::new("/mnt/volumes/v2")));
        assert!(is_sshfs_at(&mounts, Path::new("/mnt/volumes/with space")));
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
