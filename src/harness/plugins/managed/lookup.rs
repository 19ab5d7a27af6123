//! The managed half of dockerd's plugin getter (moby v20.10.24 `plugin/store.go` `Get`,
//! `GetAllManagedPluginsByCap`): what the services ask the registry for, by name, ID
//! or ID prefix, and the references volumes take.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Managed;
use crate::harness::error::HarnessError;
use crate::harness::plugins::active::ActivePlugin;

impl Managed {
    /// dockerd's `Store.Get` for managed plugins: the plugin `name` (a name, an ID or
    /// a prefix) for `subsystem`; `Ok(None)` when there is none (look for a legacy
    /// one), an error when it is disabled, ambiguous or does not provide it.
    pub(crate) fn lookup(
        &self,
        name: &str,
        subsystem: &str,
    ) -> Result<Option<Arc<ActivePlugin>>, HarnessError> {
        let managed = self.managed();
        let Some(plugin) = Self::find_managed(&managed, name)? else {
            return Ok(None);
        };
        match plugin.shared.active() {
            Some(active) if plugin.enabled() => {
                if plugin.provides(subsystem) {
                    Ok(Some(active))
                } else {
                    Err(HarnessError::NoCapability {
                        capability: subsystem.to_ascii_lowercase(),
                    })
                }
            }
            // The name as given: "plugin rec-m found but disabled".
            _ => Err(HarnessError::PluginDisabled {
                name: name.to_owned(),
            }),
        }
    }

    /// The socket to dial managed plugin `name` by while it is enabled: `Ok(None)`
    /// when there is no such managed plugin, an error while it is disabled.
    pub(crate) fn socket_of(&self, name: &str) -> Result<Option<PathBuf>, HarnessError> {
        let managed = self.managed();
        let Some(plugin) = Self::find_managed(&managed, name)? else {
            return Ok(None);
        };
        match plugin.shared.active() {
            Some(active) if plugin.enabled() => Ok(Some(match &active._socket_dir {
                // A long path: dialed through the dir kept open.
                Some(dir) => Path::new("/proc/self/fd")
                    .join(std::os::fd::AsRawFd::as_raw_fd(dir.as_ref()).to_string())
                    .join(&plugin.config.interface.socket),
                None => active.found.path.clone(),
            })),
            _ => Err(HarnessError::PluginDisabled {
                name: name.to_owned(),
            }),
        }
    }

    /// Every enabled managed plugin implementing `subsystem`.
    pub(crate) fn implementing(&self, subsystem: &str) -> Vec<Arc<ActivePlugin>> {
        self.managed()
            .iter()
            .filter(|p| p.enabled() && p.provides(subsystem))
            .filter_map(|p| p.shared.active())
            .collect()
    }

    /// The normalized name of managed plugin `name`, if there is one.
    pub(crate) fn normalized(&self, name: &str) -> Option<String> {
        let managed = self.managed();
        Self::find(&managed, name)
            .ok()
            .map(|i| managed[i].name.clone())
    }

    /// A volume took (`+1`) or dropped (`-1`) a reference on driver `name`.
    pub(crate) fn reference(&self, name: &str, take: bool) {
        let mut managed = self.managed();
        if let Ok(i) = Self::find(&managed, name) {
            let plugin = &mut managed[i];
            if take {
                plugin.refs += 1;
            } else {
                plugin.refs = plugin.refs.saturating_sub(1);
            }
        }
    }
}
