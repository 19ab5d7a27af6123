//! Plugin bundles (`config.json` + `rootfs/`) for the managed-plugin tests, written by
//! the packager's own [`BundleWriter`]: the bundles the harness runs are the ones
//! `cargo docker-plugin package` writes.

use std::fs;
use std::path::{Path, PathBuf};

use docker_plugin_sdk::managed::config::PluginConfig;
use docker_plugin_sdk::package::rootfs::BundleWriter;

/// Writes `config` as `bundle/config.json` and creates an empty `bundle/rootfs`: a
/// bundle whose entrypoint is a host binary (the harness's host mode), or a broken one.
pub fn write_config(bundle: &Path, config: &serde_json::Value) {
    fs::create_dir_all(bundle.join("rootfs")).unwrap();
    fs::write(
        bundle.join("config.json"),
        serde_json::to_vec_pretty(config).unwrap(),
    )
    .unwrap();
}

/// A bundle in `dir` with `config`, the host `binary` at `at` in its rootfs (with its
/// shared libraries), and the dirs `dirs`.
pub fn packaged(
    dir: &Path,
    config: &serde_json::Value,
    binary: &Path,
    at: &str,
    dirs: &[&str],
) -> PathBuf {
    let config = PluginConfig::from_value(config.clone()).unwrap();
    let mut writer = BundleWriter::new(dir, config).program(at, binary);
    for d in dirs {
        writer = writer.dir(*d);
    }
    writer.write().unwrap();
    dir.to_path_buf()
}
