//! The sshfs bundle, written by the SDK's packager from this crate's
//! `[package.metadata.docker-plugin]` and the plugin binary cargo built for the
//! tests: the same code path as `cargo docker-plugin package -p sshfs`.

use std::path::{Path, PathBuf};

use docker_plugin_sdk::managed::bundle::Bundle;
use docker_plugin_sdk::package::metadata::Metadata;

/// Writes the bundle into `dir`; `edit` changes its config.json first (as JSON).
pub fn write(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let (info, metadata) = Metadata::from_manifest(&manifest, None).unwrap();
    let config = metadata.to_config(&info, "sshfs", &manifest).unwrap();
    let mut json = serde_json::to_value(&config).unwrap();
    edit(&mut json);
    let config = docker_plugin_sdk::managed::config::PluginConfig::from_value(json).unwrap();
    metadata
        .bundle_writer(
            dir,
            config,
            "sshfs",
            env!("CARGO_BIN_EXE_sshfs"),
            manifest.parent().unwrap(),
        )
        .write()
        .unwrap();
    dir.to_path_buf()
}

/// The programs `cargo docker-plugin package --verify` runs in the rootfs.
pub fn programs() -> Vec<String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let (_, metadata) = Metadata::from_manifest(&manifest, None).unwrap();
    let mut programs = vec!["/sshfs".to_owned()];
    programs.extend(metadata.binaries);
    programs
}

/// Opens the bundle at `dir`.
pub fn open(dir: &Path) -> Bundle {
    Bundle::open(dir).unwrap()
}
