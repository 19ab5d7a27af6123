//! The allocator itself, free of I/O so that every rule is unit-tested: which pools
//! are in use, which addresses of each are taken, and the choices dockerd leaves to
//! an IPAM driver (a pool when there is no `--subnet`, an address when there is no
//! `--ip`, the gateway). `driver.rs` runs each change inside the state store's
//! `update`, so what is decided here is on disk before dockerd hears of it.
//!
//! The rules follow dockerd's own default IPAM (moby v20.10.24
//! `vendor/github.com/docker/libnetwork/ipam/allocator.go`): pools of one address
//! space never overlap; an address is a host address of its pool (neither the
//! network address nor, for IPv4, the broadcast one); without `--ip` the lowest free
//! address of the `--ip-range` (or of the pool) is given; a pool's ID is what later
//! calls name it by. One choice differs: the gateway (a RequestAddress whose
//! `RequestAddressType` is `com.docker.network.gateway`), without `--gateway`, is the
//! lowest free address of the whole pool, outside the `--ip-range` if need be, so
//! that it is the familiar `.1` and leaves the range to the containers (moby's
//! allocator takes it from the range).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use docker_plugin_sdk::network::Cidr;
use serde::{Deserialize, Serialize};

/// Where pools come from when `docker network create` gives no `--subnet`: networks
/// of `size` bits carved, in order, out of `pools`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The configured pools (`--pool`).
    pub pools: Vec<Cidr>,
    /// The prefix length of a network carved out of them (`--size`).
    pub size: u8,
}

/// What is allocated: every pool in use, by ID, with its taken addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocations {
    /// Pool ID → pool.
    pub pools: BTreeMap<String, Pool>,
}

/// A pool in use by one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// The network (host bits cleared).
    pub pool: Cidr,
    /// The part addresses are picked from (`--ip-range`); `None`: the whole pool.
    pub range: Option<Cidr>,
    /// The addresses handed out and not yet released.
    pub taken: BTreeSet<IpAddr>,
}

/// What an address is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The network's gateway: from the whole pool.
    Gateway,
    /// A container's endpoint: from the `--ip-range`, if any.
    Endpoint,
}

/// Why a request cannot be granted; the message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// `--subnet` overlaps a pool in use.
    #[error(
        "pool {asked} overlaps pool {taken}, already used by another network: choose another --subnet"
    )]
    Overlap {
        /// The pool asked for.
        asked: Cidr,
        /// The pool in use.
        taken: Cidr,
    },
    /// `--ip-range` is not inside `--subnet`.
    #[error("--ip-range {range} is not inside --subnet {pool}")]
    RangeOutside {
        /// The range.
        range: Cidr,
        /// The pool.
        pool: Cidr,
    },
    /// Every network of the configured pools is in use.
    #[error(
        "no free /{size} network left in the configured pools {pools} ({in_use} pools in use): \
         remove a network, give --subnet, or start poolipam with another --pool"
    )]
    NoFreePool {
        /// The prefix length carved.
        size: u8,
        /// The configured pools, comma-separated.
        pools: String,
        /// How many pools are allocated.
        in_use: usize,
    },
    /// IPv6 asked without `--subnet`.
    #[error("poolipam has no IPv6 pools to choose from: give an IPv6 --subnet with --ipv6")]
    NoV6Pool,
    /// A pool ID poolipam never gave (or released).
    #[error("pool {0} is not allocated by poolipam (was its network removed?)")]
    UnknownPool(String),
    /// `--ip` or `--gateway` outside the pool, or its network/broadcast address.
    #[error("address {addr} is not a host address of pool {pool}")]
    NotInPool {
        /// The address asked for.
        addr: IpAddr,
        /// The pool.
        pool: Cidr,
    },
    /// `--ip` or `--gateway` already handed out.
    #[error(
        "address {addr} of pool {pool} is already allocated: choose another --ip, or remove the container that has it"
    )]
    InUse {
        /// The address asked for.
        addr: IpAddr,
        /// The pool.
        pool: Cidr,
    },
    /// No free address left.
    #[error(
        "pool {pool} has no free address left ({in_use} in use): remove a container, or create the network with a larger --subnet or --ip-range"
    )]
    Exhausted {
        /// The pool (its range, when it has one).
        pool: Cidr,
        /// How many addresses are taken.
        in_use: usize,
    },
}

impl Allocations {
    /// Allocates a pool: `asked` (`--subnet`, its `--ip-range` in `range`) when given,
    /// else the first free network of the configured pools. Returns its ID and the
    /// pool.
    pub fn request_pool(
        &mut self,
        config: &Config,
        asked: Option<Cidr>,
        range: Option<Cidr>,
        v6: bool,
    ) -> Result<(String, Cidr), AllocError> {
        let pool = match asked {
            Some(asked) => {
                let asked = asked.network();
                if let Some(taken) = self.overlapping(asked) {
                    return Err(AllocError::Overlap { asked, taken });
                }
                asked
            }
            None if v6 => return Err(AllocError::NoV6Pool),
            None => self.free_network(config)?,
        };
        if let Some(range) = range
            && !(pool.contains(range.addr()) && range.prefix_len() >= pool.prefix_len())
        {
            return Err(AllocError::RangeOutside { range, pool });
        }
        let id = pool.to_string();
        self.pools.insert(
            id.clone(),
            Pool {
                pool,
                range: range.map(|r| r.network()),
                taken: BTreeSet::new(),
            },
        );
        Ok((id, pool))
    }

    /// Forgets a pool and its addresses; an unknown ID is already released.
    pub fn release_pool(&mut self, id: &str) {
        self.pools.remove(id);
    }

    /// Allocates an address of pool `id`: `asked` (`--ip`, `--gateway`) when given,
    /// else the lowest free one for `purpose`. Returns it with the pool's prefix
    /// length.
    pub fn request_address(
        &mut self,
        id: &str,
        asked: Option<IpAddr>,
        purpose: Purpose,
    ) -> Result<Cidr, AllocError> {
        let pool = self
            .pools
            .get_mut(id)
            .ok_or_else(|| AllocError::UnknownPool(id.to_owned()))?;
        let addr = match asked {
            Some(addr) => {
                if !is_host_of(pool.pool, addr) {
                    return Err(AllocError::NotInPool {
                        addr,
                        pool: pool.pool,
                    });
                }
                if pool.taken.contains(&addr) {
                    return Err(AllocError::InUse {
                        addr,
                        pool: pool.pool,
                    });
                }
                addr
            }
            None => pool.lowest_free(purpose)?,
        };
        pool.taken.insert(addr);
        // The prefix is the pool's: a valid one for any address of it.
        Cidr::new(addr, pool.pool.prefix_len()).map_err(|_| AllocError::NotInPool {
            addr,
            pool: pool.pool,
        })
    }

    /// Frees an address; one that is not allocated is already free.
    pub fn release_address(&mut self, id: &str, addr: IpAddr) {
        if let Some(pool) = self.pools.get_mut(id) {
            pool.taken.remove(&addr);
        }
    }

    /// A pool in use that overlaps `net`.
    fn overlapping(&self, net: Cidr) -> Option<Cidr> {
        self.pools
            .values()
            .map(|p| p.pool)
            .find(|p| p.contains(net.addr()) || net.contains(p.addr()))
    }

    /// The first network of `config.size` bits, in the configured pools, that
    /// overlaps no pool in use.
    fn free_network(&self, config: &Config) -> Result<Cidr, AllocError> {
        for outer in &config.pools {
            let outer = outer.network();
            if config.size < outer.prefix_len() || config.size > width(outer.addr()) {
                continue;
            }
            let Some(step) = 1u128.checked_shl(u32::from(width(outer.addr()) - config.size)) else {
                continue;
            };
            // More than 2^20 candidates would take long to scan: stop there.
            let count = 1u128 << (config.size - outer.prefix_len()).min(20);
            let start = to_int(outer.addr());
            for n in 0..count {
                let addr = from_int(start + n * step, outer.is_ipv6());
                let Ok(candidate) = Cidr::new(addr, config.size) else {
                    continue;
                };
                if self.overlapping(candidate).is_none() {
                    return Ok(candidate);
                }
            }
        }
        Err(AllocError::NoFreePool {
            size: config.size,
            pools: config
                .pools
                .iter()
                .map(Cidr::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            in_use: self.pools.len(),
        })
    }
}

impl Pool {
    /// The lowest host address that is not taken: of the pool for a gateway, of the
    /// range (or pool) for an endpoint.
    fn lowest_free(&self, purpose: Purpose) -> Result<IpAddr, AllocError> {
        // A range is taken whole (as moby's bitmask of the pool does), less the
        // pool's own network and broadcast addresses.
        let range = self.range.filter(|_| purpose == Purpose::Endpoint);
        let span = range.unwrap_or(self.pool);
        let v6 = span.is_ipv6();
        let (first, last) = match range {
            Some(range) => all(range),
            None => hosts(self.pool),
        };
        let mut candidate = first;
        // At most one step more than there are taken addresses.
        while candidate <= last {
            let addr = from_int(candidate, v6);
            if is_host_of(self.pool, addr) && !self.taken.contains(&addr) {
                return Ok(addr);
            }
            candidate += 1;
        }
        Err(AllocError::Exhausted {
            pool: span,
            in_use: self.taken.len(),
        })
    }
}

/// Whether `addr` is a host address of `pool`: in it, not its network address, and
/// for IPv4 not its broadcast address (a /31 or /32 has neither).
fn is_host_of(pool: Cidr, addr: IpAddr) -> bool {
    if !pool.contains(addr) {
        return false;
    }
    let (first, last) = hosts(pool);
    (first..=last).contains(&to_int(addr))
}

/// The first and last address of `net`, as integers.
fn all(net: Cidr) -> (u128, u128) {
    let bits = u32::from(width(net.addr()) - net.prefix_len());
    let network = to_int(net.network().addr());
    let span = 1u128.checked_shl(bits).map_or(u128::MAX, |n| n - 1);
    (network, network.saturating_add(span))
}

/// The first and last host address of `net`, as integers.
fn hosts(net: Cidr) -> (u128, u128) {
    let bits = width(net.addr()) - net.prefix_len();
    let (network, last) = all(net);
    match (net.is_ipv6(), bits) {
        (_, 0) => (network, network),
        (false, 1) => (network, last),
        (false, _) => (network + 1, last - 1),
        (true, _) => (network + 1, last),
    }
}

fn width(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

fn to_int(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_int(n: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::from(n.to_be_bytes())
    } else {
        // Only ever called with values of an IPv4 network.
        IpAddr::from((n as u32).to_be_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// `--subnet text`, no range, IPv4.
    fn subnet(a: &mut Allocations, text: &str) -> Result<(String, Cidr), AllocError> {
        a.request_pool(&config(), Some(cidr(text)), None, false)
    }

    fn config() -> Config {
        Config {
            pools: vec![cidr("10.210.0.0/23")],
            size: 24,
        }
    }

    #[test]
    fn the_gateway_gets_the_first_host_address_then_endpoints_the_next_ones() {
        let mut a = Allocations::default();
        let (id, pool) = subnet(&mut a, "10.99.0.0/24").unwrap();
        assert_eq!((id.as_str(), pool), ("10.99.0.0/24", cidr("10.99.0.0/24")));
        assert_eq!(
            a.request_address(&id, None, Purpose::Endpoint).unwrap(),
            cidr("10.99.0.1/24")
        );
        assert_eq!(
            a.request_address(&id, None, Purpose::Endpoint).unwrap(),
            cidr("10.99.0.2/24")
        );
        assert_eq!(
            a.request_address(&id, None, Purpose::Endpoint).unwrap(),
            cidr("10.99.0.3/24")
        );
    }

    #[test]
    fn an_address_is_never_handed_out_twice_and_comes_back_once_released() {
        let mut a = Allocations::default();
        let (id, _) = subnet(&mut a, "10.99.0.0/24").unwrap();
        let first = a.request_address(&id, None, Purpose::Endpoint).unwrap();
        let asked = a
            .request_address(&id, Some(ip("10.99.0.2")), Purpose::Endpoint)
            .unwrap();
        assert_eq!(asked, cidr("10.99.0.2/24"));
        // Neither the free search nor an explicit --ip gets a taken address.
        assert_eq!(
            a.request_address(&id, None, Purpose::Endpoint).unwrap(),
            cidr("10.99.0.3/24")
        );
        assert_eq!(
            a.request_address(&id, Some(ip("10.99.0.2")), Purpose::Endpoint)
                .unwrap_err()
                .to_string(),
            "address 10.99.0.2 of pool 10.99.0.0/24 is already allocated: choose another --ip, or remove the container that has it"
        );
        a.release_address(&id, first.addr());
        a.release_address(&id, first.addr()); // twice: already free
        assert_eq!(
            a.request_address(&id, None, Purpose::Endpoint).unwrap(),
            first
        );
    }

    #[test]
    fn the_gateway_or_ip_asked_for_is_honoured_and_must_be_a_host_of_the_pool() {
        let mut a = Allocations::default();
        let (id, _) = subnet(&mut a, "10.99.0.0/24").unwrap();
        assert_eq!(
            a.request_address(&id, Some(ip("10.99.0.254")), Purpose::Endpoint)
                .unwrap(),
            cidr("10.99.0.254/24")
        );
        for bad in ["10.99.1.1", "10.99.0.0", "10.99.0.255", "fd00::1"] {
            assert_eq!(
                a.request_address(&id, Some(ip(bad)), Purpose::Endpoint)
                    .unwrap_err()
                    .to_string(),
                format!("address {bad} is not a host address of pool 10.99.0.0/24")
            );
        }
    }

    #[test]
    fn exhaustion_names_the_pool() {
        let mut a = Allocations::default();
        let (id, _) = subnet(&mut a, "10.99.0.0/30").unwrap();
        a.request_address(&id, None, Purpose::Endpoint).unwrap();
        a.request_address(&id, None, Purpose::Endpoint).unwrap();
        assert_eq!(
            a.request_address(&id, None, Purpose::Endpoint)
                .unwrap_err()
                .to_string(),
            "pool 10.99.0.0/30 has no free address left (2 in use): remove a container, or create the network with a larger --subnet or --ip-range"
        );
    }

    #[test]
    fn addresses_come_from_the_ip_range_when_there_is_one() {
        let mut a = Allocations::default();
        let (id, _) = a
            .request_pool(
                &config(),
                Some(cidr("10.99.0.0/24")),
                Some(cidr("10.99.0.254/31")),
                false,
            )
            .unwrap();
        // The gateway comes from the whole pool; endpoints from the range, taken
        // whole less the pool's broadcast address.
        assert_eq!(
            a.request_address(&id, None, Purpose::Gateway).unwrap(),
            cidr("10.99.0.1/24")
        );
        assert_eq!(
            a.request_address(&id, None, Purpose::Endpoint).unwrap(),
            cidr("10.99.0.254/24")
        );
        // --ip may still be outside the range, inside the pool.
        assert_eq!(
            a.request_address(&id, Some(ip("10.99.0.5")), Purpose::Endpoint)
                .unwrap(),
            cidr("10.99.0.5/24")
        );
        assert_eq!(
            a.request_address(&id, None, Purpose::Endpoint)
                .unwrap_err()
                .to_string(),
            "pool 10.99.0.254/31 has no free address left (3 in use): remove a container, or create the network with a larger --subnet or --ip-range"
        );
        assert_eq!(
            a.request_pool(
                &config(),
                Some(cidr("10.98.0.0/24")),
                Some(cidr("10.97.0.0/25")),
                false
            )
            .unwrap_err()
            .to_string(),
            "--ip-range 10.97.0.0/25 is not inside --subnet 10.98.0.0/24"
        );
    }

    #[test]
    fn pools_never_overlap_and_a_released_pool_is_free_again() {
        let mut a = Allocations::default();
        let (id, _) = subnet(&mut a, "10.99.0.0/16").unwrap();
        assert_eq!(
            subnet(&mut a, "10.99.3.0/24").unwrap_err().to_string(),
            "pool 10.99.3.0/24 overlaps pool 10.99.0.0/16, already used by another network: choose another --subnet"
        );
        a.request_address(&id, None, Purpose::Endpoint).unwrap();
        a.release_pool(&id);
        a.release_pool(&id);
        assert!(a.pools.is_empty());
        subnet(&mut a, "10.99.3.0/24").unwrap();
    }

    #[test]
    fn pools_without_subnet_are_carved_from_the_configured_ones_until_none_is_left() {
        let mut a = Allocations::default();
        // 10.210.0.0/24 is taken by hand first: the carving skips it.
        subnet(&mut a, "10.210.0.0/24").unwrap();
        let (id, pool) = a.request_pool(&config(), None, None, false).unwrap();
        assert_eq!(
            (id.as_str(), pool),
            ("10.210.1.0/24", cidr("10.210.1.0/24"))
        );
        assert_eq!(
            a.request_pool(&config(), None, None, false)
                .unwrap_err()
                .to_string(),
            "no free /24 network left in the configured pools 10.210.0.0/23 (2 pools in use): remove a network, give --subnet, or start poolipam with another --pool"
        );
        assert_eq!(
            a.request_pool(&config(), None, None, true)
                .unwrap_err()
                .to_string(),
            "poolipam has no IPv6 pools to choose from: give an IPv6 --subnet with --ipv6"
        );
    }

    #[test]
    fn ipv6_pools_hand_out_addresses_too() {
        let mut a = Allocations::default();
        let (id, _) = a
            .request_pool(&config(), Some(cidr("fd00:99::/64")), None, true)
            .unwrap();
        assert_eq!(
            a.request_address(&id, None, Purpose::Endpoint).unwrap(),
            cidr("fd00:99::1/64")
        );
        assert_eq!(
            a.request_address(&id, None, Purpose::Endpoint).unwrap(),
            cidr("fd00:99::2/64")
        );
    }

    #[test]
    fn an_unknown_pool_says_so() {
        let mut a = Allocations::default();
        assert_eq!(
            a.request_address("10.1.0.0/24", None, Purpose::Endpoint)
                .unwrap_err()
                .to_string(),
            "pool 10.1.0.0/24 is not allocated by poolipam (was its network removed?)"
        );
    }
}
