//! The stripped size of each example plugin binary that is built: localvol
//! (`target/release/examples/localvol`) and the workspace members' release binaries.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace members' example plugins (their binaries' names).
const MEMBERS: &[&str] = &[
    "netbridge",
    "poolipam",
    "opaauthz",
    "dirsecrets",
    "metricsexport",
    "sshfs",
    "filelog",
    "slowsink",
];

/// `target/release`, from this binary's place (`target/release/deps/serve-HASH`).
fn release_dir(exe: &Path) -> PathBuf {
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target/release"))
}

/// localvol's binary: `BENCH_PLUGIN_BINARY`, else `target/release/examples/localvol`.
pub fn localvol(exe: &Path) -> PathBuf {
    match std::env::var_os("BENCH_PLUGIN_BINARY") {
        Some(path) => PathBuf::from(path),
        None => release_dir(exe).join("examples/localvol"),
    }
}

/// Each example's name and binary path (built or not).
pub fn examples(exe: &Path) -> Vec<(&'static str, PathBuf)> {
    let release = release_dir(exe);
    let mut all = vec![("localvol", localvol(exe))];
    all.extend(MEMBERS.iter().map(|name| (*name, release.join(name))));
    all
}

/// The stripped size of `path`, if it was built.
pub fn stripped_size(path: &Path) -> Option<u64> {
    let size = std::fs::metadata(path).ok()?.len();
    // The release profile already strips symbols; strip a copy to be sure, if `strip`
    // is installed.
    let stripped =
        std::env::temp_dir().join(format!("serve-bench-{}.stripped", std::process::id()));
    let stripped_size = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(path)
        .status()
        .ok()
        .filter(|s| s.success())
        .and_then(|_| std::fs::metadata(&stripped).ok())
        .map(|m| m.len());
    let _ = std::fs::remove_file(&stripped);
    Some(stripped_size.unwrap_or(size).min(size))
}
