//! The mini-engine (feature `harness`): a test double of dockerd that drives plugins
//! the way dockerd does, so a plugin crate tests itself end to end without a Docker
//! daemon.
//!
//! It is a client of this same crate (design principle 6): the wire types, the spec
//! format and the client are the ones the server side uses; the harness adds only
//! what dockerd adds: discovery, retries, lazy activation, the call sequences of user
//! actions, reference counts, and a [`CallLog`] to assert on.
//!
//! ```no_run
//! use docker_plugin_sdk::harness::{Discovery, Engine, VolumeUse};
//! # async fn run() -> Result<(), docker_plugin_sdk::harness::HarnessError> {
//! // The plugin under test listens on /tmp/t/run/docker/plugins/myplugin.sock.
//! let engine = Engine::new(Discovery::rooted("/tmp/t"));
//! engine.volume_create("myplugin", "v1", [("size", "1G")]).await?;
//! let written = engine
//!     .run_with_volumes(&[VolumeUse::existing("v1")], |c| {
//!         std::fs::write(c.mountpoint("v1").unwrap().join("hello"), "hi")
//!     })
//!     .await?;
//! engine.volume_rm("v1").await?;
//! println!("{:#?}", engine.calls().methods());
//! # Ok(()) }
//! ```
//!
//! Managed plugins (`plugin_create`, `plugin_set`, `plugin_enable`, `plugin_disable`,
//! `plugin_rm`) run from bundle dirs: see the `managed` and `launch` sections of
//! [`Engine`]'s methods and [`SocketProbe`].
//!
//! Where it knowingly differs from dockerd: it has no `local` driver (a volume without
//! a plugin driver is "no such volume"), containers are played by a closure (nothing
//! is bind-mounted), `https://` plugins are not supported yet, and a managed plugin
//! gets a private mount namespace and chroot but no PID, network, IPC or UTS
//! namespace, no capability, device or cgroup limits, and its mounts under the
//! propagated mount are not propagated back to the host (files are, through the
//! bind of `<plugin dir>/propagated-mount`).

mod calls;
mod discovery;
pub mod dockerd;
mod engine;
mod error;
mod fast;
mod launch;
mod managed;
mod process;
mod rpc;
mod volumes;

pub use calls::{CallLog, CallRecord};
pub use discovery::{Discovery, Found};
pub use engine::{ActivePlugin, Engine, EngineConfig};
pub use error::HarnessError;
pub use launch::{LaunchMode, PLUGIN_PATH, PluginLogLine, Stream};
pub use managed::{ManagedInfo, ScopedPaths, SocketProbe, normalize_name};
pub use process::{PluginProcess, ProcessError, Signal};
pub use rpc::{PluginRpc, RetryPolicy, method_timeout};
pub use volumes::{Container, ContainerMount, VolumeInfo, VolumeUse};
