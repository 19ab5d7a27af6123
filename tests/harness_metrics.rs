//! The harness's metrics service with the example collector, `metricsexport`, run as
//! a managed plugin from its rootfs: dockerd's behaviour (moby v20.10.24
//! `daemon/metrics.go`, `daemon/metrics_unix.go`): the engine's metrics socket bound
//! read-only at `/run/docker/metrics.sock`, StartMetrics at every enable and after a
//! crash restart (a SIGKILL) and at the engine's restart, none at disable, StopMetrics
//! only at the engine's shutdown (and so at its restart); the
//! container actions the engine performs show in the scrape the plugin exports.

mod support;

use std::path::Path;

use docker_plugin_sdk::harness::Engine;
use docker_plugin_sdk::metrics::Scrape;
use serde_json::json;
use support::bundle::packaged;
use support::process::package_binary;
use support::wait::wait_for_async;

fn starts(engine: &Engine) -> Vec<String> {
    engine
        .calls()
        .methods()
        .into_iter()
        .filter(|m| m.starts_with("MetricsCollector."))
        .collect()
}

/// The exported file `name`, once `until` holds for it (see [`support::wait`]).
async fn exported(dir: &Path, name: &str, until: impl Fn(&Scrape) -> bool) -> Scrape {
    wait_for_async(name, || {
        let text = std::fs::read_to_string(dir.join(name)).ok()?;
        Scrape::parse(&text).ok().filter(|scrape| until(scrape))
    })
    .await
    .unwrap()
}

fn started(scrape: &Scrape) -> Option<f64> {
    scrape.value(
        "engine_daemon_container_actions_seconds_count",
        &[("action", "start")],
    )
}

/// The `metricsexport` bundle under `dir`, exporting to `<dir>/export`.
fn collector(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let export = dir.join("export");
    std::fs::create_dir(&export).unwrap();
    let bundle = packaged(
        &dir.join("bundle"),
        &json!({
            "entrypoint": ["/metricsexport", "--name", "mx", "--out", "/export", "--interval", "1"],
            "interface": {"socket": "mx.sock", "types": ["docker.metricscollector/1.0"]},
            "mounts": [{"source": export, "destination": "/export", "type": "bind",
                        "options": ["rbind", "rw"]}]
        }),
        &package_binary("metricsexport", "metricsexport"),
        "/metricsexport",
        &["/export"],
    );
    (bundle, export)
}

#[tokio::test]
async fn a_managed_collector_gets_the_engine_socket_and_start_metrics_but_stop_only_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (bundle, export) = collector(dir.path());
    let engine = Engine::for_tests(dir.path().join("root"));
    engine.plugins().create("mx", &bundle).await.unwrap();
    engine.plugins().enable("mx").await.unwrap();
    assert_eq!(starts(&engine), ["MetricsCollector.StartMetrics"]);
    // The plugin reads the engine's endpoint through /run/docker/metrics.sock: dockerd
    // counts one start at boot.
    let before = exported(&export, "engine.prom", |s| started(s) == Some(1.0)).await;
    assert!(before.family("engine_daemon_engine_info").is_some());
    engine.containers().run(&[], |_| ()).await.unwrap();
    exported(&export, "engine.prom", |s| started(s) == Some(2.0)).await;
    let own = exported(&export, "metricsexport.prom", |_| true).await;
    assert_eq!(
        own.value("metricsexport_scrape_errors_total", &[]),
        Some(0.0)
    );

    // A crash: the plugin is restarted at once, and told to start again.
    let pid = engine.plugins().inspect("mx").unwrap().pid.unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for_async("StartMetrics after the crash", || {
        (starts(&engine).len() >= 2).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(
        starts(&engine),
        [
            "MetricsCollector.StartMetrics",
            "MetricsCollector.StartMetrics"
        ]
    );
    engine.calls().take_methods();

    // Disable sends nothing; enable starts it again.
    engine.plugins().disable("mx", false).await.unwrap();
    assert_eq!(starts(&engine), Vec::<String>::new());
    engine.plugins().enable("mx").await.unwrap();
    assert_eq!(starts(&engine), ["MetricsCollector.StartMetrics"]);
    // Only the engine's shutdown sends StopMetrics.
    engine.shutdown().await;
    assert_eq!(
        starts(&engine),
        [
            "MetricsCollector.StartMetrics",
            "MetricsCollector.StopMetrics"
        ]
    );
    assert!(!dir.path().join("root/run/docker/metrics.sock").exists());
}

#[tokio::test]
async fn an_engine_restart_stops_an_enabled_collector_and_starts_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let (bundle, export) = collector(dir.path());
    let engine = Engine::for_tests(dir.path().join("root"));
    engine.plugins().create("mx", &bundle).await.unwrap();
    engine.plugins().enable("mx").await.unwrap();
    let pid = engine.plugins().inspect("mx").unwrap().pid.unwrap();
    exported(&export, "engine.prom", |s| started(s) == Some(1.0)).await;
    engine.calls().take_methods();

    // dockerd's restart: StopMetrics at its shutdown, the plugin stopped, then enabled
    // again at its start with StartMetrics (moby v20.10.24 `plugin/manager.go`
    // `reload`, `daemon/metrics.go`).
    engine.restart().await.unwrap();
    assert_eq!(
        starts(&engine),
        [
            "MetricsCollector.StopMetrics",
            "MetricsCollector.StartMetrics"
        ]
    );
    let info = engine.plugins().inspect("mx").unwrap();
    assert!(info.enabled, "{info:?}");
    assert_ne!(info.pid, Some(pid), "the plugin was not started again");
    // The new process reads the engine's endpoint, bound again.
    std::fs::remove_file(export.join("engine.prom")).unwrap();
    exported(&export, "engine.prom", |s| started(s).is_some()).await;
    // A disabled collector stays disabled across a restart.
    engine.plugins().disable("mx", false).await.unwrap();
    engine.calls().take_methods();
    engine.restart().await.unwrap();
    assert_eq!(starts(&engine), Vec::<String>::new());
    assert!(!engine.plugins().inspect("mx").unwrap().enabled);
}
