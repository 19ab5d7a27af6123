//! `{{project-name}}` end to end: the real binary, found and driven by the SDK's
//! harness (a dockerd test double) exactly as dockerd would drive it.

use std::path::Path;
use std::process::Command;

use docker_plugin_sdk::harness::{Engine, PluginProcess, VolumeUse};

/// The plugin's name: its socket is `NAME.sock`.
const PLUGIN: &str = "{{project-name}}";

/// The plugin binary listening in a private root (stopped with SIGTERM when dropped),
/// and an engine (dockerd's test double, with fast retries) that finds it there.
fn start(root: &Path) -> (PluginProcess, Engine) {
    let engine = Engine::for_tests(root);
    let socket_dir = &engine.discovery().socket_dir;
    let mut command = Command::new(env!("CARGO_BIN_EXE_{{project-name}}"));
    command
        .arg("--root")
        .arg(root.join("volumes"))
        .arg("--socket-dir")
        .arg(socket_dir);
    // Returns once the socket accepts connections; fails with the plugin's log.
    let plugin = PluginProcess::start(
        command,
        &socket_dir.join(format!("{PLUGIN}.sock")),
        root.join(format!("{PLUGIN}.log")),
    )
    .unwrap();
    (plugin, engine)
}

#[tokio::test]
async fn volume_lifecycle_through_the_harness() {
    let root = tempfile::tempdir().unwrap();
    let (_plugin, engine) = start(root.path());
{% if backing == "mount" %}
    let options = [("type", "tmpfs"), ("source", "tmpfs"), ("o", "size=1m")];
{%- else %}
    let options = [("mode", "750")];
{%- endif %}
    engine
        .volumes()
        .create(PLUGIN, "v1", options)
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
            std::fs::write(container.mountpoint("v1").unwrap().join("hello"), "hi")
        })
        .await
        .unwrap();
    wrote.unwrap();
{%- if backing == "mount" %}
    // While mounted, the plugin restarts: `volume rm` then unmounts instead of
    // deleting through the mount.
    let mut container = engine
        .containers()
        .create(&[VolumeUse::existing("v1")])
        .await
        .unwrap();
    engine.containers().start(&mut container).await.unwrap();
    let mnt = container.mountpoint("v1").unwrap().to_path_buf();
    std::fs::write(mnt.join("kept"), "on the share").unwrap();
    drop(_plugin);
    let (_plugin, engine) = start(root.path());
    // The new engine activates it, as dockerd does after a plugin restart.
    engine.plugins().get(PLUGIN, "VolumeDriver").await.unwrap();
    engine.volumes().rm("v1").await.unwrap();
    assert!(!mnt.exists(), "unmounted and removed");
{%- else %}
    let listed = engine.volumes().ls().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "v1");
    engine.volumes().rm("v1").await.unwrap();
{%- endif %}
    assert!(engine.volumes().inspect("v1").await.is_err());
}

#[tokio::test]
async fn bad_options_reach_the_user_in_one_clear_message() {
    let root = tempfile::tempdir().unwrap();
    let (_plugin, engine) = start(root.path());
    let err = engine
        .volumes()
        .create(PLUGIN, "v1", [("nope", "1")])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown option `nope`"), "{err}");
{%- if backing == "mount" %}
    assert!(err.contains("missing required option `type`"), "{err}");
{%- endif %}
}
