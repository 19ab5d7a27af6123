//! Managed ("v2") plugin packaging: what `docker plugin create`, `install`, `set` and
//! `push` work with.
//!
//! A managed plugin is a bundle: `config.json` next to a `rootfs/` directory. dockerd
//! reads `config.json` when the plugin is created, shows the privileges it asks for
//! when it is installed, applies `docker plugin set` to it while it is disabled, and
//! ships it as the config blob (`application/vnd.docker.plugin.v1+json`) of the
//! plugin's registry manifest.
//!
//! - [`config`]: [`PluginConfig`](config::PluginConfig), the one typed `config.json`
//!   (Docker's exact field names, decoded the way dockerd's Go decoder does), with
//!   its validation rules, the privileges `docker plugin install` asks for, and
//!   `docker plugin set`.
//! - [`bundle`]: [`Bundle`](bundle::Bundle), a bundle directory (`config.json` +
//!   `rootfs/`) as the packager writes it and the harness and `push` read it.
//! - [`systemd`]: the `.service` and `.socket` units of a socket-activated plugin.
//!
//! With the `packager` feature (the `cargo-docker-plugin` binary is a thin shell over
//! these):
//!
//! - `metadata`: `[package.metadata.docker-plugin]`, typed, typos refused.
//! - `elf`: the shared libraries (and dynamic loader) a program needs.
//! - `rootfs`: `BundleWriter`, which writes `config.json` and a reproducible
//!   `rootfs/`.
//! - `archive`: reproducible `.tar.gz` archives and their digests.
//! - `packager`: `Packager`, the whole `cargo docker-plugin package` (cargo build,
//!   metadata, rootfs, tarball).
//! - `push`: uploading a bundle to a registry in the format `docker plugin install`
//!   pulls.
//! - `PackageError`: the one error type of all of them.

#[cfg(feature = "packager")]
pub mod archive;
pub mod bundle;
pub mod config;
#[cfg(feature = "packager")]
pub mod elf;
#[cfg(feature = "packager")]
mod error;
#[cfg(feature = "packager")]
pub mod metadata;
#[cfg(feature = "packager")]
pub mod packager;
#[cfg(feature = "packager")]
pub mod push;
#[cfg(feature = "packager")]
pub mod rootfs;
pub mod systemd;

#[cfg(feature = "packager")]
pub use error::PackageError;
