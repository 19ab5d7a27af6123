//! `dirsecrets`: a secret provider serving swarm secrets from a directory of files.
//! `provider.rs` holds the selection rule and the per-task values; this file is the
//! command line, in the crate's own idioms (`#[docker_plugin_sdk::main]`,
//! `ListenArgs`).
//!
//! ```text
//! mkdir -p /var/lib/dirsecrets && printf s3cr3t > /var/lib/dirsecrets/db-password
//! cargo docker-plugin package -p dirsecrets && docker plugin create dirsecrets target/docker-plugin/dirsecrets
//! docker plugin enable dirsecrets
//! docker swarm init --advertise-addr 127.0.0.1
//! docker secret create --driver dirsecrets:latest db-password
//! docker service create --secret db-password busybox cat /run/secrets/db-password
//! ```
//!
//! Which file a secret comes from (see `provider.rs`): the label `dirsecrets.file`,
//! else `dirsecrets.env`/NAME, else NAME, always inside `--dir`. With the label
//! `dirsecrets.per-task=true` the value is rendered for the task (`${TASK_ID}` and
//! friends replaced) and marked `DoNotReuse`.
//!
//! Options (`--help`):
//!   --dir DIR   the directory of secret files (default /secrets)
//!   and the listen flags of every plugin (--name dirsecrets, --socket-dir, …).

mod provider;

use std::path::PathBuf;

use docker_plugin_sdk::Plugin;
use docker_plugin_sdk::args::{ArgsError, Flags};
use docker_plugin_sdk::transport::ListenArgs;

/// The listen flags and the directory.
fn parse_args() -> Result<(ListenArgs, PathBuf), ArgsError> {
    let usage = format!(
        "usage: dirsecrets [--dir DIR] {}\n\n  \
         --dir DIR             the directory of secret files (default /secrets)\n{}",
        ListenArgs::USAGE,
        ListenArgs::HELP
    );
    let mut listen = ListenArgs::new("dirsecrets");
    let mut dir = PathBuf::from("/secrets");
    let mut flags = Flags::from_env(usage);
    while let Some(flag) = flags.next_flag()? {
        match flag.as_str() {
            "--dir" => dir = flags.value()?.into(),
            _ => listen.parse_flag(&mut flags)?,
        }
    }
    listen.check()?;
    Ok((listen, dir))
}

#[docker_plugin_sdk::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (listen, dir) = parse_args().unwrap_or_else(|err| err.exit("dirsecrets"));
    tracing::info!(dir = %dir.display(), "serving secrets");
    let (listener, spec) = listen.bind()?;
    let mut server = Plugin::new()
        .secrets(provider::DirSecrets::new(dir))
        .server(listener);
    if let Some(spec) = spec {
        server = server.spec_file(spec);
    }
    // Serves until SIGTERM or SIGINT, then removes its socket and spec file.
    server.run().await?;
    Ok(())
}
