//! Network and IPAM drivers that record what they decoded, served with a volume
//! driver from one process on a temp socket, for `tests/network.rs` and
//! `tests/ipam.rs`.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use docker_plugin_sdk::client::{Client, RawResponse};
use docker_plugin_sdk::ipam;
use docker_plugin_sdk::network::{self, *};
use docker_plugin_sdk::transport::UnixSocket;
use docker_plugin_sdk::{Error, Plugin, Result, async_trait};
use serde_json::Value;

use super::server::{Recorder, Shared, TestServer};

pub const NID: &str = "4e1c6d2f7a9b0c3d5e8f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e2f4a6b8c0d";
pub const EID: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0";

/// A network driver that records what it decoded, one line per call.
#[derive(Default)]
pub struct Net {
    pub log: Mutex<Vec<String>>,
}

impl Net {
    pub fn record(&self, line: String) {
        self.log.lock().unwrap().push(line);
    }
}

/// The driver registered, sharing its log with the test.
pub struct NetDriver(pub Arc<Net>);

#[async_trait]
impl network::Driver for NetDriver {
    async fn get_capabilities(&self) -> Result<CapabilitiesResponse> {
        Ok(CapabilitiesResponse {
            connectivity_scope: Some(Scope::Global),
            ..CapabilitiesResponse::scope(Scope::Local)
        })
    }
    async fn create_network(&self, req: CreateNetworkRequest) -> Result<()> {
        let mut generic: Vec<_> = req.options.generic()?.into_iter().collect();
        generic.sort();
        let pools: Vec<String> = req
            .ipv4_data
            .iter()
            .chain(&req.ipv6_data)
            .map(|d| {
                let mut aux: Vec<_> = d
                    .aux_addresses
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                aux.sort();
                format!(
                    "{} pool={} net={} gw={:?} aux={aux:?}",
                    d.address_space,
                    d.pool,
                    d.pool.network(),
                    d.gateway.map(|g| g.addr()),
                )
            })
            .collect();
        self.0.record(format!(
            "CreateNetwork generic={generic:?} ipv6={} internal={} pools={pools:?}",
            req.options.enable_ipv6()?,
            req.options.internal()?,
        ));
        Ok(())
    }
    async fn delete_network(&self, req: NetworkRequest) -> Result<()> {
        self.0
            .record(format!("DeleteNetwork {}", &req.network_id[..4]));
        Ok(())
    }
    async fn create_endpoint(&self, req: CreateEndpointRequest) -> Result<CreateEndpointResponse> {
        let o = &req.options;
        self.0.record(format!(
            "CreateEndpoint {:?} exposed={:?} portmap={:?} mac={:?} dns={:?}",
            req.interface,
            o.exposed_ports()?,
            o.port_map()?,
            o.mac_address()?.map(|m| m.to_string()),
            o.dns_servers()?,
        ));
        // Always offers its own addresses: only what dockerd left empty may be sent.
        Ok(req
            .interface
            .fill()
            .address("10.99.0.200/24".parse()?)
            .address_ipv6("fd00:99::200/64".parse()?)
            .mac_address(MacAddress::new([2, 0, 0, 0, 0, 0xc8]))
            .into_response())
    }
    async fn delete_endpoint(&self, req: EndpointRequest) -> Result<()> {
        self.0
            .record(format!("DeleteEndpoint {}", &req.endpoint_id[..4]));
        Ok(())
    }
    async fn join(&self, req: JoinRequest) -> Result<JoinResponse> {
        self.0.record(format!(
            "Join {} exposed={:?}",
            req.sandbox_key,
            req.options.exposed_ports()?
        ));
        Ok(JoinResponse {
            gateway: Some("10.99.0.1".parse()?),
            static_routes: vec![
                StaticRoute::via("10.100.0.0/16".parse()?, "10.99.0.254".parse()?),
                StaticRoute::connected("10.101.0.0/16".parse()?),
            ],
            ..JoinResponse::new(InterfaceName::new("veth9f8e7d6", "eth"))
        })
    }
    async fn leave(&self, req: EndpointRequest) -> Result<()> {
        self.0.record(format!("Leave {}", &req.endpoint_id[..4]));
        Ok(())
    }
}

/// An IPAM driver that fails RequestPool without `--subnet`.
pub struct Addrs;

#[async_trait]
impl ipam::Driver for Addrs {
    async fn get_default_address_spaces(&self) -> Result<ipam::AddressSpacesResponse> {
        Ok(ipam::AddressSpacesResponse {
            local_default_address_space: "local".into(),
            global_default_address_space: "global".into(),
        })
    }
    async fn request_pool(
        &self,
        req: ipam::RequestPoolRequest,
    ) -> Result<ipam::RequestPoolResponse> {
        let pool = req
            .pool
            .ok_or_else(|| Error::new("no pool left: give --subnet"))?;
        Ok(
            ipam::RequestPoolResponse::new(format!("{}/{pool}", req.address_space), pool)
                .gateway(pool.with_addr("10.99.0.1".parse()?)?),
        )
    }
    async fn release_pool(&self, _: ipam::ReleasePoolRequest) -> Result<()> {
        Ok(())
    }
    async fn request_address(
        &self,
        req: ipam::RequestAddressRequest,
    ) -> Result<ipam::RequestAddressResponse> {
        let pool: Cidr = req.pool_id.trim_start_matches("local/").parse()?;
        let addr = match (req.address, req.is_gateway(), req.mac_address()?) {
            (Some(asked), _, _) => asked,
            (None, true, _) => "10.99.0.1".parse()?,
            (None, false, Some(mac)) => format!("10.99.0.{}", mac.octets()[5]).parse()?,
            (None, false, None) => "10.99.0.2".parse()?,
        };
        Ok(ipam::RequestAddressResponse::new(pool.with_addr(addr)?))
    }
    async fn release_address(&self, _: ipam::ReleaseAddressRequest) -> Result<()> {
        Ok(())
    }
}

/// Volume, network and IPAM served from one process, on one socket.
pub async fn server() -> (TestServer, Arc<Net>) {
    let net = Arc::new(Net::default());
    let volumes = Arc::new(Recorder::default());
    let dir = tempfile::tempdir().unwrap();
    let listener = UnixSocket::new("test").dir(dir.path()).bind().unwrap();
    let plugin = Plugin::new()
        .volume(Shared(Arc::clone(&volumes)))
        .network(NetDriver(Arc::clone(&net)))
        .ipam(Addrs);
    (TestServer::serve(dir, listener, plugin, volumes), net)
}

/// Posts `body` (dockerd's JSON and `\n`) to `method`.
pub async fn post(client: &Client, method: &str, body: Value) -> RawResponse {
    client.call_raw(method, format!("{body}\n")).await.unwrap()
}

pub fn log(net: &Net) -> Vec<String> {
    std::mem::take(&mut *net.log.lock().unwrap())
}
