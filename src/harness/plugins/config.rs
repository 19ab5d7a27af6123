//! How the engine's plugin registry behaves (every setting of the engine is one of
//! the registry's): dockerd's settings, stand-ins for its directories and shorter
//! waits for tests. There is no default: an engine reaches the machine's real
//! `/run/docker/plugins` and `/etc/docker/plugins` only when asked for by name
//! ([`EngineConfig::system`], [`Discovery::system`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Discovery, RetryPolicy, SocketProbe};

/// How the engine behaves: dockerd's settings, with the directories chosen
/// explicitly ([`rooted`](Self::rooted), [`for_tests`](Self::for_tests), or
/// [`system`](Self::system) for the machine's own).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where plugins are looked up. Managed plugins' sockets go in
    /// `<socket_dir>/<id>/`, as with dockerd's default exec root.
    pub discovery: Discovery,
    /// Retry of lookups and connection errors (dockerd: 30 s deadline, 1 s first backoff).
    pub retry: RetryPolicy,
    /// Stands for dockerd's `--data-root`: managed plugins are kept in
    /// `<data_root>/plugins/<id>/`. `None` (as with [`Engine::new`]) refuses managed
    /// plugins rather than write into the real `/var/lib/docker`.
    ///
    /// [`Engine::new`]: crate::harness::Engine::new
    pub data_root: Option<PathBuf>,
    /// How a freshly enabled plugin's socket is waited for.
    pub socket_probe: SocketProbe,
    /// The client timeout of managed plugins (`docker plugin enable --timeout`,
    /// default 30 s); it caps the per-method timeouts.
    pub plugin_timeout: Duration,
}

impl EngineConfig {
    /// dockerd's settings, looking legacy plugins up with `discovery`, without a data
    /// root (no managed plugins).
    ///
    /// ```
    /// use docker_plugin_sdk::harness::{Discovery, EngineConfig, RetryPolicy};
    ///
    /// let config = EngineConfig::with_discovery(Discovery::rooted("/tmp/t"));
    /// assert_eq!(config.retry, RetryPolicy::default());
    /// assert!(config.data_root.is_none());
    /// ```
    pub fn with_discovery(discovery: Discovery) -> Self {
        Self {
            discovery,
            retry: RetryPolicy::default(),
            data_root: None,
            socket_probe: SocketProbe::default(),
            plugin_timeout: Duration::from_secs(30),
        }
    }

    /// dockerd's settings on the machine's own plugin directories
    /// ([`Discovery::system`]): for tools that talk to the plugins really installed.
    /// Managed plugins are refused (no data root: the real `/var/lib/docker` is
    /// dockerd's).
    ///
    /// ```
    /// use docker_plugin_sdk::harness::EngineConfig;
    ///
    /// let config = EngineConfig::system();
    /// assert_eq!(config.discovery.socket_dir, std::path::Path::new("/run/docker/plugins"));
    /// ```
    pub fn system() -> Self {
        Self::with_discovery(Discovery::system())
    }

    /// dockerd's settings with every directory under `root`: discovery as
    /// [`Discovery::rooted`], the data root in `root/var/lib/docker`.
    pub fn rooted(root: impl AsRef<Path>) -> Self {
        let root = root.as_ref();
        Self {
            data_root: Some(root.join("var/lib/docker")),
            ..Self::with_discovery(Discovery::rooted(root))
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
