//! The secrets service: what swarm does with a secret provider, as one manager with
//! one node (moby v20.10.24 `vendor/github.com/docker/swarmkit/`:
//! `manager/controlapi/secret.go` `CreateSecret`, `manager/drivers/secrets.go`,
//! `manager/dispatcher/assignments.go`; the worker's side in `agent/secrets/secrets.go`
//! and moby's `daemon/container_operations_unix.go` `setupSecretDir`).
//!
//! - `docker secret create --driver P NAME` only looks P up (no call).
//! - A task assigned to the node: for each secret it uses, GetSecret with the task's
//!   fields, once per task while the node's session lasts. `DoNotReuse: false` stores
//!   the value under the secret's ID on the node, where the next task's value replaces
//!   it; `true` stores it under an ID of this task's own.
//! - An error (the plugin's, or a value swarm refuses: empty, or 500 KiB or more) is
//!   logged at debug by the manager and the secret left out of the assignment: the
//!   task's container then fails with the worker's words, `unable to get secret from
//!   secret store: secret ID not found`.
//! - A task that ends releases its secrets; a new session (a manager or node restart)
//!   asks for every task again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::error::HarnessError;
use super::ids::random_id;
use super::plugins::Plugins;
use crate::secrets::{self, EndpointSpec, GetSecret, GetSecretRequest, SecretValue};

/// The secrets of a swarm with one manager and one node, as far as a provider sees
/// them: `docker secret create --driver`, and the node's task assignments. Cheap to
/// clone.
///
/// ```no_run
/// use docker_plugin_sdk::harness::{Engine, SecretTask};
/// # async fn run() -> Result<(), docker_plugin_sdk::harness::HarnessError> {
/// let engine = Engine::for_tests("/tmp/t");
/// engine.secrets().create("db-password", "vault", [("env", "prod")]).await?;
/// let task = SecretTask::new("web", "busybox:latest").secret("db-password");
/// let assigned = engine.secrets().assign(&task).await;
/// let value = assigned.read("db-password")?; // what /run/secrets/db-password holds
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Secrets {
    plugins: Plugins,
    node_id: String,
    state: Arc<Mutex<SecretState>>,
}

#[derive(Debug, Default)]
struct SecretState {
    /// By name.
    secrets: BTreeMap<String, Secret>,
    /// The node's secret store (`agent/secrets`): values by secret ID, or by the
    /// task-specific ID of a `DoNotReuse` value.
    node: HashMap<String, SecretValue>,
    /// The tasks each secret ID is assigned to, in this session.
    users: HashMap<String, HashSet<String>>,
}

#[derive(Debug, Clone)]
struct Secret {
    id: String,
    driver: String,
    labels: BTreeMap<String, String>,
}

/// A task of a service, as the dispatcher hands it to GetSecret.
///
/// ```
/// use docker_plugin_sdk::harness::SecretTask;
///
/// let task = SecretTask::new("web", "busybox:latest").slot(2).secret("api-key");
/// assert!(task.name().starts_with("web.2."));
/// ```
#[derive(Debug, Clone)]
pub struct SecretTask {
    /// The task's ID (random).
    pub id: String,
    /// The service's ID (random).
    pub service_id: String,
    /// The service's name.
    pub service_name: String,
    /// The service's labels.
    pub service_labels: BTreeMap<String, String>,
    /// The container's hostname.
    pub hostname: String,
    /// The task's slot (`web.1`).
    pub slot: u64,
    /// The container's image.
    pub image: String,
    /// The service's endpoint, if it has one.
    pub endpoint: Option<EndpointSpec>,
    /// The secrets the container uses, by name.
    pub secrets: Vec<String>,
}

impl SecretTask {
    /// Slot 1 of service `service` running `image`, with fresh IDs and no secrets.
    pub fn new(service: &str, image: &str) -> Self {
        Self {
            id: random_id()[..25].to_owned(),
            service_id: random_id()[..25].to_owned(),
            service_name: service.to_owned(),
            service_labels: BTreeMap::new(),
            hostname: String::new(),
            slot: 1,
            image: image.to_owned(),
            endpoint: None,
            secrets: Vec::new(),
        }
    }

    /// Another task of the same service (a new ID), in `slot`.
    pub fn next(&self, slot: u64) -> Self {
        Self {
            id: random_id()[..25].to_owned(),
            slot,
            ..self.clone()
        }
    }

    /// Uses secret `name` (`--secret NAME`).
    pub fn secret(mut self, name: &str) -> Self {
        self.secrets.push(name.to_owned());
        self
    }

    /// Runs in slot `slot`.
    pub fn slot(mut self, slot: u64) -> Self {
        self.slot = slot;
        self
    }

    /// The task's name as swarmkit's `naming.Task` makes it: `SERVICE.SLOT.TASKID`.
    pub fn name(&self) -> String {
        format!("{}.{}.{}", self.service_name, self.slot, self.id)
    }
}

/// What an assignment gave a task: the values its container reads.
#[derive(Debug)]
pub struct Assignment {
    values: HashMap<String, Result<SecretValue, String>>,
}

impl Assignment {
    /// What the container reads at `/run/secrets/NAME`, or the error its start fails
    /// with when the secret was left out of the assignment.
    pub fn read(&self, name: &str) -> Result<SecretValue, HarnessError> {
        match self.values.get(name) {
            Some(Ok(value)) => Ok(value.clone()),
            Some(Err(message)) => Err(HarnessError::Swarm {
                message: message.clone(),
            }),
            None => Err(HarnessError::Swarm {
                message: format!("task not authorized to access secret {name}"),
            }),
        }
    }
}

impl Secrets {
    pub(crate) fn new(plugins: Plugins) -> Self {
        Self {
            plugins,
            node_id: random_id()[..25].to_owned(),
            state: Arc::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SecretState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The node's ID (`NodeID` in every GetSecret).
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// `docker secret create --driver DRIVER [--label k=v…] NAME`: checks that the
    /// driver is a secret provider (a lookup, no call) and stores the secret, which
    /// holds no value. Returns its ID.
    pub async fn create<I, K, V>(
        &self,
        name: &str,
        driver: &str,
        labels: I,
    ) -> Result<String, HarnessError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.plugins.get(driver, secrets::IMPLEMENTS).await?;
        let mut state = self.state();
        if state.secrets.contains_key(name) {
            return Err(HarnessError::Swarm {
                message: format!("secret {name} already exists"),
            });
        }
        let id = random_id()[..25].to_owned();
        state.secrets.insert(
            name.to_owned(),
            Secret {
                id: id.clone(),
                driver: driver.to_owned(),
                labels: labels
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            },
        );
        Ok(id)
    }

    /// The task is assigned to the node: each of its secrets not yet assigned to it
    /// is asked of its provider (moby v20.10.24 `dispatcher/assignments.go`
    /// `addTaskDependencies`, `assignSecret`). Never fails: a secret that could not be
    /// had is left out, and [`Assignment::read`] says what the container's start
    /// would.
    pub async fn assign(&self, task: &SecretTask) -> Assignment {
        let mut values = HashMap::new();
        for name in &task.secrets {
            let secret = self.state().secrets.get(name).cloned();
            let Some(secret) = secret else {
                tracing::debug!(secret = %name, "failed to fetch secret: secret not found");
                values.insert(name.clone(), Err(not_in_store(name)));
                continue;
            };
            let assigned = self
                .state()
                .users
                .get(&secret.id)
                .is_some_and(|tasks| tasks.contains(&task.id));
            if !assigned {
                self.fetch(name, &secret, task).await;
            }
            self.state()
                .users
                .entry(secret.id.clone())
                .or_default()
                .insert(task.id.clone());
            let state = self.state();
            let value = state
                .node
                .get(&task_specific_id(&secret.id, &task.id))
                .or_else(|| state.node.get(&secret.id))
                .cloned()
                .ok_or_else(|| not_in_store(&secret.id));
            values.insert(name.clone(), value);
        }
        Assignment { values }
    }

    /// `assignSecret`: GetSecret, the value stored on the node, or the error logged.
    async fn fetch(&self, name: &str, secret: &Secret, task: &SecretTask) {
        let request = GetSecretRequest {
            secret_name: name.to_owned(),
            secret_labels: secret.labels.clone(),
            service_hostname: task.hostname.clone(),
            service_id: task.service_id.clone(),
            service_name: task.service_name.clone(),
            service_labels: task.service_labels.clone(),
            task_id: task.id.clone(),
            task_name: task.name(),
            task_image: task.image.clone(),
            node_id: self.node_id.clone(),
            service_endpoint_spec: task.endpoint.clone(),
        };
        let reply = match self.plugins.get(&secret.driver, secrets::IMPLEMENTS).await {
            Ok(plugin) => plugin.rpc.call::<GetSecret>(&request).await,
            Err(err) => Err(err),
        };
        let reply = reply.and_then(|reply| match reply.value.check_size() {
            Ok(()) => Ok(reply),
            // swarmkit's ValidateSecretPayload.
            Err(_) => Err(HarnessError::Swarm {
                message: format!(
                    "secret data must be larger than 0 and less than {} bytes",
                    secrets::MAX_VALUE_LEN
                ),
            }),
        });
        match reply {
            Ok(reply) => {
                let id = match reply.do_not_reuse {
                    true => task_specific_id(&secret.id, &task.id),
                    false => secret.id.clone(),
                };
                self.state().node.insert(id, reply.value);
            }
            Err(err) => tracing::debug!(
                resource.type = "secret",
                secret.id = %secret.id,
                error = %err,
                "failed to fetch secret"
            ),
        }
    }

    /// The task ended: its secrets are released; a value that was the task's own
    /// (`DoNotReuse`), and one no task uses any more, leave the node.
    pub fn release(&self, task: &SecretTask) {
        let mut state = self.state();
        let ids: Vec<String> = task
            .secrets
            .iter()
            .filter_map(|name| state.secrets.get(name).map(|s| s.id.clone()))
            .collect();
        for id in ids {
            state.node.remove(&task_specific_id(&id, &task.id));
            let unused = state.users.get_mut(&id).is_some_and(|tasks| {
                tasks.remove(&task.id);
                tasks.is_empty()
            });
            if unused {
                state.users.remove(&id);
                state.node.remove(&id);
            }
        }
    }

    /// A new session between the node and the manager (a restart): nothing is
    /// assigned, every task's secrets are asked for again.
    pub fn new_session(&self) {
        let mut state = self.state();
        state.node.clear();
        state.users.clear();
    }
}

/// swarmkit's `identity.CombineTwoIDs`: the ID of a task's own value.
fn task_specific_id(secret: &str, task: &str) -> String {
    format!("{secret}.{task}")
}

/// What the worker says when the secret is not in its store.
fn not_in_store(id: &str) -> String {
    format!("unable to get secret from secret store: secret {id} not found")
}
