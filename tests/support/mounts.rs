//! Mounts a test must take down itself: a test process that is SIGKILLed (on purpose,
//! as `plugins_die_with_a_killed_test_process` does) runs no destructor, so the
//! harness never unmounts what it mounted under the test's temporary dir (a managed
//! plugin's propagated mount), and `TempDir` cannot remove a mount point.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Unmounts (lazily, deepest first) every mount point at or below `dir`, as listed in
/// `/proc/self/mountinfo`. Panics when one cannot be unmounted.
pub fn unmount_under(dir: &Path) {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut points: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| PathBuf::from(point.replace("\\040", " ")))
        .filter(|point| point.starts_with(&dir))
        .collect();
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
