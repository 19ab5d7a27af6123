//! Secret providers (`secretprovider`): the trait a provider implements, its wire
//! types and its one declared method, `/SecretProvider.GetSecret`.
//!
//! A swarm secret created with `docker secret create --driver NAME SECRET` holds no
//! value: whenever a task that uses it is assigned to a node, swarm asks the provider
//! for the value, with the task's details (service, image, node, ports). Implement
//! [`Provider`] and register it with [`Plugin::secrets`](crate::Plugin::secrets).
//!
//! ```no_run
//! use docker_plugin_sdk::secrets::{self, GetSecretRequest, GetSecretResponse};
//! use docker_plugin_sdk::{async_trait, Error, Plugin, Result};
//!
//! struct Vault;
//!
//! #[async_trait]
//! impl secrets::Provider for Vault {
//!     async fn get_secret(&self, req: GetSecretRequest) -> Result<GetSecretResponse> {
//!         match req.secret_name.as_str() {
//!             // One value for every task of the service.
//!             "db-password" => Ok(GetSecretResponse::new("correct horse battery staple")),
//!             // A value for this task only: swarm asks again for the next task.
//!             "task-token" => Ok(GetSecretResponse::new(format!("token-for-{}", req.task_id))
//!                 .do_not_reuse()),
//!             other => Err(Error::new(format!("no secret named {other} in the vault"))),
//!         }
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     Plugin::new().secrets(Vault).serve_unix("vault").await?;
//!     Ok(())
//! }
//! ```
//!
//! How swarm drives a secret provider (moby v20.10.24
//! `vendor/github.com/docker/swarmkit/manager/dispatcher/assignments.go`,
//! `manager/drivers/secrets.go`; `shared/protocol.md` section 8):
//!
//! - Only in swarm mode, and only on the **manager** that holds the node's session:
//!   install the plugin on the managers. `docker secret create --driver P` only checks
//!   that P exists (it calls nothing).
//! - GetSecret is called when a task that uses the secret is assigned to a node, once
//!   per task (a task is not asked for twice while the node's session lasts; a new
//!   session, after a manager or node restart, asks again).
//! - An error (a non-200 reply, an `Err`, a value that is empty or of
//!   [`MAX_VALUE_LEN`] bytes or more) is logged by the manager **at debug level** and
//!   the secret left out of the assignment: the task's container then fails to start
//!   ("unable to get secret from secret store"), and swarm retries with a new task.
//!   The SDK refuses to send a value swarm would refuse, with an error naming its
//!   size, so the provider's own logs say why.
//! - `DoNotReuse: true` gives the task a secret of its own (a task-specific ID);
//!   `false` stores the value under the secret's ID on the node, where the next
//!   task's value replaces it.
//! - No timeout on the call from a legacy plugin; a managed plugin's is `docker plugin
//!   enable --timeout` (30 s). The dispatcher waits for the reply while it builds the
//!   node's assignments: answer fast.
//!
//! Values never show: [`SecretValue`]'s `Debug` and `Display` print `<redacted>`, the
//! SDK logs the secret's name, never its value, and the [`client`](crate::client)
//! keeps a GetSecret reply's body out of its errors ([`Method::REDACT_REPLY`]).
//!
//! [`Method::REDACT_REPLY`]: crate::protocol::Method::REDACT_REPLY

mod value;
mod wire;

use std::sync::Arc;

use async_trait::async_trait;

pub use value::{MAX_VALUE_LEN, REDACTED, SecretValue};
pub use wire::*;

use crate::dispatch::Subsystem;
use crate::error::{Error, Result};
use crate::protocol::{DEFAULT_BODY_LIMIT, SubsystemSpec, declare_method, method_list};

/// The value of `Implements` for secret providers (lower case, as swarmkit's
/// `SecretsProviderCapability`); a managed provider declares the interface type
/// `docker.secretprovider/1.0`.
pub const IMPLEMENTS: &str = "secretprovider";

/// The secrets subsystem as dockerd knows it.
pub const SUBSYSTEM: SubsystemSpec = SubsystemSpec {
    implements: IMPLEMENTS,
    body_limit: DEFAULT_BODY_LIMIT,
    methods: METHODS,
    call_timeout: None,
};

declare_method!(
    "SecretProvider",
    /// `/SecretProvider.GetSecret`: the value of a secret for one task. Called through
    /// `pkg/plugins`' `Client.Call` without a deadline of its own.
    GetSecret,
    GetSecretRequest,
    GetSecretResponse,
    const REDACT_REPLY: bool = true;
);

method_list!(GetSecret);

/// A secret provider.
///
/// Called concurrently (several tasks assigned at once) and again for every task:
/// answer fast (the manager waits for the reply while it assigns the node's tasks),
/// and keep the value out of error messages: an error reaches the manager's log.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The value of `req.secret_name` for the task `req.task_id`. An error leaves the
    /// secret out of the task's assignment (its container fails to start and swarm
    /// retries with a new task).
    async fn get_secret(&self, req: GetSecretRequest) -> Result<GetSecretResponse>;
}

/// The routes of a secret provider: GetSecret, with the value's size checked as swarm
/// checks it.
pub(crate) fn subsystem<P: Provider>(provider: P) -> Subsystem {
    Subsystem::new(&SUBSYSTEM).route(GetSecret, &Arc::new(provider), |p, req| async move {
        let name = req.secret_name.clone();
        let reply = p.get_secret(req).await?;
        match reply.value.check_size() {
            Ok(()) => Ok(reply),
            Err(why) => {
                tracing::warn!(secret = %name, "GetSecret: {why}: answering an error instead");
                Err(Error::new(format!(
                    "secret {name}: {why} (swarmkit's ValidateSecretPayload would refuse it)"
                )))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Method;

    #[test]
    fn get_secret_is_the_only_method_and_its_reply_is_redacted() {
        assert_eq!(METHODS.len(), 1);
        assert_eq!(METHODS[0].path(), "/SecretProvider.GetSecret");
        const { assert!(GetSecret::REDACT_REPLY) };
    }
}
