//! `{{project-name}}` end to end: the real binary, found and driven by the SDK's
//! harness (a dockerd test double) exactly as dockerd would drive it: as a plain
//! process, killed and restarted while a container uses a volume, and as a managed
//! plugin packaged from this crate's own `[package.metadata.docker-plugin]`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use docker_plugin_sdk::harness::{Engine, PluginProcess, Signal, VolumeUse};
use docker_plugin_sdk::package::metadata::Metadata;

/// The plugin's name: its socket is `NAME.sock`.
const PLUGIN: &str = "{{project-name}}";

/// The plugin binary listening where `engine` looks, its volumes in `root/volumes`,
/// its log in `root/LOG`. Returns once the plugin answers (a socket file left by a
/// killed plugin does not count); fails with the plugin's log. Stopped with SIGTERM
/// when dropped.
fn start(root: &Path, engine: &Engine, log: &str) -> PluginProcess {
    let socket_dir = &engine.discovery().socket_dir;
    let mut command = Command::new(env!("CARGO_BIN_EXE_{{project-name}}"));
    command
        .arg("--root")
        .arg(root.join("volumes"))
        .arg("--socket-dir")
        .arg(socket_dir);
    let socket = socket_dir.join(format!("{PLUGIN}.sock"));
    PluginProcess::start_answering(command, &socket, root.join(log)).unwrap()
}

/// The `-o` options of a volume that works.
fn options() -> Vec<(&'static str, &'static str)> {
{%- if backing == "mount" %}
    vec![("type", "tmpfs"), ("source", "tmpfs"), ("o", "size=1m")]
{%- else %}
    vec![("mode", "750")]
{%- endif %}
}

#[tokio::test]
async fn volume_lifecycle_through_the_harness() {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::for_tests(root.path());
    let _plugin = start(root.path(), &engine, "plugin.log");
    engine
        .volumes()
        .create(PLUGIN, "v1", options())
        .await
        .unwrap();
    assert_eq!(
        engine.calls().take_methods(),
        [
            "Plugin.Activate",
            "VolumeDriver.Capabilities",
            "VolumeDriver.Get",
            "VolumeDriver.Create"
        ]
    );
    // `docker run -v v1:/data`: Mount, the container writes, Unmount.
    let wrote = engine
        .containers()
        .run(&[VolumeUse::existing("v1")], |container| {
            fs::write(container.mountpoint("v1").unwrap().join("hello"), "hi")
        })
        .await
        .unwrap();
    wrote.unwrap();
    let listed = engine.volumes().ls().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "v1");
    engine.volumes().rm("v1").await.unwrap();
    assert!(engine.volumes().inspect("v1").await.is_err());
}

#[tokio::test]
async fn a_plugin_killed_while_a_container_runs_still_unmounts_it() {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::for_tests(root.path());
    let mut plugin = start(root.path(), &engine, "plugin.log");
    engine
        .volumes()
        .create(PLUGIN, "v1", options())
        .await
        .unwrap();
    let mut container = engine
        .containers()
        .create(&[VolumeUse::existing("v1")])
        .await
        .unwrap();
    engine.containers().start(&mut container).await.unwrap();
    let data = container.mountpoint("v1").unwrap().to_path_buf();
    fs::write(data.join("kept"), "written before the crash").unwrap();

    // Killed as a crash would: nothing is cleaned up. Then started again.
    plugin.signal_and_wait(Signal::SIGKILL).unwrap();
    let _plugin = start(root.path(), &engine, "restarted.log");
    assert_eq!(
        fs::read_to_string(data.join("kept")).unwrap(),
        "written before the crash"
    );
    let volume = engine.volumes().inspect("v1").await.unwrap();
    assert_eq!(volume.status["mounts"], 1, "the container's mount is known");

    // The container stops: its Unmount carries the mount ID from before the crash.
    engine.containers().stop(&mut container).await.unwrap();
    let volume = engine.volumes().inspect("v1").await.unwrap();
    assert_eq!(volume.status["mounts"], 0);
{%- if backing == "mount" %}
    assert_eq!(volume.mountpoint, None, "unmounted");
{%- else %}
    assert!(
        data.join("kept").is_file(),
        "the data stays with the volume"
    );
{%- endif %}
    engine.containers().rm(container).await.unwrap();
    engine.volumes().rm("v1").await.unwrap();
}

#[tokio::test]
async fn bad_options_reach_the_user_in_one_clear_message() {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::for_tests(root.path());
    let _plugin = start(root.path(), &engine, "plugin.log");
{%- if backing == "mount" %}
    let err = engine
        .volumes()
        .create(PLUGIN, "v1", [("nope", "1")])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown option `nope`"), "{err}");
    assert!(err.contains("missing required option `type`"), "{err}");
{%- else %}
    let err = engine
        .volumes()
        .create(PLUGIN, "v1", [("nope", "1"), ("mode", "0980")])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown option `nope`"), "{err}");
    assert!(
        err.contains(
            "option `mode` must be octal permissions such as 750, got `0980`: digits 0 to 7 only"
        ),
        "{err}"
    );
{%- endif %}
    assert!(!root.path().join("volumes/v1").exists(), "nothing on disk");
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
    // What `docker plugin install` asks the user to grant.
    let privileges: Vec<String> = plugins
        .privileges(PLUGIN)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
{%- if backing == "mount" %}
    assert_eq!(
        privileges,
        ["network: [host]", "capabilities: [CAP_SYS_ADMIN]"]
    );
{%- else %}
    assert!(privileges.is_empty(), "{privileges:?}");
{%- endif %}
    plugins.enable(PLUGIN).await.unwrap();
    engine
        .volumes()
        .create(PLUGIN, "v1", options())
        .await
        .unwrap();
{%- if backing == "mount" %}
    // Mounted in the plugin's own mount namespace: the container's side only sees
    // the directory.
    engine
        .containers()
        .run(&[VolumeUse::existing("v1")], |container| {
            assert!(container.mountpoint("v1").unwrap().is_dir());
        })
        .await
        .unwrap();
{%- else %}
    let propagated = plugins.inspect(PLUGIN).unwrap().propagated_mount;
    engine
        .containers()
        .run(&[VolumeUse::existing("v1")], |container| {
            fs::write(container.mountpoint("v1").unwrap().join("hello"), "hi").unwrap();
        })
        .await
        .unwrap();
    // The plugin, chrooted, wrote under /mnt/volumes: the propagated mount.
    assert_eq!(
        fs::read_to_string(propagated.join("v1/data/hello")).unwrap(),
        "hi"
    );
{%- endif %}
    engine.volumes().rm("v1").await.unwrap();
    plugins.disable(PLUGIN, false).await.unwrap();
    plugins.rm(PLUGIN, false).await.unwrap();
}
