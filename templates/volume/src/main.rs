//! `{{project-name}}`: {{description}}
//!
//! ```text
//! sudo {{project-name}} --root /var/lib/{{project-name}}
//! docker volume create -d {{project-name}} v1
//! ```
//!
//! Options: `--root DIR` (where volumes live), `--socket-dir DIR` (default
//! /run/docker/plugins), `--name NAME` (socket NAME.sock). Logs go to stderr, filtered
//! by RUST_LOG (default info).

use docker_plugin_sdk::Plugin;
use docker_plugin_sdk::transport::UnixSocket;
use {{crate_name}}::Volumes;

struct Args {
    name: String,
    root: String,
    socket_dir: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        name: "{{project-name}}".into(),
        root: "/var/lib/{{project-name}}".into(),
        socket_dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--name" => args.name = value()?,
            "--root" => args.root = value()?,
            "--socket-dir" => args.socket_dir = Some(value()?),
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: {{project-name}} [--name NAME] [--root DIR] [--socket-dir DIR]"
                ));
            }
        }
    }
    Ok(args)
}

#[docker_plugin_sdk::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let driver = Volumes::new(&args.root)?;
    let mut socket = UnixSocket::new(&args.name);
    if let Some(dir) = &args.socket_dir {
        socket = socket.dir(dir);
    }
    // Serves until SIGTERM or SIGINT, then removes its socket.
    Plugin::new().volume(driver).serve(socket.bind()?).await?;
    Ok(())
}
