//! The packager (feature `packager`): building and archiving managed ("v2") plugins,
//! and with feature `registry` pushing and pulling them. The `cargo-docker-plugin`
//! binary is a thin shell over this module.
//!
//! What it builds is the managed-plugin model of [`crate::managed`]: the typed
//! [`PluginConfig`](crate::managed::config::PluginConfig) it writes and validates, and
//! the [`Bundle`](crate::managed::bundle::Bundle) directory it fills.
//!
//! - `engine` (with feature `client`): what a Docker Engine says about its plugins
//!   (a managed plugin's ID and socket, cached legacy names).
//! - [`metadata`]: `[package.metadata.docker-plugin]`, typed, typos refused.
//! - [`arch`]: the CPU architecture a plugin is built for, and the check that every
//!   ELF file of its rootfs is built for it.
//! - `doctor` (with feature `harness`): why a plugin will not start or answer, each
//!   finding with its fix.
//! - [`elf`]: the shared libraries (and dynamic loader) a program needs.
//! - [`runtime`]: what glibc loads at run time (NSS modules, `libgcc_s`) and the
//!   `/etc` files it reads.
//! - [`rootfs`]: [`BundleWriter`](rootfs::BundleWriter), which writes `config.json`
//!   and a reproducible `rootfs/`.
//! - [`archive`]: reproducible `.tar.gz` archives and their digests.
//! - [`packager`]: [`Packager`](packager::Packager), the whole `cargo docker-plugin
//!   package` (cargo build, metadata, rootfs, tarball).
//! - `registry` (with feature `registry`): registries as dockerd speaks to them
//!   (references, logins, TLS, endpoints, retries) and the pull of `docker plugin
//!   install`.
//! - `push` (with feature `registry`): uploading bundles to a registry in the format
//!   `docker plugin install` pulls, one tag per architecture.
//! - [`systemd`]: the `.service` and `.socket` units of a socket-activated plugin.
//! - `verify` (with feature `harness`): each packaged program run inside the rootfs
//!   as the harness runs the plugin (`package --verify`).
//! - [`PackageError`]: the one error type of all of them.

pub mod arch;
pub mod archive;
#[cfg(feature = "harness")]
pub mod doctor;
pub mod elf;
#[cfg(feature = "client")]
pub mod engine;
mod error;
pub mod metadata;
pub mod packager;
#[cfg(feature = "registry")]
pub mod push;
#[cfg(feature = "registry")]
pub mod registry;
pub mod rootfs;
pub mod runtime;
pub mod systemd;
#[cfg(feature = "harness")]
pub mod verify;

pub use error::PackageError;
