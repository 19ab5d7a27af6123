//! The plugin builder: collects the drivers of each subsystem, derives
//! `/Plugin.Activate` from them (design principle 3), and hands the routes to a server.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::any;
use futures_util::future::BoxFuture;

use crate::dispatch::{CallSettings, Dispatch, ReplyFuture, RequestBody, Subsystem, Telemetry};
use crate::error::ServeError;
use crate::protocol::{Activate, Method};
use crate::server::Server;
use crate::telemetry::{CallMetrics, Readiness};
use crate::transport::{Accept, UnixSocket};
use crate::{authz, ipam, logging, metrics, network, secrets, volume};

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
    settings: CallSettings,
    telemetry: Telemetry,
}

impl Default for Plugin {
    fn default() -> Self {
        Self::new()
    }
}

impl Plugin {
    /// A plugin with no drivers yet, each subsystem's default body limit (1 MiB for
    /// volume drivers) and call deadline (none, but 5 s for an authz policy).
    pub fn new() -> Self {
        Self {
            subsystems: Vec::new(),
            settings: CallSettings::default(),
            telemetry: Telemetry::default(),
        }
    }

    /// Serves a volume driver (`VolumeDriver`). Registering a second one replaces the first.
    pub fn volume<D: volume::Driver>(self, driver: D) -> Self {
        self.register(volume::subsystem(driver))
    }

    /// Serves a network driver (`NetworkDriver`). Registering a second one replaces
    /// the first.
    ///
    /// ```no_run
    /// # use docker_plugin_sdk::{Plugin, ipam, network};
    /// # async fn run(net: impl network::Driver, addrs: impl ipam::Driver) -> Result<(), docker_plugin_sdk::ServeError> {
    /// // One process, one socket: `Implements` is ["NetworkDriver", "IpamDriver"].
    /// Plugin::new().network(net).ipam(addrs).serve_unix("mynet").await
    /// # }
    /// ```
    pub fn network<D: network::Driver>(self, driver: D) -> Self {
        self.register(network::subsystem(driver))
    }

    /// Serves an IPAM driver (`IpamDriver`). Registering a second one replaces the
    /// first.
    pub fn ipam<D: ipam::Driver>(self, driver: D) -> Self {
        self.register(ipam::subsystem(driver))
    }

    /// Serves an authorization policy (`authz`): `/AuthZPlugin.AuthZReq` and
    /// `/AuthZPlugin.AuthZRes`, with an 11 MiB body limit ([`authz::BODY_LIMIT`]) and a
    /// 5 s deadline on the policy ([`authz::DEFAULT_TIMEOUT`]). Every failure (an
    /// undecodable call, a policy's error, panic or timeout) refuses the API call: see
    /// [`authz`]. Registering a second one replaces the first.
    ///
    /// ```no_run
    /// # use docker_plugin_sdk::{Plugin, authz};
    /// # async fn run(policy: impl authz::Plugin) -> Result<(), docker_plugin_sdk::ServeError> {
    /// // `dockerd --authorization-plugin=mypolicy`
    /// Plugin::new().authz(policy).serve_unix("mypolicy").await
    /// # }
    /// ```
    pub fn authz<P: authz::Plugin>(self, policy: P) -> Self {
        self.register(authz::subsystem(policy))
    }

    /// Serves a log driver (`LogDriver`) with the default buffering
    /// ([`logging::Options::new`]: 8 MiB per container, the oldest entries dropped when
    /// it is full, 5 s for the driver to finish at StopLogging). Registering a second
    /// one replaces the first.
    ///
    /// ```no_run
    /// # use docker_plugin_sdk::{Plugin, logging};
    /// # async fn run(driver: impl logging::Driver) -> Result<(), docker_plugin_sdk::ServeError> {
    /// // `docker run --log-driver mylog …`
    /// Plugin::new().logging(driver).serve_unix("mylog").await
    /// # }
    /// ```
    pub fn logging<D: logging::Driver>(self, driver: D) -> Self {
        self.logging_with(driver, logging::Options::new())
    }

    /// Serves a log driver with the buffering of `options`: buffer size, what a full
    /// buffer does ([`logging::Overflow`]), the flush timeout of StopLogging, the
    /// counters for telemetry.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use docker_plugin_sdk::{Plugin, logging::{self, LogCounters, Options, Overflow}};
    /// # async fn run(driver: impl logging::Driver) -> Result<(), docker_plugin_sdk::ServeError> {
    /// let counters = LogCounters::new();
    /// let options = Options::new()
    ///     .overflow(Overflow::DropNewest)
    ///     .flush_timeout(Duration::from_secs(2))
    ///     .counters(&counters);
    /// Plugin::new().logging_with(driver, options).serve_unix("mylog").await
    /// # }
    /// ```
    pub fn logging_with<D: logging::Driver>(self, driver: D, options: logging::Options) -> Self {
        self.register(logging::subsystem(driver, options))
    }

    /// Serves a secret provider (`secretprovider`, swarm only). Registering a second
    /// one replaces the first.
    pub fn secrets<P: secrets::Provider>(self, provider: P) -> Self {
        self.register(secrets::subsystem(provider))
    }

    /// Serves a metrics collector (`MetricsCollector`, managed plugins only). Registering
    /// a second one replaces the first.
    pub fn metrics_collector<C: metrics::Collector>(self, collector: C) -> Self {
        self.register(metrics::subsystem(collector))
    }

    fn register(mut self, subsystem: Subsystem) -> Self {
        self.subsystems
            .retain(|existing| existing.implements() != subsystem.implements());
        self.subsystems.push(subsystem);
        self
    }

    /// The largest request body accepted, in bytes, for every method; larger ones get
    /// a 413 with a JSON error. Without it each subsystem has its own default, sized
    /// for what dockerd sends it (1 MiB for volume drivers).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.settings.body_limit = Some(bytes);
        self
    }

    /// How long a request body may take to arrive (default 30 s), counted from the
    /// first time the server has to wait for it; a body still incomplete then is
    /// answered with a 408 and its connection closed. dockerd writes its bodies at once,
    /// with their head: this only stops a client that trickles a body in from holding a
    /// connection.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use docker_plugin_sdk::Plugin;
    /// let plugin = Plugin::new().body_read_timeout(Duration::from_secs(5));
    /// ```
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.settings.body_read_timeout = timeout;
        self
    }

    /// A deadline for every driver call, which **cancels** the call: past it, the
    /// driver's future is dropped at whatever `.await` it is parked on and the call is
    /// answered with an error ("VolumeDriver.Mount did not finish within 5000 ms").
    /// It replaces every subsystem's own default: none, but 5 s for an authz policy
    /// ([`authz::DEFAULT_TIMEOUT`]), which is the setting to change for an authz plugin.
    ///
    /// Off by default for every other subsystem, and rarely what a plugin wants there:
    /// without it a call is never cancelled by the SDK, even when dockerd gives up on it (dockerd has its own
    /// deadlines, 1 to 2 minutes for volume calls; when one fires it closes the
    /// connection and the call still runs to its end, see
    /// [`volume::Driver`](crate::volume::Driver)). Set it only when every driver method
    /// can be dropped half-way without leaving anything behind.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use docker_plugin_sdk::Plugin;
    /// let plugin = Plugin::new().call_timeout(Duration::from_secs(50));
    /// ```
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.settings.call_timeout = Some(timeout);
        self
    }

    /// Keeps per-method call metrics in `metrics` (calls, errors, abandoned calls and a
    /// latency histogram; see [`telemetry`](crate::telemetry)), to read from Rust or to
    /// serve with [`Server::metrics`](crate::Server::metrics). Off by default; a call
    /// then costs two clock reads and a few atomic adds more.
    ///
    /// ```
    /// # use docker_plugin_sdk::{Plugin, telemetry::CallMetrics};
    /// let metrics = CallMetrics::new();
    /// let plugin = Plugin::new().call_metrics(&metrics);
    /// ```
    pub fn call_metrics(mut self, metrics: &CallMetrics) -> Self {
        self.telemetry.metrics = Some(metrics.clone());
        self
    }

    /// Answers every call but `Plugin.Activate` with a 503 and `{"Err": "plugin not
    /// ready: REASON"}` while `readiness` says the plugin is not ready (see
    /// [`Readiness`]), instead of letting calls reach a driver whose backend is not
    /// there yet.
    ///
    /// ```
    /// # use docker_plugin_sdk::{Plugin, telemetry::Readiness};
    /// let readiness = Readiness::not_ready("mounting the backing store");
    /// let plugin = Plugin::new().readiness(&readiness);
    /// // later, from the task that reached the backend: readiness.set_ready();
    /// ```
    pub fn readiness(mut self, readiness: &Readiness) -> Self {
        self.telemetry.readiness = Some(readiness.clone());
        self
    }

    /// The `Implements` list `/Plugin.Activate` answers, in registration order.
    ///
    /// ```
    /// # use docker_plugin_sdk::Plugin;
    /// assert!(Plugin::new().implements().is_empty());
    /// ```
    pub fn implements(&self) -> Vec<&'static str> {
        self.subsystems.iter().map(Subsystem::implements).collect()
    }

    /// The plugin as an axum [`Router`], to embed it in another server or to test it
    /// with `tower::ServiceExt::oneshot`. It answers exactly as [`Plugin::server`] does.
    pub fn into_router(self) -> Router {
        let dispatch = Arc::new(self.into_dispatch());
        let mut router = Router::new().route(
            &Activate::SPEC.path(),
            any(answer(&dispatch, |dispatch, request| {
                dispatch.call_activate(request)
            })),
        );
        for (index, path) in dispatch.paths().enumerate() {
            router = router.route(
                path,
                any(answer(&dispatch, move |dispatch, request| {
                    dispatch.call_route(index, request)
                })),
            );
        }
        router.fallback(answer(&dispatch, |dispatch, request| {
            dispatch.call_unknown(request)
        }))
    }

    /// The routes, with the `/Plugin.Activate` reply encoded once.
    fn into_dispatch(self) -> Dispatch {
        Dispatch::new(self.subsystems, self.settings, self.telemetry)
    }

    /// A server for this plugin on `listener` (a [`Listener`](crate::transport::Listener)
    /// or any other [`Accept`]), to configure further (spec file, shutdown).
    pub fn server<A: Accept>(self, listener: A) -> Server<A> {
        Server::new(Arc::new(self.into_dispatch()), listener)
    }

    /// Serves on `listener` until SIGTERM or SIGINT, then finishes in-flight calls and
    /// removes the socket.
    pub async fn serve<A: Accept>(self, listener: A) -> Result<(), ServeError> {
        self.server(listener).run().await
    }

    /// Serves on `/run/docker/plugins/NAME.sock` (created if missing, a stale socket
    /// replaced) until SIGTERM or SIGINT.
    pub async fn serve_unix(self, name: &str) -> Result<(), ServeError> {
        let listener = UnixSocket::new(name).bind()?;
        self.serve(listener).await
    }
}

/// An axum handler answering through `dispatch` with `call`.
fn answer<F>(
    dispatch: &Arc<Dispatch>,
    call: F,
) -> impl FnOnce(axum::extract::Request) -> BoxFuture<'static, axum::response::Response>
+ Clone
+ Send
+ Sync
+ 'static
where
    F: Fn(&Dispatch, http::Request<RequestBody>) -> ReplyFuture + Clone + Send + Sync + 'static,
{
    let dispatch = Arc::clone(dispatch);
    move |request| {
        let reply = call(&dispatch, request.map(RequestBody::Axum));
        Box::pin(async move {
            match reply.await {
                Ok(reply) => reply.map(|body| body.into_axum()),
                Err(never) => match never {},
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{MEDIA_TYPE_V1, MEDIA_TYPE_V1_2, Method as _};
    use crate::volume::{self, Volume};
    use crate::{Result, async_trait};
    use http::{Method, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    struct Fixed;

    #[async_trait]
    impl volume::Driver for Fixed {
        async fn create(&self, _: volume::CreateRequest) -> Result<()> {
            Ok(())
        }
        async fn remove(&self, _: volume::RemoveRequest) -> Result<()> {
            Ok(())
        }
        async fn mount(&self, _: volume::MountRequest) -> Result<volume::MountResponse> {
            Ok(volume::MountResponse::new("/m"))
        }
        async fn unmount(&self, _: volume::UnmountRequest) -> Result<()> {
            Ok(())
        }
        async fn path(&self, _: volume::PathRequest) -> Result<volume::PathResponse> {
            Ok(volume::PathResponse::not_mounted())
        }
        async fn get(&self, req: volume::GetRequest) -> Result<volume::GetResponse> {
            Ok(volume::GetResponse {
                volume: Volume::new(req.name),
            })
        }
        async fn list(&self) -> Result<volume::ListResponse> {
            Ok(volume::ListResponse::default())
        }
    }

    async fn ask(method: Method, path: &str, accept: Option<&str>, body: &str) -> (u16, String) {
        let router = Plugin::new().volume(Fixed).body_limit(64).into_router();
        let mut request = http::Request::builder().method(method).uri(path);
        if let Some(accept) = accept {
            request = request.header(header::ACCEPT, accept);
        }
        let request = request
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap();
        let reply = router.oneshot(request).await.unwrap();
        let status = reply.status().as_u16();
        let content_type = reply.headers()[header::CONTENT_TYPE].clone();
        let body = reply.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8(body.to_vec()).unwrap();
        let expected = if accept == Some(MEDIA_TYPE_V1_2) {
            MEDIA_TYPE_V1_2
        } else {
            MEDIA_TYPE_V1
        };
        assert_eq!(content_type, expected, "{path}: {body}");
        (status, body)
    }

    #[tokio::test]
    async fn the_router_answers_like_the_server() {
        let v12 = Some(MEDIA_TYPE_V1_2);
        let post = Method::POST;
        assert_eq!(
            ask(post.clone(), "/Plugin.Activate", v12, "").await,
            (200, r#"{"Implements":["VolumeDriver"]}"#.to_owned())
        );
        assert_eq!(
            ask(
                post.clone(),
                &volume::Get::SPEC.path(),
                v12,
                "{\"Name\":\"v1\"}\n"
            )
            .await,
            (200, r#"{"Volume":{"Name":"v1"}}"#.to_owned())
        );
        assert_eq!(
            ask(post.clone(), &volume::List::SPEC.path(), None, "").await,
            (200, r#"{"Volumes":[]}"#.to_owned())
        );
        let (status, body) = ask(post.clone(), &volume::Capabilities::SPEC.path(), v12, "").await;
        assert_eq!(status, 404, "{body}");
        let (status, body) = ask(post.clone(), "/Test.Nope", v12, "{}").await;
        assert!(status == 404 && body.contains("unknown endpoint"), "{body}");
        let (status, body) = ask(Method::GET, &volume::Get::SPEC.path(), v12, "").await;
        assert!(status == 405 && body.contains("POST"), "{body}");
        let (status, body) = ask(
            post.clone(),
            &volume::Get::SPEC.path(),
            Some("text/html"),
            "",
        )
        .await;
        assert!(status == 406 && body.contains("text/html"), "{body}");
        let (status, body) = ask(post.clone(), &volume::Get::SPEC.path(), v12, "{\"Name\":").await;
        assert!(status == 400 && body.contains("malformed JSON"), "{body}");
        let big = format!("{{\"Name\":\"{}\"}}", "x".repeat(100));
        let (status, body) = ask(post, &volume::Get::SPEC.path(), v12, &big).await;
        assert!(status == 413 && body.contains("64-byte limit"), "{body}");
    }
}
