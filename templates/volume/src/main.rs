//! `{{project-name}}`: {{description}}
//!
//! ```text
//! sudo {{project-name}} --root /var/lib/{{project-name}}
//! docker volume create -d {{project-name}} v1
//! ```
//!
//! Options: `--root DIR` (where volumes live) and the listen flags every plugin built
//! on docker-plugin-sdk takes (`--name`, `--socket-dir`, `--socket-mode`,
//! `--socket-group`, `--tcp` with `--spec-dir`, `--systemd`); `--help` lists them.
//! Logs go to stderr, filtered by RUST_LOG (default info).

use std::path::PathBuf;

use docker_plugin_sdk::Plugin;
use docker_plugin_sdk::args::{ArgsError, Flags};
use docker_plugin_sdk::transport::ListenArgs;
use {{crate_name}}::Volumes;

/// The listen flags, and where volumes live.
fn parse_args() -> Result<(ListenArgs, PathBuf), ArgsError> {
    let usage = format!(
        "usage: {{project-name}} [--root DIR] {}\n\n  \
         --root DIR            where volumes live (default /var/lib/{{project-name}})\n{}",
        ListenArgs::USAGE,
        ListenArgs::HELP
    );
    let mut listen = ListenArgs::new("{{project-name}}");
    let mut root = PathBuf::from("/var/lib/{{project-name}}");
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
    let (listen, root) = parse_args().unwrap_or_else(|err| err.exit("{{project-name}}"));
    let driver = Volumes::new(&root)
        .await
        .map_err(|err| format!("cannot use root {}: {err}", root.display()))?;
    let (listener, spec) = listen.bind()?;
    let mut server = Plugin::new().volume(driver).server(listener);
    if let Some(spec) = spec {
        server = server.spec_file(spec);
    }
    // Serves until SIGTERM or SIGINT, then removes its socket (and spec file).
    server.run().await?;
    Ok(())
}
