//! `{{project-name}}`: {{description}}
//!
//! ```text
//! sudo {{project-name}} --allow-bind /srv/data
//! sudo dockerd --authorization-plugin={{project-name}}
//! docker run --privileged busybox true   # authorization denied by plugin {{project-name}}: …
//! ```
//!
//! Options: `--allow-bind DIR` (repeatable: host directories containers may bind) and
//! the listen flags every plugin built on docker-plugin-sdk takes (`--name`,
//! `--socket-dir`, `--socket-mode`, `--socket-group`, `--tcp` with `--spec-dir`,
//! `--systemd`); `--help` lists them. Logs go to stdout and stderr, filtered by
//! RUST_LOG (default info).

use std::path::PathBuf;

use docker_plugin_sdk::Plugin;
use docker_plugin_sdk::args::{ArgsError, Flags};
use docker_plugin_sdk::transport::ListenArgs;
use {{crate_name}}::Policy;

/// The listen flags, and the host directories containers may bind.
fn parse_args() -> Result<(ListenArgs, Vec<PathBuf>), ArgsError> {
    let usage = format!(
        "usage: {{project-name}} [--allow-bind DIR]... {}\n\n  \
         --allow-bind DIR      a host directory containers may bind (repeatable)\n{}",
        ListenArgs::USAGE,
        ListenArgs::HELP
    );
    let mut listen = ListenArgs::new("{{project-name}}");
    let mut allowed_binds = Vec::new();
    let mut flags = Flags::from_env(usage);
    while let Some(flag) = flags.next_flag()? {
        match flag.as_str() {
            "--allow-bind" => allowed_binds.push(flags.value()?.into()),
            _ => listen.parse_flag(&mut flags)?,
        }
    }
    listen.check()?;
    Ok((listen, allowed_binds))
}

#[docker_plugin_sdk::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A bad flag: the message and exit code 2 (`--help`: the usage and 0).
    let (listen, allowed_binds) = match parse_args() {
        Ok(parsed) => parsed,
        Err(err) => err.exit("{{project-name}}"),
    };
    let (listener, spec) = listen.bind()?;
    let mut server = Plugin::new()
        .authz(Policy::new(allowed_binds))
        .server(listener);
    if let Some(spec) = spec {
        server = server.spec_file(spec);
    }
    // Serves until SIGTERM or SIGINT, then removes its socket (and spec file).
    server.run().await?;
    Ok(())
}
