//! `poolipam`: an IPAM plugin that hands out pools and addresses from configured
//! ranges and remembers them across restarts. `allocator.rs` holds the rules,
//! `driver.rs` the IPAM driver around the SDK's state store; this file is the command
//! line, in the crate's own idioms (`#[docker_plugin_sdk::main]`, `ListenArgs`).
//!
//! ```text
//! sudo cargo run -p poolipam -- --state /var/lib/poolipam/allocations.json
//! docker network create -d netbridge --ipam-driver poolipam --subnet 10.99.0.0/24 net1
//! docker network create -d netbridge --ipam-driver poolipam net2   # a /24 of --pool
//! docker run --rm --network net1 --ip 10.99.0.50 busybox ip addr
//! ```
//!
//! As a managed plugin: `cargo docker-plugin package -p poolipam` (see Cargo.toml's
//! `[package.metadata.docker-plugin]`).
//!
//! Options (`--help`):
//!   --state FILE   the allocations (default /var/lib/poolipam/allocations.json)
//!   --pool CIDR    where networks without --subnet come from (repeatable;
//!                  default 10.210.0.0/16)
//!   --size BITS    the prefix length of those networks (default 24)
//!   and the listen flags of every plugin (--name poolipam, --socket-dir, …).

mod allocator;
mod driver;

use std::path::PathBuf;

use docker_plugin_sdk::Plugin;
use docker_plugin_sdk::args::{ArgsError, Flags};
use docker_plugin_sdk::network::Cidr;
use docker_plugin_sdk::state::Store;
use docker_plugin_sdk::transport::ListenArgs;

use allocator::Config;

/// The listen flags, the state file and the pool configuration.
fn parse_args() -> Result<(ListenArgs, PathBuf, Config), ArgsError> {
    let usage = format!(
        "usage: poolipam [--state FILE] [--pool CIDR]... [--size BITS] {}\n\n  \
         --state FILE          the allocations (default /var/lib/poolipam/allocations.json)\n  \
         --pool CIDR           where networks without --subnet come from (repeatable; default 10.210.0.0/16)\n  \
         --size BITS           the prefix length of those networks (default 24)\n{}",
        ListenArgs::USAGE,
        ListenArgs::HELP
    );
    let mut listen = ListenArgs::new("poolipam");
    let mut state = PathBuf::from("/var/lib/poolipam/allocations.json");
    let mut pools: Vec<Cidr> = Vec::new();
    let mut size = 24u8;
    let mut flags = Flags::from_env(usage);
    while let Some(flag) = flags.next_flag()? {
        match flag.as_str() {
            "--state" => state = flags.value()?.into(),
            "--pool" => pools.push(flags.parse("a CIDR such as 10.210.0.0/16")?),
            "--size" => {
                size = flags.parse_with("a prefix length from 1 to 128, such as 24", |v| {
                    v.parse().ok().filter(|n| (1..=128).contains(n))
                })?
            }
            _ => listen.parse_flag(&mut flags)?,
        }
    }
    listen.check()?;
    if pools.is_empty() {
        pools.push("10.210.0.0/16".parse().expect("a valid CIDR"));
    }
    Ok((listen, state, Config { pools, size }))
}

#[docker_plugin_sdk::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (listen, state, config) = parse_args().unwrap_or_else(|err| err.exit("poolipam"));
    // A second instance on the same file fails here, naming the file.
    let allocations = Store::open(&state).await?;
    let driver = driver::PoolIpam::new(config, allocations);
    let (listener, spec) = listen.bind()?;
    let mut server = Plugin::new().ipam(driver).server(listener);
    if let Some(spec) = spec {
        server = server.spec_file(spec);
    }
    // Serves until SIGTERM or SIGINT, then removes its socket and spec file.
    server.run().await?;
    Ok(())
}
