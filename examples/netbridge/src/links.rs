//! The kernel's side: bridges, veth pairs and addresses made and removed through
//! rtnetlink (no `ip` command). Each operation is idempotent, as dockerd may call
//! again after a failure and the reconciliation at start replays what was under way:
//! creating what exists, or deleting what is gone, succeeds.

use std::collections::BTreeMap;
use std::io;

use docker_plugin_sdk::network::{Cidr, MacAddress};
use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth};

use crate::state::{Observed, Seen};

/// `ENODEV`, `EEXIST`, `EPERM`: the kernel's answers the driver handles.
const ENODEV: i32 = 19;
const EEXIST: i32 = 17;
const EPERM: i32 = 1;

/// A netlink operation that failed: what was being done, to which link, and why.
#[derive(Debug, thiserror::Error)]
#[error("{action} {name}: {problem}")]
pub struct LinkError {
    action: &'static str,
    name: String,
    problem: String,
}

impl LinkError {
    fn new(action: &'static str, name: &str, err: &rtnetlink::Error) -> Self {
        let problem = match code(err) {
            Some(EPERM) => {
                "operation not permitted: netbridge needs CAP_NET_ADMIN (run it as root, \
                            or grant the capability to the managed plugin)"
                    .to_owned()
            }
            Some(errno) => io::Error::from_raw_os_error(errno).to_string(),
            None => err.to_string(),
        };
        Self {
            action,
            name: name.to_owned(),
            problem,
        }
    }
}

/// The positive errno of a netlink error, if it is one.
fn code(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(msg) => Some(-msg.raw_code()),
        _ => None,
    }
}

/// A netlink connection to the host's network namespace.
#[derive(Clone)]
pub struct Links {
    handle: Handle,
}

impl Links {
    /// Opens the connection; its task runs on the current tokio runtime.
    pub fn connect() -> io::Result<Self> {
        let (connection, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(connection);
        Ok(Self { handle })
    }

    /// The link named `name`, if it exists.
    async fn find(&self, name: &str) -> Result<Option<LinkMessage>, LinkError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match links.try_next().await {
            Ok(link) => Ok(link),
            Err(err) if code(&err) == Some(ENODEV) => Ok(None),
            Err(err) => Err(LinkError::new("looking up", name, &err)),
        }
    }

    /// The index of the link named `name`, which must exist.
    async fn index(&self, name: &str) -> Result<u32, LinkError> {
        match self.find(name).await? {
            Some(link) => Ok(link.header.index),
            None => Err(LinkError {
                action: "looking up",
                name: name.to_owned(),
                problem: "no such link".to_owned(),
            }),
        }
    }

    /// Creates bridge `name` unless it exists, adds `gateways` to it (those it has
    /// stay) and brings it up.
    pub async fn ensure_bridge(&self, name: &str, gateways: &[Cidr]) -> Result<(), LinkError> {
        if self.find(name).await?.is_none() {
            let created = self
                .handle
                .link()
                .add(LinkBridge::new(name).build())
                .execute()
                .await;
            existing_is_fine(created, "creating bridge", name)?;
        }
        let index = self.index(name).await?;
        for gateway in gateways {
            let added = self
                .handle
                .address()
                .add(index, gateway.addr(), gateway.prefix_len())
                .execute()
                .await;
            existing_is_fine(added, "adding the gateway to", name)?;
        }
        self.set(name, LinkUnspec::new_with_index(index).up().build())
            .await
    }

    /// Creates the veth pair `veth`/`peer` (replacing a stale one), `veth` up as a port
    /// of `bridge`, `peer` with `mac` (dockerd brings it up in the container).
    pub async fn create_veth(
        &self,
        veth: &str,
        peer: &str,
        bridge: &str,
        mac: Option<MacAddress>,
    ) -> Result<(), LinkError> {
        self.delete(veth).await?;
        self.delete(peer).await?;
        let created = self
            .handle
            .link()
            .add(LinkVeth::new(veth, peer).build())
            .execute()
            .await;
        if let Err(err) = created {
            return Err(LinkError::new("creating veth pair", veth, &err));
        }
        if let Some(mac) = mac {
            let peer_index = self.index(peer).await?;
            let message = LinkUnspec::new_with_index(peer_index)
                .address(mac.octets().to_vec())
                .build();
            self.set(peer, message).await?;
        }
        self.attach(veth, bridge).await
    }

    /// Makes the existing `veth` a port of `bridge`, up.
    pub async fn attach(&self, veth: &str, bridge: &str) -> Result<(), LinkError> {
        let bridge_index = self.index(bridge).await?;
        let index = self.index(veth).await?;
        let message = LinkUnspec::new_with_index(index)
            .controller(bridge_index)
            .up()
            .build();
        self.set(veth, message).await
    }

    /// Deletes link `name`; `false` when there was none.
    pub async fn delete(&self, name: &str) -> Result<bool, LinkError> {
        let Some(link) = self.find(name).await? else {
            return Ok(false);
        };
        match self.handle.link().del(link.header.index).execute().await {
            Ok(()) => Ok(true),
            Err(err) if code(&err) == Some(ENODEV) => Ok(false),
            Err(err) => Err(LinkError::new("deleting", name, &err)),
        }
    }

    /// Which of `names` exist, and the bridge each is a port of.
    pub async fn observe(&self, names: &[String]) -> Result<Observed, LinkError> {
        let mut dump = self.handle.link().get().execute();
        let mut links: Vec<(u32, String, Option<u32>)> = Vec::new();
        loop {
            match dump.try_next().await {
                Ok(Some(link)) => links.push(describe(&link)),
                Ok(None) => break,
                Err(err) => return Err(LinkError::new("listing", "links", &err)),
            }
        }
        let by_index: BTreeMap<u32, String> =
            links.iter().map(|(i, n, _)| (*i, n.clone())).collect();
        Ok(links
            .into_iter()
            .filter(|(_, name, _)| names.contains(name))
            .map(|(_, name, master)| {
                let master = master.and_then(|m| by_index.get(&m).cloned());
                (name, Seen { master })
            })
            .collect())
    }

    async fn set(&self, name: &str, message: LinkMessage) -> Result<(), LinkError> {
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(|err| LinkError::new("configuring", name, &err))
    }
}

/// `result`, an "already exists" counting as done (the operation is a retry).
fn existing_is_fine(
    result: Result<(), rtnetlink::Error>,
    action: &'static str,
    name: &str,
) -> Result<(), LinkError> {
    match result {
        Err(err) if code(&err) != Some(EEXIST) => Err(LinkError::new(action, name, &err)),
        _ => Ok(()),
    }
}

/// A link's index, name and controller's index.
fn describe(link: &LinkMessage) -> (u32, String, Option<u32>) {
    let mut name = String::new();
    let mut master = None;
    for attribute in &link.attributes {
        match attribute {
            LinkAttribute::IfName(n) => name = n.clone(),
            LinkAttribute::Controller(m) => master = Some(*m),
            _ => {}
        }
    }
    (link.header.index, name, master)
}
