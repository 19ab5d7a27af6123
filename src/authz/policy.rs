//! The policy trait, its decision, and the two routes that serve it fail closed.

use std::sync::Arc;

use async_trait::async_trait;

use super::request::{Request, RequestError, Response};
use super::wire::{AuthZRequest, AuthZResponse};
use super::{AuthZReq, AuthZRes, SUBSYSTEM};
use crate::dispatch::Subsystem;
use crate::error::Result;

/// An authorization policy: dockerd asks it before every API call (AuthZReq) and again
/// with dockerd's reply before the client gets it (AuthZRes).
///
/// Methods are called concurrently, for every API call of every client, `HEAD /_ping`
/// included: keep them fast, and never wait on something that may hang (the SDK cuts a
/// call off after [`DEFAULT_TIMEOUT`](super::DEFAULT_TIMEOUT), answering a refusal).
///
/// A returned [`Error`](crate::Error) refuses the API call: dockerd answers the client
/// with a 500 "plugin NAME failed with error: AuthZPlugin.AuthZReq: MESSAGE".
#[async_trait]
pub trait Plugin: Send + Sync + 'static {
    /// AuthZReq: may this API call run?
    async fn authorize_request(&self, req: &Request) -> Result<Decision>;

    /// AuthZRes: may dockerd's reply reach the client? Called after the call has run
    /// (a denied reply does not undo it). By default, yes.
    async fn authorize_response(&self, req: &Request, res: &Response) -> Result<Decision> {
        let _ = (req, res);
        Ok(Decision::allow())
    }
}

/// A policy's answer.
///
/// ```
/// use docker_plugin_sdk::authz::Decision;
/// let no = Decision::deny("privileged containers are not allowed");
/// assert!(!no.allow);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the call (or its reply) may go on.
    pub allow: bool,
    /// Why; dockerd shows a deny's message to the client as "authorization denied by
    /// plugin NAME: MSG".
    pub msg: String,
}

impl Decision {
    /// Allows, without a message.
    pub fn allow() -> Self {
        Self {
            allow: true,
            msg: String::new(),
        }
    }

    /// Denies, saying why.
    pub fn deny(msg: impl Into<String>) -> Self {
        Self {
            allow: false,
            msg: msg.into(),
        }
    }
}

impl From<Decision> for AuthZResponse {
    fn from(decision: Decision) -> Self {
        Self {
            allow: decision.allow,
            msg: decision.msg,
            err: String::new(),
        }
    }
}

/// The deny a call that cannot be decoded gets: a policy never sees half a request.
fn undecodable(method: &str, err: RequestError) -> AuthZResponse {
    tracing::warn!(method, error = %err, "denied: the call could not be decoded");
    Decision::deny(format!("{err} (denied without asking the policy)")).into()
}

/// The routes of an authz policy: AuthZReq and AuthZRes.
pub(crate) fn subsystem<P: Plugin>(policy: P) -> Subsystem {
    let policy = Arc::new(policy);
    Subsystem::new(&SUBSYSTEM)
        .route(AuthZReq, &policy, |p, wire: AuthZRequest| async move {
            match wire.decode() {
                Ok((req, _)) => p.authorize_request(&req).await.map(Into::into),
                Err(err) => Ok(undecodable("AuthZPlugin.AuthZReq", err)),
            }
        })
        .route(AuthZRes, &policy, |p, wire: AuthZRequest| async move {
            match wire.decode() {
                Ok((req, res)) => p.authorize_response(&req, &res).await.map(Into::into),
                Err(err) => Ok(undecodable("AuthZPlugin.AuthZRes", err)),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Method;

    struct AllowAll;

    #[async_trait]
    impl Plugin for AllowAll {
        async fn authorize_request(&self, _: &Request) -> Result<Decision> {
            Ok(Decision::allow())
        }
    }

    #[test]
    fn the_server_routes_exactly_the_declared_methods() {
        let served = subsystem(AllowAll).method_names();
        assert_eq!(served, [AuthZReq::NAME, AuthZRes::NAME]);
    }
}
