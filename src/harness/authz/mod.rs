//! The authorization middleware: what dockerd started with `--authorization-plugin`
//! does around every Engine API call (moby v20.10.24 `pkg/authorization/middleware.go`
//! `WrapHandler`, `authz.go`, `plugin.go`):
//!
//! 1. AuthZReq to each plugin of the chain, in order; the first deny refuses the call
//!    (`authorization denied by plugin NAME: MSG`, a 403), and so does the first
//!    failure (`plugin NAME failed with error: AuthZPlugin.AuthZReq: ERR`, a 500):
//!    the handler does not run;
//! 2. the handler runs, its reply buffered;
//! 3. AuthZRes to each plugin of the chain as it is *now* (a plugin disabled meanwhile
//!    is gone), same rules; a deny or failure replaces the reply with the error, unless
//!    the handler itself failed, whose error wins.
//!
//! Each plugin is looked up once, at its first use, and that outcome is kept (moby's
//! `sync.Once` in `initPlugin`): a plugin missing then fails every call until the chain
//! is set again. Names are deduplicated, the first occurrence kept (`newPlugins`).

mod api;

use std::future::Future;
use std::sync::{Arc, Mutex};

pub use api::{ApiRequest, ApiResponse, MAX_AUTHZ_BODY, RESPONSE_BUFFER};

use super::error::HarnessError;
use super::plugins::{ActivePlugin, Plugins};
use crate::authz::{AuthZReq, AuthZRequest, AuthZRes, IMPLEMENTS};
use crate::protocol::Method;

/// dockerd's authorization middleware: the chain of `--authorization-plugin` names and
/// the API-request entry point that consults it. Cheap to clone.
///
/// ```no_run
/// use docker_plugin_sdk::harness::{ApiRequest, ApiResponse, Engine};
/// # async fn run() -> Result<(), docker_plugin_sdk::harness::HarnessError> {
/// let engine = Engine::for_tests("/tmp/t");
/// engine.authz().set_plugins(["mypolicy"]); // dockerd --authorization-plugin=mypolicy
/// let reply = engine
///     .authz()
///     .call(ApiRequest::new("GET", "/v1.41/volumes"), || async {
///         ApiResponse::json(200, &serde_json::json!({"Volumes": [], "Warnings": null}))
///     })
///     .await?;
/// assert_eq!(reply.status, 200);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Authz {
    plugins: Plugins,
    chain: Arc<Mutex<Vec<Arc<ChainEntry>>>>,
}

/// One plugin of the chain and the outcome of its one lookup.
#[derive(Debug)]
struct ChainEntry {
    name: String,
    plugin: tokio::sync::OnceCell<Result<Arc<ActivePlugin>, String>>,
}

impl Authz {
    pub(crate) fn new(plugins: Plugins) -> Self {
        Self {
            plugins,
            chain: Arc::default(),
        }
    }

    fn chain(&self) -> Vec<Arc<ChainEntry>> {
        self.chain.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Sets the chain, as `--authorization-plugin` flags (or a configuration reload)
    /// do: in order, a repeated name kept once; every plugin looked up afresh.
    pub fn set_plugins<I, S>(&self, names: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut chain: Vec<Arc<ChainEntry>> = Vec::new();
        for name in names {
            let name = name.into();
            if chain.iter().all(|entry| entry.name != name) {
                chain.push(Arc::new(ChainEntry {
                    name,
                    plugin: tokio::sync::OnceCell::new(),
                }));
            }
        }
        *self.chain.lock().unwrap_or_else(|p| p.into_inner()) = chain;
    }

    /// The chain's plugin names, in order.
    pub fn plugins(&self) -> Vec<String> {
        self.chain().iter().map(|e| e.name.clone()).collect()
    }

    /// Removes `name` from the chain, as `docker plugin disable` does for a managed
    /// authz plugin (enabling it again does not put it back).
    pub fn remove_plugin(&self, name: &str) {
        self.chain
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|entry| entry.name != name);
    }

    /// One Engine API call through the middleware: AuthZReq along the chain, then
    /// `handler` (dockerd running the call), then AuthZRes along the chain. The reply,
    /// or dockerd's error: [`HarnessError::AuthzDenied`] (403),
    /// [`HarnessError::AuthzFailed`] (500), or the handler's own
    /// ([`HarnessError::Api`]).
    pub async fn call<F, Fut>(
        &self,
        request: ApiRequest,
        handler: F,
    ) -> Result<ApiResponse, HarnessError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ApiResponse>,
    {
        let chain = self.chain();
        if chain.is_empty() {
            return into_result(handler().await);
        }
        let mut wire = request.to_authz();
        for entry in &chain {
            self.ask::<AuthZReq>(entry, &wire).await?;
        }
        let reply = handler().await;
        let chain = self.chain();
        if chain.is_empty() {
            return into_result(reply);
        }
        reply.fill_authz(&mut wire);
        let mut verdict = Ok(());
        for entry in &chain {
            verdict = self.ask::<AuthZRes>(entry, &wire).await;
            if verdict.is_err() {
                break;
            }
        }
        let reply = into_result(reply)?;
        verdict.map(|()| reply)
    }

    /// [`call`](Self::call) with a reply known beforehand (a recorded one).
    pub async fn replay(
        &self,
        request: ApiRequest,
        reply: ApiResponse,
    ) -> Result<ApiResponse, HarnessError> {
        self.call(request, || async { reply }).await
    }

    /// Asks one plugin of the chain with method `M`: `Ok` if it allows.
    async fn ask<M>(&self, entry: &ChainEntry, wire: &AuthZRequest) -> Result<(), HarnessError>
    where
        M: Method<Request = AuthZRequest, Response = crate::authz::AuthZResponse>,
    {
        let failed = |error: String| HarnessError::AuthzFailed {
            plugin: entry.name.clone(),
            error,
        };
        let plugin = entry
            .plugin
            .get_or_init(|| async {
                self.plugins
                    .get(&entry.name, IMPLEMENTS)
                    .await
                    .map_err(|err| err.to_string())
            })
            .await
            .clone()
            .map_err(failed)?;
        let answer = plugin
            .rpc
            .call::<M>(wire)
            .await
            .map_err(|err| failed(err.remote().to_string()))?;
        if answer.allow {
            Ok(())
        } else {
            // dockerd names the plugin as found (`name:latest` for a managed one).
            Err(HarnessError::AuthzDenied {
                plugin: plugin.rpc.name().to_owned(),
                msg: answer.msg,
            })
        }
    }
}

/// The handler's reply, or its error.
fn into_result(reply: ApiResponse) -> Result<ApiResponse, HarnessError> {
    match reply.error {
        Some((status, message)) => Err(HarnessError::Api { status, message }),
        None => Ok(reply),
    }
}
