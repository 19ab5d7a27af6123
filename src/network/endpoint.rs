//! The exact JSON of the endpoint calls of `NetworkDriver`: CreateEndpoint (and the
//! rule that its reply may only fill in what dockerd left empty), Join (interface
//! names, gateways, static routes), and the calls that name an endpoint only.
//!
//! Shapes and checks are moby v20.10.24's
//! (`vendor/github.com/docker/libnetwork/drivers/remote/api/api.go` and
//! `drivers/remote/driver.go`): the interface's addresses are CIDRs, Join's gateways
//! are **plain IPs** (`net.ParseIP`: a CIDR there fails with "unable to parse
//! Gateway"), a route's destination is a CIDR and its next hop a plain IP.

use std::net::IpAddr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::addr::{Cidr, MacAddress, empty_is_none};
use super::options::Options;
use crate::protocol::{WireRequest, null_as_default};

/// An endpoint's addresses as dockerd holds them (`api.EndpointInterface`); an empty
/// field (`""` on the wire) is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EndpointInterface {
    /// The IPv4 address with its prefix length (`10.99.0.2/24`), from the IPAM driver.
    #[serde(rename = "Address", default, with = "empty_is_none")]
    pub address: Option<Cidr>,
    /// The IPv6 address with its prefix length.
    #[serde(rename = "AddressIPv6", default, with = "empty_is_none")]
    pub address_ipv6: Option<Cidr>,
    /// The MAC address (`docker run --mac-address`, or one the IPAM driver needed).
    #[serde(rename = "MacAddress", default, with = "empty_is_none")]
    pub mac_address: Option<MacAddress>,
}

impl EndpointInterface {
    /// Starts the reply to CreateEndpoint from what dockerd supplied: the reply can
    /// only fill in the fields dockerd left empty (see [`InterfaceFill`]).
    pub fn fill(&self) -> InterfaceFill {
        InterfaceFill {
            supplied: *self,
            filled: Self::default(),
        }
    }

    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// `/NetworkDriver.CreateEndpoint`: a container is being connected (`docker run
/// --network`, `docker network connect`). dockerd has already asked the IPAM driver for
/// its addresses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateEndpointRequest {
    /// The network's ID.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// The endpoint's ID (64 hex digits).
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// The addresses dockerd already chose (dockerd always sends the object).
    #[serde(rename = "Interface", default, deserialize_with = "null_as_default")]
    pub interface: EndpointInterface,
    /// The endpoint's options: [`Options::exposed_ports`], [`Options::port_map`],
    /// [`Options::mac_address`], [`Options::dns_servers`], `--driver-opt`s.
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: Options,
}

impl WireRequest for CreateEndpointRequest {
    fn subject(&self) -> Option<&str> {
        Some(&self.endpoint_id)
    }
}

/// The reply to CreateEndpoint: the addresses the driver chose where dockerd had none.
///
/// dockerd fails the endpoint, and rolls it back, when the reply sets a field it
/// already had, **even to the same value** ("driver modified interface address";
/// moby v20.10.24 `drivers/remote/driver.go` `CreateEndpoint`). So this reply is built
/// only from the request: [`CreateEndpointResponse::unchanged`], or
/// [`EndpointInterface::fill`], which drops what dockerd supplied.
///
/// ```
/// use docker_plugin_sdk::network::{CreateEndpointRequest, MacAddress};
///
/// let req: CreateEndpointRequest = serde_json::from_str(r#"{
///     "NetworkID": "n1", "EndpointID": "e1",
///     "Interface": {"Address": "10.99.0.2/24", "AddressIPv6": "", "MacAddress": ""},
///     "Options": {}
/// }"#).unwrap();
/// let reply = req
///     .interface
///     .fill()
///     .address("10.99.0.9/24".parse().unwrap()) // dockerd has one: dropped
///     .mac_address(MacAddress::new([2, 0x42, 10, 99, 0, 2])) // dockerd has none: sent
///     .into_response();
/// assert_eq!(
///     serde_json::to_string(&reply).unwrap(),
///     r#"{"Interface":{"Address":"","AddressIPv6":"","MacAddress":"02:42:0a:63:00:02"}}"#
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CreateEndpointResponse {
    #[serde(rename = "Interface", default)]
    interface: Option<EndpointInterface>,
}

impl CreateEndpointResponse {
    /// The reply that keeps dockerd's addresses as they are: `{"Interface": null}`.
    pub fn unchanged() -> Self {
        Self::default()
    }

    /// What the reply sets; `None`: nothing.
    pub fn interface(&self) -> Option<&EndpointInterface> {
        self.interface.as_ref()
    }
}

/// The reply to CreateEndpoint being built from the request's interface: each setter
/// fills its field only when dockerd left it empty, and is ignored otherwise, so a
/// driver may always offer its own address or MAC and never sends back one dockerd
/// chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "turn it into the reply with `into_response`"]
pub struct InterfaceFill {
    supplied: EndpointInterface,
    filled: EndpointInterface,
}

impl InterfaceFill {
    /// The IPv4 address, unless dockerd supplied one.
    pub fn address(mut self, address: Cidr) -> Self {
        if self.supplied.address.is_none() {
            self.filled.address = Some(address);
        }
        self
    }

    /// The IPv6 address, unless dockerd supplied one.
    pub fn address_ipv6(mut self, address: Cidr) -> Self {
        if self.supplied.address_ipv6.is_none() {
            self.filled.address_ipv6 = Some(address);
        }
        self
    }

    /// The MAC address, unless dockerd supplied one.
    pub fn mac_address(mut self, mac: MacAddress) -> Self {
        if self.supplied.mac_address.is_none() {
            self.filled.mac_address = Some(mac);
        }
        self
    }

    /// The addresses dockerd ends up with: its own, and those filled in here.
    pub fn resulting(&self) -> EndpointInterface {
        EndpointInterface {
            address: self.supplied.address.or(self.filled.address),
            address_ipv6: self.supplied.address_ipv6.or(self.filled.address_ipv6),
            mac_address: self.supplied.mac_address.or(self.filled.mac_address),
        }
    }

    /// The reply: the filled fields only (`{"Interface": null}` when none was).
    pub fn into_response(self) -> CreateEndpointResponse {
        CreateEndpointResponse {
            interface: (!self.filled.is_empty()).then_some(self.filled),
        }
    }
}

impl From<InterfaceFill> for CreateEndpointResponse {
    fn from(fill: InterfaceFill) -> Self {
        fill.into_response()
    }
}

/// `/NetworkDriver.DeleteEndpoint`, `/NetworkDriver.EndpointOperInfo`,
/// `/NetworkDriver.Leave` and `/NetworkDriver.RevokeExternalConnectivity`: an
/// endpoint of a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRequest {
    /// The network's ID.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// The endpoint's ID.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
}

impl WireRequest for EndpointRequest {
    fn subject(&self) -> Option<&str> {
        Some(&self.endpoint_id)
    }
}

/// The reply to EndpointOperInfo: free-form details `docker network inspect` could
/// show (dockerd 20.10 ignores them). The default is `{"Value":{}}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EndpointOperInfoResponse {
    /// The details.
    #[serde(rename = "Value", default, deserialize_with = "null_as_default")]
    pub value: Map<String, Value>,
}

/// `/NetworkDriver.Join`: put the endpoint into a container's sandbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The network's ID.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// The endpoint's ID.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// The sandbox's network namespace, a path (`/var/run/docker/netns/<12 hex>`).
    #[serde(rename = "SandboxKey", default, deserialize_with = "null_as_default")]
    pub sandbox_key: String,
    /// The sandbox's labels ([`Options::port_map`], [`Options::exposed_ports`]).
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: Options,
}

impl WireRequest for JoinRequest {
    fn subject(&self) -> Option<&str> {
        Some(&self.endpoint_id)
    }
}

/// The interface dockerd moves into the sandbox: `src_name` must exist in dockerd's
/// network namespace (the host's); dockerd renames it `dst_prefix` and an index
/// (`eth0`) and gives it the endpoint's addresses, MAC and routes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InterfaceName {
    /// The interface's name on the host (one end of a veth pair).
    #[serde(rename = "SrcName", default, deserialize_with = "null_as_default")]
    pub src_name: String,
    /// The name prefix in the container: `eth` gives `eth0`, `eth1`, ….
    #[serde(rename = "DstPrefix", default, deserialize_with = "null_as_default")]
    pub dst_prefix: String,
}

impl InterfaceName {
    /// Move `src_name` into the sandbox as `dst_prefix` and an index.
    ///
    /// ```
    /// use docker_plugin_sdk::network::InterfaceName;
    /// let name = InterfaceName::new("veth1a2b3c", "eth");
    /// assert_eq!(name.dst_prefix, "eth");
    /// ```
    pub fn new(src_name: impl Into<String>, dst_prefix: impl Into<String>) -> Self {
        Self {
            src_name: src_name.into(),
            dst_prefix: dst_prefix.into(),
        }
    }
}

/// How a [`StaticRoute`] reaches its destination (libnetwork's `types.NEXTHOP` and
/// `types.CONNECTED`, sent as `0` and `1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteType {
    /// `0`: through a next hop.
    NextHop,
    /// `1`: directly connected, through the interface.
    Connected,
}

impl Serialize for RouteType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(match self {
            Self::NextHop => 0,
            Self::Connected => 1,
        })
    }
}

impl<'de> Deserialize<'de> for RouteType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match i64::deserialize(deserializer)? {
            0 => Ok(Self::NextHop),
            1 => Ok(Self::Connected),
            other => Err(serde::de::Error::custom(format!(
                "invalid RouteType {other}: expected 0 (next hop) or 1 (connected)"
            ))),
        }
    }
}

/// A route dockerd adds in the container (`api.StaticRoute`).
///
/// ```
/// use docker_plugin_sdk::network::StaticRoute;
/// let route = StaticRoute::via("10.100.0.0/16".parse().unwrap(), "10.99.0.254".parse().unwrap());
/// assert_eq!(
///     serde_json::to_string(&route).unwrap(),
///     r#"{"Destination":"10.100.0.0/16","RouteType":0,"NextHop":"10.99.0.254"}"#
/// );
/// let route = StaticRoute::connected("10.101.0.0/16".parse().unwrap());
/// assert_eq!(
///     serde_json::to_string(&route).unwrap(),
///     r#"{"Destination":"10.101.0.0/16","RouteType":1,"NextHop":""}"#
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticRoute {
    /// Where the route leads.
    #[serde(rename = "Destination")]
    pub destination: Cidr,
    /// How.
    #[serde(rename = "RouteType")]
    pub route_type: RouteType,
    /// The next hop, a plain IP, for [`RouteType::NextHop`].
    #[serde(rename = "NextHop", default, with = "empty_is_none")]
    pub next_hop: Option<IpAddr>,
}

impl StaticRoute {
    /// A route to `destination` through `next_hop`.
    pub fn via(destination: Cidr, next_hop: IpAddr) -> Self {
        Self {
            destination,
            route_type: RouteType::NextHop,
            next_hop: Some(next_hop),
        }
    }

    /// A route to `destination` straight out of the interface.
    pub fn connected(destination: Cidr) -> Self {
        Self {
            destination,
            route_type: RouteType::Connected,
            next_hop: None,
        }
    }
}

/// The reply to Join.
///
/// ```
/// use docker_plugin_sdk::network::{InterfaceName, JoinResponse};
/// let reply = JoinResponse {
///     gateway: Some("10.99.0.1".parse().unwrap()),
///     ..JoinResponse::new(InterfaceName::new("veth1a2b3c", "eth"))
/// };
/// assert_eq!(
///     serde_json::to_string(&reply).unwrap(),
///     r#"{"InterfaceName":{"SrcName":"veth1a2b3c","DstPrefix":"eth"},"Gateway":"10.99.0.1","GatewayIPv6":"","StaticRoutes":[],"DisableGatewayService":false}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JoinResponse {
    /// The interface to move into the sandbox; `None`: none.
    #[serde(rename = "InterfaceName", default)]
    pub interface_name: Option<InterfaceName>,
    /// The IPv4 default gateway, a plain IP (not a CIDR: dockerd parses it with
    /// `net.ParseIP`). Without one, a non-internal network's containers also join
    /// `docker_gwbridge` unless [`disable_gateway_service`](Self::disable_gateway_service).
    #[serde(rename = "Gateway", default, with = "empty_is_none")]
    pub gateway: Option<IpAddr>,
    /// The IPv6 default gateway, a plain IP.
    #[serde(rename = "GatewayIPv6", default, with = "empty_is_none")]
    pub gateway_ipv6: Option<IpAddr>,
    /// More routes.
    #[serde(rename = "StaticRoutes", default, deserialize_with = "null_as_default")]
    pub static_routes: Vec<StaticRoute>,
    /// Do not connect the container to `docker_gwbridge`.
    #[serde(rename = "DisableGatewayService", default)]
    pub disable_gateway_service: bool,
}

impl JoinResponse {
    /// A reply moving `interface` into the sandbox, nothing else set.
    pub fn new(interface: InterfaceName) -> Self {
        Self {
            interface_name: Some(interface),
            ..Self::default()
        }
    }
}

/// `/NetworkDriver.ProgramExternalConnectivity`: after Join, on a network that is not
/// internal and got a gateway: publish the container's ports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramExternalConnectivityRequest {
    /// The network's ID.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// The endpoint's ID.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// The sandbox's labels ([`Options::port_map`], [`Options::exposed_ports`]).
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: Options,
}

impl WireRequest for ProgramExternalConnectivityRequest {
    fn subject(&self) -> Option<&str> {
        Some(&self.endpoint_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supplied(json: &str) -> EndpointInterface {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_fill_never_sends_back_what_dockerd_supplied() {
        let full = supplied(
            r#"{"Address":"10.0.0.2/24","AddressIPv6":"fd00::2/64","MacAddress":"02:42:0a:00:00:02"}"#,
        );
        let reply = full
            .fill()
            .address(full.address.unwrap())
            .address_ipv6(full.address_ipv6.unwrap())
            .mac_address(full.mac_address.unwrap())
            .into_response();
        assert_eq!(reply, CreateEndpointResponse::unchanged());
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"Interface":null}"#
        );
    }

    #[test]
    fn a_fill_sends_only_the_fields_dockerd_left_empty() {
        let partial = supplied(r#"{"Address":"10.0.0.2/24","AddressIPv6":"","MacAddress":""}"#);
        let fill = partial
            .fill()
            .address("10.0.0.3/24".parse().unwrap())
            .address_ipv6("fd00::3/64".parse().unwrap());
        assert_eq!(fill.resulting().address.unwrap().to_string(), "10.0.0.2/24");
        assert_eq!(
            serde_json::to_string(&fill.into_response()).unwrap(),
            r#"{"Interface":{"Address":"","AddressIPv6":"fd00::3/64","MacAddress":""}}"#
        );
    }
}
