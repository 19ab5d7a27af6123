//! Helpers shared by the integration tests, one home for all of them: each is compiled
//! only with the features it needs, so a test declares just `mod support;`.
//!
//! - [`process`]: binaries built on demand (examples, the xtask recorder) for the
//!   harness's `PluginProcess`;
//! - [`server`]: an in-process plugin server with a recording driver;
//! - [`shared_dockerd`]: one private real dockerd per test binary;
//! - [`bundle`]: managed-plugin bundles written by the packager;
//! - [`logs`]: what the SDK logs, captured for assertions.
#![allow(dead_code)]

#[cfg(feature = "packager")]
pub mod bundle;
pub mod logs;
pub mod process;
#[cfg(feature = "client")]
pub mod server;
#[cfg(feature = "harness")]
pub mod shared_dockerd;
