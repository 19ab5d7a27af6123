//! The exact JSON of the network-level `NetworkDriver` calls: capabilities, the
//! network's creation and deletion (and their swarm twins), discovery. The endpoint
//! calls are in `endpoint.rs`.
//!
//! Field names and shapes are moby v20.10.24's
//! (`vendor/github.com/docker/libnetwork/drivers/remote/api/api.go`, and
//! `driverapi/ipamdata.go` for [`IpamData`]); `GwAllocChecker` and `GwAllocCheck` are
//! moby 28's (`libnetwork/drivers/remote/api/api.go`), which dockerd 20.10 neither sends
//! nor reads. Maps and lists accept Go's `null`; a CIDR is a [`Cidr`].

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::addr::{Cidr, empty_is_none};
use super::options::Options;
use crate::protocol::{WireRequest, null_as_default};

/// Where a network driver's networks exist: this host, or the whole swarm.
///
/// dockerd compares the text exactly (moby v20.10.24 `drivers/remote/driver.go`
/// `getCapabilities`): `"Local"` unregisters the driver, so this type only ever
/// writes and reads `local` and `global`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Scope {
    /// `local`: this host only.
    #[default]
    #[serde(rename = "local")]
    Local,
    /// `global`: every node of the swarm (needs swarm mode).
    #[serde(rename = "global")]
    Global,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Local => "local",
            Self::Global => "global",
        })
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "local" => Ok(Self::Local),
            "global" => Ok(Self::Global),
            other => Err(format!(
                "invalid capability: expecting 'local' or 'global', got {other}"
            )),
        }
    }
}

/// The reply to `/NetworkDriver.GetCapabilities` (the request has no body).
///
/// ```
/// use docker_plugin_sdk::network::{CapabilitiesResponse, Scope};
/// let caps = CapabilitiesResponse::scope(Scope::Local);
/// assert_eq!(
///     serde_json::to_string(&caps).unwrap(),
///     r#"{"Scope":"local","ConnectivityScope":"","GwAllocChecker":false}"#
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CapabilitiesResponse {
    /// Where the network's data lives. Exactly `local` or `global`: anything else,
    /// an empty or missing value included, and dockerd does not register the driver.
    #[serde(rename = "Scope")]
    pub scope: Scope,
    /// Where its endpoints connect; `None` (`""`): the same as `scope`.
    #[serde(rename = "ConnectivityScope", default, with = "empty_is_none")]
    pub connectivity_scope: Option<Scope>,
    /// Whether dockerd (28.0 and later) should ask [`GwAllocCheck`](super::GwAllocCheck)
    /// before it reserves a gateway address; dockerd 20.10 ignores it.
    #[serde(rename = "GwAllocChecker", default)]
    pub gw_alloc_checker: bool,
}

impl CapabilitiesResponse {
    /// A driver of this scope, its connectivity scope the same, no gateway check.
    pub fn scope(scope: Scope) -> Self {
        Self {
            scope,
            ..Self::default()
        }
    }
}

/// `/NetworkDriver.GwAllocCheck` (dockerd 28.0 and later, only when
/// [`CapabilitiesResponse::gw_alloc_checker`]): may dockerd skip reserving a gateway
/// address for a network created with these options?
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GwAllocCheckRequest {
    /// The options the network is being created with, as in CreateNetwork.
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: Options,
}

impl WireRequest for GwAllocCheckRequest {}

/// The reply to GwAllocCheck.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GwAllocCheckResponse {
    /// Do not reserve an IPv4 gateway address.
    #[serde(rename = "SkipIPv4", default)]
    pub skip_ipv4: bool,
    /// Do not reserve an IPv6 gateway address.
    #[serde(rename = "SkipIPv6", default)]
    pub skip_ipv6: bool,
}

/// One address pool of a network, as the IPAM driver gave it (libnetwork's
/// `driverapi.IPAMData`). Every address is a CIDR, **the gateway and the auxiliary
/// addresses included** (`"Gateway": "10.99.0.1/24"`, not the plain address Docker's
/// documentation shows: moby v20.10.24 `driverapi/ipamdata.go` writes `IPNet.String()`).
/// Its fields are encoded in dockerd's order, `AddressSpace`, `AuxAddresses`,
/// `Gateway`, `Pool` (`MarshalJSON` encodes a map, whose keys Go sorts), as recorded
/// in `tests/fixtures/dockerd-sequences/network_create.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamData {
    /// The IPAM driver's address space (`LocalDefault` for the default IPAM).
    #[serde(rename = "AddressSpace", default, deserialize_with = "null_as_default")]
    pub address_space: String,
    /// The `--aux-address name=IP` reservations, each with the pool's prefix length.
    #[serde(
        rename = "AuxAddresses",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "HashMap::is_empty"
    )]
    pub aux_addresses: HashMap<String, Cidr>,
    /// The gateway, with the pool's prefix length; absent only when dockerd 28+ was
    /// told by GwAllocCheck to skip it.
    #[serde(rename = "Gateway", default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Cidr>,
    /// The pool (`--subnet`).
    #[serde(rename = "Pool")]
    pub pool: Cidr,
}

/// `/NetworkDriver.CreateNetwork` (`docker network create -d DRIVER`).
///
/// ```
/// use docker_plugin_sdk::network::CreateNetworkRequest;
///
/// // As dockerd 20.10 sends it for `--subnet 10.99.0.0/24 -o mtu=1400`.
/// let req: CreateNetworkRequest = serde_json::from_str(r#"{
///     "NetworkID": "4e1c6d2f",
///     "Options": {
///         "com.docker.network.enable_ipv6": false,
///         "com.docker.network.generic": {"mtu": "1400"}
///     },
///     "IPv4Data": [{"AddressSpace": "LocalDefault", "Gateway": "10.99.0.1/24", "Pool": "10.99.0.0/24"}],
///     "IPv6Data": []
/// }"#).unwrap();
/// assert_eq!(req.ipv4_data[0].gateway.unwrap().addr().to_string(), "10.99.0.1");
/// assert_eq!(req.options.generic().unwrap()["mtu"], "1400");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateNetworkRequest {
    /// The network's ID (64 hex digits), the key of every later call about it.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// The network's options: see [`Options::generic`], [`Options::enable_ipv6`],
    /// [`Options::internal`].
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: Options,
    /// Its IPv4 pools (one per `--subnet`).
    #[serde(rename = "IPv4Data", default, deserialize_with = "null_as_default")]
    pub ipv4_data: Vec<IpamData>,
    /// Its IPv6 pools; `[]` without `--ipv6`.
    #[serde(rename = "IPv6Data", default, deserialize_with = "null_as_default")]
    pub ipv6_data: Vec<IpamData>,
}

impl WireRequest for CreateNetworkRequest {
    fn subject(&self) -> Option<&str> {
        Some(&self.network_id)
    }
}

/// `/NetworkDriver.AllocateNetwork`: a swarm manager allocates a `global` network
/// before any node creates it. The options are strings here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocateNetworkRequest {
    /// The network's ID.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// The network's options.
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: HashMap<String, String>,
    /// Its IPv4 pools.
    #[serde(rename = "IPv4Data", default, deserialize_with = "null_as_default")]
    pub ipv4_data: Vec<IpamData>,
    /// Its IPv6 pools.
    #[serde(rename = "IPv6Data", default, deserialize_with = "null_as_default")]
    pub ipv6_data: Vec<IpamData>,
}

impl WireRequest for AllocateNetworkRequest {
    fn subject(&self) -> Option<&str> {
        Some(&self.network_id)
    }
}

/// The reply to AllocateNetwork: options the workers receive in their CreateNetwork.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AllocateNetworkResponse {
    /// Options passed on to every node.
    #[serde(rename = "Options", default, deserialize_with = "null_as_default")]
    pub options: HashMap<String, String>,
}

/// `/NetworkDriver.DeleteNetwork` and `/NetworkDriver.FreeNetwork`: a network by ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRequest {
    /// The network's ID.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
}

impl WireRequest for NetworkRequest {
    fn subject(&self) -> Option<&str> {
        Some(&self.network_id)
    }
}

/// `/NetworkDriver.DiscoverNew` and `/NetworkDriver.DiscoverDelete`: a swarm node
/// came or went. dockerd sends only node discoveries ([`DiscoveryNotification::NODE`])
/// and ignores the reply's error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoveryNotification {
    /// What was discovered; dockerd sends only [`DiscoveryNotification::NODE`].
    #[serde(rename = "DiscoveryType")]
    pub discovery_type: i64,
    /// What it says about it (see [`DiscoveryNotification::node`]).
    #[serde(rename = "DiscoveryData", default)]
    pub discovery_data: Value,
}

impl DiscoveryNotification {
    /// libnetwork's `discoverapi.NodeDiscovery`.
    pub const NODE: i64 = 1;

    /// The node, for a node discovery; `None` for any other kind.
    pub fn node(&self) -> Result<Option<NodeDiscovery>, serde_json::Error> {
        if self.discovery_type != Self::NODE {
            return Ok(None);
        }
        NodeDiscovery::deserialize(&self.discovery_data).map(Some)
    }
}

impl WireRequest for DiscoveryNotification {}

/// A swarm node (libnetwork's `discoverapi.NodeDiscoveryData`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodeDiscovery {
    /// The node's advertised address.
    #[serde(rename = "Address", default, deserialize_with = "null_as_default")]
    pub address: String,
    /// The address it binds.
    #[serde(rename = "BindAddress", default, deserialize_with = "null_as_default")]
    pub bind_address: String,
    /// Whether it is this node.
    #[serde(rename = "Self", default)]
    pub is_self: bool,
}
