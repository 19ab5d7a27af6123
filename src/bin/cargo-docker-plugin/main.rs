//! `cargo docker-plugin`: package, inspect, diagnose, install helpers and push for
//! Docker Engine plugins written with docker-plugin-sdk. A thin shell over
//! `docker_plugin_sdk::package` and `docker_plugin_sdk::client`.
//!
//! ```text
//! cargo docker-plugin package --example localvol --tar --verify
//! docker plugin create localvol target/docker-plugin/localvol
//! cargo docker-plugin inspect target/docker-plugin/localvol.tar.gz
//! cargo docker-plugin doctor localvol
//! cargo docker-plugin bench localvol VolumeDriver.Get '{"Name":"v1"}' --connections 64 --duration 10
//! cargo docker-plugin push --arch-tags target/docker-plugin/localvol 127.0.0.1:5000/me/localvol:1
//! ```

mod bench;
mod examine;
mod output;
mod package;
mod push;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use docker_plugin_sdk::package::systemd::Units;
use docker_plugin_sdk::spec::{PluginSpec, SpecFile};

/// Invoked by cargo as `cargo-docker-plugin docker-plugin ARGS`.
#[derive(Parser)]
#[command(name = "cargo", bin_name = "cargo")]
enum CargoCli {
    /// Package, inspect, run and push Docker Engine plugins.
    #[command(name = "docker-plugin", version)]
    DockerPlugin(Cli),
}

#[derive(clap::Args)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the plugin (release) and write a bundle `docker plugin create` takes.
    Package(package::PackageArgs),
    /// Validate a bundle and print its config.json, architecture and the privileges
    /// it asks for.
    Inspect {
        /// The bundle directory (config.json + rootfs/), or the .tar.gz `package
        /// --tar` writes.
        bundle: PathBuf,
    },
    /// Explain why a plugin will not start or answer, each finding with its fix: a
    /// bundle (architecture, libraries, mount points, devices, the entrypoint
    /// started), a socket (answering, Plugin.Activate), or a plugin name (the
    /// engine's managed plugin, its lines in dockerd's log, a legacy plugin
    /// shadowing it).
    Doctor(examine::DoctorArgs),
    /// Write NAME.spec (or NAME.json) so dockerd finds a plugin listening at ADDR.
    Spec {
        /// The plugin name.
        name: String,
        /// unix:///path.sock, tcp://host:port or https://host:port.
        addr: String,
        /// Where to write it.
        #[arg(long, default_value = docker_plugin_sdk::spec::DEFAULT_SPEC_DIR)]
        dir: PathBuf,
        /// Write NAME.json instead of NAME.spec.
        #[arg(long)]
        json: bool,
    },
    /// Write NAME.service and NAME.socket for systemd socket activation.
    Systemd {
        /// The plugin name: the socket is /run/docker/plugins/NAME.sock.
        name: String,
        /// The command systemd runs (default: /usr/local/bin/NAME --systemd).
        #[arg(long)]
        exec: Option<String>,
        /// The units' Description.
        #[arg(long)]
        description: Option<String>,
        /// Where to write them.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Call a plugin endpoint as dockerd does and print the answer.
    #[command(after_help = "Where sockets are: a legacy plugin listens on \
        /run/docker/plugins/NAME.sock; a managed plugin (docker plugin install/create) on \
        /run/docker/plugins/<plugin ID>/<its config's socket>, which a plugin NAME is looked \
        up as first, through the engine at DOCKER_HOST.")]
    Call {
        /// A plugin name (a managed plugin of the engine at DOCKER_HOST, else
        /// /run/docker/plugins/NAME.sock), a socket path, or a URL (unix:///…,
        /// tcp://…).
        plugin: String,
        /// The method, e.g. VolumeDriver.List or Plugin.Activate.
        method: String,
        /// The JSON request body (default {}; `-` reads standard input).
        json: Option<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Load a plugin endpoint as dockerd calls it (N connections, one call in flight
    /// on each) and print calls/s, errors and latency p50/p90/p99/max; or feed a log
    /// driver lines through a FIFO (--log-lines).
    #[command(after_help = bench::AFTER_HELP)]
    Bench(bench::BenchArgs),
    /// Push bundles to a registry in the format `docker plugin install` pulls (one
    /// tag per architecture).
    Push(push::PushArgs),
}

fn main() -> ExitCode {
    let CargoCli::DockerPlugin(cli) = CargoCli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Package(args) => package::package(args),
        Command::Inspect { bundle } => examine::inspect(bundle),
        Command::Doctor(args) => examine::doctor_command(args),
        Command::Spec {
            name,
            addr,
            dir,
            json,
        } => {
            let spec = if json {
                SpecFile::json(
                    name,
                    PluginSpec {
                        addr,
                        ..PluginSpec::default()
                    },
                )
            } else {
                SpecFile::url(name, addr)
            };
            let written = spec.dir(dir).write().map_err(|e| e.to_string())?;
            println!("wrote {}", written.path().display());
            Ok(())
        }
        Command::Systemd {
            name,
            exec,
            description,
            dir,
        } => {
            let exec = exec.unwrap_or_else(|| format!("/usr/local/bin/{name} --systemd"));
            let mut units = Units::new(name, exec);
            if let Some(description) = description {
                units = units.description(description);
            }
            let paths = units
                .write(&dir)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            for path in paths {
                println!("wrote {}", path.display());
            }
            Ok(())
        }
        Command::Call {
            plugin,
            method,
            json,
            timeout,
        } => examine::call(&plugin, &method, json, timeout),
        Command::Bench(args) => bench::bench(args),
        Command::Push(args) => push::push(args),
    }
}
