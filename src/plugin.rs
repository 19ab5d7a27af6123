//! The plugin builder: collects the drivers of each subsystem, derives
//! `/Plugin.Activate` from them (design principle 3), and hands the routes to a server.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde::Serialize;

use crate::endpoint::{self, Limits, Shared, WireRequest};
use crate::error::{Error, ServeError};
use crate::protocol::{ACTIVATE_PATH, ActivateResponse};
use crate::server::Server;
use crate::transport::{Listener, UnixSocket};
use crate::volume;

/// One subsystem's routes and the `Implements` value that announces them.
pub(crate) struct Subsystem {
    implements: &'static str,
    router: Router<Shared>,
}

impl Subsystem {
    pub(crate) fn new(implements: &'static str) -> Self {
        Self {
            implements,
            router: Router::new(),
        }
    }

    /// Adds the method dockerd calls as `POST /<name>`, served by `call(driver, request)`.
    pub(crate) fn method<D, Req, Resp, F, Fut>(
        mut self,
        name: &'static str,
        driver: &Arc<D>,
        call: F,
    ) -> Self
    where
        D: Send + Sync + 'static,
        Req: WireRequest,
        Resp: Serialize + Send + 'static,
        F: Fn(Arc<D>, Req) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, Error>> + Send + 'static,
    {
        let driver = Arc::clone(driver);
        let route = endpoint::route(name, move |request| call(Arc::clone(&driver), request));
        self.router = self.router.route(&format!("/{name}"), route);
        self
    }
}

/// A Docker plugin: the drivers it implements and the limits its endpoints enforce.
///
/// ```no_run
/// # use docker_plugin_sdk::{Plugin, volume};
/// # async fn run(driver: impl volume::Driver) -> Result<(), docker_plugin_sdk::ServeError> {
/// Plugin::new()
///     .volume(driver)
///     .body_limit(64 * 1024)
///     .serve_unix("myplugin") // /run/docker/plugins/myplugin.sock, until SIGTERM/SIGINT
///     .await
/// # }
/// ```
pub struct Plugin {
    subsystems: Vec<Subsystem>,
    limits: Limits,
}

impl Default for Plugin {
    fn default() -> Self {
        Self::new()
    }
}

impl Plugin {
    /// A plugin with no drivers yet, a 1 MiB body limit and no call deadline.
    pub fn new() -> Self {
        Self {
            subsystems: Vec::new(),
            limits: Limits::default(),
        }
    }

    /// Serves a volume driver (`VolumeDriver`). Registering a second one replaces the first.
    pub fn volume<D: volume::Driver>(self, driver: D) -> Self {
        self.register(volume::subsystem(driver))
    }

    fn register(mut self, subsystem: Subsystem) -> Self {
        self.subsystems
            .retain(|existing| existing.implements != subsystem.implements);
        self.subsystems.push(subsystem);
        self
    }

    /// The largest request body accepted, in bytes (default 1 MiB); larger ones get a 413
    /// with a JSON error.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.limits.body_limit = bytes;
        self
    }

    /// A deadline for every driver call; a call that takes longer is answered with an
    /// error (and its future dropped). dockerd has its own deadlines (1 to 2 minutes for
    /// volume calls), so this is off by default.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.limits.call_timeout = Some(timeout);
        self
    }

    /// The `Implements` list `/Plugin.Activate` answers, in registration order.
    ///
    /// ```
    /// # use docker_plugin_sdk::Plugin;
    /// assert!(Plugin::new().implements().is_empty());
    /// ```
    pub fn implements(&self) -> Vec<&'static str> {
        self.subsystems.iter().map(|s| s.implements).collect()
    }

    /// The plugin as an axum [`Router`], to embed it in another server or to test it
    /// with `tower::ServiceExt::oneshot`.
    pub fn into_router(self) -> Router {
        let activation = ActivateResponse {
            implements: self.implements().into_iter().map(str::to_owned).collect(),
        };
        // Serializing a list of strings cannot fail.
        let activation = Bytes::from(serde_json::to_vec(&activation).unwrap_or_default());
        let mut router = Router::new().route(
            ACTIVATE_PATH,
            axum::routing::any(move |request: Request| {
                let activation = activation.clone();
                async move { activate(request, activation) }
            }),
        );
        for subsystem in self.subsystems {
            router = router.merge(subsystem.router);
        }
        router
            .fallback(unknown_endpoint)
            .with_state(Arc::new(self.limits))
    }

    /// A server for this plugin on `listener`, to configure further (spec file, shutdown).
    pub fn server(self, listener: Listener) -> Server {
        Server::new(self.into_router(), listener)
    }

    /// Serves on `listener` until SIGTERM or SIGINT, then finishes in-flight calls and
    /// removes the socket.
    pub async fn serve(self, listener: Listener) -> Result<(), ServeError> {
        self.server(listener).run().await
    }

    /// Serves on `/run/docker/plugins/NAME.sock` (created if missing, a stale socket
    /// replaced) until SIGTERM or SIGINT.
    pub async fn serve_unix(self, name: &str) -> Result<(), ServeError> {
        let listener = UnixSocket::new(name).bind()?;
        self.serve(listener).await
    }
}

fn activate(request: Request, activation: Bytes) -> Response {
    let (parts, _body) = request.into_parts();
    match endpoint::check_request(&parts) {
        Ok(content_type) => endpoint::json_reply(content_type, StatusCode::OK, activation),
        Err(reply) => reply,
    }
}

async fn unknown_endpoint(State(_): State<Shared>, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    let content_type = match endpoint::check_request(&parts) {
        Ok(content_type) => content_type,
        Err(reply) => return reply,
    };
    let message = format!(
        "unknown endpoint {}: this plugin does not implement it",
        parts.uri.path()
    );
    tracing::debug!("{message}");
    // dockerd reads a 404 as "not implemented", which is what an unknown method is.
    endpoint::error_reply(content_type, StatusCode::NOT_FOUND, &message)
}
