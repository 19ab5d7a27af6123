//! Property tests of every wire type of every subsystem: a generated value encodes
//! and decodes back to itself, and its encoding is the JSON dockerd's Go types write
//! for it (built here by hand, from the value, with Go's field names and Go's
//! encodings: `null` for a nil map, base64 for `[]byte`, RFC 3339 for `time.Time`),
//! which decodes to the same value; so do its Go-shaped variants (an empty map or
//! slice sent as `null` or left out). Requests the SDK only decodes and replies it
//! only encodes are checked the same way: the hand-built JSON is what dockerd sends
//! or reads.
//!
//! Covered (each a `#[test]` of [`CASES`] generated values):
//!
//! - `protocol`: `Empty` (the request and reply of every method without arguments,
//!   and all of metrics' `StartMetrics`/`StopMetrics`), `ActivateResponse`,
//!   `ErrorResponse`;
//! - `volume`: `CreateRequest`, `RemoveRequest`, `MountRequest`, `MountResponse`,
//!   `UnmountRequest`, `PathRequest`, `PathResponse`, `GetRequest`, `GetResponse`,
//!   `ListResponse`, `CapabilitiesResponse` (and `Volume`, `Capability`, `Scope`
//!   inside them);
//! - `network`: `CapabilitiesResponse`, `GwAllocCheckRequest`, `GwAllocCheckResponse`,
//!   `CreateNetworkRequest`, `AllocateNetworkRequest`, `AllocateNetworkResponse`,
//!   `NetworkRequest`, `CreateEndpointRequest`, `CreateEndpointResponse`,
//!   `EndpointRequest`, `EndpointOperInfoResponse`, `JoinRequest`, `JoinResponse`,
//!   `DiscoveryNotification`, `ProgramExternalConnectivityRequest` (and `IpamData`,
//!   `EndpointInterface`, `InterfaceName`, `StaticRoute`, `Options`, `Cidr`,
//!   `MacAddress` inside them);
//! - `ipam`: `CapabilitiesResponse`, `AddressSpacesResponse`, `RequestPoolRequest`,
//!   `RequestPoolResponse`, `ReleasePoolRequest`, `RequestAddressRequest`,
//!   `RequestAddressResponse`, `ReleaseAddressRequest`;
//! - `authz`: `AuthZRequest` (its base64 `[]byte` bodies and certificates, its header
//!   maps), `AuthZResponse`;
//! - `logging`: `StartLoggingRequest`, `StopLoggingRequest`, `CapabilitiesResponse`,
//!   `ReadLogsRequest` (and `Info`, `ReadConfig`, `Timestamp`), `LogEntry` both as
//!   JSON and as protobuf frames through `FrameDecoder`, split at every byte boundary;
//! - `secrets`: `GetSecretRequest` (and `EndpointSpec`, `PortConfig` and their
//!   protobuf enums), `GetSecretResponse`.
//!
//! `fast_path`: `decode_body`'s shortcut for flat objects of plain strings decodes
//! every declared request type exactly as serde_json does (values and errors alike).
//!
//! `every_declared_wire_type_is_covered` walks every subsystem's method table and fails
//! when a method's request or response type is missing from the list below.

mod authz;
mod fast_path;
mod ipam;
mod logging;
mod network;
mod secrets;
mod strategies;
mod volume;

use std::any::type_name;
use std::collections::BTreeSet;
use std::fmt::Debug;

use docker_plugin_sdk::protocol::{self, Method, MethodVisitor, decode_body};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Generated values per wire type.
const CASES: u32 = 256;

/// A wire type under test: how to generate it, and the JSON dockerd's Go types write
/// for a value of it.
trait Wire: Serialize + DeserializeOwned + PartialEq + Debug + Clone {
    /// Keys holding arbitrary JSON (`interface{}`): their contents are the user's, not
    /// rewritten in Go's variants.
    const OPAQUE: &'static [&'static str] = &[];
    /// Keys whose empty value is not `null` in Go: an `interface{}` holding `{}`, a
    /// pointer to a struct whose fields are all left out.
    const EXACT: &'static [&'static str] = &[];
    fn strategy() -> BoxedStrategy<Self>;
    fn go(&self) -> Value;
}

/// Checks `value` both ways, as described in the module doc.
fn check<T: Wire>(value: &T) -> Result<(), TestCaseError> {
    let encoded = serde_json::to_vec(value).map_err(fail)?;
    // What the server does with a request body, and the client with a reply.
    let back: T = decode_body(&encoded).map_err(fail)?;
    prop_assert_eq!(&back, value);
    let encoded: Value = serde_json::from_slice(&encoded).map_err(fail)?;
    let go = value.go();
    prop_assert_eq!(&encoded, &go, "the SDK's JSON is not the JSON of Go's type");
    for variant in go_variants::<T>(&go) {
        let from_go: T = serde_json::from_value(variant.clone())
            .map_err(|err| TestCaseError::fail(format!("{variant}: {err}")))?;
        prop_assert_eq!(&from_go, value, "decoded from {}", variant);
    }
    Ok(())
}

fn fail(err: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(err.to_string())
}

/// `go` and the other forms Go writes for the same value: each empty map or slice of
/// an object (at any depth) as `null`, and left out (`omitempty`).
fn go_variants<T: Wire>(go: &Value) -> Vec<Value> {
    let mut variants = vec![go.clone()];
    for missing in [false, true] {
        let mut variant = go.clone();
        rewrite_empties::<T>(&mut variant, missing);
        variants.push(variant);
    }
    variants
}

/// Writes each empty map or slice as `null`, or leaves it out when `missing`.
fn rewrite_empties<T: Wire>(value: &mut Value, missing: bool) {
    match value {
        Value::Object(map) => {
            let empty: Vec<String> = map
                .iter()
                .filter(|(k, v)| is_empty_collection(v) && !T::EXACT.contains(&k.as_str()))
                .map(|(k, _)| k.clone())
                .collect();
            for key in empty {
                if missing {
                    map.remove(&key);
                } else {
                    map.insert(key, Value::Null);
                }
            }
            map.iter_mut()
                .filter(|(k, _)| !T::OPAQUE.contains(&k.as_str()))
                .for_each(|(_, v)| rewrite_empties::<T>(v, missing));
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| rewrite_empties::<T>(v, missing)),
        _ => {}
    }
}

fn is_empty_collection(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// Runs [`check`] on [`CASES`] values of `T`.
fn round_trips<T: Wire>() {
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(err) = runner.run(&T::strategy(), |value| check(&value)) {
        panic!("{}: {err}", type_name::<T>());
    }
}

/// One `#[test]` per wire type, and the list of covered types.
macro_rules! wire_types {
    ($($test:ident: $ty:ty),+ $(,)?) => {
        $(
            #[test]
            fn $test() {
                round_trips::<$ty>();
            }
        )+

        fn covered() -> BTreeSet<&'static str> {
            [$(type_name::<$ty>()),+].into_iter().collect()
        }
    };
}

use docker_plugin_sdk::{
    authz as az, ipam as ip, logging as lg, network as nw, secrets as se, volume as vo,
};

wire_types! {
    empty: protocol::Empty,
    activate_response: protocol::ActivateResponse,
    error_response: protocol::ErrorResponse,

    volume_create_request: vo::CreateRequest,
    volume_remove_request: vo::RemoveRequest,
    volume_mount_request: vo::MountRequest,
    volume_mount_response: vo::MountResponse,
    volume_unmount_request: vo::UnmountRequest,
    volume_path_request: vo::PathRequest,
    volume_path_response: vo::PathResponse,
    volume_get_request: vo::GetRequest,
    volume_get_response: vo::GetResponse,
    volume_list_response: vo::ListResponse,
    volume_capabilities_response: vo::CapabilitiesResponse,

    network_capabilities_response: nw::CapabilitiesResponse,
    network_gw_alloc_check_request: nw::GwAllocCheckRequest,
    network_gw_alloc_check_response: nw::GwAllocCheckResponse,
    network_create_network_request: nw::CreateNetworkRequest,
    network_allocate_network_request: nw::AllocateNetworkRequest,
    network_allocate_network_response: nw::AllocateNetworkResponse,
    network_network_request: nw::NetworkRequest,
    network_create_endpoint_request: nw::CreateEndpointRequest,
    network_create_endpoint_response: nw::CreateEndpointResponse,
    network_endpoint_request: nw::EndpointRequest,
    network_endpoint_oper_info_response: nw::EndpointOperInfoResponse,
    network_join_request: nw::JoinRequest,
    network_join_response: nw::JoinResponse,
    network_discovery_notification: nw::DiscoveryNotification,
    network_program_external_connectivity_request: nw::ProgramExternalConnectivityRequest,

    ipam_capabilities_response: ip::CapabilitiesResponse,
    ipam_address_spaces_response: ip::AddressSpacesResponse,
    ipam_request_pool_request: ip::RequestPoolRequest,
    ipam_request_pool_response: ip::RequestPoolResponse,
    ipam_release_pool_request: ip::ReleasePoolRequest,
    ipam_request_address_request: ip::RequestAddressRequest,
    ipam_request_address_response: ip::RequestAddressResponse,
    ipam_release_address_request: ip::ReleaseAddressRequest,

    authz_request: az::AuthZRequest,
    authz_response: az::AuthZResponse,

    logging_start_logging_request: lg::StartLoggingRequest,
    logging_stop_logging_request: lg::StopLoggingRequest,
    logging_capabilities_response: lg::CapabilitiesResponse,
    logging_read_logs_request: lg::ReadLogsRequest,
    logging_log_entry: lg::LogEntry,

    secrets_get_secret_request: se::GetSecretRequest,
    secrets_get_secret_response: se::GetSecretResponse,
}

/// Hands `visitor` every declared method of every subsystem.
fn visit_every_method<V: MethodVisitor>(visitor: &mut V) {
    protocol::visit_methods(visitor);
    vo::visit_methods(visitor);
    nw::visit_methods(visitor);
    ip::visit_methods(visitor);
    az::visit_methods(visitor);
    lg::visit_methods(visitor);
    se::visit_methods(visitor);
    docker_plugin_sdk::metrics::visit_methods(visitor);
}

/// Collects the request and response types of the methods it visits.
#[derive(Default)]
struct Declared(BTreeSet<&'static str>);

impl MethodVisitor for Declared {
    fn visit<M: Method>(&mut self) {
        self.0.insert(type_name::<M::Request>());
        self.0.insert(type_name::<M::Response>());
    }
}

#[test]
fn every_declared_wire_type_is_covered() {
    let mut declared = Declared::default();
    visit_every_method(&mut declared);
    let covered = covered();
    let missing: Vec<_> = declared.0.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "wire types without a property test (add them to `wire_types!`): {missing:?}"
    );
}
