//! The drivers of `{{project-name}}`: {{description}}
//!
//! One process serves both (dockerd finds them in `Implements`):
//!
//! - [`Bridges`], the network driver: a Linux bridge per network with the gateway on
//!   it, and a veth pair per container, its host end a port of the bridge, its other
//!   end handed to dockerd by Join, which moves it into the container as `eth0` with
//!   the address the IPAM driver gave;
//! - [`Pools`], the IPAM driver: each network's subnet (`--subnet`, required) and the
//!   addresses given out in it, never one twice.
//!
//! Each keeps what it made in the SDK's `state::Store`, a JSON file saved crash-safe
//! before dockerd gets its answer: a restarted plugin still knows its networks,
//! endpoints and addresses.
//!
//! dockerd calls both concurrently (two containers starting): links are made by
//! iproute2's `ip` run as a `tokio::process` child (see `ip.rs`), so no call blocks
//! the others.

mod ip;
mod ipam;
mod network;

pub use ipam::{Allocations, Pools};
pub use network::{Bridges, Endpoint, Network, Networks};

use docker_plugin_sdk::DriverOptions;

/// The `-o key=value` options of `docker network create -d {{project-name}}`.
#[derive(Debug, DriverOptions)]
pub struct NetworkOptions {
    /// The MTU of the bridge and of every veth pair on it.
    #[opt(default = "1500")]
    pub mtu: u16,
}
