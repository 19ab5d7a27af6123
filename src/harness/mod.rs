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
//! it ([`Volumes`], [`Networks`], [`Authz`], [`Secrets`], [`Logging`], [`Metrics`]),
//! [`Containers`] on the services, and [`Engine`] as the thin root that composes them.
//! A user action is a call on the service that owns it:
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
//! [`enable`](Plugins::enable), [`disable`](Plugins::disable),
//! [`upgrade`](Plugins::upgrade), [`rm`](Plugins::rm)) run from bundle dirs in the
//! container dockerd's runc gives them, waited for as [`SocketProbe`] says.
//!
//! # What it reproduces, and what it does not
//!
//! It is a faithful **test double**, checked against recordings of a real dockerd
//! (`tests/fixtures/dockerd-sequences`, replayed call by call, request bodies, the
//! stdout of the commands it models and the plugin's own report of its container):
//!
//! - legacy discovery, activation, retries and the v1 driver cache, every volume
//!   action's calls, references, and dockerd's error messages;
//! - a managed plugin's container: private mount, UTS, IPC, PID and network
//!   namespaces (as the config asks), Docker's 14 capabilities plus the config's, a
//!   tmpfs `/dev` with runc's nodes and the devices asked for, `/sys` read-only,
//!   runc's masked paths, dockerd's init layer and `/etc/hosts`, the config's mounts,
//!   the socket dir, and the propagated mount with `rshared` propagation, so that a
//!   FUSE or bind mount the plugin makes reaches the host;
//! - the plugin's lifetime: nothing it starts outlives it, it dies with the test
//!   process, and dropping the [`Engine`] stops what it enabled.
//!
//! It is **not a sandbox**: as root the plugin is root on the host (as under dockerd),
//! and without root it runs in a user namespace, where device nodes are bound from the
//! host and its mounts do not propagate back (files written under the propagated
//! mount do). There is no `local` volume driver (a volume without a plugin driver is
//! "no such volume"), containers are played by a closure (nothing is bind-mounted into
//! a container), `https://` plugins are not supported yet, and cgroups (the device
//! cgroup), seccomp and AppArmor are not applied (dockerd sets no seccomp or AppArmor
//! profile for plugins). [`LaunchMode::Host`] runs a host binary in the plugin's
//! namespaces on the host's filesystem: a development shortcut, chosen explicitly.
//!
//! Its directories are the ones it is given: [`Engine::for_tests`] and
//! [`Engine::rooted`] keep everything under one dir, and the machine's real
//! `/run/docker/plugins` is used only when asked for by name ([`Discovery::system`],
//! [`EngineConfig::system`]).
//!
//! [`testing`] holds drivers to put behind it when the plugin is not what is under
//! test ([`testing::MemoryLog`], a log driver in memory).

mod authz;
mod calls;
mod containers;
pub mod dockerd;
mod engine;
mod error;
mod ids;
pub(crate) mod logging;
mod metrics;
mod network;
mod plugins;
mod process;
mod secrets;
pub mod testing;
mod volume;

pub use authz::{ApiRequest, ApiResponse, Authz, MAX_AUTHZ_BODY, RESPONSE_BUFFER};
pub use calls::{CallLog, CallRecord};
pub use containers::{Container, ContainerMount, Containers};
pub use engine::Engine;
pub use error::HarnessError;
pub use logging::{COPIER_BUFFER, ContainerLog, LogContainer, LogMessage, LogReader, Logging};
pub use metrics::Metrics;
pub use network::{ContainerEndpoint, NetworkInfo, NetworkOptions, NetworkUse, Networks};
#[cfg(feature = "registry")]
pub use plugins::InstallOptions;
#[cfg(feature = "packager")]
pub(crate) use plugins::copy_tree;
pub use plugins::{
    ActivePlugin, Discovery, EngineConfig, Found, LaunchMode, ManagedInfo, PLUGIN_PATH,
    PluginLogLine, PluginRpc, Plugins, RetryPolicy, ScopedPaths, SocketProbe, Stream,
    normalize_name, rootfs_command,
};
pub use process::{PluginProcess, ProcessError, Signal};
pub use secrets::{Assignment, SecretTask, Secrets};
pub use volume::{VolumeInfo, VolumeList, VolumeUse, Volumes};
