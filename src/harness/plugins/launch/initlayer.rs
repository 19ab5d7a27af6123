//! dockerd's init layer, applied to a managed plugin's rootfs at every enable (moby
//! v20.10.24 `daemon/initlayer/setup_unix.go` `Setup`, called by
//! `plugin/manager_linux.go` `enable`): each path is unlinked (and every component on
//! the way to it, which removes a symlinked `/etc`), then made again if missing: empty
//! dirs `/dev/pts`, `/dev/shm`, `/proc`, `/sys`; empty files `/.dockerenv`,
//! `/etc/resolv.conf`, `/etc/hosts`, `/etc/hostname`, `/dev/console`; the symlink
//! `/etc/mtab -> /proc/mounts`. Files a plugin ships at these paths are lost.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// What each path becomes: a dir, an empty file, or a symlink to the target.
const PATHS: &[(&str, &str)] = &[
    ("/dev/pts", "dir"),
    ("/dev/shm", "dir"),
    ("/proc", "dir"),
    ("/sys", "dir"),
    ("/.dockerenv", "file"),
    ("/etc/resolv.conf", "file"),
    ("/etc/hosts", "file"),
    ("/etc/hostname", "file"),
    ("/dev/console", "file"),
    ("/etc/mtab", "/proc/mounts"),
];

/// Sets up the init layer in `rootfs`, as moby's `initlayer.Setup`.
pub(crate) fn setup(rootfs: &Path) -> std::io::Result<()> {
    for (path, kind) in PATHS {
        let mut prev = rootfs.to_path_buf();
        for part in path.trim_start_matches('/').split('/') {
            prev.push(part);
            // Fails on dirs, as in moby: only files and symlinks go.
            let _ = fs::remove_file(&prev);
        }
        let target = rootfs.join(path.trim_start_matches('/'));
        match fs::symlink_metadata(&target) {
            Ok(_) => continue,
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
            Err(_) => {}
        }
        if let Some(parent) = target.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)?;
        }
        match *kind {
            "dir" => fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(&target)?,
            "file" => {
                fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .mode(0o755)
                    .open(&target)?;
            }
            link => std::os::unix::fs::symlink(link, &target)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_files_are_replaced_and_a_symlinked_etc_goes() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path();
        fs::create_dir_all(rootfs.join("etc")).unwrap();
        fs::write(rootfs.join("etc/hosts"), "shipped").unwrap();
        fs::write(rootfs.join(".dockerenv"), "shipped").unwrap();
        setup(rootfs).unwrap();
        assert_eq!(fs::read_to_string(rootfs.join("etc/hosts")).unwrap(), "");
        assert_eq!(fs::read_to_string(rootfs.join(".dockerenv")).unwrap(), "");
        assert_eq!(
            fs::read_link(rootfs.join("etc/mtab")).unwrap(),
            Path::new("/proc/mounts")
        );
        assert!(rootfs.join("dev/pts").is_dir() && rootfs.join("dev/console").is_file());

        // A symlinked /etc is unlinked and made a real dir.
        let other = tempfile::tempdir().unwrap();
        fs::remove_dir_all(rootfs.join("etc")).unwrap();
        std::os::unix::fs::symlink(other.path(), rootfs.join("etc")).unwrap();
        setup(rootfs).unwrap();
        assert!(
            !fs::symlink_metadata(rootfs.join("etc"))
                .unwrap()
                .is_symlink()
        );
        assert!(!other.path().join("hosts").exists());
    }
}
