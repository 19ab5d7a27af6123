//! The container the harness runs a managed plugin in is the one dockerd's runc gives
//! it (moby v20.10.24 `plugin/v2/plugin_linux.go`, `oci/defaults.go`,
//! `daemon/initlayer`): network, PID namespaces, capabilities, `/dev`, `/sys`, the init
//! layer, the propagated mount, host mode only on request, and the plugin's lifetime.
//! Each test runs the `recorder` (xtask) from a rootfs and reads what it reports about
//! its container (`--report`, `--connect`, `--print-path`), the lines dockerd logs and
//! `tests/fixtures/dockerd-sequences/plugin_container.json` recorded from a real
//! dockerd. Needs root (as CI runs it).
#![cfg(all(feature = "harness", feature = "packager"))]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use docker_plugin_sdk::harness::{
    Discovery, Engine, EngineConfig, HarnessError, LaunchMode, SocketProbe, VolumeUse,
};
use serde_json::{Value, json};
use support::bundle::write_config;
use support::mounts::mount_points_under;
use support::process::{processes_with, xtask_binary};
use support::recorder::{self, reported};
use support::wait::{PATIENCE, wait_for, wait_for_async};

fn engine(root: &Path) -> Engine {
    Engine::with_config(EngineConfig {
        socket_probe: SocketProbe::fast(),
        ..EngineConfig::rooted(root)
    })
}

/// The recorder bundle `<name>.bundle` (see [`support::recorder::bundle`]).
fn recorder_bundle(dir: &Path, name: &str, extra: Value, flags: &[&str]) -> PathBuf {
    recorder::bundle(dir, &format!("{name}.bundle"), name, extra, flags)
}

/// Creates and enables the recorder bundle `name`.
async fn enabled(e: &Engine, dir: &Path, name: &str, extra: Value, flags: &[&str]) {
    let bundle = recorder_bundle(dir, name, extra, flags);
    e.plugins().create(name, bundle).await.unwrap();
    e.plugins().enable(name).await.unwrap();
}

#[tokio::test]
async fn only_network_host_reaches_the_hosts_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    enabled(&e, dir.path(), "net-none", json!({}), &["--connect", &addr]).await;
    enabled(
        &e,
        dir.path(),
        "net-host",
        json!({"network": {"type": "host"}}),
        &["--connect", &addr],
    )
    .await;
    assert_eq!(reported(&e, "net-none", "net").await, "lo only, up");
    let refused = reported(&e, "net-none", &format!("connect {addr}")).await;
    assert!(refused.starts_with(": Connection refused"), "{refused}");
    assert_eq!(
        reported(&e, "net-host", &format!("connect {addr}")).await,
        "ok"
    );
    // `bridge` is a private namespace too, with the host's name resolution.
    enabled(
        &e,
        dir.path(),
        "net-bridge",
        json!({"network": {"type": "bridge"}}),
        &["--connect", &addr],
    )
    .await;
    let refused = reported(&e, "net-bridge", &format!("connect {addr}")).await;
    assert!(refused.starts_with(": Connection refused"), "{refused}");
}

#[tokio::test]
async fn capabilities_are_dockers_fourteen_plus_the_configs() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    enabled(&e, dir.path(), "caps-none", json!({}), &[]).await;
    enabled(
        &e,
        dir.path(),
        "caps-admin",
        json!({"linux": {"capabilities": ["CAP_SYS_ADMIN"]}}),
        &[],
    )
    .await;
    assert_eq!(
        reported(&e, "caps-none", "mount tmpfs").await,
        ": EPERM: Operation not permitted"
    );
    assert_eq!(
        reported(&e, "caps-none", "caps").await,
        "bnd=00000000a80425fb eff=00000000a80425fb prm=00000000a80425fb \
         inh=0000000000000000 amb=0000000000000000"
    );
    assert_eq!(reported(&e, "caps-admin", "mount tmpfs").await, ": ok");
    assert_eq!(
        reported(&e, "caps-admin", "caps").await,
        "bnd=00000000a82425fb eff=00000000a82425fb prm=00000000a82425fb \
         inh=0000000000200000 amb=0000000000000000"
    );
    assert_eq!(
        reported(&e, "caps-none", "pid").await,
        "1 (own PID namespace)"
    );
}

#[tokio::test]
async fn dev_holds_runcs_nodes_and_only_the_devices_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    enabled(&e, dir.path(), "dev-plain", json!({}), &[]).await;
    enabled(
        &e,
        dir.path(),
        "dev-fuse",
        json!({"linux": {"devices": [{"path": "/dev/fuse"}]}}),
        &[],
    )
    .await;
    enabled(
        &e,
        dir.path(),
        "dev-all",
        json!({"linux": {"allowAllDevices": true}}),
        &[],
    )
    .await;
    assert_eq!(reported(&e, "dev-plain", "/dev/fuse").await, "absent");
    assert_eq!(
        reported(&e, "dev-plain", "dev").await,
        "fd->/proc/self/fd full(1,7) mqueue/ null(1,3) ptmx->pts/ptmx pts/ random(1,8) shm/ \
         stderr->/proc/self/fd/2 stdin->/proc/self/fd/0 stdout->/proc/self/fd/1 tty(5,0) \
         urandom(1,9) zero(1,5)"
    );
    assert_eq!(
        reported(&e, "dev-plain", "mounts").await,
        "/=rw /sys=ro /proc/sys=ro /proc/sysrq-trigger=missing /proc=rw"
    );
    assert_eq!(reported(&e, "dev-fuse", "/dev/fuse").await, "present");
    // A settable device path: `plugin set` gives the plugin the device set.
    let bundle = recorder_bundle(
        dir.path(),
        "dev-set",
        json!({"linux": {"devices": [{"name": "fuse", "settable": ["path"], "path": "/dev/zero"}]}}),
        &[],
    );
    e.plugins().create("dev-set", bundle).await.unwrap();
    e.plugins().set("dev-set", ["fuse=/dev/fuse"]).unwrap();
    e.plugins().enable("dev-set").await.unwrap();
    assert_eq!(reported(&e, "dev-set", "/dev/fuse").await, "present");
    assert_eq!(reported(&e, "dev-all", "dev").await, "the host's");
    // A device the host does not have fails the enable, in moby's words.
    let bundle = recorder_bundle(
        dir.path(),
        "dev-missing",
        json!({"linux": {"devices": [{"path": "/dev/no-such-device"}]}}),
        &[],
    );
    e.plugins().create("dev-missing", bundle).await.unwrap();
    let err = e.plugins().enable("dev-missing").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "error gathering device information while adding custom device \
         \"/dev/no-such-device\": no such file or directory"
    );
}

#[tokio::test]
async fn the_init_layer_is_made_at_every_enable_and_network_brings_the_hosts_names() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let bundle = recorder_bundle(dir.path(), "init", json!({}), &[]);
    fs::write(bundle.join("rootfs/etc/hosts"), "shipped").unwrap();
    fs::write(bundle.join("rootfs/etc/hostname"), "shipped").unwrap();
    e.plugins().create("init", &bundle).await.unwrap();
    e.plugins().enable("init").await.unwrap();
    assert_eq!(
        reported(&e, "init", "files").await,
        "/.dockerenv=empty,rw /etc/hosts=empty,rw /etc/resolv.conf=empty,rw \
         /etc/hostname=empty,rw /etc/mtab=->/proc/mounts"
    );
    let rootfs = e.plugins().inspect("init").unwrap().rootfs;
    e.plugins().disable("init", false).await.unwrap();
    // Written while disabled: made empty again by the next enable.
    fs::write(rootfs.join("etc/hostname"), "again").unwrap();
    e.plugins().enable("init").await.unwrap();
    assert_eq!(fs::read_to_string(rootfs.join("etc/hostname")).unwrap(), "");

    let bundle = recorder_bundle(
        dir.path(),
        "init-net",
        json!({"network": {"type": "host"}}),
        &[],
    );
    e.plugins().create("init-net", bundle).await.unwrap();
    e.plugins().enable("init-net").await.unwrap();
    assert_eq!(
        reported(&e, "init-net", "files").await,
        "/.dockerenv=empty,rw /etc/hosts=non-empty,ro /etc/resolv.conf=non-empty,ro \
         /etc/hostname=empty,rw /etc/mtab=->/proc/mounts"
    );
}

#[tokio::test]
async fn mounts_under_the_propagated_mount_reach_the_host_until_the_plugin_goes() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    enabled(
        &e,
        dir.path(),
        "prop",
        json!({"linux": {"capabilities": ["CAP_SYS_ADMIN"]}}),
        &["--store", "/store"],
    )
    .await;
    let info = e.plugins().inspect("prop").unwrap();
    let plugin_dir = info.rootfs.parent().unwrap().to_path_buf();
    e.volumes()
        .create("prop", "v1", std::iter::empty::<(&str, &str)>())
        .await
        .unwrap();
    // The plugin bind-mounts /store/v1 onto /mnt/volumes/v1/data on Mount: the
    // container reads the content only if that mount reached the host.
    let read = e
        .containers()
        .run(&[VolumeUse::existing("v1")], |c| {
            fs::read_to_string(c.mountpoint("v1").unwrap().join("created-by-recorder"))
        })
        .await
        .unwrap();
    assert_eq!(read.unwrap(), "v1");
    let mut container = e
        .containers()
        .create(&[VolumeUse::existing("v1")])
        .await
        .unwrap();
    e.containers().start(&mut container).await.unwrap();
    let data = info.propagated_mount.join("v1/data");
    assert!(
        mount_points_under(&plugin_dir)
            .iter()
            .any(|m| *m == fs::canonicalize(&data).unwrap()),
        "{:?}",
        mount_points_under(&plugin_dir)
    );
    // Disable (forced: the volume holds a reference) unmounts everything it left.
    e.plugins().disable("prop", true).await.unwrap();
    assert_eq!(mount_points_under(&plugin_dir), Vec::<PathBuf>::new());
    assert!(!data.join("created-by-recorder").exists());
    e.plugins().rm("prop", true).await.unwrap();
    assert!(!plugin_dir.exists());
}

#[tokio::test]
async fn a_host_binary_runs_only_in_host_mode_and_otherwise_fails_as_dockerd() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let bundle = dir.path().join("host");
    let recorder = xtask_binary("recorder");
    write_config(
        &bundle,
        &json!({
            "entrypoint": [recorder, "--name", "host", "--root", dir.path().join("v"),
                           "--log", dir.path().join("calls.jsonl"), "--report"],
            "interface": {"socket": "host.sock", "types": ["docker.volumedriver/1.0"]}
        }),
    );
    e.plugins().create("host", &bundle).await.unwrap();
    let err = e.plugins().enable("host").await.unwrap_err().to_string();
    let shown = recorder.display();
    assert_eq!(
        err,
        format!(
            "failed to create shim task: OCI runtime create failed: runc create failed: \
             unable to start container process: exec: \"{shown}\": stat {shown}: no such \
             file or directory: unknown"
        )
    );
    e.plugins().rm("host", false).await.unwrap();
    e.plugins()
        .create_as("host", &bundle, LaunchMode::Host)
        .await
        .unwrap();
    e.plugins().enable("host").await.unwrap();
    // In the plugin's namespaces all the same.
    assert_eq!(reported(&e, "host", "net").await, "lo only, up");
}

/// Waits (see [`support::wait`]) until `done` holds; panics naming `what` after that.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    wait_for_async(what, || done().then_some(())).await.unwrap();
}

/// A host-mode bundle that starts a daemonizing helper (`setsid sleep MARKER &`)
/// before it execs the recorder.
fn daemonizing_bundle(dir: &Path, name: &str, marker: &str, pid_host: bool) -> PathBuf {
    let bundle = dir.join(name);
    let recorder = xtask_binary("recorder");
    let script = format!(
        "setsid /bin/sleep {marker} & exec {} --name {name} --root {} --log {}",
        recorder.display(),
        dir.join(format!("{name}-volumes")).display(),
        dir.join(format!("{name}.jsonl")).display()
    );
    write_config(
        &bundle,
        &json!({
            "entrypoint": ["/bin/sh", "-c", script],
            "interface": {"socket": format!("{name}.sock"), "types": ["docker.volumedriver/1.0"]},
            "pidhost": pid_host
        }),
    );
    bundle
}

#[tokio::test]
async fn helpers_a_plugin_daemonizes_go_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    for (name, marker, pid_host) in [("helper-ns", "7171", false), ("helper-host", "7272", true)] {
        let bundle = daemonizing_bundle(dir.path(), name, marker, pid_host);
        e.plugins()
            .create_as(name, &bundle, LaunchMode::Host)
            .await
            .unwrap();
        e.plugins().enable(name).await.unwrap();
        wait_until("the helper", || processes_with(marker) == 1).await;
        e.plugins().disable(name, false).await.unwrap();
        wait_until("the helper to go", || processes_with(marker) == 0).await;
    }
}

#[tokio::test]
async fn dropping_the_engine_stops_its_plugins_and_unmounts_them() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    enabled(
        &e,
        dir.path(),
        "dropped",
        json!({}),
        &["--print-env", "DROP_MARKER_7575"],
    )
    .await;
    let pid = e.plugins().inspect("dropped").unwrap().pid.unwrap();
    let plugin_dir = e
        .plugins()
        .inspect("dropped")
        .unwrap()
        .rootfs
        .parent()
        .unwrap()
        .to_path_buf();
    assert!(
        !mount_points_under(&plugin_dir).is_empty(),
        "the propagated mount"
    );
    drop(e);
    wait_until("the plugin to stop", || {
        !Path::new(&format!("/proc/{pid}")).exists()
    })
    .await;
    assert_eq!(mount_points_under(&plugin_dir), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn a_crashed_plugin_gets_a_new_socket_dir_before_its_restart() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    enabled(&e, dir.path(), "crash", json!({}), &[]).await;
    let info = e.plugins().inspect("crash").unwrap();
    let socket_dir = info.socket.parent().unwrap().to_path_buf();
    fs::write(socket_dir.join("left-behind"), "").unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(info.pid.unwrap() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until("a new plugin process", || {
        e.plugins()
            .inspect("crash")
            .unwrap()
            .pid
            .is_some_and(|pid| Some(pid) != info.pid)
    })
    .await;
    e.plugins()
        .wait_until_answering("crash", PATIENCE)
        .await
        .unwrap();
    assert!(
        !socket_dir.join("left-behind").exists(),
        "the dir was made again"
    );
    e.volumes()
        .create("crash", "c1", std::iter::empty::<(&str, &str)>())
        .await
        .unwrap();
}

/// Set in the copy of this test binary that is killed with its plugin running.
const KILLED_COPY: &str = "DPS_HARNESS_KILLED_COPY";
const KILLED_MARKER: &str = "KILLED_MARKER_7676";

/// A plugin dies with the test process that runs it, even when that process is
/// killed (no destructor runs): the test runs itself again, waits for its plugin to
/// start, SIGKILLs the copy, and the plugin must go.
#[test]
fn plugins_die_with_a_killed_test_process() {
    let name = "plugins_die_with_a_killed_test_process";
    if let Some(dir) = std::env::var_os(KILLED_COPY) {
        let dir = PathBuf::from(dir);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let e = engine(&dir);
                enabled(
                    &e,
                    &dir,
                    "killed",
                    json!({}),
                    &["--print-env", KILLED_MARKER],
                )
                .await;
                println!("plugin started");
                tokio::time::sleep(Duration::from_secs(60)).await;
            });
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut copy = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture"])
        .env(KILLED_COPY, dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(copy.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("plugin started") {
        line.clear();
        let read = std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert!(read > 0, "the copy ended before its plugin started");
    }
    assert_eq!(processes_with(KILLED_MARKER), 1);
    copy.kill().unwrap();
    copy.wait().unwrap();
    wait_for("the plugin to go with its engine", || {
        (processes_with(KILLED_MARKER) == 0).then_some(())
    })
    .unwrap();
    // The killed copy could not unmount the plugin's propagated mount.
    support::mounts::unmount_under(dir.path());
    dir.close().unwrap();
}

/// `Probe::<T>::has_default()` is true only when `T: Default` (the inherent method
/// wins over the trait's when its bound holds).
struct Probe<T>(std::marker::PhantomData<T>);
trait NoDefault {
    fn has_default() -> bool {
        false
    }
}
impl<T> NoDefault for Probe<T> {}
#[allow(dead_code)] // used exactly when the bound holds: what the test checks
impl<T: Default> Probe<T> {
    fn has_default() -> bool {
        true
    }
}

#[test]
fn the_machines_plugin_dirs_are_reached_only_when_asked_for_by_name() {
    assert!(!Probe::<EngineConfig>::has_default());
    assert!(!Probe::<Discovery>::has_default());
    let system = EngineConfig::system();
    assert_eq!(
        system.discovery.socket_dir,
        Path::new("/run/docker/plugins")
    );
    assert!(system.data_root.is_none());
    let dir = tempfile::tempdir().unwrap();
    let rooted = Engine::for_tests(dir.path());
    let config = rooted.config();
    assert!(config.discovery.socket_dir.starts_with(dir.path()));
    assert!(
        config
            .discovery
            .spec_dirs
            .iter()
            .all(|d| d.starts_with(dir.path()))
    );
    assert!(config.data_root.as_ref().unwrap().starts_with(dir.path()));
}

#[tokio::test]
async fn an_engine_without_a_data_root_refuses_managed_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::new(Discovery::rooted(dir.path()));
    let bundle = dir.path().join("bundle");
    write_config(&bundle, &json!({"entrypoint": ["/x"]}));
    let err = e.plugins().create("x", &bundle).await.unwrap_err();
    assert!(matches!(err, HarnessError::NoDataRoot), "{err}");
}
