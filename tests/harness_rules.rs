//! dockerd's rules for plugins, as the harness follows them (moby v20.10.24
//! `pkg/plugins/*.go`, `plugin/store.go`, `plugin/manager*.go`, `plugin/backend_linux.go`,
//! `volume/drivers/extpoint.go`, `volume/service/*.go`), each with dockerd's words:
//! retries, `plugin set`, `plugin upgrade`, references and messages, names and IDs,
//! one lock per plugin, the legacy driver cache that shadows a managed plugin, and
//! the warnings of `volume ls`. Runs the `recorder` (xtask) as legacy and managed
//! plugin; needs root for the managed ones (as CI runs it).
#![cfg(all(feature = "harness", feature = "packager"))]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use docker_plugin_sdk::harness::{
    Engine, EngineConfig, HarnessError, PluginProcess, RetryPolicy, Signal, SocketProbe, VolumeUse,
};
use serde_json::{Value, json};
use support::process::xtask_binary;
use support::recorder::{self, reported};
use support::wait::{PATIENCE, wait_for};

fn none() -> std::iter::Empty<(&'static str, &'static str)> {
    std::iter::empty()
}

/// A legacy recorder `name` listening in `e`'s socket dir.
fn legacy(e: &Engine, root: &Path, name: &str) -> PluginProcess {
    let socket_dir = &e.discovery().socket_dir;
    let mut command = Command::new(xtask_binary("recorder"));
    command
        .args(["--name", name, "--socket-dir"])
        .arg(socket_dir)
        .arg("--root")
        .arg(root.join("volumes").join(name))
        .arg("--log")
        .arg(root.join(format!("{name}.jsonl")))
        .arg("--capabilities");
    let socket = socket_dir.join(format!("{name}.sock"));
    PluginProcess::start(command, &socket, root.join(format!("{name}.log"))).unwrap()
}

/// [`bundle`] with `extra` written over its config.json afterwards: a config the
/// packager would refuse.
fn broken_bundle(dir: &Path, file: &str, name: &str, extra: Value) -> PathBuf {
    let b = bundle(dir, file, name, json!({}));
    let path = b.join("config.json");
    let mut config: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    fs::write(&path, config.to_string()).unwrap();
    b
}

/// A managed recorder bundle (see [`support::recorder::bundle`]).
fn bundle(dir: &Path, file: &str, name: &str, extra: Value) -> PathBuf {
    recorder::bundle(dir, file, name, extra, &[])
}

fn engine(root: &Path) -> Engine {
    Engine::for_tests(root)
}

/// A unix socket that leaves a stale file: connecting to it is refused.
fn stale_socket(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(path).unwrap());
}

#[tokio::test]
async fn listing_skips_only_the_discovery_retry_and_its_client_keeps_retrying() {
    let root = tempfile::tempdir().unwrap();
    let e = engine(root.path());
    xtask_binary("recorder"); // built now, not while the listing waits
    let socket = e.discovery().socket_dir.join("late.sock");
    stale_socket(&socket);
    // The plugin comes up once the listing's first Activate has failed (an attempt is
    // logged as it ends), whatever the load makes of the listing's start.
    let started = {
        let (e, root) = (e.clone(), root.path().to_path_buf());
        std::thread::spawn(move || {
            wait_for("the listing's first Activate to fail", || {
                e.calls()
                    .records()
                    .iter()
                    .any(|c| c.method == "Plugin.Activate" && c.status.is_none())
                    .then_some(())
            })
            .unwrap();
            fs::remove_file(e.discovery().socket_dir.join("late.sock")).unwrap();
            legacy(&e, &root, "late")
        })
    };
    let listed = e.volumes().ls().await.unwrap();
    let mut plugin = started.join().unwrap();
    let calls = e.calls().take();
    assert!(
        listed.warnings.is_empty(),
        "{:?} {calls:#?}",
        listed.warnings
    );
    let activations: Vec<Option<u16>> = calls
        .iter()
        .filter(|c| c.method == "Plugin.Activate")
        .map(|c| c.status)
        .collect();
    assert!(activations.len() >= 2, "{calls:#?}");
    assert_eq!(
        activations.last(),
        Some(&Some(200)),
        "Activate was retried: {calls:#?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.method == "VolumeDriver.List" && c.status == Some(200)),
        "{calls:#?}"
    );
    // The client made then keeps retrying: a restart is ridden out.
    e.volumes().create("late", "v1", none()).await.unwrap();
    plugin.signal_and_wait(Signal::SIGKILL).unwrap();
    let restarted = {
        let (e, root) = (e.clone(), root.path().to_path_buf());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(400));
            legacy(&e, &root, "late")
        })
    };
    e.volumes().inspect("v1").await.unwrap();
    let _plugin = restarted.join().unwrap();
}

#[tokio::test]
async fn managed_plugins_use_the_engines_retry_policy() {
    let root = tempfile::tempdir().unwrap();
    let e = Engine::with_config(EngineConfig {
        retry: RetryPolicy::none(),
        socket_probe: SocketProbe::fast(),
        ..EngineConfig::rooted(root.path())
    });
    let b = bundle(root.path(), "rn.bundle", "rn", json!({}));
    e.plugins().create("rn", b).await.unwrap();
    e.plugins().enable("rn").await.unwrap();
    fs::remove_file(e.plugins().inspect("rn").unwrap().socket).unwrap();
    let start = Instant::now();
    let listed = e.volumes().ls().await.unwrap();
    // dockerd's retries would go on for 30 s; one attempt ends at once (with room
    // for CI's loaded machine).
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let attempts = e.calls().take();
    assert_eq!(attempts.len(), 1, "one attempt, no retry: {attempts:#?}");
    assert_eq!(listed.warnings.len(), 1, "{:?}", listed.warnings);
    assert!(
        listed.warnings[0].starts_with("list rn:latest: "),
        "{:?}",
        listed.warnings
    );
}

#[tokio::test]
async fn plugin_set_keeps_what_came_before_a_failure_in_the_settings() {
    let root = tempfile::tempdir().unwrap();
    let e = engine(root.path());
    let b = bundle(root.path(), "set.bundle", "set", json!({}));
    e.plugins().create("set", b).await.unwrap();
    let err = e
        .plugins()
        .set("set", ["DEBUG=2", "log.source=/tmp"])
        .unwrap_err();
    assert_eq!(err.to_string(), r#""log.source" is not settable"#);
    let info = e.plugins().inspect("set").unwrap();
    assert_eq!(info.settings.env, ["DEBUG=2"]);
    assert_eq!(
        info.config.env[0].value.as_deref(),
        Some("0"),
        "Config.Env is the bundle's"
    );
    assert!(
        info.settings
            .to_docker_json()
            .contains(r#""Env":["DEBUG=2"]"#)
    );
    e.plugins().enable("set").await.unwrap();
    let env = reported(&e, "set", "env").await;
    assert!(
        env.starts_with("DEBUG=2 "),
        "the plugin starts with the setting: {env}"
    );
}

#[tokio::test]
async fn upgrade_replaces_rootfs_and_config_and_keeps_id_volumes_and_old_settings() {
    let root = tempfile::tempdir().unwrap();
    let e = engine(root.path());
    let v1 = bundle(root.path(), "v1.bundle", "up", json!({}));
    let v2 = bundle(
        root.path(),
        "v2.bundle",
        "up",
        json!({
            "description": "recorder v2",
            "env": [{"name": "DEBUG", "settable": ["value"], "value": "0"},
                    {"name": "NEWVAR", "value": "new"}],
            "linux": {"devices": [{"path": "/dev/fuse"}]}
        }),
    );
    fs::write(v2.join("rootfs/version"), "2").unwrap();
    let id = e.plugins().create("up", v1).await.unwrap();
    e.plugins().set("up", ["DEBUG=1"]).unwrap();
    e.plugins().enable("up").await.unwrap();
    e.volumes().create("up", "kept", none()).await.unwrap();
    let rootfs = e.plugins().inspect("up").unwrap().rootfs;
    fs::write(rootfs.join("state"), "kept in the rootfs").unwrap();

    let err = e.plugins().upgrade("up", &v2).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin must be disabled before upgrading: plugin up:latest is enabled"
    );
    e.plugins().disable("up", true).await.unwrap();
    e.plugins().upgrade(&id[..12], &v2).await.unwrap();
    let info = e.plugins().inspect("up").unwrap();
    assert_eq!(info.id, id);
    assert_eq!(info.config.description, "recorder v2");
    assert_eq!(info.settings.env, ["DEBUG=1"], "the old settings");
    assert!(
        !rootfs.join("state").exists(),
        "state kept in the rootfs is lost"
    );
    assert_eq!(fs::read_to_string(rootfs.join("version")).unwrap(), "2");

    e.plugins().enable("up").await.unwrap();
    let env = reported(&e, "up", "env").await;
    assert!(env.contains("DEBUG=1") && !env.contains("NEWVAR"), "{env}");
    assert_eq!(
        reported(&e, "up", "/dev/fuse").await,
        "absent",
        "a new device is not given"
    );
    let listed = e.volumes().ls().await.unwrap();
    assert_eq!(listed.len(), 1, "the volume is kept");
}

#[tokio::test]
async fn references_names_and_messages_are_dockerds() {
    let root = tempfile::tempdir().unwrap();
    let e = engine(root.path());
    let b = bundle(root.path(), "ref.bundle", "ref", json!({}));
    let id = e.plugins().create("ref", b).await.unwrap();
    // A full ID, an ID prefix and NAME:TAG are the plugin too.
    e.plugins().enable(&id[..5]).await.unwrap();
    assert_eq!(
        e.plugins()
            .enable("ref:latest")
            .await
            .unwrap_err()
            .to_string(),
        "plugin already enabled: plugin ref:latest is enabled"
    );
    assert_eq!(e.plugins().inspect(&id).unwrap().name, "ref:latest");
    assert_eq!(
        e.plugins().inspect("ref:other").unwrap_err().to_string(),
        r#"plugin "ref:other" not found"#
    );
    e.volumes().create("ref", "v1", none()).await.unwrap();
    let first = e
        .containers()
        .create(&[VolumeUse::existing("v1")])
        .await
        .unwrap();
    let second = e
        .containers()
        .create(&[VolumeUse::existing("v1")])
        .await
        .unwrap();
    assert_eq!(
        e.volumes().rm("v1").await.unwrap_err().to_string(),
        format!(
            "remove v1: volume is in use - [{}, {}]",
            first.id, second.id
        )
    );
    e.plugins().disable("ref", true).await.unwrap();
    // References are checked before "already disabled".
    assert_eq!(
        e.plugins()
            .disable("ref", false)
            .await
            .unwrap_err()
            .to_string(),
        "plugin ref:latest is in use"
    );
    assert_eq!(
        e.plugins()
            .disable("ref", true)
            .await
            .unwrap_err()
            .to_string(),
        "plugin is already disabled: plugin ref:latest found but disabled"
    );

    // A managed plugin whose types lack docker.volumedriver, or have another prefix.
    for (name, types) in [
        ("authz-only", "docker.authz/1.0"),
        ("other-prefix", "acme.volumedriver/1.0"),
    ] {
        let b = broken_bundle(
            root.path(),
            &format!("{name}.bundle"),
            name,
            json!({"Interface": {"Socket": format!("{name}.sock"), "Types": [types]}}),
        );
        e.plugins().create(name, b).await.unwrap();
        e.plugins().enable(name).await.unwrap();
        assert_eq!(
            e.volumes()
                .create(name, "x", none())
                .await
                .unwrap_err()
                .to_string(),
            format!(
                "create x: error looking up volume plugin {name}: plugin does not provide \
                 \"volumedriver\" capability"
            )
        );
    }
}

/// A legacy plugin that answers `/Plugin.Activate` with `implements`, after `delay`.
fn raw_plugin(socket: &Path, implements: &'static str, delay: Duration) {
    fs::create_dir_all(socket.parent().unwrap()).unwrap();
    let listener = tokio::net::UnixListener::bind(socket).unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 1024];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                tokio::time::sleep(delay).await;
                let body = format!(r#"{{"Implements":["{implements}"]}}"#);
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.plugins.v1.2+json\r\n\
                     Content-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
            });
        }
    });
}

#[tokio::test]
async fn a_legacy_plugin_that_does_not_implement_the_subsystem_fails_in_dockerds_words() {
    let root = tempfile::tempdir().unwrap();
    let e = engine(root.path());
    raw_plugin(
        &e.discovery().socket_dir.join("authz.sock"),
        "authz",
        Duration::ZERO,
    );
    assert_eq!(
        e.volumes()
            .create("authz", "v", none())
            .await
            .unwrap_err()
            .to_string(),
        "create v: error looking up volume plugin authz: legacy plugin: Plugin does not \
         implement the requested driver"
    );
}

#[tokio::test]
async fn each_plugin_is_activated_under_its_own_lock() {
    let root = tempfile::tempdir().unwrap();
    let e = engine(root.path());
    // Slow enough that a quick activation kept waiting behind it cannot pass for one
    // that was merely slowed by a loaded machine.
    raw_plugin(
        &e.discovery().socket_dir.join("slow.sock"),
        "VolumeDriver",
        Duration::from_secs(6),
    );
    raw_plugin(
        &e.discovery().socket_dir.join("quick.sock"),
        "VolumeDriver",
        Duration::ZERO,
    );
    let slow = {
        let e = e.clone();
        tokio::spawn(async move { e.plugins().get("slow", "VolumeDriver").await.map(drop) })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    e.plugins().get("quick", "VolumeDriver").await.unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "quick waited for slow: {:?}",
        start.elapsed()
    );
    slow.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_legacy_driver_used_once_shadows_a_managed_plugin_of_the_same_name() {
    let root = tempfile::tempdir().unwrap();
    let e = engine(root.path());
    let mut old = legacy(&e, root.path(), "shadow");
    e.volumes().create("shadow", "v0", none()).await.unwrap();
    old.signal_and_wait(Signal::SIGKILL).unwrap();
    let b = bundle(root.path(), "shadow.bundle", "shadow", json!({}));
    e.plugins().create("shadow", b).await.unwrap();
    e.plugins().enable("shadow").await.unwrap();
    e.calls().take();
    // dockerd dials the dead legacy plugin, kept by that name, until its retries end.
    assert!(e.volumes().create("shadow", "v1", none()).await.is_err());
    let calls = e.calls().take();
    assert!(
        calls
            .iter()
            .all(|c| c.plugin == "shadow" && c.status.is_none()),
        "only the legacy plugin was called: {calls:#?}"
    );
    // Its full name reaches the managed one.
    let created = e
        .volumes()
        .create("shadow:latest", "v2", none())
        .await
        .unwrap();
    assert_eq!(created.driver, "shadow:latest");
}

#[tokio::test]
async fn volume_ls_warns_about_the_drivers_it_could_not_list() {
    let root = tempfile::tempdir().unwrap();
    let e = engine(root.path());
    let mut plugin = legacy(&e, root.path(), "gone");
    e.volumes().create("gone", "v1", none()).await.unwrap();
    plugin.signal_and_wait(Signal::SIGKILL).unwrap();
    let listed = e.volumes().ls().await.unwrap();
    assert_eq!(listed.warnings.len(), 1, "{:?}", listed.warnings);
    assert!(
        listed.warnings[0].starts_with("list gone: "),
        "{:?}",
        listed.warnings
    );
    // The volumes the engine knows on it are listed all the same, as dockerd does.
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].name.as_str(), listed[0].driver.as_str()),
        ("v1", "gone")
    );
    // Started again: the engine waits until it answers, then lists it.
    let _plugin = legacy(&e, root.path(), "gone");
    e.plugins()
        .wait_until_answering("gone", PATIENCE)
        .await
        .unwrap();
    let listed = e.volumes().ls().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed.warnings.is_empty());
}

#[tokio::test]
async fn mounts_dockerd_cannot_make_fail_the_enable() {
    let root = tempfile::tempdir().unwrap();
    let e = engine(root.path());
    let no_source = broken_bundle(
        root.path(),
        "nosrc.bundle",
        "nosrc",
        json!({"Mounts": [{"Destination": "/mnt/x", "Type": "bind", "Options": ["rbind"]}]}),
    );
    e.plugins().create("nosrc", no_source).await.unwrap();
    assert_eq!(
        e.plugins().enable("nosrc").await.unwrap_err().to_string(),
        "mount source is not specified"
    );
    let bad_type = broken_bundle(
        root.path(),
        "badfs.bundle",
        "badfs",
        json!({"Mounts": [{"Source": "none", "Destination": "/mnt/x", "Type": "nosuchfs"}]}),
    );
    e.plugins().create("badfs", bad_type).await.unwrap();
    let err = e.plugins().enable("badfs").await.unwrap_err();
    assert!(matches!(err, HarnessError::Runtime { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(
            "failed to create shim task: OCI runtime create failed: runc create failed: \
             unable to start container process: error during container init: error mounting \
             \"none\" to rootfs at"
        ),
        "{err}"
    );
    assert!(!e.plugins().inspect("badfs").unwrap().enabled);
}
