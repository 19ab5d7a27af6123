//! The recorder's network and IPAM drivers (`--network`): just enough of a real driver
//! for `docker network create` and `docker run --network` to succeed on a real dockerd,
//! so that every call it makes is recorded.
//!
//! - The network driver keeps each network's gateway (from CreateNetwork's
//!   `IPv4Data`), answers CreateEndpoint with `{"Interface": null}`, and on Join makes
//!   a veth pair in the host's network namespace (`ip link add`: this is a developer
//!   tool, not library code) whose peer it names in `InterfaceName`, with the gateway
//!   when the network has one and is not `--internal`. Leave and DeleteEndpoint delete
//!   the pair. ProgramExternalConnectivity and RevokeExternalConnectivity are left
//!   unimplemented (404), so dockerd's handling of that is recorded too.
//! - The IPAM driver requires MAC addresses (so dockerd's `--mac-address` reaches
//!   RequestAddress), has the address spaces `reclocal` / `recglobal`, hands out
//!   `--subnet` or `10.201.N.0/24`, and addresses in order from `.1`.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::sync::Mutex;

use docker_plugin_sdk::ipam;
use docker_plugin_sdk::network::{self, *};
use docker_plugin_sdk::{Error, Result, async_trait};

/// The recorder's network driver.
#[derive(Default)]
pub(crate) struct RecNetwork {
    /// Network ID → (gateway, internal).
    networks: Mutex<HashMap<String, (Option<IpAddr>, bool)>>,
    /// Endpoint ID → its number, in order of first Join (names do not depend on IDs,
    /// so recordings are the same from run to run).
    endpoints: Mutex<HashMap<String, usize>>,
}

impl RecNetwork {
    /// The two ends of an endpoint's veth pair: the host end, and the one dockerd
    /// moves (`rech<n>`, `recc<n>`).
    fn veth_names(&self, endpoint_id: &str) -> (String, String) {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        let next = endpoints.len();
        let n = *endpoints.entry(endpoint_id.to_owned()).or_insert(next);
        (format!("rech{n}"), format!("recc{n}"))
    }

    fn delete_veth(&self, endpoint_id: &str) {
        let (host, _) = self.veth_names(endpoint_id);
        // Gone already when dockerd deleted the namespace it was moved into.
        let _ = ip(&["link", "del", &host]);
    }
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::new(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

#[async_trait]
impl network::Driver for RecNetwork {
    async fn get_capabilities(&self) -> Result<CapabilitiesResponse> {
        Ok(CapabilitiesResponse::scope(Scope::Local))
    }
    async fn create_network(&self, req: CreateNetworkRequest) -> Result<()> {
        let gateway = req
            .ipv4_data
            .first()
            .and_then(|d| d.gateway)
            .map(|g| g.addr());
        let internal = req.options.internal()?;
        self.networks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(req.network_id, (gateway, internal));
        Ok(())
    }
    async fn delete_network(&self, req: NetworkRequest) -> Result<()> {
        self.networks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&req.network_id);
        Ok(())
    }
    async fn create_endpoint(&self, _req: CreateEndpointRequest) -> Result<CreateEndpointResponse> {
        Ok(CreateEndpointResponse::unchanged())
    }
    async fn delete_endpoint(&self, req: EndpointRequest) -> Result<()> {
        self.delete_veth(&req.endpoint_id);
        Ok(())
    }
    async fn join(&self, req: JoinRequest) -> Result<JoinResponse> {
        let (host, container) = self.veth_names(&req.endpoint_id);
        let _ = ip(&["link", "del", &host]);
        ip(&[
            "link", "add", &host, "type", "veth", "peer", "name", &container,
        ])?;
        ip(&["link", "set", &host, "up"])?;
        let (gateway, internal) = self
            .networks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&req.network_id)
            .copied()
            .unwrap_or((None, false));
        Ok(JoinResponse {
            gateway: gateway.filter(|_| !internal),
            ..JoinResponse::new(InterfaceName::new(container, "eth"))
        })
    }
    async fn leave(&self, req: EndpointRequest) -> Result<()> {
        self.delete_veth(&req.endpoint_id);
        Ok(())
    }
}

/// The recorder's IPAM driver.
#[derive(Default)]
pub(crate) struct RecIpam {
    state: Mutex<IpamState>,
}

#[derive(Default)]
struct IpamState {
    /// Pools handed out without `--subnet`, counting up.
    next_pool: u8,
    /// Pool ID → (pool, addresses taken).
    pools: HashMap<String, (Cidr, BTreeSet<IpAddr>)>,
}

impl RecIpam {
    fn state(&self) -> std::sync::MutexGuard<'_, IpamState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl ipam::Driver for RecIpam {
    async fn get_capabilities(&self) -> Result<ipam::CapabilitiesResponse> {
        Ok(ipam::CapabilitiesResponse {
            requires_mac_address: true,
            requires_request_replay: false,
        })
    }
    async fn get_default_address_spaces(&self) -> Result<ipam::AddressSpacesResponse> {
        Ok(ipam::AddressSpacesResponse {
            local_default_address_space: "reclocal".into(),
            global_default_address_space: "recglobal".into(),
        })
    }
    async fn request_pool(
        &self,
        req: ipam::RequestPoolRequest,
    ) -> Result<ipam::RequestPoolResponse> {
        if req.v6 {
            return Err(Error::new("the recorder's IPAM has no IPv6 pools"));
        }
        let mut state = self.state();
        let pool = match req.pool {
            Some(pool) => pool,
            None => {
                state.next_pool += 1;
                Cidr::new(IpAddr::V4(Ipv4Addr::new(10, 201, state.next_pool, 0)), 24)?
            }
        };
        let id = format!("{}/{pool}", req.address_space);
        state.pools.insert(id.clone(), (pool, BTreeSet::new()));
        Ok(ipam::RequestPoolResponse::new(id, pool))
    }
    async fn release_pool(&self, req: ipam::ReleasePoolRequest) -> Result<()> {
        self.state().pools.remove(&req.pool_id);
        Ok(())
    }
    async fn request_address(
        &self,
        req: ipam::RequestAddressRequest,
    ) -> Result<ipam::RequestAddressResponse> {
        let mut state = self.state();
        let (pool, taken) = state
            .pools
            .get_mut(&req.pool_id)
            .ok_or_else(|| Error::new(format!("no pool {}", req.pool_id)))?;
        let addr = match req.address {
            Some(asked) if taken.contains(&asked) => {
                return Err(Error::new(format!("address {asked} already allocated")));
            }
            Some(asked) => asked,
            None => {
                let IpAddr::V4(base) = pool.network().addr() else {
                    return Err(Error::new("IPv4 only"));
                };
                (1..255u32)
                    .map(|i| IpAddr::V4(Ipv4Addr::from(u32::from(base) + i)))
                    .find(|a| !taken.contains(a))
                    .ok_or_else(|| Error::new("pool full"))?
            }
        };
        taken.insert(addr);
        Ok(ipam::RequestAddressResponse::new(pool.with_addr(addr)?))
    }
    async fn release_address(&self, req: ipam::ReleaseAddressRequest) -> Result<()> {
        if let Some((_, taken)) = self.state().pools.get_mut(&req.pool_id) {
            taken.remove(&req.address);
        }
        Ok(())
    }
}
