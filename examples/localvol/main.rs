//! `localvol`: the reference volume plugin of this crate. Each volume is a directory
//! under `--root`; see `driver.rs` for the driver itself, which is all a plugin author
//! writes. This file is the command line around it, in the crate's own idioms:
//! `#[docker_plugin_sdk::main]` (runtime, logs, exit code) and `ListenArgs` (the listen
//! flags every plugin takes).
//!
//! ```text
//! sudo cargo run --example localvol --features macros -- --root /var/lib/localvol
//! docker volume create -d localvol -o mode=0750 v1
//! docker run --rm -v v1:/data busybox sh -c 'echo hi > /data/hello'
//! ```
//!
//! Options (`--help`):
//!   --root DIR            where volumes live (default /var/lib/localvol)
//!   --name NAME           plugin name (default localvol): socket NAME.sock
//!   --socket-dir DIR      socket directory (default /run/docker/plugins)
//!   --socket-mode OCTAL   socket permissions (e.g. 660)
//!   --socket-group GROUP  socket group (name or gid, e.g. docker)
//!   --tcp ADDR            listen on TCP instead (needs --spec-dir so dockerd finds it)
//!   --spec-dir DIR        write NAME.spec pointing at the socket there
//!   --systemd             serve the socket passed by systemd socket activation
//!   --metrics ADDR        serve call metrics (Prometheus, GET /metrics) on a unix socket
//!                         path ending in .sock or a loopback IP:PORT
//!
//! The log level comes from RUST_LOG (default `info`); every call is logged with its
//! method and volume name.

mod driver;

use std::path::PathBuf;

use docker_plugin_sdk::Plugin;
use docker_plugin_sdk::args::{ArgsError, Flags};
use docker_plugin_sdk::transport::ListenArgs;

/// The listen flags, and where volumes live.
fn parse_args() -> Result<(ListenArgs, PathBuf), ArgsError> {
    let usage = format!(
        "usage: localvol [--root DIR] {}\n\n  \
         --root DIR            where volumes live (default /var/lib/localvol)\n{}",
        ListenArgs::USAGE,
        ListenArgs::HELP
    );
    let mut listen = ListenArgs::new("localvol");
    let mut root = PathBuf::from("/var/lib/localvol");
    let mut flags = Flags::from_env(usage);
    while let Some(flag) = flags.next_flag()? {
        match flag.as_str() {
            "--root" => root = flags.value()?.into(),
            _ => listen.parse_flag(&mut flags)?,
        }
    }
    listen.check()?;
    Ok((listen, root))
}

#[docker_plugin_sdk::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A bad flag: the message and exit code 2 (`--help`: the usage and 0).
    let (listen, root) = parse_args().unwrap_or_else(|err| err.exit("localvol"));
    let driver = driver::LocalVolumes::new(&root)
        .await
        .map_err(|err| format!("cannot use root {}: {err}", root.display()))?;
    // Serves until SIGTERM or SIGINT, then removes its socket and spec file.
    listen.serve(Plugin::new().volume(driver)).await?;
    Ok(())
}
