//! The container side of the network service, as libnetwork's (moby v20.10.24
//! `vendor/github.com/docker/libnetwork/network.go` `createEndpoint`, `endpoint.go`
//! `sbJoin`/`sbLeave`/`Delete`, `drivers/remote/driver.go`;
//! `daemon/container_operations.go` `connectToNetwork`): a container's endpoint on a
//! network, its Join and the interface moved into its sandbox, and the way back.

use std::collections::HashMap;

use super::sandbox::{self, InterfacePlan, Sandbox};
use super::{ContainerEndpoint, Network, NetworkUse, Networks};
use crate::harness::error::HarnessError;
use crate::harness::ids::random_id;
use crate::network::{
    self, CreateEndpointRequest, EndpointInterface, EndpointRequest, JoinRequest, MAC_ADDRESS,
    MacAddress, Options, ProgramExternalConnectivityRequest,
};

impl Networks {
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
        // The sandbox's labels (exposed ports, port map) go to Join and
        // ProgramExternalConnectivity (`endpoint.go` `sbJoin`: `sb.Labels()`); the
        // endpoint's options add the MAC address given, for CreateEndpoint only (as
        // recorded in `network_run_mac`).
        let labels = Options::new()
            .with(network::EXPOSED_PORTS, serde_json::json!([]))
            .with(network::PORT_MAP, serde_json::json!([]));
        let options = match mac {
            Some(m) if use_.mac.is_some() => labels
                .clone()
                .with(MAC_ADDRESS, serde_json::json!(base64_mac(m))),
            _ => labels.clone(),
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
            options,
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
            .join(&network, &mut endpoint, container_id, labels, sandbox)
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
