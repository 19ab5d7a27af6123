//! The `@host-files` listing: a tree of files on the host, one `path (kind)` a line,
//! children sorted. Standard library only: the harness's replay
//! (`tests/harness_fixtures.rs`) includes this file to list its own dirs the same way.

use std::fs;
use std::path::{Path, PathBuf};

/// Appends `path` and, for a dir, everything under it to `lines`; `(missing)` when
/// there is nothing at `path`.
pub(crate) fn walk(path: &Path, lines: &mut Vec<String>) {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = fs::symlink_metadata(path) else {
        lines.push(format!("{} (missing)", path.display()));
        return;
    };
    let kind = meta.file_type();
    let kind = if kind.is_dir() {
        "dir"
    } else if kind.is_socket() {
        "socket"
    } else if kind.is_fifo() {
        "fifo"
    } else if kind.is_symlink() {
        "symlink"
    } else {
        "file"
    };
    lines.push(format!("{} ({kind})", path.display()));
    if kind == "dir"
        && let Ok(entries) = fs::read_dir(path)
    {
        let mut children: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        children.sort();
        for child in children {
            walk(&child, lines);
        }
    }
}
