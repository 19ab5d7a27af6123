//! `{{project-name}}` end to end: the real binary, driven by the SDK's harness (a dockerd
//! test double) exactly as dockerd drives a log driver: Capabilities, a FIFO,
//! StartLogging, the container's lines written into the FIFO as frames (a line over
//! 16 KiB in pieces), StopLogging, and `docker logs` as ReadLogs; as a plain process,
//! and as a managed plugin packaged from this crate's own
//! `[package.metadata.docker-plugin]`.

use std::path::{Path, PathBuf};
use std::process::Command;

use docker_plugin_sdk::harness::{Engine, LogContainer, PluginProcess};
use docker_plugin_sdk::logging::ReadConfig;
use docker_plugin_sdk::package::metadata::Metadata;

/// The plugin's name: its socket is `NAME.sock`.
const PLUGIN: &str = "{{project-name}}";

/// The plugin binary listening where `engine` looks; its log in `root/plugin.log`.
/// Returns once the plugin answers; fails with the plugin's log. Stopped with SIGTERM
/// when dropped.
fn start(root: &Path, engine: &Engine) -> PluginProcess {
    let socket_dir = &engine.discovery().socket_dir;
    let mut command = Command::new(env!("CARGO_BIN_EXE_{{project-name}}"));
    command.arg("--socket-dir").arg(socket_dir);
    let socket = socket_dir.join(format!("{PLUGIN}.sock"));
    PluginProcess::start_answering(command, &socket, root.join("plugin.log")).unwrap()
}

/// `docker logs` with `config` of the stopped `container`, as it prints it.
async fn docker_logs(
    engine: &Engine,
    driver: &str,
    container: &LogContainer,
    config: ReadConfig,
) -> String {
    let reader = engine
        .logging()
        .read(driver, container, config)
        .await
        .unwrap();
    reader.collect_text().await.unwrap()
}

/// A container printing a few lines, one over 16 KiB, then exiting.
async fn run(engine: &Engine, driver: &str, container: &LogContainer, long: &str) {
    let mut log = engine.logging().start(driver, container).await.unwrap();
    assert!(log.capability().read_logs);
    log.write("stdout", format!("one\n{long}\n").as_bytes())
        .await
        .unwrap();
    log.write("stderr", b"oops\n").await.unwrap();
    log.write("stdout", b"two\n").await.unwrap();
    log.stop().await.unwrap();
}

#[tokio::test]
async fn docker_logs_gives_back_every_line_a_long_one_whole() {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::for_tests(root.path());
    let _plugin = start(root.path(), &engine);
    let container = LogContainer::new("web", "busybox");
    let long = "x".repeat(20_000);
    run(&engine, PLUGIN, &container, &long).await;

    let all = docker_logs(&engine, PLUGIN, &container, ReadConfig::default()).await;
    assert_eq!(all, format!("one\n{long}\noops\ntwo\n"));
    let tail = ReadConfig {
        tail: 2,
        ..ReadConfig::default()
    };
    assert_eq!(
        docker_logs(&engine, PLUGIN, &container, tail).await,
        "oops\ntwo\n"
    );
}

#[tokio::test]
async fn only_the_last_max_lines_are_kept() {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::for_tests(root.path());
    let _plugin = start(root.path(), &engine);
    let container = LogContainer::new("web", "busybox").opt("max-lines", "2");
    run(&engine, PLUGIN, &container, "long").await;
    let kept = docker_logs(&engine, PLUGIN, &container, ReadConfig::default()).await;
    assert_eq!(kept, "oops\ntwo\n");
}

#[tokio::test]
async fn a_bad_log_opt_fails_the_start_in_the_drivers_words() {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::for_tests(root.path());
    let _plugin = start(root.path(), &engine);
    for (key, value, words) in [
        (
            "max-lines",
            "lots",
            "option `max-lines` must be a non-negative whole number, got `lots`: \
             invalid digit found in string",
        ),
        (
            "max-line",
            "5",
            "unknown option `max-line` (valid options: max-lines)",
        ),
    ] {
        let container = LogContainer::new("web", "busybox").opt(key, value);
        let err = engine
            .logging()
            .start(PLUGIN, &container)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("invalid options: {words}")), "{err}");
    }
    // dockerd's own options are not the driver's to refuse.
    let container = LogContainer::new("web", "busybox").opt("mode", "non-blocking");
    let log = engine.logging().start(PLUGIN, &container).await.unwrap();
    log.stop().await.unwrap();
}

/// The bundle `cargo docker-plugin package` would write, from this crate's metadata
/// and the binary cargo built for the tests.
fn package(into: &Path) -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = crate_dir.join("Cargo.toml");
    let (package, metadata) = Metadata::from_manifest(&manifest, None).unwrap();
    let config = metadata.to_config(&package, PLUGIN, &manifest).unwrap();
    let bundle = into.join("bundle");
    let binary = env!("CARGO_BIN_EXE_{{project-name}}");
    metadata
        .bundle_writer(&bundle, config, PLUGIN, binary, crate_dir)
        .write()
        .unwrap();
    bundle
}

#[tokio::test]
async fn as_a_managed_plugin_packaged_from_its_metadata() {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::for_tests(root.path());
    let plugins = engine.plugins();
    plugins.create(PLUGIN, package(root.path())).await.unwrap();
    // What `docker plugin install` asks the user to grant: nothing.
    let privileges = plugins.privileges(PLUGIN).unwrap();
    assert!(privileges.is_empty(), "{privileges:?}");
    plugins.enable(PLUGIN).await.unwrap();
    // docker run --log-driver {{project-name}}:latest: the FIFO in the plugin's rootfs.
    let driver = format!("{PLUGIN}:latest");
    let container = LogContainer::new("web", "busybox");
    let long = "y".repeat(40_000);
    run(&engine, &driver, &container, &long).await;
    let all = docker_logs(&engine, &driver, &container, ReadConfig::default()).await;
    assert_eq!(all, format!("one\n{long}\noops\ntwo\n"));
    plugins.disable(PLUGIN, false).await.unwrap();
    plugins.rm(PLUGIN, false).await.unwrap();
}
