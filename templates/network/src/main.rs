//! `{{project-name}}`: {{description}}
//!
//! ```text
//! sudo {{project-name}} --state-dir /var/lib/{{project-name}}
//! docker network create -d {{project-name}} --ipam-driver {{project-name}} --subnet 10.99.0.0/24 net1
//! docker run --rm --network net1 busybox ip address show eth0
//! ```
//!
//! Options: `--state-dir DIR` (where the state files live) and the listen flags every
//! plugin built on docker-plugin-sdk takes (`--name`, `--socket-dir`,
//! `--socket-mode`, `--socket-group`, `--tcp` with `--spec-dir`, `--systemd`);
//! `--help` lists them. Logs go to stderr, filtered by RUST_LOG (default info). It
//! needs CAP_NET_ADMIN (root) and iproute2's `ip`.

use std::path::PathBuf;

use docker_plugin_sdk::Plugin;
use docker_plugin_sdk::args::{ArgsError, Flags};
use docker_plugin_sdk::transport::ListenArgs;
use {{crate_name}}::{Bridges, Pools};

/// The listen flags, and where the state files live.
fn parse_args() -> Result<(ListenArgs, PathBuf), ArgsError> {
    let usage = format!(
        "usage: {{project-name}} [--state-dir DIR] {}\n\n  \
         --state-dir DIR       where the state files live (default /var/lib/{{project-name}})\n{}",
        ListenArgs::USAGE,
        ListenArgs::HELP
    );
    let mut listen = ListenArgs::new("{{project-name}}");
    let mut state_dir = PathBuf::from("/var/lib/{{project-name}}");
    let mut flags = Flags::from_env(usage);
    while let Some(flag) = flags.next_flag()? {
        match flag.as_str() {
            "--state-dir" => state_dir = flags.value()?.into(),
            _ => listen.parse_flag(&mut flags)?,
        }
    }
    listen.check()?;
    Ok((listen, state_dir))
}

#[docker_plugin_sdk::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A bad flag: the message and exit code 2 (`--help`: the usage and 0).
    let (listen, state_dir) = parse_args().unwrap_or_else(|err| err.exit("{{project-name}}"));
    // A second instance on the same files fails here, naming the file.
    let networks = Bridges::open(state_dir.join("networks.json")).await?;
    let pools = Pools::open(state_dir.join("allocations.json")).await?;
    let (listener, spec) = listen.bind()?;
    // One process, both drivers: `Implements` lists NetworkDriver and IpamDriver.
    let mut server = Plugin::new().network(networks).ipam(pools).server(listener);
    if let Some(spec) = spec {
        server = server.spec_file(spec);
    }
    // Serves until SIGTERM or SIGINT, then removes its socket (and spec file).
    server.run().await?;
    Ok(())
}
