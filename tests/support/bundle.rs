//! Plugin bundles (`config.json` + `rootfs/`) for the managed-plugin tests.

use std::fs;
use std::path::{Path, PathBuf};

/// Writes `config` as `bundle/config.json` and creates `bundle/rootfs`.
pub fn write_config(bundle: &Path, config: &serde_json::Value) {
    fs::create_dir_all(bundle.join("rootfs")).unwrap();
    fs::write(
        bundle.join("config.json"),
        serde_json::to_vec_pretty(config).unwrap(),
    )
    .unwrap();
}

/// Copies `binary` to `at` inside `rootfs`, with the shared libraries `ldd` lists for
/// it (and the dynamic loader), so it runs chrooted there.
pub fn install_with_libraries(binary: &Path, rootfs: &Path, at: &str) {
    let target = rootfs.join(at.trim_start_matches('/'));
    fs::create_dir_all(target.parent().unwrap()).unwrap();
    fs::copy(binary, &target).unwrap();
    let out = std::process::Command::new("ldd")
        .arg(binary)
        .output()
        .unwrap();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else {
            continue;
        };
        let dest = rootfs.join(path.trim_start_matches('/'));
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(path, dest).unwrap();
    }
}

/// The dirs a plugin rootfs needs: `/run/docker/plugins`, `/tmp`, and `extra`.
pub fn make_dirs(rootfs: &Path, extra: &[&str]) -> PathBuf {
    for dir in ["run/docker/plugins", "tmp"].iter().chain(extra) {
        fs::create_dir_all(rootfs.join(dir.trim_start_matches('/'))).unwrap();
    }
    rootfs.to_path_buf()
}
