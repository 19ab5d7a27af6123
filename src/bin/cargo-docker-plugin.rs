//! `cargo docker-plugin`: package, inspect, install helpers and push for Docker
//! Engine plugins written with docker-plugin-sdk. A thin shell over
//! `docker_plugin_sdk::package` and `docker_plugin_sdk::client`.
//!
//! ```text
//! cargo docker-plugin package --example localvol --tar
//! docker plugin create localvol target/docker-plugin/localvol
//! cargo docker-plugin inspect target/docker-plugin/localvol
//! cargo docker-plugin push target/docker-plugin/localvol 127.0.0.1:5000/me/localvol:1
//! ```

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use docker_plugin_sdk::client::Client;
use docker_plugin_sdk::managed::bundle::Bundle;
use docker_plugin_sdk::package::packager::{Packager, Step, Target};
use docker_plugin_sdk::package::push::{Credentials, DiffIds, Pusher, Reference};
use docker_plugin_sdk::package::systemd::Units;
use docker_plugin_sdk::spec::{PluginSpec, SpecFile};
use indicatif::{ProgressBar, ProgressStyle};

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
    Package(PackageArgs),
    /// Validate a bundle and print its config.json and the privileges it asks for.
    Inspect {
        /// The bundle directory (config.json + rootfs/).
        bundle: PathBuf,
    },
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
    Call {
        /// A plugin name (/run/docker/plugins/NAME.sock), a socket path or a URL.
        plugin: String,
        /// The method, e.g. VolumeDriver.List or Plugin.Activate.
        method: String,
        /// The JSON request body (default {}; `-` reads standard input).
        json: Option<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Push a bundle to a registry in the format `docker plugin install` pulls.
    Push(PushArgs),
}

#[derive(clap::Args)]
struct PackageArgs {
    /// Path to Cargo.toml.
    #[arg(long)]
    manifest_path: Option<PathBuf>,
    /// The binary to package.
    #[arg(long, conflicts_with = "example")]
    bin: Option<String>,
    /// The example to package (metadata: [package.metadata.docker-plugin.examples.NAME]).
    #[arg(long)]
    example: Option<String>,
    /// The cargo profile.
    #[arg(long, default_value = "release")]
    profile: String,
    /// Features to enable.
    #[arg(long, short = 'F', value_delimiter = ',')]
    features: Vec<String>,
    /// Enable all features.
    #[arg(long)]
    all_features: bool,
    /// Disable the default features.
    #[arg(long)]
    no_default_features: bool,
    /// Read the plugin metadata from this TOML file instead of Cargo.toml.
    #[arg(long)]
    metadata: Option<PathBuf>,
    /// The bundle directory (default: target/docker-plugin/NAME).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write the bundle as DIR.tar.gz.
    #[arg(long)]
    tar: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum DiffIdArg {
    /// The uncompressed tar's digest (the image spec's diff_id).
    Uncompressed,
    /// The compressed layer's digest (what dockerd's own push writes).
    Compressed,
}

#[derive(clap::Args)]
struct PushArgs {
    /// The bundle directory.
    bundle: PathBuf,
    /// The reference to push to, e.g. 127.0.0.1:5000/me/plugin:1.
    reference: String,
    /// Registry user name (default: `docker login`'s stored credentials).
    #[arg(long, requires = "password_stdin")]
    username: Option<String>,
    /// Read the password from standard input.
    #[arg(long, requires = "username")]
    password_stdin: bool,
    /// Use plain HTTP even for a registry that is not on loopback.
    #[arg(long)]
    insecure: bool,
    /// Which digest goes into the config's rootfs.diff_ids.
    #[arg(long, value_enum, default_value = "uncompressed")]
    diff_ids: DiffIdArg,
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
        Command::Package(args) => package(args),
        Command::Inspect { bundle } => inspect(bundle),
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
        } => call(&plugin, &method, json, timeout),
        Command::Push(args) => push(args),
    }
}

fn spinner() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn package(args: PackageArgs) -> Result<(), String> {
    let target = match (args.bin, args.example) {
        (Some(bin), _) => Target::Bin(bin),
        (None, Some(example)) => Target::Example(example),
        (None, None) => Target::Default,
    };
    let mut packager = Packager::new()
        .target(target)
        .profile(args.profile)
        .features(args.features, args.all_features, args.no_default_features)
        .tarball(args.tar);
    if let Some(path) = args.manifest_path {
        packager = packager.manifest_path(path);
    }
    if let Some(path) = args.metadata {
        packager = packager.metadata_file(path);
    }
    if let Some(dir) = args.out {
        packager = packager.out_dir(dir);
    }
    let bar = spinner();
    let result = packager.run(&mut |step: Step| match step {
        // cargo prints its own progress: no spinner over it.
        Step::Building => bar.disable_steady_tick(),
        Step::Assembling(_) => {
            bar.enable_steady_tick(Duration::from_millis(120));
            bar.set_message(step.to_string());
        }
        Step::Archiving(_, total) => {
            if let Ok(style) =
                ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_length(total);
            bar.set_position(0);
            bar.set_message(step.to_string());
        }
        Step::Archived(done) => bar.set_position(done),
    });
    bar.finish_and_clear();
    let packaged = result.map_err(|e| e.to_string())?;
    let config = packaged.bundle.config();
    println!("bundle   {}", packaged.bundle.dir().display());
    println!(
        "rootfs   {} files, {}",
        packaged.files,
        human_size(packaged.size)
    );
    if let Some((path, archive)) = &packaged.tarball {
        println!(
            "tarball  {} ({}, {})",
            path.display(),
            human_size(archive.gz.len() as u64),
            archive.digest
        );
    }
    print_privileges(config);
    for warning in config.warnings() {
        println!("warning: {warning}");
    }
    println!(
        "next     docker plugin create NAME {}",
        packaged.bundle.dir().display()
    );
    Ok(())
}

fn print_privileges(config: &docker_plugin_sdk::managed::config::PluginConfig) {
    let privileges = config.privileges();
    if privileges.is_empty() {
        println!("privileges: none");
        return;
    }
    println!(
        "Plugin \"{}\" is requesting the following privileges:",
        config.description
    );
    for privilege in privileges {
        println!(" - {privilege}");
    }
}

fn inspect(dir: PathBuf) -> Result<(), String> {
    let bundle = Bundle::open(&dir).map_err(|e| e.to_string())?;
    let json = bundle
        .config()
        .to_json_pretty()
        .map_err(|e| e.to_string())?;
    println!("{json}");
    let (files, size) =
        docker_plugin_sdk::package::packager::count(&bundle.rootfs()).map_err(|e| e.to_string())?;
    println!("rootfs: {files} files, {}", human_size(size));
    print_privileges(bundle.config());
    bundle.validate().map_err(|e| e.to_string())?;
    println!("valid: yes");
    for warning in bundle.config().warnings() {
        println!("warning: {warning}");
    }
    Ok(())
}

fn call(plugin: &str, method: &str, json: Option<String>, timeout: u64) -> Result<(), String> {
    let body = match json.as_deref() {
        None => "{}".to_owned(),
        Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("reading standard input: {e}"))?;
            text
        }
        Some(text) => text.to_owned(),
    };
    serde_json::from_str::<serde_json::Value>(&body)
        .map_err(|e| format!("the request is not JSON: {e}"))?;
    let client = Client::locate(plugin)
        .map_err(|e| e.to_string())?
        .timeout(Duration::from_secs(timeout));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let reply = runtime
        .block_on(client.call_raw(method, body))
        .map_err(|e| e.to_string())?;
    let text = match reply.json() {
        Ok(value) => serde_json::to_string_pretty(&value).unwrap_or_else(|_| reply.text()),
        Err(_) => reply.text(),
    };
    println!("{text}");
    if !reply.status.is_success() {
        return Err(format!("{method} answered {}", reply.status));
    }
    Ok(())
}

fn push(args: PushArgs) -> Result<(), String> {
    let bundle = Bundle::open(&args.bundle).map_err(|e| e.to_string())?;
    let reference: Reference = args
        .reference
        .parse()
        .map_err(|e: docker_plugin_sdk::package::PackageError| e.to_string())?;
    let mut pusher = Pusher::new()
        .insecure(args.insecure)
        .diff_ids(match args.diff_ids {
            DiffIdArg::Uncompressed => DiffIds::Uncompressed,
            DiffIdArg::Compressed => DiffIds::Compressed,
        });
    if let Some(username) = args.username {
        let credentials = Credentials::with_password_from(username, std::io::stdin())
            .map_err(|e| format!("reading the password from standard input: {e}"))?;
        pusher = pusher.credentials(credentials);
    }
    let bar = spinner();
    bar.set_message(format!("pushing to {reference}"));
    let result = pusher.push(&bundle, &reference);
    bar.finish_and_clear();
    let pushed = result.map_err(|e| e.to_string())?;
    println!("pushed   {reference}");
    println!("digest   {}", pushed.manifest_digest);
    println!(
        "layer    {} ({})",
        pushed.layer_digest,
        human_size(pushed.layer_size)
    );
    println!("install  docker plugin install {reference}");
    Ok(())
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
