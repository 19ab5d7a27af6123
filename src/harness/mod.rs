//! The mini-engine (feature `harness`): a test double of dockerd that drives plugins
//! the way dockerd does, so a plugin crate tests itself end to end without a Docker
//! daemon.
//!
//! It is a client of this same crate (design principle 6): the wire types, the spec
//! format and the client are the ones the server side uses; the harness adds only
//! what dockerd adds: discovery, retries, lazy activation, the call sequences of user
//! actions, reference counts, and a [`CallLog`] to assert on.
//!
//! It is layered as dockerd is (`daemon/daemon.go` composes a plugin manager, a volume
//! service and libnetwork): the plugin registry at the bottom ([`Plugins`]: discovery,
//! RPC, activation, the managed lifecycle, references), one service per subsystem on
//! it ([`Volumes`]), [`Containers`] on the services, and [`Engine`] as the thin root
//! that composes them. A user action is a call on the service that owns it:
//! `engine.volumes().create(…)` is `docker volume create`, `engine.plugins().enable(…)`
//! is `docker plugin enable`, `engine.containers().run(…)` is `docker run`.
//!
//! ```no_run
//! use docker_plugin_sdk::harness::{Discovery, Engine, VolumeUse};
//! # async fn run() -> Result<(), docker_plugin_sdk::harness::HarnessError> {
//! // The plugin under test listens on /tmp/t/run/docker/plugins/myplugin.sock.
//! let engine = Engine::new(Discovery::rooted("/tmp/t"));
//! engine.volumes().create("myplugin", "v1", [("size", "1G")]).await?;
//! let written = engine
//!     .containers()
//!     .run(&[VolumeUse::existing("v1")], |c| {
//!         std::fs::write(c.mountpoint("v1").unwrap().join("hello"), "hi")
//!     })
//!     .await?;
//! engine.volumes().rm("v1").await?;
//! println!("{:#?}", engine.calls().methods());
//! # Ok(()) }
//! ```
//!
//! Managed plugins ([`Plugins::create`], [`set`](Plugins::set),
//! [`enable`](Plugins::enable), [`disable`](Plugins::disable), [`rm`](Plugins::rm)) run
//! from bundle dirs, started as [`LaunchMode`] says and waited for as [`SocketProbe`]
//! says.
//!
//! Where it knowingly differs from dockerd: it has no `local` driver (a volume without
//! a plugin driver is "no such volume"), containers are played by a closure (nothing
//! is bind-mounted), `https://` plugins are not supported yet, and a managed plugin
//! gets a private mount namespace and chroot but no PID, network, IPC or UTS
//! namespace, no capability, device or cgroup limits, and its mounts under the
//! propagated mount are not propagated back to the host (files are, through the
//! bind of `<plugin dir>/propagated-mount`).

mod calls;
mod containers;
pub mod dockerd;
mod engine;
mod error;
mod ids;
mod plugins;
mod process;
mod volume;

pub use calls::{CallLog, CallRecord};
pub use containers::{Container, ContainerMount, Containers};
pub use engine::Engine;
pub use error::HarnessError;
pub use plugins::{
    ActivePlugin, Discovery, EngineConfig, Found, LaunchMode, ManagedInfo, PLUGIN_PATH,
    PluginLogLine, PluginRpc, Plugins, RetryPolicy, ScopedPaths, SocketProbe, Stream,
    normalize_name,
};
pub use process::{PluginProcess, ProcessError, Signal};
pub use volume::{VolumeInfo, VolumeList, VolumeUse, Volumes};
