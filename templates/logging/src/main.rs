//! `{{project-name}}`: {{description}}
//!
//! ```text
//! sudo {{project-name}} &
//! docker run --log-driver {{project-name}} --log-opt max-lines=100 busybox echo hello
//! docker logs CONTAINER   # hello
//! ```
//!
//! Options: the listen flags every plugin built on docker-plugin-sdk takes (`--name`,
//! `--socket-dir`, `--socket-mode`, `--socket-group`, `--tcp` with `--spec-dir`,
//! `--systemd`, `--metrics`); `--help` lists them. Logs go to stdout and stderr,
//! filtered by RUST_LOG (default info).

use docker_plugin_sdk::Plugin;
use docker_plugin_sdk::args::{ArgsError, Flags};
use docker_plugin_sdk::transport::ListenArgs;
use {{crate_name}}::Memory;

/// The listen flags.
fn parse_args() -> Result<ListenArgs, ArgsError> {
    let usage = format!(
        "usage: {{project-name}} {}\n\n{}",
        ListenArgs::USAGE,
        ListenArgs::HELP
    );
    let mut listen = ListenArgs::new("{{project-name}}");
    let mut flags = Flags::from_env(usage);
    while flags.next_flag()?.is_some() {
        listen.parse_flag(&mut flags)?;
    }
    listen.check()?;
    Ok(listen)
}

#[docker_plugin_sdk::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A bad flag: the message and exit code 2 (`--help`: the usage and 0).
    let listen = match parse_args() {
        Ok(listen) => listen,
        Err(err) => err.exit("{{project-name}}"),
    };
    // Serves until SIGTERM or SIGINT, then removes its socket (and spec file).
    listen
        .serve(Plugin::new().logging(Memory::default()))
        .await?;
    Ok(())
}
