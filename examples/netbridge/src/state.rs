//! What netbridge has made, kept in the SDK's state store, and what to do about it
//! at start: the part of the driver that has no netlink in it, so it is unit-tested.
//!
//! Every change is written down **before** the link is touched: a network or endpoint
//! is recorded before its bridge or veth pair is created, and marked `deleting`
//! before they are deleted, then forgotten. A plugin killed at any point leaves a
//! state that names every link it may have made, and [`plan`] turns that state and
//! the links that exist into the actions that finish the job: recreate a missing
//! bridge (a host reboot), reattach a veth to its recreated bridge, finish a
//! deletion. Nothing is orphaned, and links netbridge did not record are never
//! touched (other plugins, other instances).

use std::collections::BTreeMap;

use docker_plugin_sdk::network::{Cidr, MacAddress, StaticRoute};
use serde::{Deserialize, Serialize};

/// Every network netbridge manages, by network ID.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Networks {
    /// Network ID → network.
    pub networks: BTreeMap<String, Network>,
}

/// A network: a Linux bridge carrying its gateways.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// The bridge's name.
    pub bridge: String,
    /// The gateway addresses, set on the bridge (CIDRs: address and pool prefix).
    pub gateways: Vec<Cidr>,
    /// The network's pools, for the routes of its containers.
    pub pools: Vec<Cidr>,
    /// `--internal`: no default route in the containers.
    pub internal: bool,
    /// Being deleted: its links go, then it is forgotten.
    pub deleting: bool,
    /// Endpoint ID → endpoint.
    pub endpoints: BTreeMap<String, Endpoint>,
}

/// An endpoint: a veth pair, `veth` on the bridge, `peer` moved into the container
/// by dockerd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The host end, a port of the bridge.
    pub veth: String,
    /// The end dockerd moves into the container (and renames `eth0`, …).
    pub peer: String,
    /// The endpoint's addresses (dockerd's, from the IPAM driver).
    pub addresses: Vec<Cidr>,
    /// The endpoint's MAC address (dockerd's, or the one netbridge filled in).
    pub mac: Option<MacAddress>,
    /// Being deleted: its veth goes, then it is forgotten.
    pub deleting: bool,
}

/// The names of a network's and an endpoint's links: a prefix and the first hex
/// digits of the ID, within Linux's 15 characters (`IFNAMSIZ` less the NUL).
pub fn bridge_name(network_id: &str) -> String {
    format!("nb-{}", short(network_id))
}

/// The host end of an endpoint's veth pair.
pub fn veth_name(endpoint_id: &str) -> String {
    format!("nbh-{}", short(endpoint_id))
}

/// The container end of an endpoint's veth pair.
pub fn peer_name(endpoint_id: &str) -> String {
    format!("nbc-{}", short(endpoint_id))
}

/// 11 characters of an ID (dockerd's are 64 hex digits): with a 4-character prefix,
/// 15 in all.
fn short(id: &str) -> String {
    id.chars().take(11).collect()
}

/// What exists of a link, as the kernel says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The bridge the link is a port of, by name.
    pub master: Option<String>,
}

/// The links that exist among those the state names: name → what it is attached to.
pub type Observed = BTreeMap<String, Seen>;

/// One step of reconciling the state with the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create the bridge if missing, give it its gateways, bring it up.
    EnsureBridge {
        /// The bridge.
        bridge: String,
        /// Its addresses.
        gateways: Vec<Cidr>,
    },
    /// Make the existing `veth` a port of `bridge` again (the bridge was recreated).
    Attach {
        /// The host end of a veth pair.
        veth: String,
        /// Its bridge.
        bridge: String,
    },
    /// Delete a link (a veth pair goes with either end).
    Delete(String),
    /// Forget an endpoint whose deletion is finished.
    ForgetEndpoint {
        /// Its network.
        network: String,
        /// The endpoint.
        endpoint: String,
    },
    /// Forget a network whose deletion is finished.
    ForgetNetwork(String),
}

impl Networks {
    /// Every link name the state mentions: what to look up before [`plan`].
    pub fn link_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for network in self.networks.values() {
            names.push(network.bridge.clone());
            names.extend(network.endpoints.values().map(|e| e.veth.clone()));
        }
        names
    }
}

/// What to do at start so that the links match the state: finish every deletion that
/// was under way, make sure every live network's bridge is there with its gateways,
/// and reattach veths whose bridge was recreated. Veths of live endpoints are left as
/// they are: the host end of a running container's endpoint, or one Join recreates.
pub fn plan(state: &Networks, seen: &Observed) -> Vec<Action> {
    let mut actions = Vec::new();
    for (id, network) in &state.networks {
        if network.deleting {
            for endpoint in network.endpoints.values() {
                if seen.contains_key(&endpoint.veth) {
                    actions.push(Action::Delete(endpoint.veth.clone()));
                }
            }
            if seen.contains_key(&network.bridge) {
                actions.push(Action::Delete(network.bridge.clone()));
            }
            actions.push(Action::ForgetNetwork(id.clone()));
            continue;
        }
        actions.push(Action::EnsureBridge {
            bridge: network.bridge.clone(),
            gateways: network.gateways.clone(),
        });
        for (endpoint_id, endpoint) in &network.endpoints {
            let veth = seen.get(&endpoint.veth);
            if endpoint.deleting {
                if veth.is_some() {
                    actions.push(Action::Delete(endpoint.veth.clone()));
                }
                actions.push(Action::ForgetEndpoint {
                    network: id.clone(),
                    endpoint: endpoint_id.clone(),
                });
            } else if let Some(veth) = veth
                && veth.master.as_deref() != Some(&network.bridge)
            {
                actions.push(Action::Attach {
                    veth: endpoint.veth.clone(),
                    bridge: network.bridge.clone(),
                });
            }
        }
    }
    actions
}

/// Connected routes to the network's pools that hold none of the endpoint's
/// addresses: the kernel routes the pool of each address itself (dockerd adding that
/// route again would fail the Join with "file exists").
pub fn routes_to_other_pools(network: &Network, endpoint: &Endpoint) -> Vec<StaticRoute> {
    network
        .pools
        .iter()
        .filter(|pool| !endpoint.addresses.iter().any(|a| pool.contains(a.addr())))
        .map(|pool| StaticRoute::connected(pool.network()))
        .collect()
}

/// The MAC address libnetwork's bridge driver gives an endpoint without one:
/// `02:42` and the IPv4 address (moby v20.10.24
/// `vendor/github.com/docker/libnetwork/netutils/utils.go` `GenerateMACFromIP`).
pub fn mac_from_ip(ip: std::net::Ipv4Addr) -> MacAddress {
    let [a, b, c, d] = ip.octets();
    MacAddress::new([0x02, 0x42, a, b, c, d])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(deleting: bool, endpoints: &[(&str, bool)]) -> Network {
        Network {
            bridge: bridge_name("aaaa0000000000"),
            gateways: vec!["10.99.0.1/24".parse().unwrap()],
            pools: vec!["10.99.0.0/24".parse().unwrap()],
            internal: false,
            deleting,
            endpoints: endpoints
                .iter()
                .map(|(id, deleting)| {
                    (
                        (*id).to_owned(),
                        Endpoint {
                            veth: veth_name(id),
                            peer: peer_name(id),
                            addresses: vec![],
                            mac: None,
                            deleting: *deleting,
                        },
                    )
                })
                .collect(),
        }
    }

    fn state(net: Network) -> Networks {
        Networks {
            networks: [("aaaa0000000000".to_owned(), net)].into(),
        }
    }

    fn seen(links: &[(&str, Option<&str>)]) -> Observed {
        links
            .iter()
            .map(|(name, master)| {
                (
                    (*name).to_owned(),
                    Seen {
                        master: master.map(str::to_owned),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn names_fit_linux_s_fifteen_characters() {
        let id = "4e1c6d2f9a0b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d";
        assert_eq!(bridge_name(id), "nb-4e1c6d2f9a0");
        assert_eq!(veth_name(id), "nbh-4e1c6d2f9a0");
        assert_eq!(peer_name(id), "nbc-4e1c6d2f9a0");
        assert!(
            [bridge_name(id), veth_name(id), peer_name(id)]
                .iter()
                .all(|n| n.len() <= 15)
        );
    }

    #[test]
    fn a_live_network_gets_its_bridge_back_and_its_veths_reattached() {
        let state = state(network(
            false,
            &[("e1", false), ("e2", false), ("e3", false)],
        ));
        let bridge = bridge_name("aaaa0000000000");
        // After a reboot-like loss of the bridge: e1's veth exists without a master,
        // e2's is still on the bridge, e3 has none (its container is gone).
        let actions = plan(
            &state,
            &seen(&[(&veth_name("e1"), None), (&veth_name("e2"), Some(&bridge))]),
        );
        assert_eq!(
            actions,
            [
                Action::EnsureBridge {
                    bridge: bridge.clone(),
                    gateways: vec!["10.99.0.1/24".parse().unwrap()],
                },
                Action::Attach {
                    veth: veth_name("e1"),
                    bridge,
                },
            ]
        );
    }

    #[test]
    fn an_interrupted_network_deletion_is_finished_and_leaves_no_link() {
        let state = state(network(true, &[("e1", false), ("e2", true)]));
        let bridge = bridge_name("aaaa0000000000");
        let actions = plan(
            &state,
            &seen(&[(&veth_name("e1"), Some(&bridge)), (&bridge, None)]),
        );
        assert_eq!(
            actions,
            [
                Action::Delete(veth_name("e1")),
                Action::Delete(bridge),
                Action::ForgetNetwork("aaaa0000000000".into()),
            ]
        );
        // Already gone from the kernel: only forgotten.
        assert_eq!(
            plan(&state, &Observed::new()),
            [Action::ForgetNetwork("aaaa0000000000".into())]
        );
    }

    #[test]
    fn an_interrupted_endpoint_deletion_is_finished() {
        let state = state(network(false, &[("e1", true)]));
        let actions = plan(&state, &seen(&[(&veth_name("e1"), None)]));
        assert_eq!(
            actions[1..],
            [
                Action::Delete(veth_name("e1")),
                Action::ForgetEndpoint {
                    network: "aaaa0000000000".into(),
                    endpoint: "e1".into(),
                },
            ]
        );
    }

    #[test]
    fn the_state_names_every_link_it_may_have_made_and_survives_json() {
        let state = state(network(false, &[("e1", false)]));
        assert_eq!(
            state.link_names(),
            [bridge_name("aaaa0000000000"), veth_name("e1")]
        );
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(serde_json::from_str::<Networks>(&json).unwrap(), state);
    }

    #[test]
    fn containers_get_routes_to_the_pools_their_addresses_are_not_in() {
        let mut net = network(false, &[("e1", false)]);
        net.pools.push("10.98.0.0/24".parse().unwrap());
        let mut endpoint = net.endpoints["e1"].clone();
        endpoint.addresses = vec!["10.98.0.7/24".parse().unwrap()];
        let routes = routes_to_other_pools(&net, &endpoint);
        assert_eq!(
            serde_json::to_string(&routes).unwrap(),
            r#"[{"Destination":"10.99.0.0/24","RouteType":1,"NextHop":""}]"#
        );
        endpoint.addresses.push("10.99.0.7/24".parse().unwrap());
        assert!(routes_to_other_pools(&net, &endpoint).is_empty());
    }

    #[test]
    fn a_mac_is_made_from_the_ipv4_address_as_libnetwork_does() {
        assert_eq!(
            mac_from_ip([10, 99, 0, 2].into()).to_string(),
            "02:42:0a:63:00:02"
        );
    }
}
