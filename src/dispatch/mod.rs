//! Routing: a plugin's subsystems, each a list of declared methods with the driver
//! calls that serve them, and [`Dispatch`], which answers every request through the
//! one generic endpoint of its call shape.
//!
//! go-plugins-helpers repeats "decode, call the driver, encode" for every path. Here
//! two generic endpoints do it for all of them (design principle 2): [`unary`] for
//! "one JSON request, one JSON reply" and [`streaming`] for a reply that streams
//! (`LogDriver.ReadLogs`), sharing the request half in [`request`] (head checks, the
//! body read within its limit and its deadline, decoding). Every way a request is
//! refused before a driver sees it is one typed [`rejection`]; [`reply`] carries the
//! answers. A unary call runs to completion even when its client goes away
//! ([`detach`]).
//!
//! The server calls [`Dispatch::call`] straight from hyper, `Plugin::into_router`
//! through axum, so both answer alike.
//!
//! Imports run one way: `protocol` → `dispatch` → the subsystems (`volume`, …) →
//! `plugin` → `server`.

mod detach;
mod rejection;
mod reply;
mod request;
mod streaming;
mod unary;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use http::Request;
use http::request::Parts;
use tokio_util::sync::CancellationToken;

use rejection::Rejection;
pub(crate) use reply::{Reply, ReplyBody};
pub(crate) use request::RequestBody;
use request::check_head;

use crate::error::Error;
use crate::protocol::{Activate, ActivateResponse, ErrorKey, Method, SubsystemSpec};
use crate::telemetry::{CallMetrics, MethodCounters, Readiness, Section};

/// How long a request body may take to arrive, by default.
pub(crate) const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The plugin's settings for every call (from [`Plugin`](crate::Plugin)'s builder).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallSettings {
    /// Replaces every subsystem's default body limit when set.
    pub(crate) body_limit: Option<usize>,
    /// A deadline for unary driver calls, which cancels them; by default each
    /// subsystem's own (none but authz's).
    pub(crate) call_timeout: Option<Duration>,
    /// How long a request body may take to arrive once it is waited for.
    pub(crate) body_read_timeout: Duration,
}

impl Default for CallSettings {
    fn default() -> Self {
        Self {
            body_limit: None,
            call_timeout: None,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
        }
    }
}

/// What an endpoint needs to know about the call besides the request.
#[derive(Clone, Copy)]
pub(crate) struct CallContext<'a> {
    /// The largest body accepted for this method.
    pub(crate) body_limit: usize,
    /// How long the body may take to arrive.
    pub(crate) body_read_timeout: Duration,
    /// The plugin's deadline for unary calls, if it set one.
    pub(crate) call_timeout: Option<Duration>,
    /// Cancelled when the server starts shutting down (ends streaming replies).
    pub(crate) shutdown: &'a CancellationToken,
}

/// Writes a successful reply's JSON into the buffer.
pub(crate) type Encoder<T> = fn(&T, &mut Vec<u8>) -> serde_json::Result<()>;

/// One plugin method, its types erased.
pub(crate) trait Endpoint: Send + Sync + 'static {
    fn call(&self, context: CallContext<'_>, parts: &Parts, body: RequestBody) -> ReplyFuture;
}

/// One subsystem's routes, built from its declared methods: what
/// [`Plugin`](crate::Plugin)'s builder collects.
pub(crate) struct Subsystem {
    spec: &'static SubsystemSpec,
    routes: Vec<(&'static str, ErrorKey, Box<dyn Endpoint>)>,
    /// What the subsystem counts besides calls, served with the plugin's call metrics.
    sections: Vec<Arc<dyn Section>>,
}

impl Subsystem {
    /// A subsystem with no routes yet.
    pub(crate) fn new(spec: &'static SubsystemSpec) -> Self {
        Self {
            spec,
            routes: Vec::new(),
            sections: Vec::new(),
        }
    }

    /// Serves `section` with the plugin's call metrics, when it keeps them
    /// ([`Plugin::call_metrics`](crate::Plugin::call_metrics)).
    pub(crate) fn section(mut self, section: Arc<dyn Section>) -> Self {
        self.sections.push(section);
        self
    }

    /// Serves method `M` with `call(driver, request)`: one JSON reply.
    pub(crate) fn route<M, D, F, Fut>(self, method: M, driver: &Arc<D>, call: F) -> Self
    where
        M: Method,
        D: Send + Sync + 'static,
        F: Fn(Arc<D>, M::Request) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<M::Response, Error>> + Send + 'static,
    {
        self.route_encoded(method, driver, call, unary::serde_encode::<M::Response>)
    }

    /// Serves method `M` as [`Subsystem::route`] does, its successful replies written by
    /// `encode` instead of serde_json (which must write exactly the same bytes).
    pub(crate) fn route_encoded<M, D, F, Fut>(
        mut self,
        _method: M,
        driver: &Arc<D>,
        call: F,
        encode: Encoder<M::Response>,
    ) -> Self
    where
        M: Method,
        D: Send + Sync + 'static,
        F: Fn(Arc<D>, M::Request) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<M::Response, Error>> + Send + 'static,
    {
        let endpoint = unary::Unary::<M, D, F>::new(Arc::clone(driver), call, encode);
        self.routes
            .push((M::NAME, M::ERROR_KEY, Box::new(endpoint)));
        self
    }

    /// Serves method `M` with `call(driver, request)`, whose stream of frames is the
    /// reply.
    pub(crate) fn stream<M, D, F, Fut, S>(mut self, _method: M, driver: &Arc<D>, call: F) -> Self
    where
        M: Method,
        D: Send + Sync + 'static,
        F: Fn(Arc<D>, M::Request) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<S, Error>> + Send + 'static,
        S: Stream<Item = Bytes> + Send + 'static,
    {
        let driver = Arc::clone(driver);
        let endpoint =
            streaming::Streaming::<M, _>::new(move |request| call(Arc::clone(&driver), request));
        self.routes
            .push((M::NAME, M::ERROR_KEY, Box::new(endpoint)));
        self
    }

    /// The `Implements` value that announces this subsystem.
    pub(crate) fn implements(&self) -> &'static str {
        self.spec.implements
    }

    /// The names of the methods it serves, in registration order.
    #[cfg(test)]
    pub(crate) fn method_names(&self) -> Vec<&'static str> {
        self.routes.iter().map(|(name, _, _)| *name).collect()
    }
}

/// One route: a method's path, its body limit, its deadline, the key its errors go
/// under, its endpoint and, when the plugin keeps metrics, its counters.
struct Route {
    path: String,
    body_limit: usize,
    call_timeout: Option<Duration>,
    error_key: ErrorKey,
    endpoint: Box<dyn Endpoint>,
    counters: Option<Arc<MethodCounters>>,
}

/// The routes of a plugin: every method of every subsystem, `/Plugin.Activate` and the
/// JSON 404 for everything else.
pub(crate) struct Dispatch {
    /// Looked up by a linear scan: a plugin has a few dozen paths at most, and comparing
    /// their lengths first is cheaper than hashing the request's path.
    routes: Vec<Route>,
    /// The `/Plugin.Activate` reply, encoded once.
    activation: Bytes,
    settings: CallSettings,
    telemetry: Telemetry,
    /// `Plugin.Activate`'s counters, when the plugin keeps metrics.
    activate_counters: Option<Arc<MethodCounters>>,
    shutdown: CancellationToken,
}

/// What a plugin reports about itself: its call metrics and its readiness, each when
/// the plugin asked for it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Telemetry {
    pub(crate) metrics: Option<CallMetrics>,
    pub(crate) readiness: Option<Readiness>,
}

impl Dispatch {
    /// The routes of `subsystems`. `settings.body_limit` and `settings.call_timeout`,
    /// when set, replace every subsystem's default limit and deadline.
    pub(crate) fn new(
        subsystems: Vec<Subsystem>,
        settings: CallSettings,
        telemetry: Telemetry,
    ) -> Self {
        let activation = ActivateResponse {
            implements: subsystems
                .iter()
                .map(|s| s.implements().to_owned())
                .collect(),
        };
        // Serializing a list of strings cannot fail.
        let activation = Bytes::from(serde_json::to_vec(&activation).unwrap_or_default());
        let mut routes: Vec<Route> = Vec::new();
        for subsystem in subsystems {
            if let Some(metrics) = &telemetry.metrics {
                for section in &subsystem.sections {
                    metrics.add_section(Arc::clone(section));
                }
            }
            let limit = settings.body_limit.unwrap_or(subsystem.spec.body_limit);
            let call_timeout = settings.call_timeout.or(subsystem.spec.call_timeout);
            for (name, error_key, endpoint) in subsystem.routes {
                let path = format!("/{name}");
                // A path registered twice is served by the last registration.
                routes.retain(|existing| existing.path != path);
                routes.push(Route {
                    path,
                    body_limit: limit,
                    call_timeout,
                    error_key,
                    endpoint,
                    counters: None,
                });
            }
        }
        let activate_counters = telemetry
            .metrics
            .as_ref()
            .map(|metrics| metrics.counters(Activate::NAME));
        if let Some(metrics) = &telemetry.metrics {
            for route in &mut routes {
                route.counters = Some(metrics.counters(&route.path[1..]));
            }
        }
        Self {
            routes,
            activation,
            settings,
            telemetry,
            activate_counters,
            shutdown: CancellationToken::new(),
        }
    }

    fn context(&self, route: &Route) -> CallContext<'_> {
        CallContext {
            body_limit: route.body_limit,
            body_read_timeout: self.settings.body_read_timeout,
            call_timeout: route.call_timeout,
            shutdown: &self.shutdown,
        }
    }

    /// Answers one request, routed by its path.
    #[cfg(test)]
    pub(crate) fn call(&self, request: Request<RequestBody>) -> ReplyFuture {
        let (parts, body) = request.into_parts();
        self.call_parts(&parts, body)
    }

    /// Answers one request, its head and its body apart (the head is only read: it is
    /// not moved from call to call).
    pub(crate) fn call_parts(&self, parts: &Parts, body: RequestBody) -> ReplyFuture {
        let path = parts.uri.path();
        if let Some(route) = self.routes.iter().find(|route| route.path == path) {
            return self.call_method(route, parts, body);
        }
        if path.strip_prefix('/') == Some(Activate::NAME) {
            ReplyFuture::ready(self.activate(parts)).timed(self.activate_counters.as_ref())
        } else {
            ReplyFuture::ready(self.unknown(parts))
        }
    }

    /// Calls a method's endpoint, unless the plugin says it is not ready; counted when
    /// the plugin keeps metrics.
    fn call_method(&self, route: &Route, parts: &Parts, body: RequestBody) -> ReplyFuture {
        let started = route.counters.as_ref().map(|_| Instant::now());
        let reply = match self.not_ready(route, parts) {
            Some(refused) => ReplyFuture::ready(refused),
            None => route.endpoint.call(self.context(route), parts, body),
        };
        match (started, &route.counters) {
            (Some(started), Some(counters)) => reply.timed_from(started, counters),
            _ => reply,
        }
    }

    /// The reply to a call made while the plugin reports it is not ready: a 503 with
    /// the reason, at once, instead of a call that would hang on the backend.
    fn not_ready(&self, route: &Route, parts: &Parts) -> Option<Reply> {
        let reason = self.telemetry.readiness.as_ref()?.not_ready_reason()?;
        let content_type = match check_head(parts) {
            Ok(content_type) => content_type,
            Err(reply) => return Some(reply),
        };
        Some(reply::method_error_reply(
            content_type,
            http::StatusCode::SERVICE_UNAVAILABLE,
            &format!("plugin not ready: {reason}"),
            route.error_key,
        ))
    }

    /// What the plugin reports about itself.
    pub(crate) fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    fn unknown(&self, parts: &Parts) -> Reply {
        if let Some(metrics) = &self.telemetry.metrics {
            metrics.record_unknown();
        }
        unknown_endpoint(parts)
    }

    /// The paths of the methods, in the order [`Dispatch::call_route`] numbers them.
    pub(crate) fn paths(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|route| route.path.as_str())
    }

    /// Answers a request routed (by a router) to the method numbered `index`.
    pub(crate) fn call_route(&self, index: usize, request: Request<RequestBody>) -> ReplyFuture {
        let (parts, body) = request.into_parts();
        match self.routes.get(index) {
            Some(route) => self.call_method(route, &parts, body),
            None => ReplyFuture::ready(self.unknown(&parts)),
        }
    }

    /// Answers a request routed to `/Plugin.Activate`.
    pub(crate) fn call_activate(&self, request: Request<RequestBody>) -> ReplyFuture {
        ReplyFuture::ready(self.activate(&request.into_parts().0))
            .timed(self.activate_counters.as_ref())
    }

    /// Answers a request for a path this plugin does not serve.
    pub(crate) fn call_unknown(&self, request: Request<RequestBody>) -> ReplyFuture {
        ReplyFuture::ready(self.unknown(&request.into_parts().0))
    }

    /// Shutdown has started: streaming replies end.
    pub(crate) fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    fn activate(&self, parts: &Parts) -> Reply {
        match check_head(parts) {
            Ok(content_type) => {
                reply::reply(content_type, http::StatusCode::OK, self.activation.clone())
            }
            Err(reply) => reply,
        }
    }
}

fn unknown_endpoint(parts: &Parts) -> Reply {
    let content_type = match check_head(parts) {
        Ok(content_type) => content_type,
        Err(reply) => return reply,
    };
    let rejection = Rejection::UnknownEndpoint {
        path: parts.uri.path().to_owned(),
    };
    rejection.log(&parts.method, parts.uri.path());
    rejection.into_reply(content_type)
}

/// What the server does when a call's reply is ready, in the same poll (its
/// connection's timer counts calls: see `server::connection`). `()` does nothing.
pub(crate) trait CallEnd: Send + Unpin + 'static {
    /// `reply` is ready; a streaming one's body is still to come.
    fn reply_ready(&self, reply: &mut Reply);
}

impl CallEnd for () {
    fn reply_ready(&self, _reply: &mut Reply) {}
}

/// The reply to one request: ready at once (errors found in the head, activation), a
/// unary call (run to completion even when dropped, see [`detach`]), or the start of a
/// streaming reply; timed into its method's counters when the plugin keeps metrics, and
/// told to `E` when ready.
///
/// One future, polled once per wake-up, for what were three nested ones (the call run
/// to completion, the timed reply, the server's counted reply): the reply is moved out
/// once, and the future itself is a few words (a reply ready at once is boxed), so
/// that moving it into hyper copies no more.
pub(crate) struct ReplyFuture<E: CallEnd = ()> {
    state: ReplyState,
    timing: Option<Timing>,
    end: E,
}

enum ReplyState {
    Ready(Box<Reply>),
    /// A unary call; `method` names it in the logs if it has to finish in the
    /// background.
    Call {
        call: UnaryCall,
        method: &'static str,
    },
    Stream(Pin<Box<dyn Future<Output = Reply> + Send>>),
    /// The reply was handed over.
    Done,
}

/// A unary call's future, boxed. Its output is the reply future's own, so that the
/// reply is returned from where the call wrote it.
pub(crate) type UnaryCall = Pin<Box<dyn Future<Output = Result<Reply, Infallible>> + Send>>;

/// When the call started, and the counters its outcome goes to.
struct Timing {
    started: Instant,
    counters: Arc<MethodCounters>,
}

impl ReplyFuture {
    fn new(state: ReplyState) -> Self {
        Self {
            state,
            timing: None,
            end: (),
        }
    }

    fn ready(reply: Reply) -> Self {
        Self::new(ReplyState::Ready(Box::new(reply)))
    }

    /// A unary call of `method`: the request half, the driver call and the reply, run
    /// to completion even when dropped first. The call's future comes boxed: built in
    /// place in its box, it is not moved (a call's future is a few hundred bytes).
    fn call(method: &'static str, call: UnaryCall) -> Self {
        Self::new(ReplyState::Call { call, method })
    }

    fn stream(start: Pin<Box<dyn Future<Output = Reply> + Send>>) -> Self {
        Self::new(ReplyState::Stream(start))
    }

    /// Counted into `counters`, when there are any, from now.
    fn timed(self, counters: Option<&Arc<MethodCounters>>) -> Self {
        match counters {
            Some(counters) => self.timed_from(Instant::now(), counters),
            None => self,
        }
    }

    /// Counted into `counters`, from `started`.
    fn timed_from(mut self, started: Instant, counters: &Arc<MethodCounters>) -> Self {
        self.timing = Some(Timing {
            started,
            counters: Arc::clone(counters),
        });
        self
    }

    /// Tells `end` when the reply is ready.
    pub(crate) fn ended_by<E: CallEnd>(mut self, end: E) -> ReplyFuture<E> {
        ReplyFuture {
            state: std::mem::replace(&mut self.state, ReplyState::Done),
            timing: self.timing.take(),
            end,
        }
    }
}

impl<E: CallEnd> Future for ReplyFuture<E> {
    type Output = Result<Reply, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // The reply stays where the call wrote it, and is returned from there.
        let mut polled = match &mut this.state {
            ReplyState::Call { call, .. } => call.as_mut().poll(cx),
            ReplyState::Stream(call) => call.as_mut().poll(cx).map(Ok),
            ReplyState::Ready(_) => match std::mem::replace(&mut this.state, ReplyState::Done) {
                ReplyState::Ready(reply) => Poll::Ready(Ok(*reply)),
                _ => Poll::Pending,
            },
            // Polled again after completion, which callers never do.
            ReplyState::Done => Poll::Pending,
        };
        if let Poll::Ready(Ok(reply)) = &mut polled {
            // The call is over: dropping it here is what tells `Drop` not to detach it.
            this.state = ReplyState::Done;
            if let Some(timing) = this.timing.take() {
                timing.counters.record(
                    timing.started.elapsed(),
                    reply.status() != http::StatusCode::OK,
                );
            }
            this.end.reply_ready(reply);
        }
        polled
    }
}

impl<E: CallEnd> Drop for ReplyFuture<E> {
    /// Dropped before its reply: the client closed the connection. Counted as
    /// abandoned, and a unary call goes on in the background ([`detach`]).
    fn drop(&mut self) {
        if let Some(timing) = self.timing.take() {
            timing.counters.record_abandoned();
        }
        if let ReplyState::Call { .. } = self.state
            && let ReplyState::Call { call, method } =
                std::mem::replace(&mut self.state, ReplyState::Done)
        {
            detach::finish_in_background(method, call);
        }
    }
}

#[cfg(test)]
mod tests;
