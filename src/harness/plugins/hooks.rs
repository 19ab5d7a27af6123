//! What a subsystem adds to the managed plugins of its type, as dockerd's plugin store
//! lets it (moby v20.10.24 `plugin/store.go` `Handle` and `RegisterRuntimeOpt`,
//! `plugin/manager_linux.go` `pluginPostStart`): mounts in the plugin's container, and
//! a handler run each time the plugin's socket comes up (at enable and after a crash
//! restart). dockerd matches the full type, `docker.<capability>/1.0`.

use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::active::ActivePlugin;
use crate::harness::error::HarnessError;
use crate::managed::config::{InterfaceType, Mount};

/// A handler run when a plugin of the hook's type has come up.
pub(crate) type StartHandler =
    Arc<dyn Fn(Arc<ActivePlugin>) -> BoxFuture<'static, ()> + Send + Sync>;

/// The mounts a hook adds, made when the plugin is enabled.
pub(crate) type Mounts = Arc<dyn Fn() -> Result<Vec<Mount>, HarnessError> + Send + Sync>;

/// A subsystem's additions to the plugins of one type.
#[derive(Clone)]
pub(crate) struct RuntimeHook {
    /// The capability, lower case (`metricscollector`): the type is
    /// `docker.<capability>/1.0`.
    pub(crate) capability: &'static str,
    pub(crate) mounts: Mounts,
    pub(crate) on_start: StartHandler,
}

impl fmt::Debug for RuntimeHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeHook")
            .field("capability", &self.capability)
            .finish_non_exhaustive()
    }
}

impl RuntimeHook {
    /// Whether a plugin of these types gets this hook.
    pub(crate) fn applies_to(&self, types: &[InterfaceType]) -> bool {
        types.iter().any(|ty| {
            ty.prefix == "docker" && ty.capability == self.capability && ty.version == "1.0"
        })
    }
}

/// The start handlers of one plugin, in registration order.
#[derive(Clone, Default)]
pub(crate) struct StartHandlers(pub(crate) Vec<StartHandler>);

impl fmt::Debug for StartHandlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StartHandlers({})", self.0.len())
    }
}

impl StartHandlers {
    /// Runs every handler for `plugin`, one after the other, as dockerd's
    /// `CallHandler` does.
    pub(crate) async fn run(&self, plugin: Option<Arc<ActivePlugin>>) {
        let Some(plugin) = plugin else { return };
        for handler in &self.0 {
            handler(Arc::clone(&plugin)).await;
        }
    }
}
