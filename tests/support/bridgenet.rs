//! A small network driver built on the SDK's `network::Driver`, for the harness's
//! root tests: a Linux bridge per network (the gateway on it), a veth pair per
//! endpoint (the host end a port of the bridge, the peer handed to Join for the
//! harness to move into the container's namespace), through rtnetlink. It keeps its
//! state in memory only; the example plugin (`examples/netbridge`) is the real one.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::Mutex;

use docker_plugin_sdk::network::{self, *};
use docker_plugin_sdk::transport::UnixSocket;
use docker_plugin_sdk::{CancellationToken, Error, Plugin, Result, async_trait};
use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::LinkMessage;
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth};

/// The bridge made for network `nid`.
pub fn bridge_name(nid: &str) -> String {
    format!("tbr{}", &nid[..8])
}

/// The host end and the peer of the veth pair made for endpoint `eid`.
pub fn veth_names(eid: &str) -> (String, String) {
    (format!("tve{}", &eid[..8]), format!("tvp{}", &eid[..8]))
}

/// Whether a link named `name` exists in this thread's network namespace.
pub fn link_exists(name: &str) -> bool {
    let name = std::ffi::CString::new(name).unwrap();
    // SAFETY: a NUL-terminated name; if_nametoindex only reads it.
    unsafe { libc::if_nametoindex(name.as_ptr()) != 0 }
}

fn failed(action: &str, name: &str, err: rtnetlink::Error) -> Error {
    Error::new(format!("{action} {name}: {err}"))
}

/// The driver: each network's gateway, kept for Join.
pub struct BridgeNet {
    handle: Handle,
    gateways: Mutex<HashMap<String, Option<Cidr>>>,
}

impl BridgeNet {
    /// Opens the rtnetlink connection on the current runtime.
    pub fn new() -> io::Result<Self> {
        let (connection, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(connection);
        Ok(Self {
            handle,
            gateways: Mutex::default(),
        })
    }

    async fn find(&self, name: &str) -> Option<LinkMessage> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        links.try_next().await.ok().flatten()
    }

    async fn index(&self, name: &str) -> Result<u32> {
        self.find(name)
            .await
            .map(|link| link.header.index)
            .ok_or_else(|| Error::new(format!("no link {name}")))
    }

    async fn up(&self, message: LinkMessage, name: &str) -> Result<()> {
        let set = self.handle.link().set(message).execute().await;
        set.map_err(|e| failed("configuring", name, e))
    }

    async fn delete(&self, name: &str) -> Result<()> {
        if let Some(link) = self.find(name).await {
            let deleted = self.handle.link().del(link.header.index).execute().await;
            deleted.map_err(|e| failed("deleting", name, e))?;
        }
        Ok(())
    }
}

#[async_trait]
impl network::Driver for BridgeNet {
    async fn get_capabilities(&self) -> Result<CapabilitiesResponse> {
        Ok(CapabilitiesResponse::scope(Scope::Local))
    }

    async fn create_network(&self, req: CreateNetworkRequest) -> Result<()> {
        let bridge = bridge_name(&req.network_id);
        let added = self
            .handle
            .link()
            .add(LinkBridge::new(&bridge).build())
            .execute()
            .await;
        added.map_err(|e| failed("creating bridge", &bridge, e))?;
        let index = self.index(&bridge).await?;
        let gateway = req.ipv4_data.first().and_then(|d| d.gateway);
        if let Some(gw) = gateway {
            let added = self
                .handle
                .address()
                .add(index, gw.addr(), gw.prefix_len())
                .execute()
                .await;
            added.map_err(|e| failed("adding the gateway to", &bridge, e))?;
        }
        self.up(LinkUnspec::new_with_index(index).up().build(), &bridge)
            .await?;
        self.gateways
            .lock()
            .unwrap()
            .insert(req.network_id, gateway);
        Ok(())
    }

    async fn delete_network(&self, req: NetworkRequest) -> Result<()> {
        self.gateways.lock().unwrap().remove(&req.network_id);
        self.delete(&bridge_name(&req.network_id)).await
    }

    async fn create_endpoint(&self, req: CreateEndpointRequest) -> Result<CreateEndpointResponse> {
        let (veth, peer) = veth_names(&req.endpoint_id);
        let added = self
            .handle
            .link()
            .add(LinkVeth::new(&veth, &peer).build())
            .execute()
            .await;
        added.map_err(|e| failed("creating veth pair", &veth, e))?;
        let bridge = self.index(&bridge_name(&req.network_id)).await?;
        let index = self.index(&veth).await?;
        let port = LinkUnspec::new_with_index(index)
            .controller(bridge)
            .up()
            .build();
        self.up(port, &veth).await?;
        // dockerd gave the address: it is not sent back.
        Ok(CreateEndpointResponse::unchanged())
    }

    async fn delete_endpoint(&self, req: EndpointRequest) -> Result<()> {
        // Deleting one end deletes the pair.
        self.delete(&veth_names(&req.endpoint_id).0).await
    }

    async fn join(&self, req: JoinRequest) -> Result<JoinResponse> {
        let gateway = self
            .gateways
            .lock()
            .unwrap()
            .get(&req.network_id)
            .copied()
            .flatten();
        Ok(JoinResponse {
            gateway: gateway.map(|g| g.addr()),
            ..JoinResponse::new(InterfaceName::new(veth_names(&req.endpoint_id).1, "eth"))
        })
    }

    async fn leave(&self, _: EndpointRequest) -> Result<()> {
        Ok(())
    }
}

/// Serves [`BridgeNet`] as plugin `name` on `socket_dir/NAME.sock` until `stop`.
pub fn serve(socket_dir: &Path, name: &str, stop: CancellationToken) -> io::Result<()> {
    std::fs::create_dir_all(socket_dir)?;
    let listener = UnixSocket::new(name)
        .dir(socket_dir)
        .bind()
        .map_err(io::Error::other)?;
    let plugin = Plugin::new().network(BridgeNet::new()?);
    tokio::spawn(plugin.server(listener).shutdown_on(stop).run());
    Ok(())
}
