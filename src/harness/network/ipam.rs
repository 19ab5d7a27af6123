//! The IPAM side of the network service: dockerd's built-in `default` IPAM, or an IPAM
//! plugin called as libnetwork's remote allocator calls it (moby v20.10.24
//! `vendor/github.com/docker/libnetwork/ipams/remote/remote.go`: requests with plain
//! IPs, replies in CIDR form, errors as `remote: …`).
//!
//! The built-in allocator follows `ipam/allocator.go`: address space `LocalDefault`,
//! pool IDs `LocalDefault/<pool>[/<sub-pool>]`, the predefined pools
//! (`ipamutils`: `172.17.0.0/16` … `172.31.0.0/16`, then `192.168.0.0/20` …) handed
//! out when no `--subnet` is given (the first one no other network uses; the harness
//! does not look at the host's routes), and addresses from the sub-pool (`--ip-range`)
//! or the pool, lowest free first, never the network or broadcast address.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use super::super::error::HarnessError;
use super::super::plugins::ActivePlugin;
use crate::ipam::{
    self, GATEWAY, REQUEST_ADDRESS_TYPE, ReleaseAddressRequest, ReleasePoolRequest,
    RequestAddressRequest, RequestPoolRequest,
};
use crate::network::Cidr;

/// The built-in IPAM's name (`--ipam-driver default`).
pub(super) const DEFAULT_IPAM: &str = "default";
/// The built-in IPAM's local address space.
const LOCAL_DEFAULT: &str = "LocalDefault";

/// A pool as dockerd keeps it for a network (`IpamInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pool {
    pub(super) id: String,
    pub(super) pool: Cidr,
    pub(super) data: HashMap<String, String>,
}

/// An IPAM driver the network service calls.
#[derive(Debug, Clone)]
pub(super) enum Ipam {
    /// dockerd's own.
    Default(Arc<DefaultIpam>),
    /// A plugin, with what its GetCapabilities said.
    Remote {
        plugin: Arc<ActivePlugin>,
        requires_mac: bool,
        local_space: String,
    },
}

impl Ipam {
    /// The default address space networks get (`deriveAddressSpace`).
    pub(super) fn address_space(&self) -> String {
        match self {
            Self::Default(_) => LOCAL_DEFAULT.to_owned(),
            Self::Remote { local_space, .. } => local_space.clone(),
        }
    }

    /// Whether RequestAddress must carry the endpoint's MAC address.
    pub(super) fn requires_mac(&self) -> bool {
        matches!(
            self,
            Self::Remote {
                requires_mac: true,
                ..
            }
        )
    }

    pub(super) async fn request_pool(
        &self,
        space: &str,
        pool: Option<Cidr>,
        sub_pool: Option<Cidr>,
        options: &HashMap<String, String>,
    ) -> Result<Pool, HarnessError> {
        match self {
            Self::Default(ipam) => ipam.request_pool(pool, sub_pool),
            Self::Remote { plugin, .. } => {
                let reply = plugin
                    .rpc
                    .call::<ipam::RequestPool>(&RequestPoolRequest {
                        address_space: space.to_owned(),
                        pool,
                        sub_pool,
                        options: options.clone(),
                        v6: false,
                    })
                    .await?;
                Ok(Pool {
                    id: reply.pool_id,
                    pool: reply.pool,
                    data: reply.data,
                })
            }
        }
    }

    pub(super) async fn release_pool(&self, pool_id: &str) -> Result<(), HarnessError> {
        match self {
            Self::Default(ipam) => {
                ipam.release_pool(pool_id);
                Ok(())
            }
            Self::Remote { plugin, .. } => plugin
                .rpc
                .call::<ipam::ReleasePool>(&ReleasePoolRequest {
                    pool_id: pool_id.to_owned(),
                })
                .await
                .map(drop),
        }
    }

    /// An address of `pool_id`: `address` if given; `gateway` marks the gateway
    /// request, `mac` goes along when the driver requires it.
    pub(super) async fn request_address(
        &self,
        pool_id: &str,
        address: Option<IpAddr>,
        options: HashMap<String, String>,
    ) -> Result<Cidr, HarnessError> {
        match self {
            Self::Default(ipam) => ipam.request_address(pool_id, address),
            Self::Remote { plugin, .. } => Ok(plugin
                .rpc
                .call::<ipam::RequestAddress>(&RequestAddressRequest {
                    pool_id: pool_id.to_owned(),
                    address,
                    options,
                })
                .await?
                .address),
        }
    }

    pub(super) async fn release_address(
        &self,
        pool_id: &str,
        address: IpAddr,
    ) -> Result<(), HarnessError> {
        match self {
            Self::Default(ipam) => {
                ipam.release_address(pool_id, address);
                Ok(())
            }
            Self::Remote { plugin, .. } => plugin
                .rpc
                .call::<ipam::ReleaseAddress>(&ReleaseAddressRequest {
                    pool_id: pool_id.to_owned(),
                    address,
                })
                .await
                .map(drop),
        }
    }
}

/// The options of a gateway's RequestAddress (`ipamapi.RequestAddressType`).
pub(super) fn gateway_options() -> HashMap<String, String> {
    HashMap::from([(REQUEST_ADDRESS_TYPE.to_owned(), GATEWAY.to_owned())])
}

/// dockerd's built-in allocator.
#[derive(Debug, Default)]
pub(super) struct DefaultIpam {
    pools: Mutex<HashMap<String, DefaultPool>>,
}

#[derive(Debug)]
struct DefaultPool {
    pool: Cidr,
    range: Cidr,
    taken: BTreeSet<IpAddr>,
}

/// The predefined local pools (moby v20.10.24 `ipamutils/utils.go`).
fn predefined() -> impl Iterator<Item = Cidr> {
    let wide =
        (17..=31u8).filter_map(|b| Cidr::new(IpAddr::V4(Ipv4Addr::new(172, b, 0, 0)), 16).ok());
    let narrow = (0..=15u8)
        .filter_map(|i| Cidr::new(IpAddr::V4(Ipv4Addr::new(192, 168, i * 16, 0)), 20).ok());
    wide.chain(narrow)
}

fn ip_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_u128(v4: bool, n: u128) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(n as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(n))
    }
}

impl DefaultIpam {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, DefaultPool>> {
        self.pools.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn request_pool(
        &self,
        pool: Option<Cidr>,
        sub_pool: Option<Cidr>,
    ) -> Result<Pool, HarnessError> {
        let mut pools = self.lock();
        let in_use = |c: &Cidr, pools: &HashMap<String, DefaultPool>| {
            pools
                .values()
                .any(|p| p.pool.contains(c.addr()) || c.contains(p.pool.addr()))
        };
        let pool = match pool {
            Some(pool) => {
                let pool = pool.network();
                if in_use(&pool, &pools) {
                    // ipamapi.ErrPoolOverlap, in `ipam/allocator.go` RequestPool.
                    return Err(HarnessError::Ipam {
                        message: "Pool overlaps with other one on this address space".to_owned(),
                    });
                }
                pool
            }
            None => predefined()
                .find(|c| !in_use(c, &pools))
                .ok_or_else(|| HarnessError::Ipam {
                    message: "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".to_owned(),
                })?,
        };
        let range = sub_pool.map_or(pool, |s| s.network());
        let id = match sub_pool {
            Some(sub) => format!("{LOCAL_DEFAULT}/{pool}/{}", sub.network()),
            None => format!("{LOCAL_DEFAULT}/{pool}"),
        };
        pools.insert(
            id.clone(),
            DefaultPool {
                pool,
                range,
                taken: BTreeSet::new(),
            },
        );
        Ok(Pool {
            id,
            pool,
            data: HashMap::new(),
        })
    }

    fn release_pool(&self, pool_id: &str) {
        self.lock().remove(pool_id);
    }

    fn request_address(
        &self,
        pool_id: &str,
        address: Option<IpAddr>,
    ) -> Result<Cidr, HarnessError> {
        let mut pools = self.lock();
        let pool = pools.get_mut(pool_id).ok_or_else(|| HarnessError::Ipam {
            message: format!("cannot find address pool for poolID:{pool_id}"),
        })?;
        let v4 = !pool.pool.is_ipv6();
        let first = ip_u128(pool.range.network().addr());
        let size =
            1u128 << ((if v4 { 32 } else { 128 }) - u32::from(pool.range.prefix_len())).min(127);
        let pool_start = ip_u128(pool.pool.network().addr());
        let pool_size =
            1u128 << ((if v4 { 32 } else { 128 }) - u32::from(pool.pool.prefix_len())).min(127);
        // Never the pool's network address, nor (IPv4) its broadcast address.
        let usable = |n: u128| n != pool_start && !(v4 && n == pool_start + pool_size - 1);
        let ip = match address {
            Some(ip) => {
                let n = ip_u128(ip);
                if !pool.range.contains(ip) || !usable(n) {
                    // ipamapi.ErrIPOutOfRange.
                    return Err(HarnessError::Ipam {
                        message: "requested address is out of range".to_owned(),
                    });
                }
                if pool.taken.contains(&ip) {
                    // ipamapi.ErrIPAlreadyAllocated.
                    return Err(HarnessError::Ipam {
                        message: "Address already in use".to_owned(),
                    });
                }
                ip
            }
            None => (first..first + size)
                .filter(|n| usable(*n))
                .map(|n| from_u128(v4, n))
                .find(|ip| !pool.taken.contains(ip))
                .ok_or_else(|| HarnessError::Ipam {
                    // ipamapi.ErrNoAvailableIPs.
                    message: "No available addresses on this pool".to_owned(),
                })?,
        };
        pool.taken.insert(ip);
        pool.pool.with_addr(ip).map_err(|e| HarnessError::Ipam {
            message: e.to_string(),
        })
    }

    fn release_address(&self, pool_id: &str, address: IpAddr) {
        if let Some(pool) = self.lock().get_mut(pool_id) {
            pool.taken.remove(&address);
        }
    }
}
