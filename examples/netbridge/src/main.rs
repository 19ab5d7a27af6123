//! `netbridge`: a network plugin making a Linux bridge per network and a veth pair
//! per container, through rtnetlink. `state.rs` holds what it made and the
//! reconciliation at start, `links.rs` the netlink calls, `driver.rs` the network
//! driver (the library, `lib.rs`); this file is the command line, in the crate's own idioms
//! (`#[docker_plugin_sdk::main]`, `ListenArgs`). It needs CAP_NET_ADMIN (root).
//!
//! ```text
//! sudo cargo run -p netbridge -- --state /var/lib/netbridge/networks.json
//! docker network create -d netbridge --ipam-driver poolipam --subnet 10.99.0.0/24 net1
//! docker run -d --name a --network net1 busybox sleep 600
//! docker run --rm --network net1 busybox ping -c1 10.99.0.2
//! ```
//!
//! As a managed plugin: `cargo docker-plugin package -p netbridge` (see Cargo.toml's
//! `[package.metadata.docker-plugin]`: host network, CAP_NET_ADMIN).
//!
//! Options (`--help`):
//!   --state FILE   what netbridge made (default /var/lib/netbridge/networks.json)
//!   and the listen flags of every plugin (--name netbridge, --socket-dir, …).

use std::path::PathBuf;

use docker_plugin_sdk::Plugin;
use docker_plugin_sdk::args::{ArgsError, Flags};
use docker_plugin_sdk::state::Store;
use docker_plugin_sdk::transport::ListenArgs;
use netbridge::{driver, links};

/// The listen flags and the state file.
fn parse_args() -> Result<(ListenArgs, PathBuf), ArgsError> {
    let usage = format!(
        "usage: netbridge [--state FILE] {}\n\n  \
         --state FILE          what netbridge made (default /var/lib/netbridge/networks.json)\n{}",
        ListenArgs::USAGE,
        ListenArgs::HELP
    );
    let mut listen = ListenArgs::new("netbridge");
    let mut state = PathBuf::from("/var/lib/netbridge/networks.json");
    let mut flags = Flags::from_env(usage);
    while let Some(flag) = flags.next_flag()? {
        match flag.as_str() {
            "--state" => state = flags.value()?.into(),
            _ => listen.parse_flag(&mut flags)?,
        }
    }
    listen.check()?;
    Ok((listen, state))
}

#[docker_plugin_sdk::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (listen, state) = parse_args().unwrap_or_else(|err| err.exit("netbridge"));
    // A second instance on the same file fails here, naming the file.
    let networks = Store::open(&state).await?;
    let links = links::Links::connect()?;
    // Before serving: what a stopped plugin left under way is finished first.
    let driver = driver::Bridges::start(links, networks)
        .await
        .map_err(|err| format!("reconciling {}: {}", state.display(), err.message()))?;
    let (listener, spec) = listen.bind()?;
    let mut server = Plugin::new().network(driver).server(listener);
    if let Some(spec) = spec {
        server = server.spec_file(spec);
    }
    // Serves until SIGTERM or SIGINT, then removes its socket and spec file.
    server.run().await?;
    Ok(())
}
