//! `metricsexport`: a metrics collector that scrapes the engine's metrics on an
//! interval and writes the latest scrape to a file, with its own scrape counts beside
//! it. `export.rs` holds the loop and the files; this file is the command line and the
//! collector, in the crate's own idioms (`#[docker_plugin_sdk::main]`, `ListenArgs`).
//!
//! ```text
//! cargo docker-plugin package -p metricsexport
//! docker plugin create metricsexport target/docker-plugin/metricsexport
//! mkdir -p /var/lib/metricsexport && docker plugin enable metricsexport
//! cat /var/lib/metricsexport/engine.prom        # the engine's metrics, re-exported
//! cat /var/lib/metricsexport/metricsexport.prom # scrapes and scrape errors
//! ```
//!
//! It starts scraping at the first StartMetrics (dockerd sends one at every enable,
//! crash restart and daemon start) and goes on until it is stopped: dockerd sends
//! StopMetrics only when it shuts down, never at `docker plugin disable`, so nothing
//! waits for it.
//!
//! Options (`--help`):
//!   --out DIR          where the files go (default /export)
//!   --interval SECS    between scrapes (default 15)
//!   --socket PATH      the engine's metrics socket (default /run/docker/metrics.sock)
//!   and the listen flags of every plugin (--name metricsexport, --socket-dir, …).

mod export;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use docker_plugin_sdk::args::{ArgsError, Flags};
use docker_plugin_sdk::metrics::{self, ENGINE_METRICS_SOCKET, EngineMetrics};
use docker_plugin_sdk::transport::ListenArgs;
use docker_plugin_sdk::{Plugin, Result, async_trait};

/// The collector: the first StartMetrics starts the export loop, later ones find it
/// running.
struct Collector {
    exporter: Arc<export::Exporter>,
    interval: Duration,
    started: AtomicBool,
}

#[async_trait]
impl metrics::Collector for Collector {
    async fn start_metrics(&self) -> Result<()> {
        if !self.started.swap(true, Ordering::SeqCst) {
            tracing::info!(interval = ?self.interval, "StartMetrics: exporting");
            tokio::spawn(Arc::clone(&self.exporter).run(self.interval));
        }
        Ok(())
    }

    async fn stop_metrics(&self) -> Result<()> {
        tracing::info!("StopMetrics: the daemon is shutting down");
        Ok(())
    }
}

struct Options {
    out: PathBuf,
    interval: Duration,
    socket: PathBuf,
}

fn parse_args() -> Result<(ListenArgs, Options), ArgsError> {
    let usage = format!(
        "usage: metricsexport [--out DIR] [--interval SECS] [--socket PATH] {}\n\n  \
         --out DIR             where the files go (default /export)\n  \
         --interval SECS       between scrapes (default 15)\n  \
         --socket PATH         the engine's metrics socket (default {ENGINE_METRICS_SOCKET})\n{}",
        ListenArgs::USAGE,
        ListenArgs::HELP
    );
    let mut listen = ListenArgs::new("metricsexport");
    let mut options = Options {
        out: PathBuf::from("/export"),
        interval: Duration::from_secs(15),
        socket: PathBuf::from(ENGINE_METRICS_SOCKET),
    };
    let mut flags = Flags::from_env(usage);
    while let Some(flag) = flags.next_flag()? {
        match flag.as_str() {
            "--out" => options.out = flags.value()?.into(),
            "--interval" => {
                options.interval = Duration::from_secs(flags.parse("a number of seconds")?)
            }
            "--socket" => options.socket = flags.value()?.into(),
            _ => listen.parse_flag(&mut flags)?,
        }
    }
    listen.check()?;
    Ok((listen, options))
}

#[docker_plugin_sdk::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let (listen, options) = parse_args().unwrap_or_else(|err| err.exit("metricsexport"));
    let exporter = export::Exporter::new(EngineMetrics::at(&options.socket), options.out);
    let collector = Collector {
        exporter: Arc::new(exporter),
        interval: options.interval,
        started: AtomicBool::new(false),
    };
    let (listener, spec) = listen.bind()?;
    let mut server = Plugin::new().metrics_collector(collector).server(listener);
    if let Some(spec) = spec {
        server = server.spec_file(spec);
    }
    server.run().await?;
    Ok(())
}
