//! The bundle `cargo docker-plugin package -p sshfs` writes: its programs start in
//! its rootfs (the plugin, sshfs, ssh, fusermount, with their libraries and NSS
//! files), and its config.json asks exactly what vieux/sshfs's asks. Needs root (the
//! programs run in the rootfs as the harness runs the plugin).

mod support;

use std::fs;

use serde_json::Value;
use support::bundle;

#[test]
fn the_bundle_holds_sshfs_ssh_and_fusermount_and_each_runs_in_the_rootfs() {
    let dir = tempfile::tempdir().unwrap();
    let written = bundle::write(&dir.path().join("bundle"), |_| {});
    let ran =
        docker_plugin_sdk::package::verify::verify(&bundle::open(&written), &bundle::programs())
            .unwrap();
    let lines: Vec<String> = ran
        .iter()
        .map(|r| format!("{} {}", r.program, r.flag))
        .collect();
    assert_eq!(
        lines,
        [
            // The plugin has no --version: its --help exits 0.
            "/sshfs --help",
            "/usr/bin/sshfs --version",
            "/usr/bin/ssh -V",
            "/usr/bin/fusermount3 --version",
            "/usr/bin/fusermount --version"
        ]
    );
    let rootfs = written.join("rootfs");
    for file in ["etc/passwd", "etc/group", "etc/nsswitch.conf"] {
        assert!(rootfs.join(file).is_file(), "{file}");
    }
}

#[test]
fn config_json_asks_exactly_what_vieux_sshfs_asks() {
    let dir = tempfile::tempdir().unwrap();
    let written = bundle::write(&dir.path().join("bundle"), |_| {});
    let config: Value =
        serde_json::from_slice(&fs::read(written.join("config.json")).unwrap()).unwrap();
    // vieux/docker-volume-sshfs's config.json, key by key (its entrypoint and
    // description aside).
    assert_eq!(
        config["Interface"]["Types"],
        serde_json::json!(["docker.volumedriver/1.0"])
    );
    assert_eq!(config["Interface"]["Socket"], "sshfs.sock");
    assert_eq!(config["Network"]["Type"], "host");
    assert_eq!(config["PropagatedMount"], "/mnt/volumes");
    assert_eq!(
        config["Linux"]["Capabilities"],
        serde_json::json!(["CAP_SYS_ADMIN"])
    );
    let devices: Vec<&str> = config["Linux"]["Devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["Path"].as_str().unwrap())
        .collect();
    assert_eq!(devices, ["/dev/fuse"]);
    assert_eq!(config["Linux"]["AllowAllDevices"], false);
    assert_eq!(config["IpcHost"], false);
    assert_eq!(config["PidHost"], false);
    let env: Vec<(&str, &str, &Value)> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["Name"].as_str().unwrap(),
                e["Value"].as_str().unwrap(),
                &e["Settable"],
            )
        })
        .collect();
    assert_eq!(env, [("DEBUG", "0", &serde_json::json!(["value"]))]);
    let mounts: Vec<String> = config["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{} {} {} {} {}",
                m["Name"].as_str().unwrap(),
                m["Source"].as_str().unwrap(),
                m["Destination"].as_str().unwrap(),
                m["Type"].as_str().unwrap(),
                m["Settable"]
            )
        })
        .collect();
    assert_eq!(
        mounts,
        [
            r#"state /var/lib/docker/plugins/ /mnt/state bind ["source"]"#,
            r#"sshkey  /root/.ssh bind ["source"]"#
        ]
    );
}
