//! The `NetworkDriver` types. Go's are moby v20.10.24
//! `vendor/github.com/docker/libnetwork/drivers/remote/api/api.go` (and
//! `driverapi/ipamdata.go` for `IpamData`), moby 28's for `GwAllocCheck`.

use docker_plugin_sdk::network::{
    AllocateNetworkRequest, AllocateNetworkResponse, CapabilitiesResponse, CreateEndpointRequest,
    CreateEndpointResponse, CreateNetworkRequest, DiscoveryNotification, EndpointInterface,
    EndpointOperInfoResponse, EndpointRequest, GwAllocCheckRequest, GwAllocCheckResponse,
    InterfaceName, IpamData, JoinRequest, JoinResponse, NetworkRequest, NodeDiscovery, Options,
    ProgramExternalConnectivityRequest, Scope, StaticRoute,
};
use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::Wire;
use super::strategies::{cidr, ip, json, json_map, mac, name, object, or_empty, string_map, text};

fn scope() -> impl Strategy<Value = Scope> {
    prop_oneof![Just(Scope::Local), Just(Scope::Global)]
}

fn options() -> impl Strategy<Value = Options> {
    json_map().prop_map(Options)
}

impl Wire for CapabilitiesResponse {
    fn strategy() -> BoxedStrategy<Self> {
        (scope(), prop::option::of(scope()), any::<bool>())
            .prop_map(
                |(scope, connectivity_scope, gw_alloc_checker)| CapabilitiesResponse {
                    scope,
                    connectivity_scope,
                    gw_alloc_checker,
                },
            )
            .boxed()
    }
    fn go(&self) -> Value {
        json!({
            "Scope": self.scope.to_string(),
            "ConnectivityScope": or_empty(self.connectivity_scope),
            "GwAllocChecker": self.gw_alloc_checker,
        })
    }
}

impl Wire for GwAllocCheckRequest {
    const OPAQUE: &'static [&'static str] = &["Options"];
    fn strategy() -> BoxedStrategy<Self> {
        options()
            .prop_map(|options| GwAllocCheckRequest { options })
            .boxed()
    }
    fn go(&self) -> Value {
        json!({"Options": self.options.0})
    }
}

impl Wire for GwAllocCheckResponse {
    fn strategy() -> BoxedStrategy<Self> {
        any::<(bool, bool)>()
            .prop_map(|(skip_ipv4, skip_ipv6)| GwAllocCheckResponse {
                skip_ipv4,
                skip_ipv6,
            })
            .boxed()
    }
    fn go(&self) -> Value {
        json!({"SkipIPv4": self.skip_ipv4, "SkipIPv6": self.skip_ipv6})
    }
}

fn ipam_data() -> impl Strategy<Value = IpamData> {
    (
        prop_oneof![Just("LocalDefault".to_owned()), text()],
        prop::collection::hash_map(text(), cidr(), 0..3),
        prop::option::of(cidr()),
        cidr(),
    )
        .prop_map(|(address_space, aux_addresses, gateway, pool)| IpamData {
            address_space,
            aux_addresses,
            gateway,
            pool,
        })
}

/// `driverapi.IPAMData.MarshalJSON`: a map of the fields set.
fn go_ipam_data(data: &IpamData) -> Value {
    let mut go = json!({"AddressSpace": data.address_space, "Pool": data.pool.to_string()});
    if !data.aux_addresses.is_empty() {
        let aux: serde_json::Map<String, Value> = data
            .aux_addresses
            .iter()
            .map(|(k, v)| (k.clone(), json!(v.to_string())))
            .collect();
        go["AuxAddresses"] = Value::Object(aux);
    }
    if let Some(gateway) = data.gateway {
        go["Gateway"] = json!(gateway.to_string());
    }
    go
}

fn pools() -> impl Strategy<Value = Vec<IpamData>> {
    prop::collection::vec(ipam_data(), 0..3)
}

fn go_pools(pools: &[IpamData]) -> Value {
    pools.iter().map(go_ipam_data).collect()
}

/// CreateNetwork and AllocateNetwork: the same fields, their options of two types.
macro_rules! network_with_pools {
    ($ty:ident, $options:expr, $go_options:expr) => {
        impl Wire for $ty {
            const OPAQUE: &'static [&'static str] = &["Options"];
            fn strategy() -> BoxedStrategy<Self> {
                (name(), $options, pools(), pools())
                    .prop_map(|(network_id, options, ipv4_data, ipv6_data)| $ty {
                        network_id,
                        options,
                        ipv4_data,
                        ipv6_data,
                    })
                    .boxed()
            }
            fn go(&self) -> Value {
                json!({
                    "NetworkID": self.network_id,
                    "Options": $go_options(&self.options),
                    "IPv4Data": go_pools(&self.ipv4_data),
                    "IPv6Data": go_pools(&self.ipv6_data),
                })
            }
        }
    };
}
network_with_pools!(CreateNetworkRequest, options(), |o: &Options| {
    Value::Object(o.0.clone())
});
network_with_pools!(AllocateNetworkRequest, string_map(), |o: &HashMap<
    String,
    String,
>| object(o));

impl Wire for AllocateNetworkResponse {
    fn strategy() -> BoxedStrategy<Self> {
        string_map()
            .prop_map(|options| AllocateNetworkResponse { options })
            .boxed()
    }
    fn go(&self) -> Value {
        json!({"Options": object(&self.options)})
    }
}

impl Wire for NetworkRequest {
    fn strategy() -> BoxedStrategy<Self> {
        name()
            .prop_map(|network_id| NetworkRequest { network_id })
            .boxed()
    }
    fn go(&self) -> Value {
        json!({"NetworkID": self.network_id})
    }
}

impl Wire for EndpointRequest {
    fn strategy() -> BoxedStrategy<Self> {
        (name(), name())
            .prop_map(|(network_id, endpoint_id)| EndpointRequest {
                network_id,
                endpoint_id,
            })
            .boxed()
    }
    fn go(&self) -> Value {
        json!({"NetworkID": self.network_id, "EndpointID": self.endpoint_id})
    }
}

fn interface() -> impl Strategy<Value = EndpointInterface> {
    (
        prop::option::of(cidr()),
        prop::option::of(cidr()),
        prop::option::of(mac()),
    )
        .prop_map(|(address, address_ipv6, mac_address)| EndpointInterface {
            address,
            address_ipv6,
            mac_address,
        })
}

fn go_interface(interface: &EndpointInterface) -> Value {
    json!({
        "Address": or_empty(interface.address),
        "AddressIPv6": or_empty(interface.address_ipv6),
        "MacAddress": or_empty(interface.mac_address),
    })
}

impl Wire for CreateEndpointRequest {
    const OPAQUE: &'static [&'static str] = &["Options"];
    fn strategy() -> BoxedStrategy<Self> {
        (name(), name(), interface(), options())
            .prop_map(
                |(network_id, endpoint_id, interface, options)| CreateEndpointRequest {
                    network_id,
                    endpoint_id,
                    interface,
                    options,
                },
            )
            .boxed()
    }
    fn go(&self) -> Value {
        json!({
            "NetworkID": self.network_id,
            "EndpointID": self.endpoint_id,
            "Interface": go_interface(&self.interface),
            "Options": self.options.0,
        })
    }
}

impl Wire for CreateEndpointResponse {
    /// Built as drivers build it: from the request's interface, filling what dockerd
    /// left empty.
    fn strategy() -> BoxedStrategy<Self> {
        (interface(), interface())
            .prop_map(|(supplied, offered)| {
                let mut fill = supplied.fill();
                if let Some(address) = offered.address {
                    fill = fill.address(address);
                }
                if let Some(address) = offered.address_ipv6 {
                    fill = fill.address_ipv6(address);
                }
                if let Some(mac) = offered.mac_address {
                    fill = fill.mac_address(mac);
                }
                fill.into_response()
            })
            .boxed()
    }
    fn go(&self) -> Value {
        json!({"Interface": self.interface().map(go_interface)})
    }
}

impl Wire for EndpointOperInfoResponse {
    const OPAQUE: &'static [&'static str] = &["Value"];
    fn strategy() -> BoxedStrategy<Self> {
        json_map()
            .prop_map(|value| EndpointOperInfoResponse { value })
            .boxed()
    }
    fn go(&self) -> Value {
        json!({"Value": self.value})
    }
}

impl Wire for JoinRequest {
    const OPAQUE: &'static [&'static str] = &["Options"];
    fn strategy() -> BoxedStrategy<Self> {
        (
            name(),
            name(),
            prop_oneof![text(), "/var/run/docker/netns/[0-9a-f]{12}"],
            options(),
        )
            .prop_map(
                |(network_id, endpoint_id, sandbox_key, options)| JoinRequest {
                    network_id,
                    endpoint_id,
                    sandbox_key,
                    options,
                },
            )
            .boxed()
    }
    fn go(&self) -> Value {
        json!({
            "NetworkID": self.network_id,
            "EndpointID": self.endpoint_id,
            "SandboxKey": self.sandbox_key,
            "Options": self.options.0,
        })
    }
}

fn static_route() -> impl Strategy<Value = StaticRoute> {
    prop_oneof![
        (cidr(), ip()).prop_map(|(destination, hop)| StaticRoute::via(destination, hop)),
        cidr().prop_map(StaticRoute::connected),
    ]
}

impl Wire for JoinResponse {
    fn strategy() -> BoxedStrategy<Self> {
        (
            prop::option::of((text(), text()).prop_map(|(s, d)| InterfaceName::new(s, d))),
            prop::option::of(ip()),
            prop::option::of(ip()),
            prop::collection::vec(static_route(), 0..3),
            any::<bool>(),
        )
            .prop_map(
                |(interface_name, gateway, gateway_ipv6, static_routes, disable)| JoinResponse {
                    interface_name,
                    gateway,
                    gateway_ipv6,
                    static_routes,
                    disable_gateway_service: disable,
                },
            )
            .boxed()
    }
    fn go(&self) -> Value {
        let routes: Vec<Value> = self
            .static_routes
            .iter()
            .map(|route| {
                json!({
                    "Destination": route.destination.to_string(),
                    "RouteType": match route.next_hop { Some(_) => 0, None => 1 },
                    "NextHop": or_empty(route.next_hop),
                })
            })
            .collect();
        json!({
            "InterfaceName": self.interface_name.as_ref().map(|name| json!({
                "SrcName": name.src_name,
                "DstPrefix": name.dst_prefix,
            })),
            "Gateway": or_empty(self.gateway),
            "GatewayIPv6": or_empty(self.gateway_ipv6),
            "StaticRoutes": routes,
            "DisableGatewayService": self.disable_gateway_service,
        })
    }
}

impl Wire for DiscoveryNotification {
    const OPAQUE: &'static [&'static str] = &["DiscoveryData"];
    const EXACT: &'static [&'static str] = &["DiscoveryData"];
    fn strategy() -> BoxedStrategy<Self> {
        let node = (text(), text(), any::<bool>()).prop_map(|(address, bind_address, is_self)| {
            DiscoveryNotification {
                discovery_type: DiscoveryNotification::NODE,
                discovery_data: serde_json::to_value(NodeDiscovery {
                    address,
                    bind_address,
                    is_self,
                })
                .expect("a node encodes"),
            }
        });
        let other = (any::<i64>(), json()).prop_map(|(discovery_type, discovery_data)| {
            DiscoveryNotification {
                discovery_type,
                discovery_data,
            }
        });
        prop_oneof![node, other].boxed()
    }
    fn go(&self) -> Value {
        json!({"DiscoveryType": self.discovery_type, "DiscoveryData": self.discovery_data})
    }
}

impl Wire for ProgramExternalConnectivityRequest {
    const OPAQUE: &'static [&'static str] = &["Options"];
    fn strategy() -> BoxedStrategy<Self> {
        (name(), name(), options())
            .prop_map(
                |(network_id, endpoint_id, options)| ProgramExternalConnectivityRequest {
                    network_id,
                    endpoint_id,
                    options,
                },
            )
            .boxed()
    }
    fn go(&self) -> Value {
        json!({
            "NetworkID": self.network_id,
            "EndpointID": self.endpoint_id,
            "Options": self.options.0,
        })
    }
}

proptest! {
    /// A node discovery's data is libnetwork's `NodeDiscoveryData`.
    #[test]
    fn node_discoveries_read_back(address in text(), bind in text(), is_self in any::<bool>()) {
        let go = json!({
            "DiscoveryType": 1,
            "DiscoveryData": {"Address": address, "BindAddress": bind, "Self": is_self},
        });
        let notification: DiscoveryNotification = serde_json::from_value(go).unwrap();
        let node = notification.node().unwrap().unwrap();
        prop_assert_eq!(node, NodeDiscovery { address, bind_address: bind, is_self });
    }
}
