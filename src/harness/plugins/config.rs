//! How the engine's plugin registry behaves (every setting of the engine is one of
//! the registry's): dockerd's settings by default, stand-ins for its directories and
//! shorter waits for tests.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Discovery, RetryPolicy, SocketProbe};

/// How the engine behaves; the defaults are dockerd's.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where plugins are looked up. Managed plugins' sockets go in
    /// `<socket_dir>/<id>/`, as with dockerd's default exec root.
    pub discovery: Discovery,
    /// Retry of lookups and connection errors (dockerd: 30 s deadline, 1 s first backoff).
    pub retry: RetryPolicy,
    /// Stands for dockerd's `--data-root`: managed plugins are kept in
    /// `<data_root>/plugins/<id>/`. `None` (the default of [`Engine::new`]) refuses
    /// managed plugins rather than write into the real `/var/lib/docker`.
    ///
    /// [`Engine::new`]: crate::harness::Engine::new
    pub data_root: Option<PathBuf>,
    /// How a freshly enabled plugin's socket is waited for.
    pub socket_probe: SocketProbe,
    /// The client timeout of managed plugins (`docker plugin enable --timeout`,
    /// default 30 s); it caps the per-method timeouts.
    pub plugin_timeout: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            discovery: Discovery::default(),
            retry: RetryPolicy::default(),
            data_root: None,
            socket_probe: SocketProbe::default(),
            plugin_timeout: Duration::from_secs(30),
        }
    }
}

impl EngineConfig {
    /// dockerd's settings with every directory under `root`: discovery as
    /// [`Discovery::rooted`], the data root in `root/var/lib/docker`.
    pub fn rooted(root: impl AsRef<Path>) -> Self {
        let root = root.as_ref();
        Self {
            discovery: Discovery::rooted(root),
            data_root: Some(root.join("var/lib/docker")),
            ..Self::default()
        }
    }

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
