//! The example plugin as a real process: stopped by SIGTERM or SIGINT it removes its
//! socket and spec file, and under systemd socket activation (the real
//! `systemd-socket-activate` from Debian's systemd package) it serves the socket it is
//! handed and reports readiness with sd_notify. With `--metrics` it serves its call
//! metrics on a socket of their own.

mod support;

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use docker_plugin_sdk::client::Client;
use docker_plugin_sdk::harness::{PluginProcess, Signal};
use docker_plugin_sdk::protocol::Empty;
use docker_plugin_sdk::volume;
use support::process::example_binary;

fn localvol(dir: &Path, name: &str) -> Command {
    let mut command = Command::new(example_binary("localvol"));
    command
        .args(["--name", name, "--socket-dir"])
        .arg(dir.join("plugins"))
        .arg("--root")
        .arg(dir.join("volumes"));
    command
}

async fn activate(socket: &Path) -> Vec<String> {
    Client::unix(socket)
        .timeout(Duration::from_secs(10))
        .activate()
        .await
        .unwrap()
        .implements
}

#[tokio::test]
async fn sigterm_and_sigint_stop_the_plugin_and_remove_its_socket() {
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("plugins/sig.sock");
        let mut plugin =
            PluginProcess::start(localvol(dir.path(), "sig"), &socket, dir.path().join("log"))
                .unwrap();
        assert_eq!(activate(&socket).await, ["VolumeDriver"]);
        let status = plugin.signal_and_wait(signal).unwrap();
        assert!(
            status.success(),
            "{signal}: exit {status}\n{}",
            plugin.log_text()
        );
        assert!(!socket.exists(), "{signal}: socket left behind");
        let log = plugin.log_text();
        assert!(log.contains(&format!("{signal} received")), "{log}");
    }
}

#[tokio::test]
async fn a_second_instance_refuses_a_live_socket_and_exits_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("plugins/twice.sock");
    let _first = PluginProcess::start(
        localvol(dir.path(), "twice"),
        &socket,
        dir.path().join("log1"),
    )
    .unwrap();
    let out = localvol(dir.path(), "twice").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in use"), "{stderr}");
    assert_eq!(
        activate(&socket).await,
        ["VolumeDriver"],
        "the first instance lost its socket"
    );
}

#[tokio::test]
async fn metrics_flag_serves_the_plugins_call_metrics_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("plugins/met.sock");
    let metrics = dir.path().join("met-metrics.sock");
    let mut command = localvol(dir.path(), "met");
    command.arg("--metrics").arg(&metrics);
    let mut plugin = PluginProcess::start(command, &socket, dir.path().join("log")).unwrap();
    assert_eq!(activate(&socket).await, ["VolumeDriver"]);
    let client = Client::unix(&socket);
    let create: volume::CreateRequest =
        serde_json::from_value(serde_json::json!({"Name": "m1"})).unwrap();
    client.call::<volume::Create>(&create).await.unwrap();

    let mut stream = tokio::net::UnixStream::connect(&metrics).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut stream,
        b"GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut reply = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut reply)
        .await
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    for line in [
        "docker_plugin_calls_total{method=\"Plugin.Activate\"} 1",
        "docker_plugin_calls_total{method=\"VolumeDriver.Create\"} 1",
        "docker_plugin_call_errors_total{method=\"VolumeDriver.Create\"} 0",
    ] {
        assert!(reply.lines().any(|l| l == line), "no {line:?} in {reply}");
    }
    assert!(plugin.terminate().unwrap().success());
    assert!(!metrics.exists(), "metrics socket left behind");
}

#[tokio::test]
async fn tcp_plugin_writes_and_removes_its_spec_file() {
    let dir = tempfile::tempdir().unwrap();
    let specs = dir.path().join("etc-docker-plugins");
    let spec = specs.join("tcpp.spec");
    let mut command = localvol(dir.path(), "tcpp");
    command
        .args(["--tcp", "127.0.0.1:0", "--spec-dir"])
        .arg(&specs);
    let spec_ready = spec.clone();
    let mut plugin =
        PluginProcess::start_with(command, dir.path().join("log"), move || spec_ready.exists())
            .unwrap();
    let url = fs::read_to_string(&spec).unwrap();
    let client = Client::from_url(url.trim()).unwrap();
    assert_eq!(
        client.activate().await.unwrap().implements,
        ["VolumeDriver"]
    );
    assert!(plugin.terminate().unwrap().success());
    assert!(!spec.exists(), "spec file left behind");
}

#[tokio::test]
async fn bad_arguments_are_reported_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let out = localvol(dir.path(), "bad")
        .arg("--frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--frobnicate"));
}

#[tokio::test]
async fn systemd_socket_activation_with_the_real_systemd_socket_activate() {
    let activator = ["/usr/bin/systemd-socket-activate", "/bin/systemd-socket-activate"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("systemd-socket-activate not found: install Debian's systemd package (scripts/install-test-deps)");
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("activated.sock");
    let notify = dir.path().join("notify.sock");
    let notifications = UnixDatagram::bind(&notify).unwrap();
    notifications
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();

    let mut command = Command::new(activator);
    command
        .arg("-l")
        .arg(&socket)
        .arg(format!("--setenv=NOTIFY_SOCKET={}", notify.display()))
        .arg("--setenv=RUST_LOG=debug")
        .arg(example_binary("localvol"))
        .args(["--systemd", "--root"])
        .arg(dir.path().join("volumes"));
    let mut plugin = PluginProcess::start(command, &socket, dir.path().join("log")).unwrap();

    // The first connection starts the plugin on the socket systemd bound.
    assert_eq!(activate(&socket).await, ["VolumeDriver"]);
    Client::unix(&socket)
        .call::<volume::List>(&Empty {})
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = notifications
        .recv(&mut buf)
        .expect("no sd_notify message from the plugin");
    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(message.contains("READY=1"), "{message}");
    let log = plugin.log_text();
    assert!(
        log.contains(&format!("unix://{}", socket.display())),
        "{log}"
    );

    assert!(
        plugin.terminate().unwrap().success(),
        "{}",
        plugin.log_text()
    );
    let n = notifications.recv(&mut buf).expect("no STOPPING=1");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
    // The socket is systemd's: the plugin leaves it in place.
    assert!(
        socket.exists(),
        "the plugin removed a socket it does not own"
    );
}

#[tokio::test]
async fn systemd_mode_without_a_passed_socket_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = localvol(dir.path(), "nosd")
        .arg("--systemd")
        .env_remove("LISTEN_FDS")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("LISTEN_FDS") || stderr.contains("socket activation"),
        "{stderr}"
    );
}
