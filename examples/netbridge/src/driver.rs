//! The network driver: a Linux bridge per network with the gateways on it, a veth
//! pair per endpoint, the container's end handed to dockerd through Join's
//! `InterfaceName`. Each change is recorded in the state store before the kernel is
//! touched (see `state.rs`), so [`Bridges::start`] can finish whatever a stopped
//! plugin left under way.
//!
//! When what happens (moby v20.10.24 `vendor/github.com/docker/libnetwork`,
//! `endpoint.go` and `sandbox.go`): CreateEndpoint only records the endpoint; Join
//! creates the pair, and dockerd moves the peer into the container, renamed `eth0`,
//! with the endpoint's address, MAC and routes. When the container stops its network
//! namespace goes, and the pair with it; on `docker network disconnect` dockerd moves
//! the peer back before DeleteEndpoint, which deletes the pair. Leave has nothing to
//! undo.

use docker_plugin_sdk::network::{
    self, CapabilitiesResponse, Cidr, CreateEndpointRequest, CreateEndpointResponse,
    CreateNetworkRequest, EndpointOperInfoResponse, EndpointRequest, InterfaceName, JoinRequest,
    JoinResponse, NetworkRequest, Scope,
};
use docker_plugin_sdk::state::Store;
use docker_plugin_sdk::{Error, Result, async_trait};
use serde_json::json;

use crate::links::Links;
use crate::state::{
    Action, Endpoint, Network, Networks, bridge_name, mac_from_ip, peer_name, plan,
    routes_to_other_pools, veth_name,
};

/// Networks as Linux bridges.
pub struct Bridges {
    links: Links,
    state: Store<Networks>,
}

impl Bridges {
    /// The driver, once the links match `state`: interrupted deletions finished,
    /// missing bridges recreated, veths reattached. A step that fails is logged and
    /// left for the next start; the others still run.
    pub async fn start(links: Links, state: Store<Networks>) -> Result<Self> {
        let driver = Self { links, state };
        let seen = driver
            .links
            .observe(&driver.state.read(Networks::link_names))
            .await?;
        for action in plan(&driver.state.get(), &seen) {
            if let Err(err) = driver.apply(&action).await {
                tracing::warn!("reconciling {action:?}: {}", err.message());
            }
        }
        Ok(driver)
    }

    async fn apply(&self, action: &Action) -> Result<()> {
        match action {
            Action::EnsureBridge { bridge, gateways } => {
                self.links.ensure_bridge(bridge, gateways).await?
            }
            Action::Attach { veth, bridge } => self.links.attach(veth, bridge).await?,
            Action::Delete(name) => {
                self.links.delete(name).await?;
            }
            Action::ForgetEndpoint { network, endpoint } => {
                self.state
                    .update(|s| {
                        if let Some(n) = s.networks.get_mut(network) {
                            n.endpoints.remove(endpoint);
                        }
                    })
                    .await?
            }
            Action::ForgetNetwork(network) => {
                self.state.update(|s| s.networks.remove(network)).await?;
            }
        }
        Ok(())
    }

    /// The network and endpoint of a request.
    fn endpoint(&self, network_id: &str, endpoint_id: &str) -> Result<(Network, Endpoint)> {
        self.state
            .read(|s| {
                let network = s.networks.get(network_id)?;
                let endpoint = network.endpoints.get(endpoint_id)?;
                Some((network.clone(), endpoint.clone()))
            })
            .ok_or_else(|| {
                Error::new(format!(
                    "endpoint {endpoint_id} of network {network_id} is unknown to netbridge (was its state file removed?)"
                ))
            })
    }
}

#[async_trait]
impl network::Driver for Bridges {
    async fn get_capabilities(&self) -> Result<CapabilitiesResponse> {
        Ok(CapabilitiesResponse::scope(Scope::Local))
    }

    async fn create_network(&self, req: CreateNetworkRequest) -> Result<()> {
        if let Some(key) = req.options.generic()?.keys().next() {
            return Err(Error::new(format!(
                "netbridge takes no -o options, got `{key}`: remove it"
            )));
        }
        let data = req.ipv4_data.iter().chain(&req.ipv6_data);
        let network = Network {
            bridge: bridge_name(&req.network_id),
            gateways: data.clone().filter_map(|d| d.gateway).collect(),
            pools: data.map(|d| d.pool).collect(),
            internal: req.options.internal()?,
            deleting: false,
            endpoints: Default::default(),
        };
        let (bridge, gateways) = (network.bridge.clone(), network.gateways.clone());
        // Recorded first: a bridge is never made that the state does not name.
        let id = req.network_id.clone();
        self.state
            .update(|s| s.networks.entry(id).or_insert(network).clone())
            .await?;
        if let Err(err) = self.links.ensure_bridge(&bridge, &gateways).await {
            self.delete_network(NetworkRequest {
                network_id: req.network_id,
            })
            .await?;
            return Err(err.into());
        }
        Ok(())
    }

    async fn delete_network(&self, req: NetworkRequest) -> Result<()> {
        let id = &req.network_id;
        let marked = self
            .state
            .update(|s| {
                s.networks.get_mut(id).map(|n| {
                    n.deleting = true;
                    n.clone()
                })
            })
            .await?;
        let Some(network) = marked else {
            return Ok(()); // already deleted
        };
        for endpoint in network.endpoints.values() {
            self.links.delete(&endpoint.veth).await?;
        }
        self.links.delete(&network.bridge).await?;
        self.state.update(|s| s.networks.remove(id)).await?;
        Ok(())
    }

    async fn create_endpoint(&self, req: CreateEndpointRequest) -> Result<CreateEndpointResponse> {
        // A MAC made from the IPv4 address when dockerd has none, as libnetwork's
        // bridge does; `fill` never sends back one dockerd chose.
        let iface = req.interface;
        let ipv4 = iface.address.and_then(|a| match a.addr() {
            std::net::IpAddr::V4(v4) => Some(v4),
            std::net::IpAddr::V6(_) => None,
        });
        let mut fill = iface.fill();
        if let Some(ip) = ipv4 {
            fill = fill.mac_address(mac_from_ip(ip));
        }
        let endpoint = Endpoint {
            veth: veth_name(&req.endpoint_id),
            peer: peer_name(&req.endpoint_id),
            addresses: iface
                .address
                .into_iter()
                .chain(iface.address_ipv6)
                .collect(),
            mac: fill.resulting().mac_address,
            deleting: false,
        };
        let (network_id, endpoint_id) = (&req.network_id, &req.endpoint_id);
        let known = self
            .state
            .update(|s| {
                s.networks
                    .get_mut(network_id)
                    .map(|n| n.endpoints.insert(endpoint_id.clone(), endpoint))
                    .is_some()
            })
            .await?;
        if !known {
            return Err(Error::new(format!(
                "network {network_id} is unknown to netbridge (was its state file removed?)"
            )));
        }
        Ok(fill.into_response())
    }

    async fn endpoint_oper_info(&self, req: EndpointRequest) -> Result<EndpointOperInfoResponse> {
        let mut info = EndpointOperInfoResponse::default();
        if let Ok((network, endpoint)) = self.endpoint(&req.network_id, &req.endpoint_id) {
            info.value.insert("bridge".into(), json!(network.bridge));
            info.value.insert("veth".into(), json!(endpoint.veth));
        }
        Ok(info)
    }

    async fn delete_endpoint(&self, req: EndpointRequest) -> Result<()> {
        let (network_id, endpoint_id) = (&req.network_id, &req.endpoint_id);
        let marked = self
            .state
            .update(|s| {
                let endpoint = s
                    .networks
                    .get_mut(network_id)?
                    .endpoints
                    .get_mut(endpoint_id)?;
                endpoint.deleting = true;
                Some(endpoint.clone())
            })
            .await?;
        let Some(endpoint) = marked else {
            return Ok(()); // already deleted
        };
        self.links.delete(&endpoint.veth).await?;
        self.links.delete(&endpoint.peer).await?;
        self.state
            .update(|s| {
                if let Some(n) = s.networks.get_mut(network_id) {
                    n.endpoints.remove(endpoint_id);
                }
            })
            .await?;
        Ok(())
    }

    async fn join(&self, req: JoinRequest) -> Result<JoinResponse> {
        let (network, endpoint) = self.endpoint(&req.network_id, &req.endpoint_id)?;
        self.links
            .create_veth(
                &endpoint.veth,
                &endpoint.peer,
                &network.bridge,
                endpoint.mac,
            )
            .await?;
        let gateway = |v6: bool| {
            let gateway = network.gateways.iter().find(|g| g.is_ipv6() == v6);
            gateway.filter(|_| !network.internal).map(Cidr::addr)
        };
        Ok(JoinResponse {
            gateway: gateway(false),
            gateway_ipv6: gateway(true),
            static_routes: routes_to_other_pools(&network, &endpoint),
            ..JoinResponse::new(InterfaceName::new(endpoint.peer, "eth"))
        })
    }

    async fn leave(&self, _req: EndpointRequest) -> Result<()> {
        // The pair goes with the container's namespace, or in DeleteEndpoint.
        Ok(())
    }
}
