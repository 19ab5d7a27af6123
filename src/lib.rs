//! # docker-plugin-sdk
//!
//! Write Docker Engine plugins in Rust. Implement one async trait per subsystem,
//! register the drivers on a [`Plugin`], and serve it: `dockerd` discovers the socket,
//! calls `/Plugin.Activate`, and then your driver's methods, with Docker's exact wire
//! format.
//!
//! ```no_run
//! use docker_plugin_sdk::volume::{self, CreateRequest, MountRequest, MountResponse};
//! use docker_plugin_sdk::{Error, Plugin, Result, async_trait};
//!
//! #[derive(Default)]
//! struct Tmp;
//!
//! #[async_trait]
//! impl volume::Driver for Tmp {
//!     async fn create(&self, req: CreateRequest) -> Result<()> {
//!         std::fs::create_dir_all(format!("/srv/tmpvol/{}", req.name))?;
//!         Ok(())
//!     }
//!     async fn remove(&self, req: volume::RemoveRequest) -> Result<()> {
//!         std::fs::remove_dir_all(format!("/srv/tmpvol/{}", req.name))?;
//!         Ok(())
//!     }
//!     async fn mount(&self, req: MountRequest) -> Result<MountResponse> {
//!         Ok(MountResponse::new(format!("/srv/tmpvol/{}", req.name)))
//!     }
//!     async fn unmount(&self, _req: volume::UnmountRequest) -> Result<()> {
//!         Ok(())
//!     }
//!     async fn path(&self, req: volume::PathRequest) -> Result<volume::PathResponse> {
//!         Ok(volume::PathResponse::new(format!("/srv/tmpvol/{}", req.name)))
//!     }
//!     async fn get(&self, req: volume::GetRequest) -> Result<volume::GetResponse> {
//!         Err(Error::new(format!("no such volume: {}", req.name)))
//!     }
//!     async fn list(&self) -> Result<volume::ListResponse> {
//!         Ok(volume::ListResponse::default())
//!     }
//! }
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), docker_plugin_sdk::ServeError> {
//!     // Listens on /run/docker/plugins/tmpvol.sock until SIGTERM or SIGINT.
//!     Plugin::new().volume(Tmp).serve_unix("tmpvol").await
//! }
//! ```
//!
//! ## Layout
//!
//! Modules build on each other in this order; `use crate::…` lines point only up
//! this list (protocol → dispatch → subsystems → plugin → server):
//!
//! - [`error`](Error): [`Error`] (what a driver returns), [`ErrorKind`], [`ServeError`].
//! - [`protocol`]: what every subsystem shares on the wire: media types, content
//!   negotiation, the `{"Err": "..."}` body, Go's JSON quirks, and the [`Method`]
//!   declaration (name, request and response types, dockerd's timeout, whether a 404
//!   means "not implemented", the error key) every endpoint is declared with once,
//!   `/Plugin.Activate` among them.
//! - `dispatch` (private): routing; the unary and streaming endpoints every method goes
//!   through (body limit, decode, span, panic catch, `{"Err"}`), typed rejections.
//! - [`volume`]: the volume driver trait, its wire types and its declared methods.
//! - [`options`]: typed `-o key=value` options ([`DriverOptions`]).
//! - [`args`]: a tiny command-line flag reader for plugin binaries (no clap).
//! - [`Plugin`]: the builder of subsystems; `/Plugin.Activate` is derived from it.
//! - [`transport`]: where a plugin listens: the [`Accept`](transport::Accept)
//!   abstraction the server consumes, unix sockets (mode, group, stale-socket
//!   replacement), TCP, TLS (feature `tls`), systemd socket activation;
//!   [`transport::ListenArgs`] reads the command-line flags that choose one.
//! - [`spec`]: `.spec` / `.json` discovery files.
//! - [`state`]: state a plugin can trust: a crash-safe typed [`Store`](state::Store)
//!   and per-ID mount reference counts ([`MountTable`](state::MountTable)) that
//!   survive a restart.
//! - [`Server`]: the run loop, the drain and the idle timer, graceful shutdown.
//! - [`managed`]: managed ("v2") plugins: the typed `config.json` (dockerd's decoding,
//!   its validation, the privileges `docker plugin install` asks for, `docker plugin
//!   set`), bundle directories, and the settings kept beside the config. Always
//!   compiled: the packager and the harness share it.
//! - `client` (feature `client`): a client that calls any declared method the way
//!   `dockerd` does, for tests and tools.
//! - `package` (feature `packager`): the packager: `[package.metadata.docker-plugin]`,
//!   architectures, the ELF library closure and glibc's run-time needs, reproducible
//!   rootfs and archives, the build, registries (push, and pull as `docker plugin
//!   install` does), systemd units; with `client` the engine API (`package::engine`),
//!   with `harness` `package --verify` and `doctor`.
//! - `harness` (feature `harness`): the mini-engine, a dockerd test double layered as
//!   dockerd is (the plugin registry, with managed plugins run in the container runc
//!   would give them; one service per subsystem; containers; the engine; with
//!   `packager`, `docker plugin install` from a registry); plugin
//!   binaries as processes (`PluginProcess`); a private real dockerd
//!   (`harness::dockerd`).
//!
//! [`Method`]: protocol::Method

#![warn(missing_docs)]

mod dispatch;
mod error;
mod plugin;
mod server;

pub mod args;
#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "harness")]
pub mod harness;
pub mod managed;
pub mod options;
#[cfg(feature = "packager")]
pub mod package;
pub mod protocol;
pub mod spec;
pub mod state;
pub mod transport;
pub mod volume;

pub use async_trait::async_trait;
#[cfg(feature = "macros")]
pub use docker_plugin_sdk_macros::{DriverOptions, main};
pub use error::{Error, ErrorKind, Result, ServeError};
pub use options::DriverOptions;
pub use plugin::Plugin;
pub use server::Server;
pub use tokio_util::sync::CancellationToken;

/// The README's examples, compiled as doc tests so they cannot rot (they use the
/// `harness` feature).
#[doc = include_str!("../README.md")]
#[cfg(all(doctest, feature = "harness", feature = "macros"))]
pub struct ReadmeDoctests;

/// What the macros expand to; not a public API.
#[cfg(feature = "macros")]
#[doc(hidden)]
pub mod __private;
