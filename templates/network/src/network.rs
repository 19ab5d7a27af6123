//! The network driver: a Linux bridge per network, a veth pair per endpoint.
//!
//! When dockerd calls what (moby v20.10.24 libnetwork): `docker network create`
//! calls CreateNetwork with the pool and gateway the IPAM driver gave; `docker run
//! --network` calls CreateEndpoint (the endpoint is only recorded), then Join (the
//! pair is made and its container end named in the reply: dockerd moves it into the
//! container, renamed `eth0`, with the endpoint's address and a default route through
//! the gateway), then EndpointOperInfo (the SDK's default answers it). The container's
//! end calls Leave and DeleteEndpoint (the pair goes); `docker network rm` calls
//! DeleteNetwork (the bridge goes).
//!
//! Every change is recorded in the state store before the kernel is touched, and
//! forgotten after: the state names every link the plugin may have made.

use std::collections::BTreeMap;
use std::path::PathBuf;

use docker_plugin_sdk::network::{
    self, CapabilitiesResponse, Cidr, CreateEndpointRequest, CreateEndpointResponse,
    CreateNetworkRequest, EndpointRequest, InterfaceName, JoinRequest, JoinResponse,
    NetworkRequest, Scope,
};
use docker_plugin_sdk::state::{StateError, Store};
use docker_plugin_sdk::{DriverOptions, Error, Result, async_trait};
use serde::{Deserialize, Serialize};

use crate::{NetworkOptions, ip};

/// Every network of the plugin, by network ID.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Networks {
    /// Network ID → network.
    pub networks: BTreeMap<String, Network>,
}

/// A network: a bridge carrying its gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// The bridge's name.
    pub bridge: String,
    /// The gateway (address and pool prefix), set on the bridge.
    pub gateway: Option<Cidr>,
    /// `-o mtu`.
    pub mtu: u16,
    /// Endpoint ID → endpoint.
    pub endpoints: BTreeMap<String, Endpoint>,
}

/// An endpoint: a veth pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The host end, a port of the bridge.
    pub host: String,
    /// The end dockerd moves into the container.
    pub container: String,
}

impl Network {
    /// The bridge of network `id`: a prefix and 12 hex digits of the ID, within
    /// Linux's 15 characters.
    pub fn bridge_name(id: &str) -> String {
        format!("br-{}", &id[..id.len().min(12)])
    }
}

impl Endpoint {
    /// The pair of endpoint `id`.
    pub fn new(id: &str) -> Self {
        let short = &id[..id.len().min(12)];
        Self {
            host: format!("vh-{short}"),
            container: format!("vc-{short}"),
        }
    }
}

/// Networks as Linux bridges, kept in a state file.
pub struct Bridges {
    state: Store<Networks>,
}

impl Bridges {
    /// The driver, with the networks recorded in `path` (created if missing); fails
    /// when another process holds it, or it does not parse.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self, StateError> {
        Ok(Self {
            state: Store::open(path).await?,
        })
    }

    /// Network `id` and its endpoint `endpoint`, as recorded.
    fn endpoint(&self, id: &str, endpoint: &str) -> Result<(Network, Endpoint)> {
        self.state
            .read(|s| {
                let network = s.networks.get(id)?;
                Some((network.clone(), network.endpoints.get(endpoint)?.clone()))
            })
            .ok_or_else(|| Error::new(format!("endpoint {endpoint} of network {id} is unknown")))
    }
}

#[async_trait]
impl network::Driver for Bridges {
    async fn get_capabilities(&self) -> Result<CapabilitiesResponse> {
        // Local: the networks exist on this host only.
        Ok(CapabilitiesResponse::scope(Scope::Local))
    }

    async fn create_network(&self, req: CreateNetworkRequest) -> Result<()> {
        // Unknown or bad `-o` options are refused, all in one message, before
        // anything is made.
        let options = NetworkOptions::from_map(&req.options.generic()?)?;
        let network = Network {
            bridge: Network::bridge_name(&req.network_id),
            gateway: req.ipv4_data.first().and_then(|data| data.gateway),
            mtu: options.mtu,
            endpoints: BTreeMap::new(),
        };
        let id = req.network_id.clone();
        let network = self
            .state
            .update(|s| s.networks.entry(id).or_insert(network).clone())
            .await?;
        if let Err(err) = ip::bridge(&network.bridge, network.gateway, network.mtu).await {
            // dockerd releases the pool: leave nothing behind either.
            self.delete_network(NetworkRequest {
                network_id: req.network_id,
            })
            .await?;
            return Err(err);
        }
        Ok(())
    }

    async fn delete_network(&self, req: NetworkRequest) -> Result<()> {
        let Some(network) = self
            .state
            .read(|s| s.networks.get(&req.network_id).cloned())
        else {
            return Ok(()); // already deleted
        };
        for endpoint in network.endpoints.values() {
            ip::delete(&endpoint.host).await?;
        }
        ip::delete(&network.bridge).await?;
        self.state
            .update(|s| s.networks.remove(&req.network_id))
            .await?;
        Ok(())
    }

    async fn create_endpoint(&self, req: CreateEndpointRequest) -> Result<CreateEndpointResponse> {
        let endpoint = Endpoint::new(&req.endpoint_id);
        let (id, endpoint_id) = (&req.network_id, &req.endpoint_id);
        let known = self
            .state
            .update(|s| {
                let network = s.networks.get_mut(id)?;
                network.endpoints.insert(endpoint_id.clone(), endpoint);
                Some(())
            })
            .await?;
        if known.is_none() {
            return Err(Error::new(format!("network {id} is unknown")));
        }
        // The address and MAC dockerd chose are kept: nothing to send back.
        Ok(CreateEndpointResponse::unchanged())
    }

    async fn delete_endpoint(&self, req: EndpointRequest) -> Result<()> {
        let Ok((_, endpoint)) = self.endpoint(&req.network_id, &req.endpoint_id) else {
            return Ok(()); // already deleted
        };
        // Deleting one end deletes the pair.
        ip::delete(&endpoint.host).await?;
        ip::delete(&endpoint.container).await?;
        self.state
            .update(|s| {
                if let Some(network) = s.networks.get_mut(&req.network_id) {
                    network.endpoints.remove(&req.endpoint_id);
                }
            })
            .await?;
        Ok(())
    }

    async fn join(&self, req: JoinRequest) -> Result<JoinResponse> {
        let (network, endpoint) = self.endpoint(&req.network_id, &req.endpoint_id)?;
        ip::veth(
            &endpoint.host,
            &endpoint.container,
            &network.bridge,
            network.mtu,
        )
        .await?;
        // dockerd moves `container` in as `eth0`, `eth1`, … with the endpoint's
        // address, and makes the gateway the default route.
        Ok(JoinResponse {
            gateway: network.gateway.map(|gateway| gateway.addr()),
            ..JoinResponse::new(InterfaceName::new(endpoint.container, "eth"))
        })
    }

    async fn leave(&self, _req: EndpointRequest) -> Result<()> {
        // The pair goes in DeleteEndpoint (or with the container's namespace).
        Ok(())
    }
}
