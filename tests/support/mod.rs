//! Helpers shared by the integration tests, one home for all of them: each is compiled
//! only with the features it needs, so a test declares just `mod support;`.
//!
//! - [`process`]: binaries built on demand (examples, the xtask recorder) for the
//!   harness's `PluginProcess`;
//! - [`server`]: an in-process plugin server with a recording driver;
//! - [`shared_dockerd`]: one private real dockerd per test binary;
//! - [`bundle`]: managed-plugin bundles written by the packager;
//! - [`recorder`]: the xtask recorder as a managed plugin, and what it reports.
#![allow(dead_code)]

#[cfg(feature = "packager")]
pub mod bundle;
pub mod process;
#[cfg(all(feature = "harness", feature = "packager"))]
pub mod recorder;
#[cfg(feature = "client")]
pub mod server;
#[cfg(feature = "harness")]
pub mod shared_dockerd;
