//! Network plugins (`NetworkDriver`): the trait a driver implements, its wire types and
//! its declared methods.
//!
//! dockerd calls a network driver for `docker network create -d DRIVER` / `rm`, and for
//! every container connected to one of its networks. Implement [`Driver`] and register
//! it with [`Plugin::network`](crate::Plugin::network); an IPAM driver
//! ([`crate::ipam`]) may live in the same process.
//!
//! ```no_run
//! use docker_plugin_sdk::network::{self, *};
//! use docker_plugin_sdk::{async_trait, Plugin, Result};
//!
//! struct Null;
//!
//! #[async_trait]
//! impl network::Driver for Null {
//!     async fn get_capabilities(&self) -> Result<CapabilitiesResponse> {
//!         Ok(CapabilitiesResponse::scope(Scope::Local))
//!     }
//!     async fn create_network(&self, req: CreateNetworkRequest) -> Result<()> {
//!         let opts = req.options.generic()?; // the `-o key=value` options
//!         println!("network {} created with {opts:?}", req.network_id);
//!         Ok(())
//!     }
//!     async fn delete_network(&self, _req: NetworkRequest) -> Result<()> { Ok(()) }
//!     async fn create_endpoint(&self, req: CreateEndpointRequest) -> Result<CreateEndpointResponse> {
//!         // Keep the addresses dockerd chose: never echo them back.
//!         Ok(CreateEndpointResponse::unchanged())
//!     }
//!     async fn delete_endpoint(&self, _req: EndpointRequest) -> Result<()> { Ok(()) }
//!     async fn join(&self, _req: JoinRequest) -> Result<JoinResponse> {
//!         Ok(JoinResponse::default()) // no interface: the container gets none
//!     }
//!     async fn leave(&self, _req: EndpointRequest) -> Result<()> { Ok(()) }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     Plugin::new().network(Null).serve_unix("nullnet").await?;
//!     Ok(())
//! }
//! ```
//!
//! How dockerd drives a network driver (moby v20.10.24 libnetwork, seen on dockerd
//! 20.10; `shared/protocol.md` section 5): it registers the driver only if
//! GetCapabilities answers a `Scope` of exactly `local` or `global`. `docker network
//! create` asks the IPAM driver for a pool and a gateway, then calls CreateNetwork;
//! `docker run --network` asks the IPAM driver for an address, then calls
//! CreateEndpoint, Join, ProgramExternalConnectivity and EndpointOperInfo; the
//! container's end calls RevokeExternalConnectivity, Leave and DeleteEndpoint;
//! `docker network rm` calls DeleteNetwork. AllocateNetwork, FreeNetwork and
//! Discover* come only from swarm mode.
//!
//! The wire is moby v20.10.24's, which differs from Docker's documentation and
//! `shared/protocol.md` in places, moby winning: see [`IpamData`] (CIDRs everywhere)
//! and [`CreateEndpointResponse`] (no echo).

mod addr;
mod driver;
mod endpoint;
mod options;
mod wire;

pub(crate) use addr::empty_is_none;
pub use addr::{AddressError, Cidr, MacAddress};
pub use driver::Driver;
pub(crate) use driver::subsystem;
pub use endpoint::*;
pub use options::{
    DNS_SERVERS, ENABLE_IPV6, EXPOSED_PORTS, GENERIC, INTERNAL, MAC_ADDRESS, OptionError, Options,
    PORT_MAP, PortBinding, Protocol, TransportPort,
};
pub use wire::*;

use crate::protocol::{
    DEFAULT_BODY_LIMIT, Empty, RequestBody, SubsystemSpec, declare_method, method_list,
};

// The methods, each declared once. dockerd calls network drivers through
// `pkg/plugins`' `Client.Call`, without a deadline of its own (moby v20.10.24
// `libnetwork/drivers/remote/driver.go`): a legacy plugin is waited for as long as it
// takes, a managed one for its `docker plugin enable --timeout` (30 s by default).
// Only Program/RevokeExternalConnectivity take a 404 as "not implemented".

/// The value of `Implements` for network drivers.
pub const IMPLEMENTS: &str = "NetworkDriver";

/// The network subsystem as dockerd knows it.
pub const SUBSYSTEM: SubsystemSpec = SubsystemSpec {
    implements: IMPLEMENTS,
    body_limit: DEFAULT_BODY_LIMIT,
    call_timeout: None,
    methods: METHODS,
};

/// Declares a method of `NetworkDriver`.
macro_rules! network_method {
    ($($tokens:tt)*) => {
        declare_method!("NetworkDriver", $($tokens)*);
    };
}

network_method!(
    /// `/NetworkDriver.GetCapabilities`, mandatory: dockerd calls it once, with no
    /// body, when the plugin appears, and does not register a driver that fails it.
    GetCapabilities,
    Empty,
    CapabilitiesResponse,
    const REQUEST_BODY: RequestBody = RequestBody::Empty;
);
network_method!(
    /// `/NetworkDriver.GwAllocCheck` (dockerd 28.0 and later, when advertised).
    GwAllocCheck,
    GwAllocCheckRequest,
    GwAllocCheckResponse
);
network_method!(
    /// `/NetworkDriver.CreateNetwork`: reply `{}`.
    CreateNetwork,
    CreateNetworkRequest,
    Empty
);
network_method!(
    /// `/NetworkDriver.AllocateNetwork` (swarm managers only).
    AllocateNetwork,
    AllocateNetworkRequest,
    AllocateNetworkResponse
);
network_method!(
    /// `/NetworkDriver.DeleteNetwork`: reply `{}`; dockerd only logs an error.
    DeleteNetwork,
    NetworkRequest,
    Empty
);
network_method!(
    /// `/NetworkDriver.FreeNetwork` (swarm managers only): reply `{}`.
    FreeNetwork,
    NetworkRequest,
    Empty
);
network_method!(
    /// `/NetworkDriver.CreateEndpoint`.
    CreateEndpoint,
    CreateEndpointRequest,
    CreateEndpointResponse
);
network_method!(
    /// `/NetworkDriver.EndpointOperInfo`, after Join. On dockerd 20.10 any error, a 404
    /// included, fails `docker run` ("Updating join info failed").
    EndpointOperInfo,
    EndpointRequest,
    EndpointOperInfoResponse
);
network_method!(
    /// `/NetworkDriver.DeleteEndpoint`: reply `{}`.
    DeleteEndpoint,
    EndpointRequest,
    Empty
);
network_method!(
    /// `/NetworkDriver.Join`.
    Join,
    JoinRequest,
    JoinResponse
);
network_method!(
    /// `/NetworkDriver.Leave`: reply `{}`.
    Leave,
    EndpointRequest,
    Empty
);
network_method!(
    /// `/NetworkDriver.DiscoverNew` (swarm only; dockerd ignores the reply's error).
    DiscoverNew,
    DiscoveryNotification,
    Empty
);
network_method!(
    /// `/NetworkDriver.DiscoverDelete` (swarm only; dockerd ignores the reply's error).
    DiscoverDelete,
    DiscoveryNotification,
    Empty
);
network_method!(
    /// `/NetworkDriver.ProgramExternalConnectivity`, optional: dockerd takes a 404 as
    /// "nothing to program" (moby v20.10.24 `drivers/remote/driver.go`).
    ProgramExternalConnectivity,
    ProgramExternalConnectivityRequest,
    Empty,
    const OPTIONAL: bool = true;
);
network_method!(
    /// `/NetworkDriver.RevokeExternalConnectivity`, optional like
    /// [`ProgramExternalConnectivity`].
    RevokeExternalConnectivity,
    EndpointRequest,
    Empty,
    const OPTIONAL: bool = true;
);

method_list!(
    GetCapabilities,
    GwAllocCheck,
    CreateNetwork,
    AllocateNetwork,
    DeleteNetwork,
    FreeNetwork,
    CreateEndpoint,
    EndpointOperInfo,
    DeleteEndpoint,
    Join,
    Leave,
    DiscoverNew,
    DiscoverDelete,
    ProgramExternalConnectivity,
    RevokeExternalConnectivity,
);
