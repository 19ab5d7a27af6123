//! The `VolumeDriver` types, and the ones every subsystem shares (`protocol`): Go's
//! are moby v20.10.24 `volume/drivers/proxy.go` (requests) and the driver replies
//! dockerd decodes there (`Mountpoint`, `Volume`, `Volumes`, `Capabilities`).

use docker_plugin_sdk::protocol::{ActivateResponse, Empty, ErrorResponse};
use docker_plugin_sdk::volume::{
    CapabilitiesResponse, Capability, CreateRequest, GetRequest, GetResponse, ListResponse,
    MountRequest, MountResponse, PathRequest, PathResponse, RemoveRequest, Scope, UnmountRequest,
    Volume,
};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::Wire;
use super::strategies::{go_string_map, json_map, name, string_map, text, timestamp};

impl Wire for Empty {
    fn strategy() -> BoxedStrategy<Self> {
        Just(Empty {}).boxed()
    }
    fn go(&self) -> Value {
        json!({})
    }
}

impl Wire for ActivateResponse {
    fn strategy() -> BoxedStrategy<Self> {
        prop::collection::vec(
            prop_oneof![
                Just("VolumeDriver".to_owned()),
                Just("NetworkDriver".to_owned()),
                Just("IpamDriver".to_owned()),
                Just("authz".to_owned()),
                Just("LogDriver".to_owned()),
                Just("secretprovider".to_owned()),
                Just("MetricsCollector".to_owned()),
                text(),
            ],
            0..4,
        )
        .prop_map(|implements| ActivateResponse { implements })
        .boxed()
    }
    fn go(&self) -> Value {
        json!({"Implements": self.implements})
    }
}

impl Wire for ErrorResponse {
    fn strategy() -> BoxedStrategy<Self> {
        text().prop_map(|err| ErrorResponse { err }).boxed()
    }
    fn go(&self) -> Value {
        json!({"Err": self.err})
    }
}

impl Wire for CreateRequest {
    fn strategy() -> BoxedStrategy<Self> {
        (name(), string_map())
            .prop_map(|(name, opts)| CreateRequest { name, opts })
            .boxed()
    }
    fn go(&self) -> Value {
        json!({"Name": self.name, "Opts": go_string_map(&self.opts)})
    }
}

/// The requests that carry only a name.
macro_rules! named {
    ($($ty:ident),+) => {$(
        impl Wire for $ty {
            fn strategy() -> BoxedStrategy<Self> {
                name().prop_map(|name| $ty { name }).boxed()
            }
            fn go(&self) -> Value {
                json!({"Name": self.name})
            }
        }
    )+};
}
named!(RemoveRequest, PathRequest, GetRequest);

/// The requests that carry a name and a mount ID.
macro_rules! mount_id {
    ($($ty:ident),+) => {$(
        impl Wire for $ty {
            fn strategy() -> BoxedStrategy<Self> {
                (name(), prop_oneof![text(), "[0-9a-f]{64}"])
                    .prop_map(|(name, id)| $ty { name, id })
                    .boxed()
            }
            fn go(&self) -> Value {
                json!({"Name": self.name, "ID": self.id})
            }
        }
    )+};
}
mount_id!(MountRequest, UnmountRequest);

/// A host path: empty (not mounted), plain, or any Unicode.
fn path() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "/[a-z/]{0,20}", text()]
}

impl Wire for MountResponse {
    fn strategy() -> BoxedStrategy<Self> {
        path().prop_map(MountResponse::new).boxed()
    }
    fn go(&self) -> Value {
        json!({"Mountpoint": self.mountpoint})
    }
}

impl Wire for PathResponse {
    fn strategy() -> BoxedStrategy<Self> {
        path().prop_map(PathResponse::new).boxed()
    }
    fn go(&self) -> Value {
        // The SDK leaves out an empty path (`omitempty`), as Docker's drivers do.
        if self.mountpoint.as_os_str().is_empty() {
            json!({})
        } else {
            json!({"Mountpoint": self.mountpoint})
        }
    }
}

fn volume() -> impl Strategy<Value = Volume> {
    (text(), path(), prop::option::of(timestamp()), json_map()).prop_map(
        |(name, mountpoint, created_at, status)| Volume {
            name,
            mountpoint: mountpoint.into(),
            created_at: created_at.map(|(time, _)| time),
            status,
        },
    )
}

/// A volume as go-plugins-helpers' `Volume` writes it (`omitempty` but for `Name`).
fn go_volume(volume: &Volume) -> Value {
    let mut go = json!({"Name": volume.name});
    if !volume.mountpoint.as_os_str().is_empty() {
        go["Mountpoint"] = json!(volume.mountpoint);
    }
    if let Some(created) = volume.created_at {
        go["CreatedAt"] = json!(created.to_string());
    }
    if !volume.status.is_empty() {
        go["Status"] = Value::Object(volume.status.clone());
    }
    go
}

impl Wire for GetResponse {
    const OPAQUE: &'static [&'static str] = &["Status"];
    fn strategy() -> BoxedStrategy<Self> {
        volume().prop_map(|volume| GetResponse { volume }).boxed()
    }
    fn go(&self) -> Value {
        json!({"Volume": go_volume(&self.volume)})
    }
}

impl Wire for ListResponse {
    const OPAQUE: &'static [&'static str] = &["Status"];
    fn strategy() -> BoxedStrategy<Self> {
        prop::collection::vec(volume(), 0..4)
            .prop_map(|volumes| ListResponse { volumes })
            .boxed()
    }
    fn go(&self) -> Value {
        json!({"Volumes": self.volumes.iter().map(go_volume).collect::<Vec<_>>()})
    }
}

impl Wire for CapabilitiesResponse {
    fn strategy() -> BoxedStrategy<Self> {
        prop_oneof![Just(Scope::Local), Just(Scope::Global)]
            .prop_map(|scope| CapabilitiesResponse {
                capabilities: Capability { scope },
            })
            .boxed()
    }
    fn go(&self) -> Value {
        let scope = match self.capabilities.scope {
            Scope::Local => "local",
            Scope::Global => "global",
        };
        json!({"Capabilities": {"Scope": scope}})
    }
}

proptest! {
    /// The timestamps the other types carry write exactly Go's text.
    #[test]
    fn timestamps_write_go_text((time, text) in timestamp()) {
        prop_assert_eq!(time.to_string(), text.clone());
        prop_assert_eq!(serde_json::to_value(time).unwrap(), json!(text));
    }
}
