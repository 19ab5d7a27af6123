//! Mounts a test must take down itself: a test process that is SIGKILLed (on purpose,
//! as `plugins_die_with_a_killed_test_process` does) runs no destructor, so the
//! harness never unmounts what it mounted under the test's temporary dir (a managed
//! plugin's propagated mount), and `TempDir` cannot remove a mount point. Tests also
//! check for leaks here, below their own dir: test binaries run side by side, so a
//! count of every mount on the machine moves with other tests' mounts.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The mount points at or below `dir`, as listed in `/proc/self/mountinfo`: what a
/// test mounted itself, whatever other tests running at the same time mount elsewhere.
pub fn mount_points_under(dir: &Path) -> Vec<PathBuf> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    docker_plugin_sdk::mountinfo::mount_points()
        .unwrap()
        .into_iter()
        .filter(|point| point.starts_with(&dir))
        .collect()
}

/// Unmounts (lazily, deepest first) every mount point at or below `dir`, as listed in
/// `/proc/self/mountinfo`. Panics when one cannot be unmounted.
pub fn unmount_under(dir: &Path) {
    let mut points = mount_points_under(dir);
    points.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    for point in points {
        let path = CString::new(point.as_os_str().as_bytes()).unwrap();
        // SAFETY: `path` is a NUL-terminated path that outlives the call.
        let rc = unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            // Already gone with a parent's lazy unmount.
            assert_eq!(
                err.raw_os_error(),
                Some(libc::EINVAL),
                "unmounting {}: {err}",
                point.display()
            );
        }
    }
}
