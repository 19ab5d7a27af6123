//! Host-side mount work of the managed-plugin lifecycle, as moby does it with
//! `github.com/moby/sys/mount`: the propagated-mount dir made `rshared` before a
//! plugin starts (`MakeRShared` in moby v20.10.24 `plugin/manager_linux.go` `enable`),
//! and everything mounted under a plugin's dir unmounted when it stops for good or is
//! removed (`RecursiveUnmount` in `plugin/manager.go` `HandleExitEvent` and
//! `plugin/backend_linux.go` `Remove`). Mount points come from `/proc/self/mountinfo`
//! ([`mountinfo`](crate::mountinfo)).

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::mountinfo::mount_points;

/// The mount point of the mount `path` is on (`path` itself when it is one).
pub(crate) fn mount_point_of(path: &Path) -> PathBuf {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    mount_points()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| path.starts_with(m))
        .max_by_key(|m| m.components().count())
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// moby's `MakeRShared`: `dir` bound onto itself unless it is a mount point, then made
/// `rshared`, so that what a plugin mounts under its propagated mount appears here.
pub(crate) fn make_rshared(dir: &Path) -> nix::Result<()> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if !mount_points().unwrap_or_default().contains(&dir) {
        mount(
            Some(&dir),
            &dir,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )?;
    }
    mount(
        None::<&str>,
        &dir,
        None::<&str>,
        MsFlags::MS_SHARED | MsFlags::MS_REC,
        None::<&str>,
    )
}

/// moby's `RecursiveUnmount`: every mount at or under `dir`, deepest first, detached.
/// Returns the first failure (a mount that could not be unmounted).
pub(crate) fn recursive_unmount(dir: &Path) -> nix::Result<()> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut under: Vec<PathBuf> = mount_points()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.starts_with(&dir))
        .collect();
    under.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    under.dedup();
    let mut first = Ok(());
    for point in under {
        match umount2(&point, MntFlags::MNT_DETACH) {
            // Gone with its parent already.
            Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
            Err(err) => {
                if first.is_ok() {
                    first = Err(err);
                }
            }
        }
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_a_mount_point() {
        assert_eq!(mount_point_of(Path::new("/")), Path::new("/"));
    }
}
