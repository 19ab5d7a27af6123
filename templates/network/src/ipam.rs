//! The IPAM driver: each network's subnet, and the addresses given out in it.
//!
//! When dockerd calls what (moby v20.10.24 libnetwork): `docker network create
//! --ipam-driver {{project-name}} --subnet S` calls RequestPool, then RequestAddress
//! for the gateway (`--gateway`, or the first free address); `docker run --network`
//! calls RequestAddress (`--ip`, or the first free address) before CreateEndpoint,
//! and ReleaseAddress after DeleteEndpoint; `docker network rm` releases the gateway,
//! then the pool.
//!
//! Each call is one change of the allocations, saved before dockerd gets its answer:
//! a restarted plugin never hands out an address twice.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use docker_plugin_sdk::ipam::{
    self, AddressSpacesResponse, CapabilitiesResponse, Cidr, ReleaseAddressRequest,
    ReleasePoolRequest, RequestAddressRequest, RequestAddressResponse, RequestPoolRequest,
    RequestPoolResponse,
};
use docker_plugin_sdk::state::{StateError, Store};
use docker_plugin_sdk::{Error, Result, async_trait};
use serde::{Deserialize, Serialize};

/// The pools handed out, by pool ID (the subnet), with their addresses in use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocations {
    /// Pool ID → the addresses given out in it.
    pub pools: BTreeMap<String, BTreeSet<Ipv4Addr>>,
}

impl Allocations {
    /// `ip` in `pool`: the one asked for if it is free, else the first free one.
    fn allocate(&mut self, pool: Cidr, asked: Option<IpAddr>) -> Result<Ipv4Addr> {
        let used = self
            .pools
            .get_mut(&pool.to_string())
            .ok_or_else(|| Error::new(format!("no pool {pool}: was the network removed?")))?;
        let (first, last) = hosts(pool)?;
        let ip = match asked {
            Some(IpAddr::V4(ip)) if (first..=last).contains(&u32::from(ip)) => ip,
            Some(ip) => return Err(Error::new(format!("address {ip} is not in pool {pool}"))),
            None => (first..=last)
                .map(Ipv4Addr::from)
                .find(|ip| !used.contains(ip))
                .ok_or_else(|| Error::new(format!("no free address left in pool {pool}")))?,
        };
        if !used.insert(ip) {
            return Err(Error::new(format!("address {ip} is already in use")));
        }
        Ok(ip)
    }
}

/// The first and last host addresses of an IPv4 pool (its network and broadcast
/// addresses left out).
fn hosts(pool: Cidr) -> Result<(u32, u32)> {
    let IpAddr::V4(network) = pool.network().addr() else {
        return Err(Error::new(format!("{pool} is not IPv4")));
    };
    let size = 1u64 << (32 - u32::from(pool.prefix_len()));
    if size < 4 {
        return Err(Error::new(format!(
            "pool {pool} is too small: give a subnet of /30 or larger"
        )));
    }
    let first = u32::from(network) + 1;
    Ok((first, first + (size - 3) as u32))
}

/// `PLUGIN problem`: the error a user sees for a network the driver cannot serve.
fn refused(problem: &str) -> Error {
    Error::new(format!("{} {problem}", env!("CARGO_PKG_NAME")))
}

/// IPv4 addresses from the subnet each network was created with.
pub struct Pools {
    state: Store<Allocations>,
}

impl Pools {
    /// The driver, with the allocations recorded in `path` (created if missing); fails
    /// when another process holds it, or it does not parse.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self, StateError> {
        Ok(Self {
            state: Store::open(path).await?,
        })
    }
}

#[async_trait]
impl ipam::Driver for Pools {
    async fn get_capabilities(&self) -> Result<CapabilitiesResponse> {
        Ok(CapabilitiesResponse {
            // No MAC address needed to choose an address.
            requires_mac_address: false,
            // The allocations are on disk: no replay at dockerd's start.
            requires_request_replay: false,
        })
    }

    async fn get_default_address_spaces(&self) -> Result<AddressSpacesResponse> {
        Ok(AddressSpacesResponse {
            local_default_address_space: "local".into(),
            global_default_address_space: "global".into(),
        })
    }

    async fn request_pool(&self, req: RequestPoolRequest) -> Result<RequestPoolResponse> {
        // TODO: pick a free subnet when none is given, handle `--ip-range` and IPv6.
        let pool = match (req.pool, req.sub_pool, req.v6) {
            (_, _, true) => return Err(refused("gives IPv4 addresses only: leave out --ipv6")),
            (_, Some(_), _) => return Err(refused("does not take --ip-range: leave it out")),
            (Some(pool), None, false) => pool.network(),
            (None, None, false) => {
                return Err(refused(
                    "needs a subnet: give one with --subnet, such as --subnet 10.99.0.0/24",
                ));
            }
        };
        hosts(pool)?;
        let id = pool.to_string();
        let taken = self
            .state
            .update(|a| {
                let taken = a.pools.contains_key(&id);
                a.pools.entry(id.clone()).or_default();
                taken
            })
            .await?;
        if taken {
            return Err(Error::new(format!(
                "subnet {pool} is used by another network: choose another --subnet"
            )));
        }
        Ok(RequestPoolResponse::new(id, pool))
    }

    async fn release_pool(&self, req: ReleasePoolRequest) -> Result<()> {
        self.state.update(|a| a.pools.remove(&req.pool_id)).await?;
        Ok(())
    }

    async fn request_address(&self, req: RequestAddressRequest) -> Result<RequestAddressResponse> {
        // The gateway (`req.is_gateway()`) is an address like the others: `--gateway`
        // as `req.address`, else the first free one.
        let pool: Cidr = req.pool_id.parse()?;
        let ip = self
            .state
            .update(|a| a.allocate(pool, req.address))
            .await??;
        Ok(RequestAddressResponse::new(pool.with_addr(ip.into())?))
    }

    async fn release_address(&self, req: ReleaseAddressRequest) -> Result<()> {
        // Releasing what is not allocated is done already.
        self.state
            .update(|a| {
                if let (Some(used), IpAddr::V4(ip)) = (a.pools.get_mut(&req.pool_id), req.address) {
                    used.remove(&ip);
                }
            })
            .await?;
        Ok(())
    }
}
