//! # docker-plugin-sdk
//!
//! Write Docker Engine plugins in Rust. Implement one async trait per subsystem,
//! register the drivers on a [`Plugin`], and serve it: `dockerd` discovers the socket,
//! calls `/Plugin.Activate`, and then your driver's methods, with Docker's exact wire
//! format.
//!
//! ```no_run
//! use std::io::ErrorKind;
//!
//! use docker_plugin_sdk::volume::{self, CreateRequest, MountRequest, MountResponse};
//! use docker_plugin_sdk::{Error, Plugin, Result, async_trait};
//!
//! #[derive(Default)]
//! struct Tmp;
//!
//! #[async_trait]
//! impl volume::Driver for Tmp {
//!     async fn create(&self, req: CreateRequest) -> Result<()> {
//!         // Idempotent: dockerd may call Create again for a volume that exists.
//!         tokio::fs::create_dir_all(format!("/srv/tmpvol/{}", req.name)).await?;
//!         Ok(())
//!     }
//!     async fn remove(&self, req: volume::RemoveRequest) -> Result<()> {
//!         match tokio::fs::remove_dir_all(format!("/srv/tmpvol/{}", req.name)).await {
//!             Err(err) if err.kind() != ErrorKind::NotFound => Err(err.into()),
//!             _ => Ok(()), // removed, now or by an earlier try
//!         }
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
//! #[tokio::main]
//! async fn main() -> Result<(), docker_plugin_sdk::ServeError> {
//!     // Listens on /run/docker/plugins/tmpvol.sock until SIGTERM or SIGINT.
//!     Plugin::new().volume(Tmp).serve_unix("tmpvol").await
//! }
//! ```
//!
//! ## How calls run
//!
//! - **Concurrently.** dockerd sends Get, List, Path and Mount at the same time (a
//!   `docker volume ls` while a container starts). Driver methods run on the tokio
//!   runtime's threads: do I/O with `tokio::fs` and `tokio::process`, and put anything
//!   that blocks (a `mount` syscall, a library without async) in
//!   `tokio::task::spawn_blocking`. `#[docker_plugin_sdk::main]` (feature `macros`)
//!   runs a multi-thread runtime that keeps serving while a careless call blocks its
//!   thread, but a blocked thread still serves nothing else.
//! - **To completion.** The SDK never cancels a driver call unless
//!   [`Plugin::call_timeout`] is set. When dockerd gives up on a call (after 1 or 2
//!   minutes for volume calls, 30 s for every call of a managed plugin enabled with
//!   `docker plugin enable`) it closes the connection; the call still runs to its end,
//!   its result logged and dropped.
//! - **Idempotently.** dockerd may give up and the user retry, and it calls Create
//!   after *any* error from Get, not only "no such volume": every method must cope with
//!   being called again for what it already did (see [`volume::Driver`]).
//! - **Within dockerd's shutdown.** On SIGTERM the server stops accepting, lets calls
//!   in flight finish for up to 8 s (dockerd sends SIGKILL 10 s after SIGTERM), removes
//!   its socket and spec file, and returns; a second SIGTERM or Ctrl-C stops at once.
//! - **Safely exposed.** A unix socket has mode 0660 and group root by default, whatever
//!   the umask; slow or silent clients, and too many connections, cannot hold the
//!   server (see [`Server`] and [`Plugin`] for the limits).
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
//! - [`telemetry`]: the plugin's own call metrics ([`CallMetrics`](telemetry::CallMetrics),
//!   Prometheus text) and its readiness ([`Readiness`](telemetry::Readiness)).
//! - `dispatch` (private): routing; the unary and streaming endpoints every method goes
//!   through (body limit and read deadline, decode, span, panic catch, `{"Err"}`, a
//!   call run to completion when its client leaves), typed rejections.
//! - [`volume`]: the volume driver trait, its wire types and its declared methods.
//! - [`network`]: the network driver trait, its wire types (CIDRs, MAC addresses,
//!   routes, the typed option keys) and its declared methods.
//! - [`ipam`]: the IPAM driver trait, its wire types and its declared methods (errors
//!   in `Error`).
//! - [`authz`]: the authorization policy trait, its wire types (dockerd's real JSON
//!   names, bodies decoded and parsed, peer certificates parsed) and its declared
//!   methods, served fail closed.
//! - [`logging`]: the log driver trait, its wire types and declared methods, the
//!   frames (protobuf `LogEntry`, prost), and the FIFO machinery: each container's
//!   FIFO read in a task, split lines joined, a bounded buffer with an overflow policy
//!   (drop oldest, drop newest, spill to disk) so dockerd is never blocked, ReadLogs'
//!   `Tail`/`Since`/`Until`/`Follow` helpers.
//! - [`secrets`]: the secret provider trait, GetSecret's wire types and
//!   [`SecretValue`](secrets::SecretValue), a value that never shows.
//! - [`metrics`]: the metrics collector trait, its declared methods, and the engine's
//!   metrics (a strict Prometheus text reader; with `client`, the scraper).
//! - [`options`]: typed `-o key=value` options ([`DriverOptions`]).
//! - [`args`]: a tiny command-line flag reader for plugin binaries (no clap).
//! - [`Plugin`]: the builder of subsystems; `/Plugin.Activate` is derived from it.
//! - [`transport`]: where a plugin listens: the [`Accept`](transport::Accept)
//!   abstraction the server consumes, unix sockets (mode, group, the lock on the path,
//!   stale-socket replacement), TCP, TLS (feature `tls`), systemd socket activation;
//!   [`transport::ListenArgs`] reads the command-line flags that choose one.
//! - [`spec`]: `.spec` / `.json` discovery files.
//! - [`mountinfo`]: what is mounted, from `/proc/self/mountinfo` (escapes decoded):
//!   for plugins that mount, the harness and tests. Always compiled: std only.
//! - [`state`]: state a plugin can trust: a crash-safe typed [`Store`](state::Store)
//!   and per-ID mount reference counts ([`MountTable`](state::MountTable)) that
//!   survive a restart.
//! - [`Server`]: the run loop and its connection limit, each connection's timer (idle,
//!   slow request heads), the drain, graceful shutdown, and the metrics endpoint.
//! - [`managed`]: managed ("v2") plugins: the typed `config.json` (dockerd's decoding,
//!   its validation, the privileges `docker plugin install` asks for, `docker plugin
//!   set`), bundle directories, and the settings kept beside the config. Always
//!   compiled: the packager and the harness share it.
//! - `client` (feature `client`): a client that calls any declared method the way
//!   `dockerd` does, for tests and tools.
//! - `package` (feature `packager`): the packager: `[package.metadata.docker-plugin]`,
//!   architectures, the ELF library closure and glibc's run-time needs, reproducible
//!   rootfs and archives, the build, systemd units; with `registry` the registries
//!   (push, and pull as `docker plugin install` does); with `client` the engine API
//!   (`package::engine`), with `harness` `package --verify` and `doctor`.
//! - `harness` (feature `harness`): the mini-engine, a dockerd test double layered as
//!   dockerd is (the plugin registry, with managed plugins run in the container runc
//!   would give them; one service per subsystem; containers; the engine; with
//!   `registry`, `docker plugin install` from a registry); plugin
//!   binaries as processes (`PluginProcess`); a private real dockerd
//!   (`harness::dockerd`); drivers to put behind it in tests (`harness::testing`).
//! - `load` (feature `load`): the load generator: many connections calling one
//!   endpoint as dockerd does, calls/s, errors by kind, latency percentiles, a log
//!   driver's lines/s through a FIFO, the plugin's RSS.
//!
//! [`Method`]: protocol::Method

#![warn(missing_docs)]

mod dispatch;
mod error;
mod plugin;
mod server;

pub mod args;
pub mod authz;
#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "harness")]
pub mod harness;
pub mod ipam;
#[cfg(feature = "load")]
pub mod load;
pub mod logging;
pub mod managed;
pub mod metrics;
pub mod mountinfo;
pub mod network;
pub mod options;
#[cfg(feature = "packager")]
pub mod package;
pub mod protocol;
pub mod secrets;
pub mod spec;
pub mod state;
pub mod telemetry;
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
