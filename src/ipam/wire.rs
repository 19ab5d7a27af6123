//! The exact JSON of the `IpamDriver` protocol (moby v20.10.24
//! `vendor/github.com/docker/libnetwork/ipams/remote/api/api.go`, called by
//! `ipams/remote/remote.go`). Requests carry plain IPs (`"Address": "10.99.0.7"`) and
//! CIDRs the user typed (`--subnet`, `--ip-range`); replies carry CIDRs: the prefix
//! length of an address becomes the interface's. A failed call's reply carries its
//! message in `Error`, not `Err` (see [`crate::ipam`]).

use std::collections::HashMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::network::{AddressError, Cidr, MAC_ADDRESS, MacAddress};
use crate::protocol::{WireRequest, go_map, null_as_default};

// `Cidr`'s "" rule, shared with the network types.
use crate::network::empty_is_none;

/// The option key of RequestAddress that says what the address is for
/// (libnetwork's `ipamapi.RequestAddressType`).
pub const REQUEST_ADDRESS_TYPE: &str = "RequestAddressType";
/// The value of [`REQUEST_ADDRESS_TYPE`] for a network's gateway, and the key of
/// [`RequestPoolResponse::data`] under which a pool may name its gateway
/// (libnetwork's `netlabel.Gateway`).
pub const GATEWAY: &str = "com.docker.network.gateway";

/// The reply to `/IpamDriver.GetCapabilities` (the request has no body).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CapabilitiesResponse {
    /// Send each endpoint's MAC address with its RequestAddress (dockerd makes one up
    /// when the container has none).
    #[serde(rename = "RequiresMACAddress", default)]
    pub requires_mac_address: bool,
    /// Replay every RequestPool and RequestAddress at each daemon start (the driver
    /// keeps no state of its own); `false`: the driver persists its allocations.
    #[serde(rename = "RequiresRequestReplay", default)]
    pub requires_request_replay: bool,
}

/// The reply to `/IpamDriver.GetDefaultAddressSpaces` (the request has no body).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AddressSpacesResponse {
    /// The address space of local networks.
    #[serde(
        rename = "LocalDefaultAddressSpace",
        default,
        deserialize_with = "null_as_default"
    )]
    pub local_default_address_space: String,
    /// The address space of swarm-wide networks.
    #[serde(
        rename = "GlobalDefaultAddressSpace",
        default,
        deserialize_with = "null_as_default"
    )]
    pub global_default_address_space: String,
}

/// `/IpamDriver.RequestPool`: a pool for a network being created.
///
/// ```
/// use docker_plugin_sdk::ipam::RequestPoolRequest;
/// // `docker network create --ipam-driver I --subnet 10.99.0.0/24 net1`
/// let req: RequestPoolRequest = serde_json::from_str(
///     r#"{"AddressSpace":"local","Pool":"10.99.0.0/24","SubPool":"","Options":null,"V6":false}"#,
/// ).unwrap();
/// assert_eq!(req.pool.unwrap().to_string(), "10.99.0.0/24");
/// assert!(req.sub_pool.is_none() && req.options.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestPoolRequest {
    /// One of the address spaces of GetDefaultAddressSpaces.
    #[serde(rename = "AddressSpace", default, deserialize_with = "null_as_default")]
    pub address_space: String,
    /// The pool asked for (`--subnet`); `None`: the driver chooses.
    #[serde(rename = "Pool", default, with = "empty_is_none")]
    pub pool: Option<Cidr>,
    /// The part of it to allocate from (`--ip-range`).
    #[serde(rename = "SubPool", default, with = "empty_is_none")]
    pub sub_pool: Option<Cidr>,
    /// The `--ipam-opt key=value` options.
    #[serde(
        rename = "Options",
        default,
        deserialize_with = "null_as_default",
        serialize_with = "always_map"
    )]
    pub options: HashMap<String, String>,
    /// Whether an IPv6 pool is asked for.
    #[serde(rename = "V6", default)]
    pub v6: bool,
}

impl WireRequest for RequestPoolRequest {}

/// The reply to RequestPool.
///
/// ```
/// use docker_plugin_sdk::ipam::RequestPoolResponse;
/// let reply = RequestPoolResponse::new("pool-1", "10.99.0.0/24".parse().unwrap());
/// assert_eq!(
///     serde_json::to_string(&reply).unwrap(),
///     r#"{"PoolID":"pool-1","Pool":"10.99.0.0/24"}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestPoolResponse {
    /// The pool's ID, the key of every later call about it; the same pool must keep
    /// the same ID.
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    /// The pool. When dockerd let the driver choose (`Pool: ""`) on a local network,
    /// it asks again while the pool overlaps a route of the host: answer another pool
    /// or an error then, never the same one.
    #[serde(rename = "Pool")]
    pub pool: Cidr,
    /// Details; [`GATEWAY`] names the network's gateway (a CIDR), and dockerd then
    /// asks for no gateway address unless the user gave `--gateway`.
    #[serde(
        rename = "Data",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "HashMap::is_empty"
    )]
    pub data: HashMap<String, String>,
}

impl RequestPoolResponse {
    /// The pool `pool` under the ID `pool_id`.
    pub fn new(pool_id: impl Into<String>, pool: Cidr) -> Self {
        Self {
            pool_id: pool_id.into(),
            pool,
            data: HashMap::new(),
        }
    }

    /// The pool's gateway, given here rather than through a gateway RequestAddress.
    ///
    /// ```
    /// use docker_plugin_sdk::ipam::{RequestPoolResponse, GATEWAY};
    /// let reply = RequestPoolResponse::new("p", "10.99.0.0/24".parse().unwrap())
    ///     .gateway("10.99.0.1/24".parse().unwrap());
    /// assert_eq!(reply.data[GATEWAY], "10.99.0.1/24");
    /// ```
    pub fn gateway(mut self, gateway: Cidr) -> Self {
        self.data.insert(GATEWAY.to_owned(), gateway.to_string());
        self
    }
}

/// `/IpamDriver.ReleasePool`: the network is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasePoolRequest {
    /// The pool's ID.
    #[serde(rename = "PoolID")]
    pub pool_id: String,
}

impl WireRequest for ReleasePoolRequest {
    fn subject(&self) -> Option<&str> {
        Some(&self.pool_id)
    }
}

/// `/IpamDriver.RequestAddress`: an address for a network's gateway or an endpoint.
///
/// ```
/// use docker_plugin_sdk::ipam::RequestAddressRequest;
/// let gateway: RequestAddressRequest = serde_json::from_str(
///     r#"{"PoolID":"p","Address":"","Options":{"RequestAddressType":"com.docker.network.gateway"}}"#,
/// ).unwrap();
/// assert!(gateway.is_gateway() && gateway.address.is_none());
/// let endpoint: RequestAddressRequest =
///     serde_json::from_str(r#"{"PoolID":"p","Address":"10.99.0.7","Options":null}"#).unwrap();
/// assert!(!endpoint.is_gateway());
/// assert_eq!(endpoint.address.unwrap().to_string(), "10.99.0.7");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestAddressRequest {
    /// The pool's ID.
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    /// The address asked for (`--gateway`, `--ip`), a plain IP; `None`: any free one.
    #[serde(rename = "Address", default, with = "empty_is_none")]
    pub address: Option<IpAddr>,
    /// [`REQUEST_ADDRESS_TYPE`] for a gateway; the endpoint's MAC address (colon-hex,
    /// see [`RequestAddressRequest::mac_address`]) when the driver requires it;
    /// `null` otherwise.
    #[serde(
        rename = "Options",
        default,
        deserialize_with = "null_as_default",
        serialize_with = "go_map"
    )]
    pub options: HashMap<String, String>,
}

impl RequestAddressRequest {
    /// Whether this is the network's gateway (`RequestAddressType` is
    /// `com.docker.network.gateway`).
    pub fn is_gateway(&self) -> bool {
        self.options.get(REQUEST_ADDRESS_TYPE).map(String::as_str) == Some(GATEWAY)
    }

    /// The endpoint's MAC address, sent when the driver's capabilities ask for it
    /// (as text here, `02:42:…`, not base64 as in network options).
    pub fn mac_address(&self) -> Result<Option<MacAddress>, AddressError> {
        self.options
            .get(MAC_ADDRESS)
            .map(|text| text.parse())
            .transpose()
    }
}

impl WireRequest for RequestAddressRequest {
    fn subject(&self) -> Option<&str> {
        Some(&self.pool_id)
    }
}

/// The reply to RequestAddress.
///
/// ```
/// use docker_plugin_sdk::ipam::RequestAddressResponse;
/// let reply = RequestAddressResponse::new("10.99.0.2/24".parse().unwrap());
/// assert_eq!(serde_json::to_string(&reply).unwrap(), r#"{"Address":"10.99.0.2/24"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestAddressResponse {
    /// The address with the prefix length the interface gets (usually the pool's:
    /// [`Cidr::with_addr`]).
    #[serde(rename = "Address")]
    pub address: Cidr,
    /// Details (dockerd keeps them, uses none).
    #[serde(
        rename = "Data",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "HashMap::is_empty"
    )]
    pub data: HashMap<String, String>,
}

impl RequestAddressResponse {
    /// The address `address`.
    pub fn new(address: Cidr) -> Self {
        Self {
            address,
            data: HashMap::new(),
        }
    }
}

/// `/IpamDriver.ReleaseAddress`: the endpoint or the network no longer uses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseAddressRequest {
    /// The pool's ID.
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    /// The address, a plain IP.
    #[serde(rename = "Address")]
    pub address: IpAddr,
}

impl WireRequest for ReleaseAddressRequest {
    fn subject(&self) -> Option<&str> {
        Some(&self.pool_id)
    }
}

/// RequestPool's `Options` as dockerd sends them from `docker network create`: a map,
/// `{}` when empty (libnetwork keeps the API's non-nil map; recorded in
/// `tests/fixtures/dockerd-sequences/network_create_ipam.json`), keys sorted as Go's.
fn always_map<S: serde::Serializer>(
    map: &HashMap<String, String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    map.iter()
        .collect::<std::collections::BTreeMap<_, _>>()
        .serialize(serializer)
}
