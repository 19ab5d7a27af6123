//! Readiness: whether the plugin can do its work yet. dockerd starts a managed plugin
//! and calls it as soon as its socket answers (`docker plugin enable` activates it at
//! once, moby v20.10.24 `plugin/manager_linux.go` `pluginPostStart`); a plugin whose
//! backend is still out of reach must answer with a clear error at once rather than
//! hang every call until dockerd's deadline. `Plugin.Activate` is always answered, so
//! the plugin stays enabled.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Whether the plugin is ready; clones share the same state. Calls made while it is
/// not ready are answered with a 503 and `{"Err": "plugin not ready: WHY"}` (dockerd
/// shows the `Err`), without reaching the driver.
///
/// ```
/// use docker_plugin_sdk::telemetry::Readiness;
///
/// let readiness = Readiness::not_ready("connecting to 10.0.0.5:22");
/// assert_eq!(readiness.not_ready_reason().as_deref(), Some("connecting to 10.0.0.5:22"));
/// readiness.set_ready();
/// assert!(readiness.is_ready());
/// ```
#[derive(Clone, Debug)]
pub struct Readiness {
    state: Arc<State>,
}

#[derive(Debug)]
struct State {
    ready: AtomicBool,
    reason: Mutex<String>,
}

impl Default for Readiness {
    fn default() -> Self {
        Self::ready()
    }
}

impl Readiness {
    /// Ready.
    pub fn ready() -> Self {
        Self::with(true, String::new())
    }

    /// Not ready, for `reason` (shown to the user in dockerd's error).
    pub fn not_ready(reason: impl Into<String>) -> Self {
        Self::with(false, reason.into())
    }

    fn with(ready: bool, reason: String) -> Self {
        Self {
            state: Arc::new(State {
                ready: AtomicBool::new(ready),
                reason: Mutex::new(reason),
            }),
        }
    }

    /// Calls reach the driver again.
    pub fn set_ready(&self) {
        self.state.ready.store(true, Ordering::Release);
    }

    /// Calls are answered with an error saying `reason` until [`Readiness::set_ready`].
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        *self
            .state
            .reason
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = reason.into();
        self.state.ready.store(false, Ordering::Release);
    }

    /// Whether calls reach the driver.
    pub fn is_ready(&self) -> bool {
        self.state.ready.load(Ordering::Acquire)
    }

    /// Why the plugin is not ready, or `None` when it is.
    pub fn not_ready_reason(&self) -> Option<String> {
        if self.is_ready() {
            return None;
        }
        Some(
            self.state
                .reason
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone(),
        )
    }
}
