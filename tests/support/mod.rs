//! Helpers shared by the integration tests, one home for all of them: each is compiled
//! only with the features it needs, so a test declares just `mod support;`.
//!
//! - [`process`]: binaries built on demand (examples, the xtask recorder) for the
//!   harness's `PluginProcess`;
//! - [`server`]: an in-process plugin server with a recording driver;
//! - [`netplug`]: recording network and IPAM drivers served beside it;
//! - [`vault`]: a secret provider recording its requests;
//! - [`shared_dockerd`]: one private real dockerd per test binary;
//! - [`bundle`]: managed-plugin bundles written by the packager;
//! - [`logs`]: what the SDK logs, captured for assertions;
//! - [`scripted`]: a raw plugin answered from a script, recording the bytes it gets;
//! - [`cli`]: the `cargo docker-plugin` binary run as a user runs it;
//! - [`registry`]: Debian's docker-registry (loopback, or TLS on a host of its own)
//!   and [`token_server`], a token service for it;
//! - [`recorder`]: the xtask recorder as a managed plugin, and what it reports;
//! - [`mounts`]: the mounts under a test's temporary dir (only its own, whatever
//!   other tests mount meanwhile), and taking down those a SIGKILLed test left;
//! - [`wait`]: waiting, with one generous deadline, for what happens asynchronously
//!   (a plugin's line in a log, a file another process writes, a process).
#![allow(dead_code)]

#[cfg(feature = "packager")]
pub mod bundle;
#[cfg(feature = "cli")]
pub mod cli;
pub mod logs;
pub mod mounts;
#[cfg(feature = "client")]
pub mod netplug;
pub mod process;
#[cfg(all(feature = "harness", feature = "packager"))]
pub mod recorder;
#[cfg(feature = "registry")]
pub mod registry;
pub mod scripted;
#[cfg(feature = "client")]
pub mod server;
#[cfg(feature = "harness")]
pub mod shared_dockerd;
#[cfg(feature = "registry")]
pub mod token_server;
#[cfg(feature = "client")]
pub mod vault;
pub mod wait;
