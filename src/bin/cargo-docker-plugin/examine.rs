//! The commands that look at a plugin: `inspect` (a bundle or its tarball), `call`
//! (a plugin's endpoint, a managed plugin reached through the engine, whose lookup
//! `bench` shares) and `doctor`.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use docker_plugin_sdk::client::Client;
use docker_plugin_sdk::package::archive::OpenedBundle;
use docker_plugin_sdk::package::doctor::{Options, doctor};
use docker_plugin_sdk::package::engine::DockerApi;
use docker_plugin_sdk::package::push::bundle_arch;

use crate::output::{human_size, print_privileges};

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))
}

pub fn inspect(path: PathBuf) -> Result<(), String> {
    let bundle = OpenedBundle::open(&path).map_err(|e| e.to_string())?;
    let json = bundle
        .config()
        .to_json_pretty()
        .map_err(|e| e.to_string())?;
    println!("{json}");
    let (files, size) =
        docker_plugin_sdk::package::packager::count(&bundle.rootfs()).map_err(|e| e.to_string())?;
    println!("rootfs: {files} files, {}", human_size(size));
    match bundle_arch(&bundle) {
        Ok(arch) => println!("arch: {arch}"),
        Err(e) => println!("arch: unknown ({e})"),
    }
    print_privileges(bundle.config());
    bundle.validate().map_err(|e| e.to_string())?;
    println!("valid: yes");
    for warning in bundle.config().warnings() {
        println!("warning: {warning}");
    }
    Ok(())
}

/// The client for `plugin`: a URL or a socket path as given; a name is first asked
/// of the engine (`DOCKER_HOST`), whose managed plugin listens on
/// `/run/docker/plugins/<ID>/<socket>`, then taken as a legacy plugin's
/// `/run/docker/plugins/NAME.sock`.
async fn locate(plugin: &str) -> Result<Client, String> {
    match managed_socket(plugin).await? {
        Some(socket) => Ok(Client::unix(socket)),
        None => Client::locate(plugin).map_err(|e| e.to_string()),
    }
}

/// The socket of `plugin` when it names a managed plugin of the engine at
/// `DOCKER_HOST` (`/run/docker/plugins/<ID>/<socket>`); `None` for a path, a URL, or a
/// name the engine does not know (or no engine).
pub async fn managed_socket(plugin: &str) -> Result<Option<PathBuf>, String> {
    if plugin.contains('/') || plugin.is_empty() {
        return Ok(None);
    }
    if let Ok(api) = DockerApi::from_env()
        && let Ok(Some(installed)) = api.plugin(plugin).await
    {
        if !installed.enabled {
            return Err(format!(
                "plugin {} is disabled: docker plugin enable {}",
                installed.name, installed.name
            ));
        }
        return Ok(Some(installed.socket_path()));
    }
    Ok(None)
}

pub fn call(plugin: &str, method: &str, json: Option<String>, timeout: u64) -> Result<(), String> {
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
    runtime()?.block_on(async {
        let client = locate(plugin).await?.timeout(Duration::from_secs(timeout));
        let reply = client
            .call_raw(method, body)
            .await
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
    })
}

#[derive(clap::Args)]
pub struct DoctorArgs {
    /// A bundle directory or .tar.gz, a socket path or URL, or a plugin name (a
    /// managed plugin of the engine at DOCKER_HOST, or a legacy plugin).
    target: String,
    /// dockerd's log file, for an installed plugin's last lines (default:
    /// journalctl -u docker.service).
    #[arg(long, value_name = "FILE")]
    dockerd_log: Option<PathBuf>,
    /// Seconds a bundle's entrypoint gets to listen (dockerd's window is 12.5).
    #[arg(long, default_value_t = 12.5, value_name = "SECONDS")]
    timeout: f64,
    /// Do not start a bundle's entrypoint (starting it needs root).
    #[arg(long)]
    no_start: bool,
}

/// Prints the report; fails when it has problems.
pub fn doctor_command(args: DoctorArgs) -> Result<(), String> {
    let options = Options {
        start_timeout: Duration::from_secs_f64(args.timeout.max(0.1)),
        start: !args.no_start,
        dockerd_log: args.dockerd_log,
        ..Options::default()
    };
    let report = runtime()?.block_on(doctor(&args.target, &options));
    print!("{report}");
    match report.problems() {
        0 => Ok(()),
        n => Err(format!(
            "{n} problem{} with {}",
            if n == 1 { "" } else { "s" },
            args.target
        )),
    }
}
