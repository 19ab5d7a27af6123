//! Presets for tests: dockerd's waits are made for production (a 30 s lookup deadline,
//! a socket probe of about 12 s), far too slow for a test that expects a failure. These
//! keep dockerd's behaviour (same retries, same order) with shorter waits, so every
//! test need not invent its own numbers.

use std::path::Path;
use std::time::Duration;

use super::engine::{Engine, EngineConfig};
use super::managed::SocketProbe;
use super::rpc::RetryPolicy;

impl RetryPolicy {
    /// dockerd's retry with a 5 s deadline and a 100 ms first backoff (dockerd: 30 s
    /// and 1 s): a plugin that starts late is still found, a missing one fails fast.
    ///
    /// ```
    /// use std::time::Duration;
    /// use docker_plugin_sdk::harness::RetryPolicy;
    ///
    /// let fast = RetryPolicy::fast();
    /// assert_eq!(fast.deadline, Duration::from_secs(5));
    /// assert_eq!(fast.backoff(0), Duration::from_millis(100));
    /// assert_eq!(fast.backoff(2), Duration::from_millis(400));
    /// ```
    pub fn fast() -> Self {
        Self {
            deadline: Duration::from_secs(5),
            first_backoff: Duration::from_millis(100),
        }
    }
}

impl SocketProbe {
    /// A freshly enabled managed plugin's socket probed every 100 ms for 5 s
    /// (dockerd: after 500 ms, 4 dials 3 s apart).
    ///
    /// ```
    /// use std::time::Duration;
    /// use docker_plugin_sdk::harness::SocketProbe;
    ///
    /// let fast = SocketProbe::fast();
    /// assert_eq!(fast.first_wait + fast.interval * fast.attempts, Duration::from_millis(5100));
    /// ```
    pub fn fast() -> Self {
        Self {
            first_wait: Duration::from_millis(100),
            interval: Duration::from_millis(100),
            attempts: 50,
        }
    }
}

impl EngineConfig {
    /// [`EngineConfig::rooted`] (every directory under `root`) with
    /// [`RetryPolicy::fast`] and [`SocketProbe::fast`]: what a test wants.
    ///
    /// ```
    /// use docker_plugin_sdk::harness::{EngineConfig, RetryPolicy, SocketProbe};
    ///
    /// let config = EngineConfig::for_tests("/tmp/t");
    /// assert_eq!(config.discovery.socket_dir, std::path::Path::new("/tmp/t/run/docker/plugins"));
    /// assert_eq!(config.retry, RetryPolicy::fast());
    /// assert_eq!(config.socket_probe, SocketProbe::fast());
    /// ```
    pub fn for_tests(root: impl AsRef<Path>) -> Self {
        Self {
            retry: RetryPolicy::fast(),
            socket_probe: SocketProbe::fast(),
            ..Self::rooted(root)
        }
    }
}

impl Engine {
    /// An engine with [`EngineConfig::for_tests`]: rooted in `root`, fast retries and
    /// socket probe.
    ///
    /// ```no_run
    /// use docker_plugin_sdk::harness::Engine;
    /// # async fn run() -> Result<(), docker_plugin_sdk::harness::HarnessError> {
    /// // Your plugin listens on /tmp/t/run/docker/plugins/myplugin.sock.
    /// let engine = Engine::for_tests("/tmp/t");
    /// engine.volume_create("myplugin", "v1", [("size", "1G")]).await?;
    /// # Ok(()) }
    /// ```
    pub fn for_tests(root: impl AsRef<Path>) -> Self {
        Self::with_config(EngineConfig::for_tests(root))
    }
}
