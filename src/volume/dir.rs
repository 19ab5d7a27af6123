//! A helper for drivers that keep each volume in a directory of their own.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The directory of volume `name` under `root`, for drivers that keep one directory
/// per volume.
///
/// A volume name comes from the user (`docker volume create NAME`), so it is checked
/// to be one safe path component first: not empty, not `.` or `..`, and only ASCII
/// letters, digits, `_`, `.` and `-` (dockerd's own `local` driver allows the same
/// characters). Anything else is refused with an error saying what is allowed, so a
/// name can never reach outside `root`.
///
/// ```
/// use std::path::Path;
/// use docker_plugin_sdk::volume::volume_dir;
///
/// assert_eq!(volume_dir(Path::new("/srv/vols"), "web-data")?, Path::new("/srv/vols/web-data"));
/// let err = volume_dir(Path::new("/srv/vols"), "../etc").unwrap_err();
/// assert_eq!(
///     err.message(),
///     r#"invalid volume name "../etc": use letters, digits, '_', '.' and '-'"#
/// );
/// # Ok::<(), docker_plugin_sdk::Error>(())
/// ```
pub fn volume_dir(root: &Path, name: &str) -> Result<PathBuf> {
    let valid = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(root.join(name))
    } else {
        Err(Error::new(format!(
            "invalid volume name {name:?}: use letters, digits, '_', '.' and '-'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_safe_component_is_accepted() {
        let root = Path::new("/r");
        for good in ["v", "v1", "a.b", "a_b-c", "..."] {
            assert_eq!(volume_dir(root, good).unwrap(), root.join(good), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "/abs", "a b", "é", "a\0b"] {
            assert!(volume_dir(root, bad).is_err(), "{bad:?}");
        }
    }
}
