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
use docker_plugin_sdk::transport::{ListenArgs, ValueFlag};

/// The directory flag, beside the listen flags.
const DIR: ValueFlag = ValueFlag {
    flag: "--dir",
    value: "DIR",
    help: "the directory of secret files",
    default: "/secrets",
};

#[docker_plugin_sdk::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (listen, dir) =
        ListenArgs::from_env_with("dirsecrets", &DIR).unwrap_or_else(|err| err.exit("dirsecrets"));
    let dir = PathBuf::from(dir);
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
