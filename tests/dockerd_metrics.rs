//! The example metrics collector against a REAL dockerd: `metricsexport`, packaged by
//! `cargo docker-plugin package -p metricsexport` as a managed plugin of type
//! `docker.metricscollector/1.0`, is enabled; dockerd sends StartMetrics (its log
//! says so), the plugin scrapes the engine's own metrics through the socket dockerd
//! binds at `/run/docker/metrics.sock`, and after a `docker run` the re-exported
//! `engine_daemon_container_actions_seconds_count{action="start"}` has grown. A
//! `docker plugin disable` sends no StopMetrics (moby v20.10.24 `daemon/metrics.go`:
//! only the daemon's shutdown does).
//!
//! dockerd listens on `<exec-root>/metrics.sock` whether or not `--metrics-addr` is
//! set (moby v20.10.24 `daemon/daemon.go` calls `listenMetricsSock` at every start):
//! the shared private dockerd needs no flag for it. It needs root; when dockerd cannot
//! start the tests fail under `CI=true` (or `DPS_REQUIRE_DOCKERD=1`) and are reported
//! as ignored otherwise.

mod support;

use std::fs;
use std::path::Path;

use docker_plugin_sdk::harness::dockerd::Dockerd;
use docker_plugin_sdk::metrics::Scrape;
use libtest_mimic::Failed;
use support::cli::{check, package_member, unique};
use support::shared_dockerd::{DockerdTest, ImageOnce, PlainTest, run_trials, with_dockerd_log};
use support::wait::wait_for;

const IMAGE: &str = "dps-busybox:metrics";
const START_COUNT: &str = "engine_daemon_container_actions_seconds_count";

/// The file `name` in `dir`, read as the text format, once it exists, reads and
/// `until` holds for it (the plugin writes it at each scrape).
fn wait_for_scrape(
    dir: &Path,
    name: &str,
    what: &str,
    until: impl Fn(&Scrape) -> bool,
) -> Result<Scrape, Failed> {
    let mut last = String::new();
    let scrape = wait_for(what, || {
        match fs::read_to_string(dir.join(name)) {
            Ok(text) => match Scrape::parse(&text) {
                Ok(scrape) if until(&scrape) => return Some(scrape),
                Ok(_) => last = format!("{name} holds:\n{text}"),
                Err(err) => last = format!("{name} does not read: {err}"),
            },
            Err(err) => last = format!("{name}: {err}"),
        }
        None
    });
    Ok(scrape.map_err(|e| format!("{e}; last: {last}"))?)
}

fn starts(scrape: &Scrape) -> Option<f64> {
    scrape.value(START_COUNT, &[("action", "start")])
}

fn the_managed_collector_reads_the_engines_metrics_after_start_metrics(
    d: &Dockerd,
    image: &ImageOnce,
) -> Result<(), Failed> {
    image.ensure(d)?;
    let bundle = package_member("metricsexport")?;
    let config: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(bundle.join("config.json"))?)?;
    check(
        config["Interface"]["Types"][0] == "docker.metricscollector/1.0",
        || format!("metricsexport's config.json: {config}"),
    )?;
    let export = tempfile::tempdir()?;
    let name = unique("dps-metricsexport");
    let mut created = false;
    let result = (|| -> Result<(), Failed> {
        d.docker_ok(&["plugin", "create", &name, bundle.to_str().ok_or("path")?])?;
        created = true;
        let source = format!("export.source={}", export.path().display());
        d.docker_ok(&["plugin", "set", &name, &source])?;
        d.docker_ok(&["plugin", "enable", &name])?;
        // StartMetrics arrived: the plugin logs it (its output is in dockerd's log), and
        // only then does it scrape.
        let own = wait_for_scrape(export.path(), "metricsexport.prom", "a first scrape", |s| {
            s.value("metricsexport_scrapes_total", &[])
                .is_some_and(|n| n >= 1.0)
        })?;
        check(
            own.value("metricsexport_scrape_errors_total", &[]) == Some(0.0),
            || format!("scrape errors: {}", own.render()),
        )?;
        // dockerd copies a managed plugin's output into its log in goroutines of its
        // own (moby v20.10.24 `plugin/executor/containerd/containerd.go`
        // `attachStreamsFunc`): the line may come after the file the plugin wrote.
        wait_for("StartMetrics in dockerd's log", || {
            fs::read_to_string(d.log())
                .is_ok_and(|log| log.contains("StartMetrics: exporting"))
                .then_some(())
        })
        .map_err(|e| format!("{e}:\n{}", d.log_tail(40)))?;
        // The engine's own metrics, through /run/docker/metrics.sock.
        let before = wait_for_scrape(export.path(), "engine.prom", "the engine's metrics", |s| {
            starts(s).is_some()
        })?;
        let started = starts(&before).unwrap_or_default();
        check(before.family("engine_daemon_engine_info").is_some(), || {
            format!("engine.prom:\n{}", before.render())
        })?;
        d.docker_ok(&["run", "--rm", "--network", "none", IMAGE, "true"])?;
        let after = wait_for_scrape(
            export.path(),
            "engine.prom",
            "the docker run counted",
            |s| starts(s).is_some_and(|n| n > started),
        )?;
        check(starts(&after) >= Some(started + 1.0), || {
            format!("starts {started} then {:?}", starts(&after))
        })?;
        // Disable: SIGTERM, and no StopMetrics.
        d.docker_ok(&["plugin", "disable", &name])?;
        let log = fs::read_to_string(d.log())?;
        check(
            !log.contains("StopMetrics: the daemon is shutting down"),
            || format!("StopMetrics at disable:\n{}", d.log_tail(40)),
        )
    })();
    if created {
        let _ = d.docker(&["plugin", "disable", "-f", &name]);
        let _ = d.docker(&["plugin", "rm", "-f", &name]);
    }
    with_dockerd_log(d, 60, result)
}

fn main() {
    let plain: Vec<(&str, PlainTest)> = vec![];
    let with_dockerd: Vec<(&str, DockerdTest)> = vec![(
        "the_managed_collector_reads_the_engines_metrics_after_start_metrics",
        the_managed_collector_reads_the_engines_metrics_after_start_metrics,
    )];
    run_trials("metrics e2e", IMAGE, plain, with_dockerd)
}
