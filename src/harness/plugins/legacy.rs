//! Legacy ("v1") plugins as dockerd's `pkg/plugins` keeps them (moby v20.10.24
//! `pkg/plugins/plugins.go`, `client.go`): found through discovery (retried until the
//! retry deadline when looked up by name, not when listing), sent `/Plugin.Activate` on
//! first use, and kept for the engine's life once activated (a restarted plugin is not
//! activated again); a failed activation is forgotten and tried again next time.
//!
//! Listing skips only the discovery retry: the client made for the plugin retries
//! connection errors like any other (Activate included, and every later call). Each
//! plugin is activated under a lock of its own (moby's `activateWait`), so a slow
//! plugin never holds up the lookup of another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Mutex as AsyncMutex;

use super::active::ActivePlugin;
use super::discovery::{Discovery, Found};
use super::rpc::{PluginRpc, RetryPolicy};
use crate::client::Client;
use crate::harness::calls::CallLog;
use crate::harness::error::HarnessError;
use crate::protocol::{Activate, Empty};

/// One plugin's slot: empty until an activation succeeds.
type Slot = Arc<AsyncMutex<Option<Arc<ActivePlugin>>>>;

/// The legacy plugins, by name.
#[derive(Debug)]
pub(crate) struct Legacy {
    discovery: Discovery,
    retry: RetryPolicy,
    log: CallLog,
    plugins: Mutex<HashMap<String, Slot>>,
}

impl Legacy {
    pub(crate) fn new(discovery: Discovery, retry: RetryPolicy, log: CallLog) -> Self {
        Self {
            discovery,
            retry,
            log,
            plugins: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn discovery(&self) -> &Discovery {
        &self.discovery
    }

    fn slot(&self, name: &str) -> Slot {
        let mut plugins = self.plugins.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(plugins.entry(name.to_owned()).or_default())
    }

    /// Plugin `name`, activated on first use. With `retry`, a lookup that finds nothing
    /// is retried as dockerd retries it; without (dockerd's listing), it fails at once.
    /// Connection errors of the calls are retried either way.
    pub(crate) async fn get(
        &self,
        name: &str,
        retry: bool,
    ) -> Result<Arc<ActivePlugin>, HarnessError> {
        let slot = self.slot(name);
        let mut activated = slot.lock().await;
        if let Some(plugin) = activated.as_ref() {
            return Ok(Arc::clone(plugin));
        }
        let lookup = if retry {
            self.retry
        } else {
            RetryPolicy::none()
        };
        let found = self.find_with_retry(name, lookup).await?;
        let client = client_for(&found)?;
        let rpc = PluginRpc::new(name, client, self.retry, self.log.clone());
        let answer = rpc.call::<Activate>(&Empty {}).await?;
        let plugin = Arc::new(ActivePlugin {
            rpc,
            implements: answer.implements,
            found,
            scope: None,
            _socket_dir: None,
        });
        *activated = Some(Arc::clone(&plugin));
        Ok(plugin)
    }

    /// Forgets an activated plugin.
    pub(crate) async fn forget(&self, name: &str) {
        let removed = self
            .plugins
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        if let Some(slot) = removed {
            *slot.lock().await = None;
        }
    }

    async fn find_with_retry(
        &self,
        name: &str,
        policy: RetryPolicy,
    ) -> Result<Found, HarnessError> {
        let start = Instant::now();
        let mut retries = 0;
        loop {
            match self.discovery.find(name) {
                Ok(found) => return Ok(found),
                Err(err) => {
                    let backoff = policy.backoff(retries);
                    if policy.abort(start, backoff) {
                        return Err(err);
                    }
                    retries += 1;
                    tracing::warn!(plugin = name, ?backoff, "unable to locate plugin, retrying");
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    }
}

fn client_for(found: &Found) -> Result<Client, HarnessError> {
    if found.addr.starts_with("https://") {
        return Err(HarnessError::BadSpec {
            path: found.path.clone(),
            problem:
                "https:// plugins are not supported by the harness yet (use tcp:// or unix://)"
                    .into(),
        });
    }
    Client::from_url(&found.addr).map_err(|e| HarnessError::BadSpec {
        path: found.path.clone(),
        problem: e.to_string(),
    })
}
