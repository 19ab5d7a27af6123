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
//! - A plugin's activation runs dockerd's handler for each subsystem it implements,
//!   in its `Implements` order, whichever lookup activated it:
//!   `NetworkDriver.GetCapabilities`; `IpamDriver.GetCapabilities` then
//!   `IpamDriver.GetDefaultAddressSpaces`. The answers are kept for good.
//! - `network create`: the IPAM's `RequestPool` (`--subnet`, `--ip-range`), the
//!   gateway's `RequestAddress` (skipped when the pool's `Data` names one and no
//!   `--gateway` was given), one `RequestAddress` per `--aux-address`, then
//!   `CreateNetwork`; an error there releases the pool.
//! - `network rm`: refused while containers are connected; else the gateway's and aux
//!   addresses' `ReleaseAddress`, `ReleasePool`, then `DeleteNetwork` (whose error
//!   dockerd only logs).
//! - A container's start: `RequestAddress` (with the MAC address when the IPAM
//!   requires it), `CreateEndpoint`, the sandbox, `Join`,
//!   `ProgramExternalConnectivity` (when Join gave a gateway on a non-internal
//!   network; a 404 is fine), `EndpointOperInfo` twice. A failed Join is rolled back
//!   (`DeleteEndpoint`, `ReleaseAddress`). Its stop: `RevokeExternalConnectivity`,
//!   `Leave`, `DeleteEndpoint`, `ReleaseAddress`.
//!
//! Only legacy plugins are modelled as dockerd runs them here: a managed network
//! plugin's capabilities are asked at its first use, not when it is enabled.

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
    self, CapabilitiesResponse, Cidr, CreateEndpointRequest, CreateNetworkRequest,
    EndpointInterface, EndpointRequest, IpamData, JoinRequest, MAC_ADDRESS, MacAddress,
    NetworkRequest, Options, ProgramExternalConnectivityRequest,
};
use crate::protocol::Empty;
use ipam::{DEFAULT_IPAM, DefaultIpam, Ipam, gateway_options};
use sandbox::InterfacePlan;
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
    /// `--mac-address`.
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
    plugins: Plugins,
    sandboxes: PathBuf,
    state: Arc<Mutex<NetworkState>>,
    default_ipam: Arc<DefaultIpam>,
}

#[derive(Debug, Default)]
struct NetworkState {
    networks: Vec<Network>,
    /// Plugins whose activation handlers ran: network capabilities, IPAM ones.
    network_caps: HashMap<String, CapabilitiesResponse>,
    ipam_caps: HashMap<String, (bool, String)>,
}

impl Networks {
    pub(crate) fn new(plugins: Plugins, sandboxes: PathBuf) -> Self {
        Self {
            plugins,
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

    /// dockerd's handlers at a plugin's activation (moby v20.10.24
    /// `drivers/remote/driver.go` and `ipams/remote/remote.go` `Init`), run once per
    /// plugin for each subsystem it implements, in its `Implements` order.
    async fn activated(&self, plugin: &Arc<ActivePlugin>) {
        let name = plugin.rpc.name().to_owned();
        if self.state().network_caps.contains_key(&name)
            || self.state().ipam_caps.contains_key(&name)
        {
            return;
        }
        for subsystem in plugin.implements.clone() {
            if subsystem == network::IMPLEMENTS {
                match plugin.rpc.call::<network::GetCapabilities>(&Empty {}).await {
                    Ok(caps) => {
                        self.state().network_caps.insert(name.clone(), caps);
                    }
                    Err(err) => tracing::warn!(plugin = %name, %err, "error getting capability"),
                }
            } else if subsystem == crate::ipam::IMPLEMENTS {
                let requires_mac = plugin
                    .rpc
                    .call::<crate::ipam::GetCapabilities>(&Empty {})
                    .await
                    .is_ok_and(|c| c.requires_mac_address);
                match plugin
                    .rpc
                    .call::<crate::ipam::GetDefaultAddressSpaces>(&Empty {})
                    .await
                {
                    Ok(spaces) => {
                        self.state().ipam_caps.insert(
                            name.clone(),
                            (requires_mac, spaces.local_default_address_space),
                        );
                    }
                    Err(err) => {
                        tracing::warn!(plugin = %name, %err, "error registering remote ipam driver")
                    }
                }
            }
        }
    }

    async fn network_driver(&self, name: &str) -> Result<Arc<ActivePlugin>, HarnessError> {
        let plugin = self.plugins.get(name, network::IMPLEMENTS).await?;
        self.activated(&plugin).await;
        if !self.state().network_caps.contains_key(plugin.rpc.name()) {
            return Err(HarnessError::PluginNotFound {
                name: name.to_owned(),
            });
        }
        Ok(plugin)
    }

    async fn ipam_driver(&self, name: Option<&str>) -> Result<Ipam, HarnessError> {
        let Some(name) = name.filter(|n| *n != DEFAULT_IPAM) else {
            return Ok(Ipam::Default(Arc::clone(&self.default_ipam)));
        };
        let plugin = self.plugins.get(name, crate::ipam::IMPLEMENTS).await?;
        self.activated(&plugin).await;
        let caps = self.state().ipam_caps.get(plugin.rpc.name()).cloned();
        let (requires_mac, local_space) = caps.ok_or_else(|| HarnessError::Ipam {
            message: format!("invalid ipam driver: {name:?}"),
        })?;
        Ok(Ipam::Remote {
            plugin,
            requires_mac,
            local_space,
        })
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
        let driver = self.network_driver(&opts.driver).await?;
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

    /// `connectToNetwork`: the endpoint (address, CreateEndpoint), the sandbox made
    /// if the container has none, Join, the interface moved in,
    /// ProgramExternalConnectivity, EndpointOperInfo. A failure after CreateEndpoint
    /// deletes the endpoint again.
    pub(crate) async fn connect(
        &self,
        container_id: &str,
        container_name: &str,
        use_: &NetworkUse,
        sandbox: &mut Option<Sandbox>,
    ) -> Result<ContainerEndpoint, HarnessError> {
        let network = self.find(&use_.network)?;
        if use_.ip.is_some() && network.info.options.subnet.is_none() {
            return Err(HarnessError::Ipam {
                message: "user specified IP address is supported only when connecting to networks with user configured subnets".to_owned(),
            });
        }
        let nid = network.info.id.clone();
        let eid = random_id();
        let pool = &network.pools[0];
        let mut ipam_options = HashMap::new();
        let mut mac = use_.mac;
        if network.ipam.requires_mac() {
            let m = *mac.get_or_insert_with(random_mac);
            ipam_options.insert(MAC_ADDRESS.to_owned(), m.to_string());
        }
        let address = network
            .ipam
            .request_address(&pool.id, use_.ip, ipam_options)
            .await
            .map_err(HarnessError::remote)?;
        let mut endpoint = ContainerEndpoint {
            network: network.info.name.clone(),
            endpoint_id: eid.clone(),
            address: Some(address),
            mac,
            interface: None,
            src_name: None,
            gateway: None,
            pool_id: pool.id.clone(),
            ipam_address: Some(address.addr()),
        };
        let options = Options::new()
            .with(network::EXPOSED_PORTS, serde_json::json!([]))
            .with(network::PORT_MAP, serde_json::json!([]));
        let options = match mac {
            Some(m) if use_.mac.is_some() => {
                options.with(MAC_ADDRESS, serde_json::json!(base64_mac(m)))
            }
            _ => options,
        };
        let request = CreateEndpointRequest {
            network_id: nid.clone(),
            endpoint_id: eid.clone(),
            interface: EndpointInterface {
                address: Some(address),
                address_ipv6: None,
                // The MAC given, or the one made for an IPAM that requires one.
                mac_address: mac,
            },
            options: options.clone(),
        };
        let created = network
            .driver
            .rpc
            .call::<network::CreateEndpoint>(&request)
            .await;
        let reply = match created {
            Ok(reply) => reply,
            Err(err) => {
                let _ = network.ipam.release_address(&pool.id, address.addr()).await;
                return Err(err.remote().context(format!(
                    "failed to create endpoint {container_name} on network {}",
                    network.info.name
                )));
            }
        };
        if let Some(filled) = reply.interface() {
            // `drivers/remote/driver.go`: a field dockerd had set may not change.
            let modified = (filled.address.is_some() && request.interface.address.is_some())
                || (filled.mac_address.is_some() && request.interface.mac_address.is_some());
            if modified {
                let _ = self.delete_endpoint(&network, &endpoint).await;
                return Err(HarnessError::Ipam {
                    message: "driver modified interface address: Cannot be modified".to_owned(),
                }
                .context(format!(
                    "failed to create endpoint {container_name} on network {}",
                    network.info.name
                )));
            }
            endpoint.address = filled.address.or(endpoint.address);
            endpoint.mac = filled.mac_address.or(endpoint.mac);
        }
        let joined = self
            .join(&network, &mut endpoint, container_id, options, sandbox)
            .await;
        if let Err(err) = joined {
            let _ = self.delete_endpoint(&network, &endpoint).await;
            return Err(err);
        }
        self.set_user(&nid, container_id, Some(endpoint.address));
        Ok(endpoint)
    }

    async fn join(
        &self,
        network: &Network,
        endpoint: &mut ContainerEndpoint,
        container_id: &str,
        options: Options,
        sandbox: &mut Option<Sandbox>,
    ) -> Result<(), HarnessError> {
        if sandbox.is_none() {
            let dir = self.sandboxes.clone();
            let id = container_id.to_owned();
            let made = tokio::task::spawn_blocking(move || Sandbox::create(&dir, &id))
                .await
                .map_err(|e| HarnessError::io("creating the sandbox", std::io::Error::other(e)))?
                .map_err(|e| {
                    HarnessError::io("creating the container's network namespace (as root)", e)
                })?;
            *sandbox = Some(made);
        }
        let Some(sb) = sandbox.as_mut() else {
            return Err(HarnessError::io(
                "sandbox",
                std::io::Error::other("no sandbox"),
            ));
        };
        let ids = EndpointRequest {
            network_id: network.info.id.clone(),
            endpoint_id: endpoint.endpoint_id.clone(),
        };
        let request = JoinRequest {
            network_id: ids.network_id.clone(),
            endpoint_id: ids.endpoint_id.clone(),
            sandbox_key: sb.key().display().to_string(),
            options: options.clone(),
        };
        let reply = network
            .driver
            .rpc
            .call::<network::Join>(&request)
            .await
            .map_err(HarnessError::remote)?;
        endpoint.gateway = reply.gateway;
        let leave = |e: HarnessError| async {
            let _ = network.driver.rpc.call::<network::Leave>(&ids).await;
            e
        };
        if let Some(iface) = reply
            .interface_name
            .as_ref()
            .filter(|i| !i.src_name.is_empty())
        {
            let plan = InterfacePlan {
                src_name: iface.src_name.clone(),
                address: endpoint.address,
                address_ipv6: None,
                mac: endpoint.mac,
                gateway: reply.gateway,
                gateway_ipv6: reply.gateway_ipv6,
                routes: reply.static_routes.clone(),
            };
            let dst = sb.next_name(&iface.dst_prefix);
            let key = sb.key().to_path_buf();
            let name = dst.clone();
            let moved =
                tokio::task::spawn_blocking(move || sandbox::add_interface(&key, plan, &name))
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            match moved {
                Ok(()) => {
                    sb.added(&iface.dst_prefix);
                    endpoint.interface = Some(dst);
                    endpoint.src_name = Some(iface.src_name.clone());
                }
                Err(e) => {
                    let err = HarnessError::io(
                        format!("failed to set interface name {}", iface.src_name),
                        e,
                    );
                    return Err(leave(err).await);
                }
            }
        }
        if reply.gateway.is_some() && !network.info.options.internal {
            let program = ProgramExternalConnectivityRequest {
                network_id: ids.network_id.clone(),
                endpoint_id: ids.endpoint_id.clone(),
                options,
            };
            match network
                .driver
                .rpc
                .call::<network::ProgramExternalConnectivity>(&program)
                .await
            {
                Ok(_) => {}
                Err(HarnessError::Call { source, .. }) if source.is_not_implemented() => {}
                Err(err) => {
                    return Err(leave(err.remote().context(format!(
                        "failed to program external connectivity on endpoint {}",
                        endpoint.endpoint_id
                    )))
                    .await);
                }
            }
        }
        // `daemon/container_operations.go` `updateJoinInfo`, reached twice on 20.10.
        for _ in 0..2 {
            if let Err(err) = network
                .driver
                .rpc
                .call::<network::EndpointOperInfo>(&ids)
                .await
            {
                return Err(leave(err.remote().context("Updating join info failed")).await);
            }
        }
        Ok(())
    }

    /// `ep.Delete`: DeleteEndpoint, then the address back to the IPAM.
    async fn delete_endpoint(
        &self,
        network: &Network,
        endpoint: &ContainerEndpoint,
    ) -> Result<(), HarnessError> {
        let ids = EndpointRequest {
            network_id: network.info.id.clone(),
            endpoint_id: endpoint.endpoint_id.clone(),
        };
        let deleted = network
            .driver
            .rpc
            .call::<network::DeleteEndpoint>(&ids)
            .await;
        if let Some(addr) = endpoint.ipam_address {
            let _ = network.ipam.release_address(&endpoint.pool_id, addr).await;
        }
        deleted.map(drop).map_err(HarnessError::remote)
    }

    /// `sbLeave` and `ep.Delete`: RevokeExternalConnectivity (when it was
    /// programmed), the interface moved back out, Leave, DeleteEndpoint,
    /// ReleaseAddress. Every step is tried; the first error is returned.
    pub(crate) async fn disconnect(
        &self,
        container_id: &str,
        endpoint: &ContainerEndpoint,
        sandbox: Option<&Sandbox>,
    ) -> Result<(), HarnessError> {
        let network = self.find(&endpoint.network)?;
        let ids = EndpointRequest {
            network_id: network.info.id.clone(),
            endpoint_id: endpoint.endpoint_id.clone(),
        };
        let mut first = None;
        if endpoint.gateway.is_some() && !network.info.options.internal {
            match network
                .driver
                .rpc
                .call::<network::RevokeExternalConnectivity>(&ids)
                .await
            {
                Err(HarnessError::Call { source, .. }) if source.is_not_implemented() => {}
                Err(err) => {
                    first.get_or_insert(err.remote());
                }
                Ok(_) => {}
            }
        }
        if let (Some(sb), Some(dst), Some(src)) = (sandbox, &endpoint.interface, &endpoint.src_name)
        {
            let key = sb.key().to_path_buf();
            let (d, s) = (dst.clone(), src.clone());
            let moved =
                tokio::task::spawn_blocking(move || sandbox::remove_interface(&key, &d, &s))
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            if let Err(e) = moved {
                first.get_or_insert(HarnessError::io(
                    format!("moving {dst} out of the sandbox"),
                    e,
                ));
            }
        }
        if let Err(err) = network.driver.rpc.call::<network::Leave>(&ids).await {
            first.get_or_insert(err.remote());
        }
        if let Err(err) = self.delete_endpoint(&network, endpoint).await {
            first.get_or_insert(err);
        }
        self.set_user(&network.info.id, container_id, None);
        first.map_or(Ok(()), Err)
    }
}

/// A random locally administered MAC (`netutils.GenerateRandomMAC`: `02:42:…`).
fn random_mac() -> MacAddress {
    let id = random_id();
    let byte = |i: usize| u8::from_str_radix(&id[i * 2..i * 2 + 2], 16).unwrap_or(0);
    MacAddress::new([0x02, 0x42, byte(0), byte(1), byte(2), byte(3)])
}

/// Go's `[]byte` in JSON: base64 (standard, padded).
fn base64_mac(mac: MacAddress) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = mac.octets();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]);
        for shift in [18, 12, 6, 0] {
            out.push(TABLE[((n >> shift) & 63) as usize] as char);
        }
    }
    out
}
