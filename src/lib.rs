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
//! - [`volume`]: the volume driver trait and its wire types.
//! - [`protocol`]: what every subsystem shares: media types, content negotiation,
//!   `/Plugin.Activate`, the `{"Err": "..."}` error body.
//! - [`transport`]: unix sockets (mode, group, stale-socket replacement), TCP, TLS
//!   (feature `tls`) and systemd socket activation; [`transport::ListenArgs`] reads
//!   the command-line flags that choose one.
//! - [`args`]: a tiny command-line flag reader for plugin binaries (no clap).
//! - [`spec`]: `.spec` / `.json` discovery files.
//! - [`package`]: managed ("v2") plugins: the typed `config.json`, its validation, the
//!   privileges `docker plugin install` asks for, and `docker plugin set`.
//! - [`Plugin`] and [`Server`]: the builder and the server that runs it, with request
//!   limits, a `tracing` span per call and graceful shutdown.
//! - `client` (feature `client`): a client that talks to a plugin the way `dockerd`
//!   does, for tests and tools.
//! - `harness` (feature `harness`): a dockerd test double (`Engine`), plugin binaries
//!   as processes (`PluginProcess`) and a private real dockerd (`harness::dockerd`).

#![warn(missing_docs)]

mod endpoint;
mod error;
mod plugin;
mod server;

pub mod args;
#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "harness")]
pub mod harness;
pub mod options;
pub mod package;
pub mod protocol;
pub mod spec;
pub mod transport;
pub mod volume;

pub use async_trait::async_trait;
#[cfg(feature = "macros")]
pub use docker_plugin_sdk_macros::{DriverOptions, main};
pub use endpoint::{DEFAULT_BODY_LIMIT, WireRequest};
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
