//! The exact JSON of `/SecretProvider.GetSecret`: what swarmkit's dispatcher asks a
//! secret provider for one task, and the reply.
//!
//! Field names, order and `omitempty` are moby v20.10.24's
//! (`vendor/github.com/docker/swarmkit/manager/drivers/secrets.go`:
//! `SecretsProviderRequest`, `EndpointSpec`, `PortConfig`, `SecretsProviderResponse`),
//! the enumerations swarmkit's protobuf values (`api/types.proto`). Every key may be
//! missing (Go's `omitempty`); maps accept Go's `null`. go-plugins-helpers' `secrets`
//! package lacks `NodeID`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::value::SecretValue;
use crate::protocol::{WireRequest, null_as_default};

/// `/SecretProvider.GetSecret`: the secret a task needs, and who the task is.
///
/// swarmkit fills it from the secret's spec and the task (moby v20.10.24
/// `swarmkit/manager/drivers/secrets.go` `SecretDriver.Get`): the task's service,
/// its container's image and hostname, the node it was scheduled on and the service's
/// published ports.
///
/// ```
/// use docker_plugin_sdk::secrets::GetSecretRequest;
///
/// let req: GetSecretRequest = serde_json::from_str(
///     r#"{"SecretName":"db-password","SecretLabels":{"env":"prod"},"ServiceName":"web",
///         "TaskID":"t1","NodeID":"n1"}"#,
/// ).unwrap();
/// assert_eq!(req.secret_labels["env"], "prod");
/// assert_eq!(req.node_id, "n1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GetSecretRequest {
    /// The secret's name (`docker secret create NAME`).
    #[serde(
        rename = "SecretName",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub secret_name: String,
    /// The secret's labels (`docker secret create --label k=v`).
    #[serde(
        rename = "SecretLabels",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub secret_labels: BTreeMap<String, String>,
    /// The hostname of the task's container (`docker service create --hostname`), which
    /// an x509 certificate may be issued for.
    #[serde(
        rename = "ServiceHostname",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub service_hostname: String,
    /// The ID of the service the task belongs to.
    #[serde(
        rename = "ServiceID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub service_id: String,
    /// The service's name.
    #[serde(
        rename = "ServiceName",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub service_name: String,
    /// The service's labels.
    #[serde(
        rename = "ServiceLabels",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub service_labels: BTreeMap<String, String>,
    /// The task's ID.
    #[serde(rename = "TaskID", default, skip_serializing_if = "String::is_empty")]
    pub task_id: String,
    /// The task's name as `docker service ps` shows it (`web.1.<task id>`).
    #[serde(rename = "TaskName", default, skip_serializing_if = "String::is_empty")]
    pub task_name: String,
    /// The image of the task's container.
    #[serde(
        rename = "TaskImage",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub task_image: String,
    /// The ID of the node the task will run on.
    #[serde(rename = "NodeID", default, skip_serializing_if = "String::is_empty")]
    pub node_id: String,
    /// The service's endpoint: its resolution mode and published ports; `None` for a
    /// task without an endpoint.
    #[serde(
        rename = "ServiceEndpointSpec",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub service_endpoint_spec: Option<EndpointSpec>,
}

impl WireRequest for GetSecretRequest {
    fn subject(&self) -> Option<&str> {
        Some(&self.secret_name)
    }
}

/// A service's endpoint, as swarmkit hands it to secret providers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EndpointSpec {
    /// How the service's name resolves (`--endpoint-mode`).
    #[serde(
        rename = "Mode",
        default,
        skip_serializing_if = "EndpointMode::is_default"
    )]
    pub mode: EndpointMode,
    /// The published ports (`--publish`).
    #[serde(
        rename = "Ports",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<PortConfig>,
}

/// One published port of a service.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PortConfig {
    /// The port's name, if it has one.
    #[serde(rename = "Name", default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Its protocol.
    #[serde(
        rename = "Protocol",
        default,
        skip_serializing_if = "PortProtocol::is_default"
    )]
    pub protocol: PortProtocol,
    /// The port inside the container.
    #[serde(rename = "TargetPort", default, skip_serializing_if = "is_zero")]
    pub target_port: u32,
    /// The port on the swarm's hosts.
    #[serde(rename = "PublishedPort", default, skip_serializing_if = "is_zero")]
    pub published_port: u32,
    /// How it is published.
    #[serde(
        rename = "PublishMode",
        default,
        skip_serializing_if = "PublishMode::is_default"
    )]
    pub publish_mode: PublishMode,
}

fn is_zero(port: &u32) -> bool {
    *port == 0
}

/// Declares an enumeration swarmkit sends as its protobuf number (Go's `int32`), with
/// the numbers it knows and `Other` for those it does not (a newer swarmkit).
macro_rules! protobuf_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $number:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
            /// A number this SDK does not know.
            Other(i32),
        }

        impl $name {
            /// The number on the wire.
            pub fn number(self) -> i32 {
                match self {
                    $(Self::$variant => $number,)+
                    Self::Other(number) => number,
                }
            }

            fn is_default(&self) -> bool {
                self.number() == 0
            }
        }

        impl From<i32> for $name {
            fn from(number: i32) -> Self {
                match number {
                    $($number => Self::$variant,)+
                    other => Self::Other(other),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_i32(self.number())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Ok(i32::deserialize(deserializer)?.into())
            }
        }
    };
}

protobuf_enum!(
    /// How a service's name resolves (swarmkit's `EndpointSpec.ResolutionMode`).
    EndpointMode {
        /// `vip` (0): one virtual IP, load-balanced.
        #[default]
        Vip = 0,
        /// `dnsrr` (1): DNS round robin over the tasks' addresses.
        Dnsrr = 1,
    }
);

protobuf_enum!(
    /// A port's protocol (swarmkit's `PortConfig.Protocol`).
    PortProtocol {
        /// TCP (0).
        #[default]
        Tcp = 0,
        /// UDP (1).
        Udp = 1,
        /// SCTP (2).
        Sctp = 2,
    }
);

protobuf_enum!(
    /// How a port is published (swarmkit's `PortConfig.PublishMode`).
    PublishMode {
        /// `ingress` (0): on every node, through the routing mesh.
        #[default]
        Ingress = 0,
        /// `host` (1): on the node the task runs on.
        Host = 1,
    }
);

/// The reply to GetSecret: the value, and whether swarm may reuse it for other tasks.
///
/// An error is not part of it: return `Err` from
/// [`Provider::get_secret`](super::Provider::get_secret) and the SDK answers
/// `{"Err": "..."}`.
///
/// ```
/// use docker_plugin_sdk::secrets::GetSecretResponse;
///
/// let reply = GetSecretResponse::new("s3cr3t").do_not_reuse();
/// assert_eq!(
///     serde_json::to_string(&reply).unwrap(),
///     r#"{"Value":"czNjcjN0","DoNotReuse":true}"#
/// );
/// assert_eq!(format!("{reply:?}"), "GetSecretResponse { value: <redacted>, do_not_reuse: true }");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GetSecretResponse {
    /// The secret's bytes (base64 on the wire).
    #[serde(
        rename = "Value",
        default,
        skip_serializing_if = "SecretValue::is_empty"
    )]
    pub value: SecretValue,
    /// `true`: this value is for this task only. swarm then gives the task a secret of
    /// its own (a task-specific ID) and asks again for every other task; `false`: the
    /// value is stored under the secret's ID on the node, where the next task's value
    /// replaces it (moby v20.10.24 `swarmkit/manager/dispatcher/assignments.go`
    /// `assignSecret`).
    #[serde(rename = "DoNotReuse", default, skip_serializing_if = "is_false")]
    pub do_not_reuse: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl GetSecretResponse {
    /// A reply with this value, which swarm may reuse.
    pub fn new(value: impl Into<SecretValue>) -> Self {
        Self {
            value: value.into(),
            do_not_reuse: false,
        }
    }

    /// Marks the value as this task's only (`DoNotReuse`).
    pub fn do_not_reuse(mut self) -> Self {
        self.do_not_reuse = true;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_enum_numbers_survive_a_round_trip() {
        let port: PortConfig =
            serde_json::from_str(r#"{"Protocol":7,"TargetPort":80,"PublishMode":1}"#).unwrap();
        assert_eq!(port.protocol, PortProtocol::Other(7));
        assert_eq!(port.publish_mode, PublishMode::Host);
        assert_eq!(
            serde_json::to_string(&port).unwrap(),
            r#"{"Protocol":7,"TargetPort":80,"PublishMode":1}"#
        );
    }

    #[test]
    fn an_empty_request_is_an_empty_object_as_go_omits_every_key() {
        assert_eq!(
            serde_json::to_string(&GetSecretRequest::default()).unwrap(),
            "{}"
        );
        let req: GetSecretRequest =
            serde_json::from_str(r#"{"SecretLabels":null,"ServiceLabels":null}"#).unwrap();
        assert_eq!(req, GetSecretRequest::default());
    }
}
