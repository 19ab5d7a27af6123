//! `localvol`: the reference volume plugin of this crate. Each volume is a directory
//! under `--root`; see `driver.rs` for the driver itself, which is all a plugin author
//! writes. This file is the command line around it.
//!
//! ```text
//! sudo cargo run --example localvol -- --root /var/lib/localvol
//! docker volume create -d localvol -o mode=0750 v1
//! docker run --rm -v v1:/data busybox sh -c 'echo hi > /data/hello'
//! ```
//!
//! Options:
//!   --name NAME          plugin name (default localvol): socket NAME.sock
//!   --root DIR           where volumes live (default /var/lib/localvol)
//!   --socket-dir DIR     socket directory (default /run/docker/plugins)
//!   --socket-mode OCTAL  socket permissions (e.g. 660)
//!   --socket-group GROUP socket group (name or gid, e.g. docker)
//!   --tcp ADDR           listen on TCP instead (needs --spec-dir so dockerd finds it)
//!   --spec-dir DIR       write NAME.spec pointing at the socket there
//!   --systemd            serve the socket passed by systemd socket activation
//!
//! The log level comes from RUST_LOG (default `info`); every call is logged with its
//! method and volume name.

mod driver;

use std::process::ExitCode;

use docker_plugin_sdk::Plugin;
use docker_plugin_sdk::spec::SpecFile;
use docker_plugin_sdk::transport::{Listener, UnixSocket};

struct Args {
    name: String,
    root: String,
    socket_dir: Option<String>,
    socket_mode: Option<u32>,
    socket_group: Option<String>,
    tcp: Option<String>,
    spec_dir: Option<String>,
    systemd: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        name: "localvol".into(),
        root: "/var/lib/localvol".into(),
        socket_dir: None,
        socket_mode: None,
        socket_group: None,
        tcp: None,
        spec_dir: None,
        systemd: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--name" => args.name = value()?,
            "--root" => args.root = value()?,
            "--socket-dir" => args.socket_dir = Some(value()?),
            "--socket-mode" => {
                let v = value()?;
                let mode = u32::from_str_radix(&v, 8)
                    .map_err(|_| format!("--socket-mode {v}: expected octal, e.g. 660"))?;
                args.socket_mode = Some(mode);
            }
            "--socket-group" => args.socket_group = Some(value()?),
            "--tcp" => args.tcp = Some(value()?),
            "--spec-dir" => args.spec_dir = Some(value()?),
            "--systemd" => args.systemd = true,
            "-h" | "--help" => {
                return Err(
                    "usage: localvol [--name NAME] [--root DIR] [--socket-dir DIR] \
                     [--socket-mode OCTAL] [--socket-group GROUP] [--tcp ADDR] [--spec-dir DIR] \
                     [--systemd]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    if args.tcp.is_some() && args.spec_dir.is_none() {
        return Err(
            "--tcp needs --spec-dir: dockerd finds TCP plugins through a .spec file".into(),
        );
    }
    Ok(args)
}

fn listener(args: &Args) -> Result<Listener, docker_plugin_sdk::ServeError> {
    if args.systemd {
        return Listener::from_systemd();
    }
    if let Some(addr) = &args.tcp {
        return Listener::tcp(addr.as_str());
    }
    let mut socket = UnixSocket::new(&args.name);
    if let Some(dir) = &args.socket_dir {
        socket = socket.dir(dir);
    }
    if let Some(mode) = args.socket_mode {
        socket = socket.mode(mode);
    }
    if let Some(group) = &args.socket_group {
        socket = socket.group(group);
    }
    socket.bind()
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("localvol: {message}");
            return ExitCode::from(2);
        }
    };
    let driver = match driver::LocalVolumes::new(&args.root) {
        Ok(driver) => driver,
        Err(err) => {
            eprintln!("localvol: cannot use root {}: {err}", args.root);
            return ExitCode::FAILURE;
        }
    };
    let result = async {
        let listener = listener(&args)?;
        let mut server = Plugin::new().volume(driver).server(listener);
        if let Some(dir) = &args.spec_dir {
            let url = server.url();
            server = server.spec_file(SpecFile::url(&args.name, url).dir(dir));
        }
        server.run().await
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("localvol: {err}");
            ExitCode::FAILURE
        }
    }
}
