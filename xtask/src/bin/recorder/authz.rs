//! The recorder's authorization policy (`--authz`): with dockerd started with
//! `--authorization-plugin=NAME`, every API call reaches the recorder as AuthZReq and
//! AuthZRes, recorded byte for byte by the middleware like every other call. It allows
//! everything but a call whose URI or request body holds [`DENY_MARK`] (a label, a
//! volume name), which it denies with [`DENY_MSG`]: the CLI then prints
//! `Error response from daemon: authorization denied by plugin NAME: DENY_MSG`.

use docker_plugin_sdk::authz::{self, Decision, Request};
use docker_plugin_sdk::{Result, async_trait};

/// What makes the recorder deny a call.
pub(crate) const DENY_MARK: &str = "rec-authz-deny";

/// The message of that deny.
pub(crate) const DENY_MSG: &str = "rec-authz denies calls marked rec-authz-deny";

/// Allows every call but the marked ones.
pub(crate) struct RecAuthz;

#[async_trait]
impl authz::Plugin for RecAuthz {
    async fn authorize_request(&self, req: &Request) -> Result<Decision> {
        let marked = req.uri.contains(DENY_MARK)
            || req
                .body
                .raw()
                .windows(DENY_MARK.len())
                .any(|w| w == DENY_MARK.as_bytes());
        Ok(if marked {
            Decision::deny(DENY_MSG)
        } else {
            Decision::allow()
        })
    }
}
