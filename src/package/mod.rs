//! The packager (feature `packager`): building, archiving and pushing managed ("v2")
//! plugins. The `cargo-docker-plugin` binary is a thin shell over this module.
//!
//! What it builds is the managed-plugin model of [`crate::managed`]: the typed
//! [`PluginConfig`](crate::managed::config::PluginConfig) it writes and validates, and
//! the [`Bundle`](crate::managed::bundle::Bundle) directory it fills.
//!
//! - [`metadata`]: `[package.metadata.docker-plugin]`, typed, typos refused.
//! - [`elf`]: the shared libraries (and dynamic loader) a program needs.
//! - [`rootfs`]: [`BundleWriter`](rootfs::BundleWriter), which writes `config.json`
//!   and a reproducible `rootfs/`.
//! - [`archive`]: reproducible `.tar.gz` archives and their digests.
//! - [`packager`]: [`Packager`](packager::Packager), the whole `cargo docker-plugin
//!   package` (cargo build, metadata, rootfs, tarball).
//! - [`push`]: uploading a bundle to a registry in the format `docker plugin install`
//!   pulls.
//! - [`systemd`]: the `.service` and `.socket` units of a socket-activated plugin.
//! - [`PackageError`]: the one error type of all of them.

pub mod archive;
pub mod elf;
mod error;
pub mod metadata;
pub mod packager;
pub mod push;
pub mod rootfs;
pub mod systemd;

pub use error::PackageError;
