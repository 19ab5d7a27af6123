//! The `secretprovider` types. Go's are moby v20.10.24
//! `vendor/github.com/docker/swarmkit/manager/drivers/secrets.go` (`omitempty` on every
//! field; swarm's protobuf enums as numbers).

use docker_plugin_sdk::secrets::{
    EndpointMode, EndpointSpec, GetSecretRequest, GetSecretResponse, PortConfig, PortProtocol,
    PublishMode, SecretValue,
};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::Wire;
use super::strategies::{base64, bytes, object, sorted_map, text};

/// A protobuf enum's number: the known ones, and any other (kept as it is).
fn enum_number() -> impl Strategy<Value = i32> {
    prop_oneof![0..3, any::<i32>()]
}

fn port() -> impl Strategy<Value = PortConfig> {
    (
        text(),
        enum_number(),
        prop_oneof![Just(0u32), 1u32..65536, any::<u32>()],
        prop_oneof![Just(0u32), 1u32..65536, any::<u32>()],
        enum_number(),
    )
        .prop_map(
            |(name, protocol, target_port, published_port, mode)| PortConfig {
                name,
                protocol: PortProtocol::from(protocol),
                target_port,
                published_port,
                publish_mode: PublishMode::from(mode),
            },
        )
}

fn go_port(port: &PortConfig) -> Value {
    let mut go = json!({});
    if !port.name.is_empty() {
        go["Name"] = json!(port.name);
    }
    if port.protocol.number() != 0 {
        go["Protocol"] = json!(port.protocol.number());
    }
    if port.target_port != 0 {
        go["TargetPort"] = json!(port.target_port);
    }
    if port.published_port != 0 {
        go["PublishedPort"] = json!(port.published_port);
    }
    if port.publish_mode.number() != 0 {
        go["PublishMode"] = json!(port.publish_mode.number());
    }
    go
}

fn endpoint_spec() -> impl Strategy<Value = EndpointSpec> {
    (enum_number(), prop::collection::vec(port(), 0..3)).prop_map(|(mode, ports)| EndpointSpec {
        mode: EndpointMode::from(mode),
        ports,
    })
}

fn go_endpoint_spec(spec: &EndpointSpec) -> Value {
    let mut go = json!({});
    if spec.mode.number() != 0 {
        go["Mode"] = json!(spec.mode.number());
    }
    if !spec.ports.is_empty() {
        go["Ports"] = spec.ports.iter().map(go_port).collect();
    }
    go
}

impl Wire for GetSecretRequest {
    /// `*EndpointSpec`: `{}` is a spec, `null` none.
    const EXACT: &'static [&'static str] = &["ServiceEndpointSpec"];
    fn strategy() -> BoxedStrategy<Self> {
        (
            (text(), sorted_map(), text(), text(), text()),
            (sorted_map(), text(), text(), text(), text()),
            prop::option::of(endpoint_spec()),
        )
            .prop_map(
                |(
                    (secret_name, secret_labels, service_hostname, service_id, service_name),
                    (service_labels, task_id, task_name, task_image, node_id),
                    service_endpoint_spec,
                )| GetSecretRequest {
                    secret_name,
                    secret_labels,
                    service_hostname,
                    service_id,
                    service_name,
                    service_labels,
                    task_id,
                    task_name,
                    task_image,
                    node_id,
                    service_endpoint_spec,
                },
            )
            .boxed()
    }
    fn go(&self) -> Value {
        let mut go = json!({});
        for (key, value) in [
            ("SecretName", &self.secret_name),
            ("ServiceHostname", &self.service_hostname),
            ("ServiceID", &self.service_id),
            ("ServiceName", &self.service_name),
            ("TaskID", &self.task_id),
            ("TaskName", &self.task_name),
            ("TaskImage", &self.task_image),
            ("NodeID", &self.node_id),
        ] {
            if !value.is_empty() {
                go[key] = json!(value);
            }
        }
        for (key, labels) in [
            ("SecretLabels", &self.secret_labels),
            ("ServiceLabels", &self.service_labels),
        ] {
            if !labels.is_empty() {
                go[key] = object(labels);
            }
        }
        if let Some(spec) = &self.service_endpoint_spec {
            go["ServiceEndpointSpec"] = go_endpoint_spec(spec);
        }
        go
    }
}

impl Wire for GetSecretResponse {
    fn strategy() -> BoxedStrategy<Self> {
        (bytes(), any::<bool>())
            .prop_map(|(value, do_not_reuse)| GetSecretResponse {
                value: SecretValue::new(value),
                do_not_reuse,
            })
            .boxed()
    }
    fn go(&self) -> Value {
        let mut go = json!({});
        if !self.value.is_empty() {
            go["Value"] = base64(self.value.expose());
        }
        if self.do_not_reuse {
            go["DoNotReuse"] = json!(true);
        }
        go
    }
}
