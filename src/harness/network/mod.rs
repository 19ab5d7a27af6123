//! The network service, as dockerd's libnetwork (moby v20.10.24
//! `vendor/github.com/docker/libnetwork/`: `controller.go` `NewNetwork`, `network.go`
//! `ipamAllocate`/`ipamRelease`/`delete`/`createEndpoint`, `endpoint.go`
//! `sbJoin`/`sbLeave`/`Delete`, `drivers/remote/driver.go`, `ipams/remote/remote.go`;
//! `daemon/container_operations.go` `connectToNetwork`): what each network action sends
//! to the network and IPAM plugins, in order. Containers
//! ([`containers`](super::containers)) connect through it.
//!
//! The sequences were recorded from dockerd 20.10 (`tests/fixtures/dockerd-sequences/
//! network_*.json`, replayed by `tests/harness_fixtures.rs`):
//!
//! - A legacy plugin's activation, whichever lookup activated it, and a managed
//!   plugin's `docker plugin enable` run dockerd's handler for each subsystem it
//!   implements, in order (`drivers`): `NetworkDriver.GetCapabilities`;
//!   `IpamDriver.GetCapabilities` then `IpamDriver.GetDefaultAddressSpaces`. The
//!   answers are kept for good.
//! - `network create`: the IPAM's `RequestPool` (`--subnet`, `--ip-range`), the
//!   gateway's `RequestAddress` (skipped when the pool's `Data` names one and no
//!   `--gateway` was given), one `RequestAddress` per `--aux-address`, then
//!   `CreateNetwork`; an error there releases the pool.
//! - `network rm`: refused while containers are connected; else the gateway's and aux
//!   addresses' `ReleaseAddress`, `ReleasePool`, then `DeleteNetwork` (whose error
//!   dockerd only logs).
//! - A container's start: `RequestAddress` (with the MAC address when the IPAM
//!   requires it or one was given), `CreateEndpoint` (a MAC given in `Interface` and,
//!   base64, in its `Options`), the sandbox, `Join`, `ProgramExternalConnectivity`
//!   (when Join gave a gateway on a non-internal network; a 404 is fine), both with
//!   the sandbox's labels only, `EndpointOperInfo` twice. A failed Join is rolled back
//!   (`DeleteEndpoint`, `ReleaseAddress`). Its stop: `RevokeExternalConnectivity`,
//!   `Leave`, `DeleteEndpoint`, `ReleaseAddress`.
//!
//! `drivers` holds the registry of drivers, `endpoint` the container side (endpoint,
//! Join, Leave), `sandbox` and `netlink` the container's namespace; this file the
//! networks themselves.

mod drivers;
mod endpoint;
mod ipam;
mod netlink;
mod sandbox;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::error::HarnessError;
use super::ids::random_id;
use super::plugins::{ActivePlugin, Plugins};
use crate::network::{
    self, Cidr, CreateNetworkRequest, IpamData, MacAddress, NetworkRequest, Options,
};
use drivers::Drivers;
use ipam::{DEFAULT_IPAM, DefaultIpam, Ipam, gateway_options};
pub(crate) use sandbox::Sandbox;

/// `docker network create`'s options.
///
/// ```
/// use docker_plugin_sdk::harness::NetworkOptions;
///
/// let opts = NetworkOptions::driver("mynet")
///     .ipam_driver("myipam")
///     .subnet("10.99.0.0/24".parse().unwrap())
///     .gateway("10.99.0.1".parse().unwrap())
///     .option("mtu", "1400");
/// assert_eq!(opts.driver, "mynet");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkOptions {
    /// `-d`: the network driver.
    pub driver: String,
    /// `--ipam-driver` (dockerd's `default` when `None`).
    pub ipam_driver: Option<String>,
    /// `--subnet`.
    pub subnet: Option<Cidr>,
    /// `--gateway`.
    pub gateway: Option<IpAddr>,
    /// `--ip-range`.
    pub ip_range: Option<Cidr>,
    /// `--aux-address name=IP`.
    pub aux_addresses: BTreeMap<String, IpAddr>,
    /// `--internal`.
    pub internal: bool,
    /// `-o key=value`.
    pub options: BTreeMap<String, String>,
}

impl NetworkOptions {
    /// `-d driver`, nothing else.
    pub fn driver(driver: impl Into<String>) -> Self {
        Self {
            driver: driver.into(),
            ..Self::default()
        }
    }
    /// `--ipam-driver`.
    pub fn ipam_driver(mut self, ipam: impl Into<String>) -> Self {
        self.ipam_driver = Some(ipam.into());
        self
    }
    /// `--subnet`.
    pub fn subnet(mut self, subnet: Cidr) -> Self {
        self.subnet = Some(subnet);
        self
    }
    /// `--gateway`.
    pub fn gateway(mut self, gateway: IpAddr) -> Self {
        self.gateway = Some(gateway);
        self
    }
    /// `--ip-range`.
    pub fn ip_range(mut self, range: Cidr) -> Self {
        self.ip_range = Some(range);
        self
    }
    /// `--aux-address name=ip`.
    pub fn aux_address(mut self, name: impl Into<String>, ip: IpAddr) -> Self {
        self.aux_addresses.insert(name.into(), ip);
        self
    }
    /// `--internal`.
    pub fn internal(mut self) -> Self {
        self.internal = true;
        self
    }
    /// `-o key=value`.
    pub fn option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.insert(key.into(), value.into());
        self
    }
}

/// A network as `docker network inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    /// 64-hex ID.
    pub id: String,
    /// Its name.
    pub name: String,
    /// What it was created with.
    pub options: NetworkOptions,
    /// Its IPv4 pool, gateway and aux addresses, as CreateNetwork got them.
    pub ipv4: Vec<IpamData>,
    /// The endpoints connected: container ID → the endpoint's address.
    pub containers: BTreeMap<String, Option<Cidr>>,
}

/// A container's connection to a network: `--network NAME [--ip IP] [--mac-address MAC]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkUse {
    /// The network's name or ID.
    pub network: String,
    /// `--ip`.
    pub ip: Option<IpAddr>,
    /// `--mac-address` (API 1.41's `MacAddress`; its sequence is the recorded
    /// `network_run_mac`).
    pub mac: Option<MacAddress>,
}

impl NetworkUse {
    /// `--network NAME`.
    pub fn new(network: impl Into<String>) -> Self {
        Self {
            network: network.into(),
            ip: None,
            mac: None,
        }
    }
    /// `--ip`.
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.ip = Some(ip);
        self
    }
    /// `--mac-address`.
    pub fn mac(mut self, mac: MacAddress) -> Self {
        self.mac = Some(mac);
        self
    }
}

/// A container's endpoint on a network, once joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEndpoint {
    /// The network's name.
    pub network: String,
    /// The endpoint's 64-hex ID.
    pub endpoint_id: String,
    /// Its address (from the IPAM driver, or as the network driver filled it in).
    pub address: Option<Cidr>,
    /// Its MAC address, if one was given or filled in.
    pub mac: Option<MacAddress>,
    /// The interface in the container's namespace (`eth0`), when Join named one.
    pub interface: Option<String>,
    /// The interface's name on the host (`SrcName`), to move it back on Leave.
    src_name: Option<String>,
    /// Join's gateway.
    pub gateway: Option<IpAddr>,
    pool_id: String,
    /// The address the IPAM gave (released on delete).
    ipam_address: Option<IpAddr>,
}

/// A network the engine knows.
#[derive(Debug, Clone)]
struct Network {
    info: NetworkInfo,
    driver: Arc<ActivePlugin>,
    ipam: Ipam,
    pools: Vec<ipam::Pool>,
}

/// `docker network …` and the network side of containers: dockerd's libnetwork.
/// Cheap to clone.
///
/// ```no_run
/// use docker_plugin_sdk::harness::{Engine, NetworkOptions};
/// # async fn run() -> Result<(), docker_plugin_sdk::harness::HarnessError> {
/// let engine = Engine::for_tests("/tmp/t");
/// let opts = NetworkOptions::driver("mynet").subnet("10.99.0.0/24".parse().unwrap());
/// let net = engine.networks().create("n1", opts).await?;
/// assert_eq!(net.ipv4[0].gateway.unwrap().to_string(), "10.99.0.1/24");
/// engine.networks().rm("n1").await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Networks {
    drivers: Arc<Drivers>,
    sandboxes: PathBuf,
    state: Arc<Mutex<NetworkState>>,
    default_ipam: Arc<DefaultIpam>,
}

#[derive(Debug, Default)]
struct NetworkState {
    networks: Vec<Network>,
}

impl Networks {
    pub(crate) fn new(plugins: Plugins, sandboxes: PathBuf) -> Self {
        Self {
            drivers: Arc::new(Drivers::new(plugins)),
            sandboxes,
            state: Arc::default(),
            default_ipam: Arc::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, NetworkState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where containers' network namespaces are mounted (`<exec-root>/netns`).
    pub fn sandbox_dir(&self) -> &std::path::Path {
        &self.sandboxes
    }

    /// The IPAM driver `name` (`--ipam-driver`; dockerd's `default` when `None`).
    async fn ipam_driver(&self, name: Option<&str>) -> Result<Ipam, HarnessError> {
        match name.filter(|n| *n != DEFAULT_IPAM) {
            None => Ok(Ipam::Default(Arc::clone(&self.default_ipam))),
            Some(name) => self.drivers.ipam(name).await,
        }
    }

    fn find(&self, name: &str) -> Result<Network, HarnessError> {
        self.state()
            .networks
            .iter()
            .find(|n| {
                n.info.name == name
                    || n.info.id == name
                    || (name.len() >= 12 && n.info.id.starts_with(name))
            })
            .cloned()
            .ok_or_else(|| HarnessError::NoSuchNetwork {
                name: name.to_owned(),
            })
    }

    /// `docker network create [OPTIONS] NAME`.
    pub async fn create(
        &self,
        name: &str,
        opts: NetworkOptions,
    ) -> Result<NetworkInfo, HarnessError> {
        if self.find(name).is_ok() {
            return Err(HarnessError::NetworkExists {
                name: name.to_owned(),
            });
        }
        let driver = self.drivers.network(&opts.driver).await?;
        let ipam = self.ipam_driver(opts.ipam_driver.as_deref()).await?;
        let id = random_id();
        let (pool, data) = self.allocate(&ipam, &opts).await?;
        let mut options = Options::new()
            .with(network::ENABLE_IPV6, false)
            .with(network::GENERIC, serde_json::json!(opts.options));
        if opts.internal {
            options = options.with(network::INTERNAL, true);
        }
        let request = CreateNetworkRequest {
            network_id: id.clone(),
            options,
            ipv4_data: vec![data.clone()],
            ipv6_data: Vec::new(),
        };
        if let Err(err) = driver.rpc.call::<network::CreateNetwork>(&request).await {
            self.release(&ipam, &pool, &data).await;
            return Err(err.remote());
        }
        let info = NetworkInfo {
            id,
            name: name.to_owned(),
            options: opts,
            ipv4: vec![data],
            containers: BTreeMap::new(),
        };
        self.state().networks.push(Network {
            info: info.clone(),
            driver,
            ipam,
            pools: vec![pool],
        });
        Ok(info)
    }

    /// `ipamAllocateVersion(4)`: the pool, its gateway, the aux addresses; on an
    /// error, the pool is released.
    async fn allocate(
        &self,
        ipam: &Ipam,
        opts: &NetworkOptions,
    ) -> Result<(ipam::Pool, IpamData), HarnessError> {
        let space = ipam.address_space();
        let ipam_options = HashMap::new();
        let pool = ipam
            .request_pool(&space, opts.subnet, opts.ip_range, &ipam_options)
            .await
            .map_err(HarnessError::remote)?;
        let mut data = IpamData {
            address_space: space,
            pool: pool.pool,
            gateway: None,
            aux_addresses: HashMap::new(),
        };
        let result = async {
            if let Some(gw) = pool.data.get(crate::ipam::GATEWAY) {
                data.gateway = Some(gw.parse().map_err(|e| HarnessError::Ipam {
                    message: format!(
                        "failed to parse gateway address ({gw}) returned by ipam driver: {e}"
                    ),
                })?);
            }
            if opts.gateway.is_some() || data.gateway.is_none() {
                let gw = ipam
                    .request_address(&pool.id, opts.gateway, gateway_options())
                    .await
                    .map_err(|e| {
                        let shown = opts.gateway.map(|g| g.to_string()).unwrap_or_default();
                        e.remote()
                            .context(format!("failed to allocate gateway ({shown})"))
                    })?;
                data.gateway = Some(gw);
            }
            for (name, ip) in &opts.aux_addresses {
                if !pool.pool.contains(*ip) {
                    return Err(HarnessError::Ipam {
                        message: format!(
                            "auxiliary address: ({name}:{ip}) must belong to the master pool: {}",
                            pool.pool
                        ),
                    });
                }
                let reserved = ipam
                    .request_address(&pool.id, Some(*ip), HashMap::new())
                    .await;
                match reserved {
                    Ok(addr) => {
                        data.aux_addresses.insert(name.clone(), addr);
                    }
                    // The built-in IPAM's ErrIPOutOfRange is silenced: outside --ip-range.
                    Err(HarnessError::Ipam { message })
                        if message == "requested address is out of range" =>
                    {
                        let addr = pool.pool.with_addr(*ip).map_err(|e| HarnessError::Ipam {
                            message: e.to_string(),
                        })?;
                        data.aux_addresses.insert(name.clone(), addr);
                    }
                    Err(err) => {
                        return Err(err.remote().context(format!(
                            "failed to allocate secondary ip address ({name}:{ip})"
                        )));
                    }
                }
            }
            Ok(())
        }
        .await;
        if let Err(err) = result {
            let _ = ipam.release_pool(&pool.id).await;
            return Err(err);
        }
        Ok((pool, data))
    }

    /// `ipamReleaseVersion`: the gateway, the aux addresses in the pool, the pool.
    async fn release(&self, ipam: &Ipam, pool: &ipam::Pool, data: &IpamData) {
        if let Some(gw) = data.gateway {
            let _ = ipam.release_address(&pool.id, gw.addr()).await;
        }
        let mut aux: Vec<&Cidr> = data.aux_addresses.values().collect();
        aux.sort();
        for addr in aux {
            let _ = ipam.release_address(&pool.id, addr.addr()).await;
        }
        let _ = ipam.release_pool(&pool.id).await;
    }

    /// `docker network rm NAME`: refused while containers are connected.
    pub async fn rm(&self, name: &str) -> Result<(), HarnessError> {
        let network = self.find(name)?;
        if !network.info.containers.is_empty() {
            return Err(HarnessError::NetworkInUse {
                name: network.info.name.clone(),
                id: network.info.id.clone(),
            });
        }
        for (pool, data) in network.pools.iter().zip(&network.info.ipv4) {
            self.release(&network.ipam, pool, data).await;
        }
        let request = NetworkRequest {
            network_id: network.info.id.clone(),
        };
        if let Err(err) = network
            .driver
            .rpc
            .call::<network::DeleteNetwork>(&request)
            .await
        {
            // dockerd only logs it (`network.go` `deleteNetwork`).
            tracing::warn!(network = %network.info.name, %err, "driver error deleting network");
        }
        self.state()
            .networks
            .retain(|n| n.info.id != network.info.id);
        Ok(())
    }

    /// `docker network inspect NAME`.
    pub fn inspect(&self, name: &str) -> Result<NetworkInfo, HarnessError> {
        self.find(name).map(|n| n.info)
    }

    /// `docker network ls` (the plugin networks), by name.
    pub fn ls(&self) -> Vec<NetworkInfo> {
        let mut list: Vec<NetworkInfo> = self
            .state()
            .networks
            .iter()
            .map(|n| n.info.clone())
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    fn set_user(&self, network_id: &str, container: &str, address: Option<Option<Cidr>>) {
        if let Some(n) = self
            .state()
            .networks
            .iter_mut()
            .find(|n| n.info.id == network_id)
        {
            match address {
                Some(address) => n.info.containers.insert(container.to_owned(), address),
                None => n.info.containers.remove(container),
            };
        }
    }
}
