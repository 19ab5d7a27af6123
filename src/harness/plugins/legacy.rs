//! Legacy ("v1") plugins as dockerd's `pkg/plugins` keeps them (moby v20.10.24
//! `pkg/plugins/plugins.go`): found through discovery (retried until the retry deadline
//! when looked up by name, not when listing), sent `/Plugin.Activate` on first use, and
//! kept for the engine's life once activated (a restarted plugin is not activated
//! again); a failed activation is forgotten and tried again next time. Whichever way
//! it was found, its calls, `/Plugin.Activate` first, retry connection errors: dockerd's
//! `Client.Call` always does (`callWithRetry(…, true)`); only the lookup of a listing
//! does not (`loadWithRetry(name, false)`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Mutex as AsyncMutex;

use super::active::ActivePlugin;
use super::discovery::{Discovery, Found};
use super::rpc::{PluginRpc, RetryPolicy};
use crate::client::Client;
use crate::harness::calls::CallLog;
use crate::harness::error::HarnessError;
use crate::protocol::{Activate, Empty};

/// The activated legacy plugins, by name.
#[derive(Debug)]
pub(crate) struct Legacy {
    discovery: Discovery,
    retry: RetryPolicy,
    log: CallLog,
    activated: AsyncMutex<HashMap<String, Arc<ActivePlugin>>>,
}

impl Legacy {
    pub(crate) fn new(discovery: Discovery, retry: RetryPolicy, log: CallLog) -> Self {
        Self {
            discovery,
            retry,
            log,
            activated: AsyncMutex::new(HashMap::new()),
        }
    }

    pub(crate) fn discovery(&self) -> &Discovery {
        &self.discovery
    }

    /// Plugin `name`, activated on first use. With `retry`, a lookup that finds nothing
    /// is retried as dockerd retries it; without, it fails at once (dockerd's
    /// listing). Connection errors of its calls are retried either way.
    pub(crate) async fn get(
        &self,
        name: &str,
        retry: bool,
    ) -> Result<Arc<ActivePlugin>, HarnessError> {
        let mut activated = self.activated.lock().await;
        if let Some(plugin) = activated.get(name) {
            return Ok(Arc::clone(plugin));
        }
        let policy = if retry {
            self.retry
        } else {
            RetryPolicy::none()
        };
        let found = self.find_with_retry(name, policy).await?;
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
        activated.insert(name.to_owned(), Arc::clone(&plugin));
        Ok(plugin)
    }

    /// Forgets an activated plugin.
    pub(crate) async fn forget(&self, name: &str) {
        self.activated.lock().await.remove(name);
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
