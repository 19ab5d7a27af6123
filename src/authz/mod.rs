//! Authorization plugins (`authz`): the policy trait, its wire types and its declared
//! methods.
//!
//! dockerd started with `--authorization-plugin=NAME` asks the plugin about every API
//! call: `/AuthZPlugin.AuthZReq` before running it, `/AuthZPlugin.AuthZRes` with its
//! reply before the client gets it. Implement [`Plugin`] and register it with
//! [`Plugin::authz`](crate::Plugin::authz):
//!
//! ```no_run
//! use docker_plugin_sdk::authz::{self, Decision, Request};
//! use docker_plugin_sdk::{async_trait, Result};
//!
//! struct NoPrivileged;
//!
//! #[async_trait]
//! impl authz::Plugin for NoPrivileged {
//!     async fn authorize_request(&self, req: &Request) -> Result<Decision> {
//!         let privileged = req.endpoint() == "/containers/create"
//!             && req.body.json().is_some_and(|b| b["HostConfig"]["Privileged"] == true);
//!         Ok(if privileged {
//!             Decision::deny("privileged containers are not allowed")
//!         } else {
//!             Decision::allow()
//!         })
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // `dockerd --authorization-plugin=noprivileged`; `docker run --privileged …` then
//!     // fails with "authorization denied by plugin noprivileged: privileged containers
//!     // are not allowed".
//!     docker_plugin_sdk::Plugin::new().authz(NoPrivileged).serve_unix("noprivileged").await?;
//!     Ok(())
//! }
//! ```
//!
//! # What dockerd sends
//!
//! The wire is moby v20.10.24's (`pkg/authorization/api.go`, `authz.go`,
//! `middleware.go`, `response.go`; `shared/protocol.md` section 6), which differs from
//! Docker's documentation: see [`AuthZRequest`]. The request body is included only for
//! `Content-Type: application/json`, a URI not ending in `/auth`, and (20.10) a known
//! length under 1 MiB: a policy that needs the body must deny when it is
//! [`Body::Absent`] on a call that has one (a `docker create` with 1 MiB of
//! environment arrives without its body). `Authorization`, `X-Registry-Auth` and
//! `X-Registry-Config` are stripped from the headers. The reply body is the part of a
//! JSON reply not yet flushed; after a flush (streams), status and headers are empty.
//!
//! # Fail closed
//!
//! A plugin that cannot decide must refuse, and must say why. dockerd ignores an `Err`
//! in a 200 reply (an `{"Allow": true, "Err": …}` would let the call through), so the
//! SDK never sends one; how each failure is answered:
//!
//! | failure | reply | what the client sees |
//! |---|---|---|
//! | malformed JSON, a missing `RequestMethod`/`RequestUri`, bad base64, a body over the limit | 400/413 `{"Err": …}` | `plugin NAME failed with error: AuthZPlugin.AuthZReq: malformed JSON in AuthZPlugin.AuthZReq request: …` |
//! | a malformed peer certificate, method or URI | 200 `{"Allow": false, "Msg": …}` | `authorization denied by plugin NAME: peer certificate 0 is malformed: …` |
//! | the policy returns an error | its status, `{"Err": …}` | `plugin NAME failed with error: AuthZPlugin.AuthZReq: ERROR` |
//! | the policy panics | 500 `{"Err": …}` | `… internal error: the plugin panicked in AuthZPlugin.AuthZReq: …` |
//! | the policy takes longer than [`DEFAULT_TIMEOUT`] (or [`Plugin::call_timeout`](crate::Plugin::call_timeout)) | 500 `{"Err": …}` | `… AuthZPlugin.AuthZReq did not finish within 5000 ms` |
//!
//! Every one of them makes dockerd refuse the API call. The body limit is
//! [`BODY_LIMIT`] (AuthZRes carries the request's and the reply's bodies, base64).
//!
//! # Deviations from the agreed sketch
//!
//! [`Result`] and [`Error`] are the crate's own (re-exported here), as for every
//! subsystem; [`Request::path`] is percent-decoded (as opa-docker-authz's
//! `input.Path`), [`Request::uri`] is raw; [`Response::status`] is 0 when dockerd sent
//! none; the deadline is the subsystem's default call timeout, changed for the whole
//! plugin with [`Plugin::call_timeout`](crate::Plugin::call_timeout).

mod cert;
mod policy;
mod request;
mod wire;

use std::time::Duration;

pub use cert::{CertificateError, PeerCertificate};
pub(crate) use policy::subsystem;
pub use policy::{Decision, Plugin};
pub use request::{Body, Headers, Request, RequestError, Response};
pub use wire::{AuthZRequest, AuthZResponse};

pub use crate::error::{Error, Result};
use crate::protocol::{ErrorKey, SubsystemSpec, declare_method, method_list};

/// The value of `Implements` for authorization plugins (`docker.authz/1.0` for a
/// managed one).
pub const IMPLEMENTS: &str = "authz";

/// How long a policy may take to decide before the SDK answers a refusal: 5 s. dockerd
/// waits for ever on a legacy authz plugin, and for 30 s on a managed one enabled with
/// `docker plugin enable`; meanwhile every API call hangs, `docker plugin disable`
/// included. Change it with [`Plugin::call_timeout`](crate::Plugin::call_timeout).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest authz call accepted: 11 MiB. AuthZRes carries the request body (under
/// 1 MiB from dockerd 20.10, 4 MiB from later releases) and the reply's unflushed
/// body, both base64 (4/3 of their size), with the headers.
pub const BODY_LIMIT: usize = 11 << 20;

/// The authz subsystem as dockerd knows it.
pub const SUBSYSTEM: SubsystemSpec = SubsystemSpec {
    implements: IMPLEMENTS,
    body_limit: BODY_LIMIT,
    call_timeout: Some(DEFAULT_TIMEOUT),
    methods: METHODS,
};

/// Declares a method of `AuthZPlugin`: dockerd reads only `Allow` and `Msg` from a 200
/// reply (moby v20.10.24 `pkg/authorization/plugin.go`).
macro_rules! authz_method {
    ($(#[$doc:meta])* $name:ident) => {
        declare_method!(
            "AuthZPlugin",
            $(#[$doc])* $name,
            AuthZRequest,
            AuthZResponse,
            const ERROR_KEY: ErrorKey = ErrorKey::Ignored;
        );
    };
}

authz_method!(
    /// `/AuthZPlugin.AuthZReq`: before dockerd runs an API call.
    AuthZReq
);
authz_method!(
    /// `/AuthZPlugin.AuthZRes`: after, with dockerd's reply.
    AuthZRes
);

method_list!(AuthZReq, AuthZRes);
