//! The mini-engine driving the example plugin as a real process, the way dockerd does:
//! discovery in a private root, lazy activation with retries, the call sequences of
//! user actions, mount IDs and reference counts.
#![cfg(feature = "harness")]

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use docker_plugin_sdk::harness::{
    Discovery, Engine, EngineConfig, HarnessError, PluginProcess, RetryPolicy, Signal, VolumeUse,
};
use docker_plugin_sdk::volume::Scope;
use support::process::example_binary;

struct Setup {
    root: tempfile::TempDir,
    engine: Engine,
}

impl Setup {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let engine = Engine::for_tests(root.path());
        Self { root, engine }
    }

    fn localvol_command(&self, name: &str) -> Command {
        let mut command = Command::new(example_binary("localvol"));
        command
            .args(["--name", name, "--socket-dir"])
            .arg(&self.engine.discovery().socket_dir)
            .arg("--root")
            .arg(self.root.path().join("volumes"));
        command
    }

    fn start_localvol(&self, name: &str) -> PluginProcess {
        let socket = self
            .engine
            .discovery()
            .socket_dir
            .join(format!("{name}.sock"));
        PluginProcess::start(
            self.localvol_command(name),
            &socket,
            self.root.path().join(format!("{name}.log")),
        )
        .unwrap()
    }

    fn data(&self, volume: &str) -> std::path::PathBuf {
        self.root.path().join("volumes").join(volume).join("data")
    }
}

#[tokio::test]
async fn volume_actions_produce_dockerds_call_sequences() {
    let s = Setup::new();
    let _plugin = s.start_localvol("lv");
    let e = &s.engine;

    let created = e
        .volumes()
        .create("lv", "v1", [("mode", "0700")])
        .await
        .unwrap();
    assert_eq!(created.scope, Scope::Local);
    assert_eq!(
        e.calls().take_methods(),
        [
            "Plugin.Activate",
            "VolumeDriver.Capabilities",
            "VolumeDriver.Get",
            "VolumeDriver.Create"
        ]
    );

    let listed = e.volumes().ls().await.unwrap();
    assert_eq!(
        listed.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
        ["v1"]
    );
    assert_eq!(e.calls().take_methods(), ["VolumeDriver.List"]);

    let info = e.volumes().inspect("v1").await.unwrap();
    assert_eq!(info.driver, "lv");
    assert_eq!(info.mountpoint.as_deref(), Some(s.data("v1").as_path()));
    assert_eq!(info.status["options"]["mode"], "0700");
    assert_eq!(e.calls().take_methods(), ["VolumeDriver.Get"]);

    let written = e
        .containers()
        .run(&[VolumeUse::existing("v1")], |c| {
            fs::write(
                c.mountpoint("v1").unwrap().join("hello"),
                "from the container",
            )
            .map(|_| c.clone())
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        fs::read_to_string(s.data("v1").join("hello")).unwrap(),
        "from the container"
    );
    let calls = e.calls().take();
    let methods: Vec<_> = calls.iter().map(|c| c.method.as_str()).collect();
    assert_eq!(
        methods,
        [
            "VolumeDriver.Get",
            "VolumeDriver.Get",
            "VolumeDriver.Mount",
            "VolumeDriver.Get",
            "VolumeDriver.Unmount"
        ]
    );
    let mount_id = &written.mounts[0].mount_id;
    assert_eq!(mount_id.len(), 64);
    assert_eq!(calls[2].request["ID"], *mount_id);
    assert_eq!(calls[4].request["ID"], *mount_id);

    e.volumes().rm("v1").await.unwrap();
    assert_eq!(
        e.calls().take_methods(),
        [
            "VolumeDriver.Get",
            "VolumeDriver.Get",
            "VolumeDriver.Remove"
        ]
    );
    assert!(!s.data("v1").exists());
}

#[tokio::test]
async fn remove_is_refused_while_a_container_uses_the_volume() {
    let s = Setup::new();
    let _plugin = s.start_localvol("busy");
    let e = &s.engine;
    e.volumes()
        .create("busy", "v", std::iter::empty::<(&str, &str)>())
        .await
        .unwrap();
    let mut first = e
        .containers()
        .create(&[VolumeUse::existing("v")])
        .await
        .unwrap();
    e.containers().start(&mut first).await.unwrap();
    let second = e
        .containers()
        .create(&[VolumeUse::existing("v")])
        .await
        .unwrap();
    assert_ne!(
        first.mounts[0].mount_id, second.mounts[0].mount_id,
        "one ID per mount point"
    );
    e.calls().take();
    let err = e.volumes().rm("v").await.unwrap_err();
    assert!(matches!(err, HarnessError::VolumeInUse { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!("remove v: volume is in use - [{}, {}]", first.id, second.id)
    );
    assert_eq!(
        e.calls().take_methods(),
        ["VolumeDriver.Get"],
        "dockerd refuses after one Get"
    );
    e.containers().rm(first).await.unwrap();
    assert!(
        e.volumes().rm("v").await.is_err(),
        "a created container references the volume"
    );
    e.containers().rm(second).await.unwrap();
    e.volumes().rm("v").await.unwrap();
}

#[tokio::test]
async fn mount_counts_survive_a_plugin_killed_while_containers_run() {
    let s = Setup::new();
    let mut plugin = s.start_localvol("crashy");
    let e = &s.engine;
    e.volumes()
        .create("crashy", "v", std::iter::empty::<(&str, &str)>())
        .await
        .unwrap();
    let mut running = e
        .containers()
        .create(&[VolumeUse::existing("v")])
        .await
        .unwrap();
    e.containers().start(&mut running).await.unwrap();
    // `docker cp` mounts again with the same ID, and unmounts once.
    e.containers().cp(&running).await.unwrap();
    fs::write(s.data("v").join("kept"), "written before the crash").unwrap();
    let mounts = |info: docker_plugin_sdk::harness::VolumeInfo| info.status["mounts"].clone();
    assert_eq!(mounts(e.volumes().inspect("v").await.unwrap()), 1);

    // Killed as the OOM killer would, then started again by its supervisor.
    plugin.signal_and_wait(Signal::SIGKILL).unwrap();
    // Its stale socket is still there: wait until the new process answers.
    let socket = s.engine.discovery().socket_dir.join("crashy.sock");
    assert!(socket.exists());
    let _plugin = PluginProcess::start_answering(
        s.localvol_command("crashy"),
        &socket,
        s.root.path().join("crashy-restarted.log"),
    )
    .unwrap();
    assert_eq!(
        mounts(e.volumes().inspect("v").await.unwrap()),
        1,
        "the restarted plugin knows the running container's mount"
    );
    // The container stops: its Unmount carries the ID from before the crash.
    e.containers().stop(&mut running).await.unwrap();
    assert_eq!(mounts(e.volumes().inspect("v").await.unwrap()), 0);
    assert_eq!(
        fs::read_to_string(s.data("v").join("kept")).unwrap(),
        "written before the crash"
    );
    e.containers().rm(running).await.unwrap();
    e.volumes().rm("v").await.unwrap();
}

#[tokio::test]
async fn run_with_volume_driver_creates_the_volume_first() {
    let s = Setup::new();
    let _plugin = s.start_localvol("auto");
    let e = &s.engine;
    e.containers()
        .run(&[VolumeUse::with_driver("fresh", "auto")], |c| {
            assert!(c.mountpoint("fresh").unwrap().is_dir());
        })
        .await
        .unwrap();
    assert_eq!(
        e.calls().take_methods(),
        [
            "Plugin.Activate",
            "VolumeDriver.Capabilities",
            "VolumeDriver.Get",
            "VolumeDriver.Create",
            "VolumeDriver.Get",
            "VolumeDriver.Mount",
            "VolumeDriver.Get",
            "VolumeDriver.Unmount"
        ]
    );
}

#[tokio::test]
async fn driver_errors_reach_the_user_with_the_plugins_message() {
    let s = Setup::new();
    let _plugin = s.start_localvol("strict");
    let err = s
        .engine
        .volumes()
        .create("strict", "v", [("colour", "blue")])
        .await
        .unwrap_err();
    // In dockerd's words: `statusError` prints the method and the plugin's `Err`, no
    // HTTP status (moby v20.10.24 `pkg/plugins/errors.go`).
    assert_eq!(
        err.to_string(),
        "create v: VolumeDriver.Create: invalid options: unknown option `colour` \
         (valid options: mode)"
    );
    assert!(!s.root.path().join("volumes/v").exists());
    let err = s.engine.volumes().inspect("nope").await.unwrap_err();
    assert!(matches!(err, HarnessError::NoSuchVolume { .. }), "{err}");
}

#[tokio::test]
async fn a_plugin_that_starts_late_is_found_by_the_retry_loop() {
    let s = Setup::new();
    let command = s.localvol_command("late");
    let socket = s.engine.discovery().socket_dir.join("late.sock");
    let log = s.root.path().join("late.log");
    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        PluginProcess::start(command, &socket, log).unwrap()
    });
    let info = s
        .engine
        .volumes()
        .create("late", "v", std::iter::empty::<(&str, &str)>())
        .await
        .unwrap();
    assert_eq!(info.driver, "late");
    let _plugin = starter.join().unwrap();
}

#[tokio::test]
async fn a_missing_plugin_is_not_found_after_the_deadline() {
    let s = Setup::new();
    let engine = Engine::with_config(EngineConfig {
        retry: RetryPolicy {
            deadline: Duration::from_millis(300),
            first_backoff: Duration::from_millis(50),
        },
        ..EngineConfig::with_discovery(Discovery::rooted(s.root.path()))
    });
    let err = engine
        .volumes()
        .create("ghost", "v", std::iter::empty::<(&str, &str)>())
        .await
        .unwrap_err();
    let HarnessError::DriverLookup { source, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(
        matches!(**source, HarnessError::PluginNotFound { .. }),
        "{err}"
    );
    // dockerd's wording (moby's plugin store after the legacy lookup's retries).
    assert_eq!(
        err.to_string(),
        r#"create v: error looking up volume plugin ghost: plugin "ghost" not found"#
    );
}

#[tokio::test]
async fn a_plugin_behind_a_tcp_spec_file_is_used_the_same_way() {
    let s = Setup::new();
    let spec_dir = &s.engine.discovery().spec_dirs[1]; // /usr/lib/docker/plugins
    let mut command = Command::new(example_binary("localvol"));
    command
        .args(["--name", "tcpv", "--tcp", "127.0.0.1:0", "--spec-dir"])
        .arg(spec_dir)
        .arg("--root")
        .arg(s.root.path().join("volumes"));
    let spec = spec_dir.join("tcpv.spec");
    let ready = spec.clone();
    let _plugin = PluginProcess::start_with(command, s.root.path().join("tcp.log"), move || {
        ready.exists()
    })
    .unwrap();
    s.engine
        .volumes()
        .create("tcpv", "t", std::iter::empty::<(&str, &str)>())
        .await
        .unwrap();
    assert!(s.data("t").is_dir());
    assert_eq!(s.engine.volumes().ls().await.unwrap().len(), 1);
}

#[tokio::test]
async fn capabilities_not_implemented_falls_back_to_local_and_is_asked_again() {
    let s = support::server::TestServer::start(support::server::Recorder::default(), |p| p).await;
    // Discovery rooted so that the test server's socket is the plugin `test`.
    let root = s.dir.path().join("root");
    fs::create_dir_all(root.join("run/docker")).unwrap();
    std::os::unix::fs::symlink(s.dir.path(), root.join("run/docker/plugins")).unwrap();
    let engine = Engine::for_tests(&root);
    let info = engine
        .volumes()
        .create("test", "missing", std::iter::empty::<(&str, &str)>())
        .await
        .unwrap();
    assert_eq!(info.scope, Scope::Local);
    let calls = engine.calls().take();
    let summary: Vec<_> = calls
        .iter()
        .map(|c| format!("{} {}", c.method, c.status.unwrap_or(0)))
        .collect();
    // As recorded from dockerd: asked at lookup, and again after Create (not cached).
    assert_eq!(
        summary,
        [
            "Plugin.Activate 200",
            "VolumeDriver.Capabilities 404",
            "VolumeDriver.Get 500",
            "VolumeDriver.Create 200",
            "VolumeDriver.Capabilities 404"
        ]
    );
    assert!(Path::new(&s.socket).exists());
    s.shutdown().await.unwrap();
}

/// moby v20.10.24 `pkg/plugins/client.go`: a call that failed after its request was
/// written is retried like any transport error, but Go does not replay the POST itself
/// and dockerd's retry rebuilds the request from the buffer the first attempt drained:
/// the plugin gets the call again with an empty body.
#[tokio::test]
async fn a_retry_after_the_request_was_written_sends_an_empty_body_as_dockerd_does() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use support::scripted::{Answer, Scripted};

    let s = Setup::new();
    let socket_dir = &s.engine.discovery().socket_dir;
    fs::create_dir_all(socket_dir).unwrap();
    let gets = AtomicUsize::new(0);
    let plugin = Scripted::start(&socket_dir.join("raw.sock"), move |_, request| {
        let reply = |body: &str| Answer::Reply(200, body.to_owned());
        match request.path() {
            "/Plugin.Activate" => reply(r#"{"Implements":["VolumeDriver"]}"#),
            "/VolumeDriver.Capabilities" => reply(r#"{"Capabilities":{"Scope":"local"}}"#),
            _ => match gets.fetch_add(1, Ordering::SeqCst) {
                0 => reply(r#"{"Volume":{"Name":"v1"}}"#),
                1 => Answer::HangUp,
                _ => Answer::Reply(400, r#"{"Err":"this call needs a JSON body"}"#.into()),
            },
        }
    });
    let e = &s.engine;
    e.volumes().inspect("v1").await.unwrap();
    e.calls().take();
    let err = e.volumes().inspect("v1").await.unwrap_err();
    assert!(
        err.to_string().contains("this call needs a JSON body"),
        "{err} {:#?}",
        e.calls().records()
    );
    let gets: Vec<_> = plugin
        .seen()
        .into_iter()
        .filter(|seen| seen.path() == "/VolumeDriver.Get")
        .collect();
    assert_eq!(gets.len(), 3, "{gets:#?}");
    assert_eq!(gets[1].body, "{\"Name\":\"v1\"}\n");
    assert_eq!(gets[2].body, "");
    assert!(
        gets[2].head.contains("Content-Length: 0\r\n"),
        "{}",
        gets[2].head
    );
    assert_eq!((gets[1].connection, gets[2].connection), (0, 1));
    let attempts: Vec<_> = e
        .calls()
        .take()
        .into_iter()
        .filter(|c| c.method == "VolumeDriver.Get")
        .map(|c| (c.request, c.status))
        .collect();
    assert_eq!(
        attempts,
        [
            (serde_json::json!({"Name": "v1"}), None),
            (serde_json::Value::Null, Some(400))
        ]
    );
}
