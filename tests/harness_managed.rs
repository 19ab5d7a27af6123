//! The mini-engine running the example plugin as a MANAGED plugin from a bundle
//! (`config.json` + `rootfs/`), the way `docker plugin create/enable/disable/rm` do:
//! both from a rootfs (chroot, with the binary's shared libraries in it) and as a host
//! binary; no `/Plugin.Activate`; references held by volumes; set only while disabled;
//! restart after a crash; a plugin that never listens stays disabled; a network and
//! IPAM plugin asked its capabilities when enabled.
#![cfg(all(feature = "harness", feature = "packager"))]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use docker_plugin_sdk::harness::{
    Engine, EngineConfig, HarnessError, LaunchMode, NetworkOptions, SocketProbe, VolumeUse,
};
use serde_json::json;
use support::bundle::{packaged, write_config};
use support::process::{example_binary, processes_with};
use support::wait::wait_for_async;

/// dockerd's retries (they ride out a plugin restart), a fast socket probe.
fn engine(root: &Path) -> Engine {
    Engine::with_config(EngineConfig {
        socket_probe: SocketProbe::fast(),
        ..EngineConfig::rooted(root)
    })
}

/// A bundle whose entrypoint is the host's freshly built localvol.
fn host_bundle(dir: &Path, socket: &str, volumes: &Path) -> PathBuf {
    let bundle = dir.join("bundle-host");
    write_config(
        &bundle,
        &json!({
            "description": "localvol as a host binary",
            "entrypoint": [example_binary("localvol"), "--name", socket.trim_end_matches(".sock")],
            "args": {"name": "args", "settable": ["value"], "value": ["--root", volumes]},
            "env": [{"name": "RUST_LOG", "settable": ["value"], "value": "info"}],
            "interface": {"socket": socket, "types": ["docker.volumedriver/1.0"]},
            "network": {"type": "host"}
        }),
    );
    bundle
}

/// A bundle with localvol and its libraries in the rootfs, volumes under the
/// propagated mount.
fn rootfs_bundle(dir: &Path, socket: &str) -> PathBuf {
    packaged(
        &dir.join("bundle-rootfs"),
        &json!({
            "description": "localvol in its own rootfs",
            "entrypoint": ["/bin/localvol", "--name", socket.trim_end_matches(".sock")],
            "args": {"name": "args", "settable": ["value"], "value": ["--root", "/mnt/volumes"]},
            "interface": {"socket": socket, "types": ["docker.volumedriver/1.0"]},
            "network": {"type": "host"},
            "propagatedmount": "/mnt/volumes",
            "linux": {"capabilities": ["CAP_SYS_ADMIN"]}
        }),
        &example_binary("localvol"),
        "/bin/localvol",
        &[],
    )
}

/// Waits (see [`support::wait`]) until `done` holds; panics naming `what` after that.
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    wait_for_async(what, || done().then_some(())).await.unwrap();
}

#[tokio::test]
async fn a_rootfs_bundle_runs_chrooted_through_its_whole_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let bundle = rootfs_bundle(dir.path(), "lvr.sock");

    let id = e.plugins().create("lvr", &bundle).await.unwrap();
    assert_eq!(id.len(), 64);
    let info = e.plugins().inspect("lvr").unwrap();
    assert_eq!(info.name, "lvr:latest");
    assert!(!info.enabled);
    assert!(info.rootfs.join("bin/localvol").is_file(), "rootfs copied");
    let privileges: Vec<String> = e
        .plugins()
        .privileges("lvr")
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        privileges,
        ["network: [host]", "capabilities: [CAP_SYS_ADMIN]"]
    );

    e.plugins().enable("lvr").await.unwrap();
    let info = e.plugins().inspect("lvr").unwrap();
    assert!(info.enabled && info.pid.is_some());
    assert_eq!(
        info.socket,
        dir.path()
            .join("run/docker/plugins")
            .join(&id)
            .join("lvr.sock")
    );
    assert!(
        e.calls().records().is_empty(),
        "managed plugins are not activated"
    );

    // The volume driver is found by its short name and recorded by its full one.
    let created = e
        .volumes()
        .create("lvr", "v1", std::iter::empty::<(&str, &str)>())
        .await
        .unwrap();
    assert_eq!(created.driver, "lvr:latest");
    assert_eq!(
        e.calls().take_methods(),
        [
            "VolumeDriver.Capabilities",
            "VolumeDriver.Get",
            "VolumeDriver.Create"
        ]
    );
    let propagated = info.propagated_mount.clone();
    e.containers()
        .run(&[VolumeUse::existing("v1")], |c| {
            let mountpoint = c.mountpoint("v1").unwrap();
            assert!(
                mountpoint.starts_with(&propagated),
                "{} is mapped under the propagated mount",
                mountpoint.display()
            );
            fs::write(mountpoint.join("hello"), "hi").unwrap();
        })
        .await
        .unwrap();
    // The plugin, chrooted, wrote under /mnt/volumes: on the host that is the
    // propagated-mount dir.
    assert_eq!(
        fs::read_to_string(propagated.join("v1/data/hello")).unwrap(),
        "hi"
    );
    let inspected = e.volumes().inspect("v1").await.unwrap();
    assert_eq!(inspected.mountpoint, Some(propagated.join("v1/data")));

    // A volume holds a reference: disable and rm are refused until it goes.
    let err = e.plugins().disable("lvr", false).await.unwrap_err();
    assert_eq!(err.to_string(), "plugin lvr:latest is in use");
    let err = e.plugins().rm("lvr", false).await.unwrap_err();
    assert_eq!(err.to_string(), "plugin lvr:latest is in use");
    e.volumes().rm("v1").await.unwrap();
    let err = e.plugins().rm("lvr", false).await.unwrap_err();
    assert_eq!(err.to_string(), "plugin lvr:latest is enabled");

    let pid = info.pid.unwrap();
    e.plugins().disable("lvr", false).await.unwrap();
    assert!(!e.plugins().inspect("lvr").unwrap().enabled);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "process stopped"
    );
    let err = e
        .volumes()
        .create("lvr", "v2", std::iter::empty::<(&str, &str)>())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "create v2: error looking up volume plugin lvr: plugin lvr found but disabled"
    );

    // What it printed was captured, tagged with its ID (read in a task of the
    // engine's own: waited for).
    let listening = wait_for_async("the plugin's `plugin listening`", || {
        e.plugins()
            .logs("lvr")
            .unwrap()
            .into_iter()
            .find(|l| l.plugin_id == id && l.line.contains("plugin listening"))
    })
    .await
    .unwrap_or_else(|err| panic!("{err}: {:#?}", e.plugins().logs("lvr")));
    // localvol logs info on stdout, which dockerd logs at level info (warnings and
    // errors go to stderr, level error).
    let shown = listening.to_string();
    assert!(shown.starts_with("level=info msg=\""), "{shown}");
    assert!(shown.ends_with(&format!("\" plugin={id}")), "{shown}");

    e.plugins().rm("lvr", false).await.unwrap();
    assert!(!info.rootfs.exists(), "files removed");
    assert!(matches!(
        e.plugins().inspect("lvr"),
        Err(HarnessError::NoSuchPlugin { .. })
    ));
}

#[tokio::test]
async fn a_host_binary_bundle_serves_volumes_and_takes_settings_while_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let volumes = dir.path().join("volumes");
    let bundle = host_bundle(dir.path(), "lvh.sock", &volumes);
    e.plugins()
        .create_as("lvh", &bundle, LaunchMode::Host)
        .await
        .unwrap();
    let err = e
        .plugins()
        .create_as("lvh:latest", &bundle, LaunchMode::Host)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "plugin lvh:latest already exists");

    e.plugins().enable("lvh").await.unwrap();
    let err = e.plugins().enable("lvh").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin already enabled: plugin lvh:latest is enabled"
    );
    let err = e.plugins().set("lvh", ["RUST_LOG=debug"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot set on an active plugin, disable plugin before setting"
    );
    e.containers()
        .run(&[VolumeUse::with_driver("h1", "lvh")], |c| {
            // A host binary's paths are the host's.
            assert!(c.mountpoint("h1").unwrap().starts_with(&volumes));
        })
        .await
        .unwrap();
    assert!(volumes.join("h1/data").is_dir());
    e.volumes().rm("h1").await.unwrap();
    e.plugins().disable("lvh", false).await.unwrap();
    let err = e.plugins().disable("lvh", false).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin is already disabled: plugin lvh:latest found but disabled"
    );

    // New args: volumes go elsewhere after the next enable.
    let elsewhere = dir.path().join("elsewhere");
    e.plugins()
        .set("lvh", [format!("args=--root {}", elsewhere.display())])
        .unwrap();
    let err = e.plugins().set("lvh", ["NOPE=1"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"setting "NOPE" not found in the plugin configuration"#
    );
    e.plugins().enable("lvh").await.unwrap();
    e.volumes()
        .create("lvh", "h2", std::iter::empty::<(&str, &str)>())
        .await
        .unwrap();
    assert!(elsewhere.join("h2/data").is_dir(), "the set args were used");

    // rm -f of an enabled plugin in use disables and removes it.
    e.plugins().rm("lvh", true).await.unwrap();
    assert!(e.plugins().ls().is_empty());
}

#[tokio::test]
async fn a_plugin_that_exits_while_enabled_is_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let bundle = host_bundle(dir.path(), "lvc.sock", &dir.path().join("volumes"));
    e.plugins()
        .create_as("lvc", &bundle, LaunchMode::Host)
        .await
        .unwrap();
    e.plugins().enable("lvc").await.unwrap();
    e.volumes()
        .create("lvc", "c1", std::iter::empty::<(&str, &str)>())
        .await
        .unwrap();
    let first = e.plugins().inspect("lvc").unwrap().pid.unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for("a new plugin process", || {
        e.plugins()
            .inspect("lvc")
            .unwrap()
            .pid
            .is_some_and(|pid| pid != first)
    })
    .await;
    assert!(e.plugins().inspect("lvc").unwrap().enabled);
    // The engine's retries ride out the restart; the volume is still there.
    let listed = e.volumes().ls().await.unwrap();
    assert_eq!(listed.len(), 1, "{:#?}", e.calls().records());
    assert_eq!(listed[0].driver, "lvc:latest");
    e.plugins().rm("lvc", true).await.unwrap();
}

#[tokio::test]
async fn a_plugin_that_never_listens_stays_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::with_config(EngineConfig {
        socket_probe: SocketProbe {
            first_wait: Duration::from_millis(50),
            interval: Duration::from_millis(50),
            attempts: 4,
        },
        ..EngineConfig::rooted(dir.path())
    });
    let bundle = dir.path().join("mute");
    write_config(
        &bundle,
        &json!({
            "entrypoint": ["/bin/sh", "-c", "/bin/sleep 6061 & exec /bin/sleep 6060"],
            "interface": {"socket": "mute.sock", "types": ["docker.volumedriver/1.0"]},
            "pidhost": true
        }),
    );
    e.plugins()
        .create_as("mute", &bundle, LaunchMode::Host)
        .await
        .unwrap();
    let err = e.plugins().enable("mute").await.unwrap_err().to_string();
    assert!(
        err.contains("dial unix") && err.contains("mute.sock"),
        "{err}"
    );
    let info = e.plugins().inspect("mute").unwrap();
    assert!(!info.enabled && info.pid.is_none());
    // The plugin and what it started are stopped (its whole process group).
    wait_for("the plugin's processes to go", || {
        processes_with("6060") + processes_with("6061") == 0
    })
    .await;
    e.plugins().rm("mute", false).await.unwrap();
}

#[tokio::test]
async fn a_plugin_that_exits_before_listening_fails_the_enable_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // dockerd's own probe: 0.5 s, then 4 dials 3 s apart (about 12.5 s when nothing
    // listens); an exit ends the wait at once.
    let e = Engine::rooted(dir.path());
    let bundle = dir.path().join("dying");
    write_config(
        &bundle,
        &json!({
            "entrypoint": ["/bin/sh", "-c", "printf 'cannot start: \\377 bad config\\n' >&2; exit 3"],
            "interface": {"socket": "dying.sock", "types": ["docker.volumedriver/1.0"]}
        }),
    );
    e.plugins()
        .create_as("dying", &bundle, LaunchMode::Host)
        .await
        .unwrap();
    let start = std::time::Instant::now();
    let err = e.plugins().enable("dying").await.unwrap_err().to_string();
    // Well under the 12.5 s of a probe that waited the exit out, with room for a
    // start on CI's loaded machine.
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
    assert!(err.contains("exited (exit status: 3)"), "{err}");
    assert!(err.contains("cannot start:"), "{err}");
    assert!(!e.plugins().inspect("dying").unwrap().enabled);
}

#[tokio::test]
async fn concurrent_lifecycle_calls_start_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let bundle = host_bundle(dir.path(), "lvx.sock", &dir.path().join("volumes"));
    e.plugins()
        .create_as("lvx", &bundle, LaunchMode::Host)
        .await
        .unwrap();
    let (a, b, c) = tokio::join!(
        e.plugins().enable("lvx"),
        e.plugins().enable("lvx"),
        e.plugins().disable("lvx", true)
    );
    let errors: Vec<String> = [a, b, c]
        .into_iter()
        .filter_map(Result::err)
        .map(|e| e.to_string())
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors
            .iter()
            .all(|e| e
                == "plugin lvx:latest is being enabled: try again once the enable has finished"),
        "{errors:?}"
    );
    let info = e.plugins().inspect("lvx").unwrap();
    assert!(info.enabled);
    // Served, by the one process.
    e.volumes()
        .create("lvx", "x1", std::iter::empty::<(&str, &str)>())
        .await
        .unwrap();
    e.volumes().rm("x1").await.unwrap();
    e.plugins().disable("lvx", false).await.unwrap();
    assert!(!Path::new(&format!("/proc/{}", info.pid.unwrap())).exists());
}

#[tokio::test]
async fn a_volume_the_driver_lost_and_got_again_holds_one_reference() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let volumes = dir.path().join("volumes");
    let bundle = host_bundle(dir.path(), "lvl.sock", &volumes);
    e.plugins()
        .create_as("lvl", &bundle, LaunchMode::Host)
        .await
        .unwrap();
    e.plugins().enable("lvl").await.unwrap();
    let none = std::iter::empty::<(&str, &str)>;
    e.volumes().create("lvl", "l1", none()).await.unwrap();
    // The driver loses it behind the engine's back; create makes it again.
    fs::remove_dir_all(volumes.join("l1")).unwrap();
    e.volumes().create("lvl", "l1", none()).await.unwrap();
    assert_eq!(e.plugins().inspect("lvl").unwrap().refs, 1);
    e.volumes().rm("l1").await.unwrap();
    e.plugins().disable("lvl", false).await.unwrap();
}

#[tokio::test]
async fn bad_bundles_and_engines_without_a_data_root_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let err = e.plugins().create("x", dir.path().join("nothing")).await;
    assert!(
        err.unwrap_err()
            .to_string()
            .contains("config.json is missing")
    );
    let bad = dir.path().join("bad");
    fs::create_dir_all(bad.join("rootfs")).unwrap();
    fs::write(bad.join("config.json"), r#"{"entrypoint": "/p"}"#).unwrap();
    let err = e.plugins().create("x", &bad).await.unwrap_err().to_string();
    assert!(err.contains("entrypoint"), "{err}");
    let nowhere = dir.path().join("nowhere");
    write_config(&nowhere, &json!({"entrypoint": ["/no/such/binary"]}));
    e.plugins().create("nowhere", &nowhere).await.unwrap();
    let err = e.plugins().enable("nowhere").await.unwrap_err().to_string();
    assert_eq!(
        err,
        "failed to create shim task: OCI runtime create failed: runc create failed: unable to \
         start container process: exec: \"/no/such/binary\": stat /no/such/binary: no such file \
         or directory: unknown"
    );

    let unrooted = Engine::new(docker_plugin_sdk::harness::Discovery::rooted(dir.path()));
    let err = unrooted.plugins().create("x", &nowhere).await.unwrap_err();
    assert!(matches!(err, HarnessError::NoDataRoot), "{err}");
}

/// Set (to a shared dir) in the copy of this test binary that runs as `nobody`.
const AS_NOBODY: &str = "DPS_HARNESS_AS_NOBODY";

/// The harness without root: the plugin's mount namespace lives in a user namespace.
/// Run as root (as CI does), the test runs itself again as `nobody` through
/// `setpriv`; run by an ordinary user, it is already the unprivileged case.
#[test]
fn without_root_a_rootfs_plugin_runs_in_a_user_namespace() {
    let shared = std::env::var_os(AS_NOBODY).map(PathBuf::from);
    let am_root = nix::unistd::geteuid().is_root();
    match shared {
        None if am_root => {
            let dir = tempfile::tempdir().unwrap();
            // The copy finds it at <dir>/bundle-rootfs.
            rootfs_bundle(dir.path(), "lvu.sock");
            let work = dir.path().join("work");
            fs::create_dir(&work).unwrap();
            for path in [dir.path(), work.as_path()] {
                fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o777))
                    .unwrap();
            }
            let out = std::process::Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "without_root_a_rootfs_plugin_runs_in_a_user_namespace",
                    "--nocapture",
                ])
                .env(AS_NOBODY, dir.path())
                .output()
                .expect("setpriv (util-linux) runs the test as nobody");
            assert!(
                out.status.success(),
                "as nobody:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("1 passed"),
                "the unprivileged copy ran the test"
            );
        }
        _ => {
            let made;
            let (bundle, work) = match &shared {
                Some(dir) => (dir.join("bundle-rootfs"), dir.join("work")),
                None => {
                    made = tempfile::tempdir().unwrap();
                    (
                        rootfs_bundle(made.path(), "lvu.sock"),
                        made.path().join("work"),
                    )
                }
            };
            assert!(!nix::unistd::geteuid().is_root());
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let e = engine(&work);
                    e.plugins().create("lvu", &bundle).await.unwrap();
                    e.plugins().enable("lvu").await.unwrap();
                    let info = e.plugins().inspect("lvu").unwrap();
                    e.containers()
                        .run(&[VolumeUse::with_driver("u1", "lvu")], |c| {
                            fs::write(c.mountpoint("u1").unwrap().join("f"), "x").unwrap();
                        })
                        .await
                        .unwrap();
                    assert!(info.propagated_mount.join("u1/data/f").is_file());
                    e.volumes().rm("u1").await.unwrap();
                    e.plugins().rm("lvu", true).await.unwrap();
                });
        }
    }
}

/// The bundle `cargo docker-plugin package --example localvol` writes (config from this
/// crate's `[package.metadata.docker-plugin.examples.localvol]`, rootfs by the
/// packager's writer) runs in the harness as it does in dockerd.
#[tokio::test]
async fn the_packagers_localvol_bundle_runs_in_the_harness() {
    use docker_plugin_sdk::package::metadata::{Metadata, binary_path};
    use docker_plugin_sdk::package::rootfs::BundleWriter;

    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let (package, metadata) = Metadata::from_manifest(&manifest, Some("localvol")).unwrap();
    let config = metadata.to_config(&package, "localvol", &manifest).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let written = BundleWriter::new(dir.path().join("localvol"), config)
        .program(binary_path("localvol"), example_binary("localvol"))
        .write()
        .unwrap();

    let e = engine(&dir.path().join("engine"));
    e.plugins()
        .create("localvol", written.bundle.dir())
        .await
        .unwrap();
    e.plugins().set("localvol", ["RUST_LOG=debug"]).unwrap();
    e.plugins().enable("localvol").await.unwrap();
    e.volumes()
        .create("localvol", "p1", [("mode", "0700")])
        .await
        .unwrap();
    let info = e.plugins().inspect("localvol").unwrap();
    e.containers()
        .run(&[VolumeUse::existing("p1")], |c| {
            fs::write(c.mountpoint("p1").unwrap().join("f"), "packaged").unwrap();
        })
        .await
        .unwrap();
    assert_eq!(
        fs::read_to_string(info.propagated_mount.join("p1/data/f")).unwrap(),
        "packaged"
    );
    // The settable RUST_LOG reached the plugin: it logs calls at debug (lines the
    // engine reads in a task of its own, as dockerd does: waited for).
    wait_for("a `call ok` line in the plugin's output", || {
        e.plugins()
            .logs("localvol")
            .unwrap()
            .iter()
            .any(|l| l.line.contains("call ok"))
    })
    .await;
    e.volumes().rm("p1").await.unwrap();
    e.plugins().disable("localvol", false).await.unwrap();
    e.plugins().rm("localvol", false).await.unwrap();
}

/// Set in the copy of this test binary that runs where `/run/docker/plugins` is hidden.
const NO_RUN_DOCKER: &str = "DPS_HARNESS_NO_RUN_DOCKER";

/// Host mode on a host without `/run/docker/plugins`: the harness creates nothing on
/// the host; the plugin gets a private tmpfs on `/run` holding the dir. The test runs
/// itself again in a mount namespace where `/run/docker` is an empty tmpfs.
#[test]
fn host_mode_creates_nothing_on_a_host_without_run_docker_plugins() {
    let name = "host_mode_creates_nothing_on_a_host_without_run_docker_plugins";
    if std::env::var_os(NO_RUN_DOCKER).is_none() {
        let mut unshare = std::process::Command::new("unshare");
        if !nix::unistd::geteuid().is_root() {
            unshare.args(["--user", "--map-root-user"]);
        }
        let out = unshare
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(
                "mount -t tmpfs tmpfs /run/docker 2>/dev/null || mount -t tmpfs tmpfs /run; \
                 exec \"$0\" --exact \"$1\" --nocapture",
            )
            .arg(std::env::current_exe().unwrap())
            .arg(name)
            .env(NO_RUN_DOCKER, "1")
            .output()
            .expect("unshare (util-linux)");
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "in a namespace without /run/docker/plugins:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let host_dir = Path::new("/run/docker/plugins");
    assert!(!host_dir.exists(), "the namespace hides it");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let e = engine(dir.path());
            let bundle = host_bundle(dir.path(), "lvn.sock", &dir.path().join("volumes"));
            e.plugins()
                .create_as("lvn", &bundle, LaunchMode::Host)
                .await
                .unwrap();
            e.plugins().enable("lvn").await.unwrap();
            e.volumes()
                .create("lvn", "n1", std::iter::empty::<(&str, &str)>())
                .await
                .unwrap();
            e.volumes().rm("n1").await.unwrap();
            e.plugins().rm("lvn", true).await.unwrap();
        });
    assert!(!host_dir.exists(), "nothing was created on the host");
}

/// Symlinks in a rootfs are followed inside it, as the chrooted plugin sees them: an
/// entrypoint behind an absolute link is in the rootfs (not the host's file of that
/// name), and a bind target behind `/var/run -> /run` lands in the rootfs's `/run`.
#[tokio::test]
async fn rootfs_symlinks_are_followed_inside_the_rootfs() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = packaged(
        &dir.path().join("bundle"),
        &json!({
            "entrypoint": ["/opt/localvol", "--name", "lvs", "--root", "/mnt/volumes"],
            "interface": {"socket": "lvs.sock", "types": ["docker.volumedriver/1.0"]},
            "propagatedmount": "/mnt/volumes",
            "mounts": [{"source": dir.path().join("host-log"), "destination": "/var/run/log",
                        "type": "bind", "options": ["rbind"]}]
        }),
        &example_binary("localvol"),
        "/opt/localvol",
        &["/run", "/var", "/usr/local/bin"],
    );
    let rootfs = bundle.join("rootfs");
    // The entrypoint goes through an absolute link (the host has no such file).
    std::os::unix::fs::symlink("/opt/localvol", rootfs.join("usr/local/bin/plugin")).unwrap();
    let config_path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&fs::read(&config_path).unwrap()).unwrap();
    config["Entrypoint"][0] = "/usr/local/bin/plugin".into();
    fs::write(&config_path, config.to_string()).unwrap();
    std::os::unix::fs::symlink("/run", rootfs.join("var/run")).unwrap();
    fs::create_dir_all(dir.path().join("host-log")).unwrap();
    let host_run_log = Path::new("/run/log");
    let host_had_it = host_run_log.exists();

    let e = engine(&dir.path().join("engine"));
    e.plugins().create("lvs", &bundle).await.unwrap();
    e.plugins().enable("lvs").await.unwrap();
    let info = e.plugins().inspect("lvs").unwrap();
    // Chrooted (rootfs mode): its volumes land under the propagated mount.
    e.volumes()
        .create("lvs", "s1", std::iter::empty::<(&str, &str)>())
        .await
        .unwrap();
    assert!(info.propagated_mount.join("s1/data").is_dir());
    assert!(
        info.rootfs.join("run/log").is_dir(),
        "bind target made in the rootfs"
    );
    assert_eq!(
        host_run_log.exists(),
        host_had_it,
        "nothing made on the host"
    );
    e.volumes().rm("s1").await.unwrap();
    e.plugins().rm("lvs", true).await.unwrap();
}

/// dockerd asks a managed network and IPAM plugin its capabilities when it is enabled
/// (moby v20.10.24 `plugin/manager_linux.go` `pluginPostStart` → `plugin/store.go`
/// `CallHandler`, one handler per interface type, in the config's order), never at a
/// lookup, and knows its drivers only by the name with the tag (`network.go`
/// `resolveDriver`).
#[tokio::test]
async fn a_managed_network_plugin_is_asked_its_capabilities_when_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let types = ["docker.networkdriver/1.0", "docker.ipamdriver/1.0"];
    let extra = json!({
        "interface": {"socket": "recnet.sock", "types": types},
        "network": {"type": "host"}
    });
    let bundle = support::recorder::bundle(dir.path(), "bundle", "recnet", extra, &["--network"]);
    e.plugins().create("recnet", &bundle).await.unwrap();
    e.plugins().enable("recnet").await.unwrap();
    assert_eq!(
        e.calls().take_methods(),
        [
            "NetworkDriver.GetCapabilities",
            "IpamDriver.GetCapabilities",
            "IpamDriver.GetDefaultAddressSpaces"
        ]
    );

    let err = e
        .networks()
        .create("n1", NetworkOptions::driver("recnet"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not resolve driver recnet in registry"
    );
    let opts = NetworkOptions::driver("recnet:latest").ipam_driver("recnet:latest");
    e.networks().create("n1", opts).await.unwrap();
    assert_eq!(
        e.calls().take_methods(),
        [
            "IpamDriver.RequestPool",
            "IpamDriver.RequestAddress",
            "NetworkDriver.CreateNetwork"
        ]
    );
    e.networks().rm("n1").await.unwrap();
    e.plugins().disable("recnet", false).await.unwrap();
}
