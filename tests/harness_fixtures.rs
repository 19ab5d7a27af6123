//! The harness against the truth: every call sequence recorded from a real dockerd in
//! `tests/fixtures/dockerd-sequences/` is replayed through the harness, with the same
//! recorder plugin as a real process, and must produce the same calls (plugin, method,
//! HTTP status) command by command, and the same outcome (success, or dockerd's error
//! message). What the recorder received must be what dockerd sent: the same request
//! bodies, byte for byte (IDs aside), and the same headers.
//!
//! Known difference: the harness has no `local` driver, so the fixture about a name
//! held by `local` (`volume_create_other_driver`) is checked only for its plugin part.
#![cfg(all(feature = "harness", feature = "packager"))]

mod support;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use docker_plugin_sdk::harness::{Container, Engine, HarnessError, PluginProcess, VolumeUse};
use serde_json::Value;
use support::bundle;
use support::process::xtask_binary;

struct Replay {
    root: tempfile::TempDir,
    engine: Engine,
    plugins: HashMap<String, (Value, PluginProcess)>,
    /// Managed plugins of the fixture, by name: their recorded entry.
    managed: HashMap<String, Value>,
    containers: HashMap<String, Container>,
    /// Lines of each recorder log already compared.
    read: HashMap<PathBuf, usize>,
}

impl Replay {
    fn new(plugins: &[Value]) -> Self {
        let root = tempfile::tempdir().unwrap();
        let engine = Engine::for_tests(root.path());
        let mut replay = Self {
            root,
            engine,
            plugins: HashMap::new(),
            managed: HashMap::new(),
            containers: HashMap::new(),
            read: HashMap::new(),
        };
        for plugin in plugins {
            let name = plugin["name"].as_str().unwrap().to_owned();
            if plugin["managed"] == true {
                // Created by the fixture's own `docker plugin create`.
                replay.managed.insert(name, plugin.clone());
                continue;
            }
            let process = replay.start(plugin);
            replay.plugins.insert(name, (plugin.clone(), process));
        }
        replay
    }

    /// The bundle `<tmp>/NAME.bundle` of a managed fixture: the recorder in a rootfs
    /// with the fixture's config, or one of `plugin_create_errors`' broken bundles.
    fn bundle(&self, arg: &str) -> PathBuf {
        let tmp = self.root.path();
        let name = arg.trim_start_matches("<tmp>/").trim_end_matches(".bundle");
        let dir = tmp.join(format!("{name}.bundle"));
        if dir.exists() {
            return dir;
        }
        let recorder_config = |socket: Option<&str>| {
            let spec = self.managed.values().next().expect("a managed plugin");
            let text = spec["config"]
                .to_string()
                .replace("<tmp>", &tmp.display().to_string());
            let mut config: Value = serde_json::from_str(&text).unwrap();
            if let Some(socket) = socket {
                config["interface"]["socket"] = socket.into();
            }
            for mount in config["mounts"].as_array().into_iter().flatten() {
                if let Some(source) = mount["source"].as_str() {
                    fs::create_dir_all(source).unwrap();
                }
            }
            config
        };
        let with_recorder = |config: &Value| {
            bundle::packaged(
                &dir,
                config,
                &xtask_binary("recorder"),
                "/recorder",
                &["/log"],
            );
        };
        match name {
            "bad-json" => {
                fs::create_dir_all(dir.join("rootfs")).unwrap();
                fs::write(dir.join("config.json"), r#"{"description": "#).unwrap();
            }
            "bad-type" => bundle::write_config(&dir, &serde_json::json!({"description": 1})),
            "no-rootfs" => {
                fs::create_dir_all(&dir).unwrap();
                fs::write(dir.join("config.json"), recorder_config(None).to_string()).unwrap();
            }
            "nowhere" => {}
            "no-binary" => {
                let mut config = recorder_config(None);
                config["entrypoint"] = serde_json::json!(["/no-such-binary"]);
                bundle::write_config(&dir, &config);
            }
            "no-socket" => with_recorder(&recorder_config(Some("no-socket.sock"))),
            _ => with_recorder(&recorder_config(None)),
        }
        dir
    }

    fn start(&self, plugin: &Value) -> PluginProcess {
        let name = plugin["name"].as_str().unwrap();
        let socket_dir = &self.engine.discovery().socket_dir;
        let mut command = Command::new(xtask_binary("recorder"));
        command
            .args(["--name", name, "--socket-dir"])
            .arg(socket_dir)
            .arg("--root")
            .arg(self.root.path().join("volumes").join(name))
            .arg("--log")
            .arg(self.root.path().join(format!("{name}.jsonl")));
        if plugin["capabilities"].as_bool() == Some(true) {
            command.arg("--capabilities");
        }
        if plugin["bare_get"].as_bool() == Some(true) {
            command.arg("--bare-get");
        }
        let log = self.root.path().join(format!("{name}.log"));
        PluginProcess::start(command, &socket_dir.join(format!("{name}.sock")), log).unwrap()
    }

    /// Where each plugin's recorder writes its log on the host: `ROOT/NAME.jsonl` for a
    /// legacy one, the file its `--log` names under the host source of its `/log`
    /// mount for a managed one.
    fn recorder_logs(&self) -> Vec<(String, PathBuf)> {
        let mut logs: Vec<(String, PathBuf)> = self
            .plugins
            .keys()
            .map(|name| (name.clone(), self.root.path().join(format!("{name}.jsonl"))))
            .collect();
        for (name, spec) in &self.managed {
            let config = &spec["config"];
            let args: Vec<&str> = config["entrypoint"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            let Some(log) = args.windows(2).find(|w| w[0] == "--log").map(|w| w[1]) else {
                continue;
            };
            for mount in config["mounts"].as_array().into_iter().flatten() {
                let destination = mount["destination"].as_str().unwrap();
                if let Some(rest) = log.strip_prefix(&format!("{destination}/")) {
                    let source = mount["source"]
                        .as_str()
                        .unwrap()
                        .replace("<tmp>", &self.root.path().display().to_string());
                    logs.push((name.clone(), Path::new(&source).join(rest)));
                }
            }
        }
        logs.sort();
        logs
    }

    /// The calls the recorders received since the last look, per plugin in order.
    fn received(&mut self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for (name, log) in self.recorder_logs() {
            let text = fs::read_to_string(&log).unwrap_or_default();
            let seen = self.read.entry(log).or_default();
            let lines: Vec<&str> = text.lines().collect();
            for line in &lines[*seen..] {
                out.push((name.clone(), serde_json::from_str(line).unwrap()));
            }
            *seen = lines.len();
        }
        out
    }

    /// Runs one docker command (the subset the fixtures use) on the harness.
    async fn run(&mut self, command: &str) -> Result<(), HarnessError> {
        let words: Vec<&str> = command.split_whitespace().collect();
        let e = self.engine.clone();
        match words.as_slice() {
            ["@restart-plugin", name] => {
                let (spec, mut process) = self.plugins.remove(*name).unwrap();
                assert!(process.terminate().unwrap().success());
                let process = self.start(&spec);
                self.plugins.insert(name.to_string(), (spec, process));
                Ok(())
            }
            ["docker", "volume", "create", rest @ ..] => {
                let (flags, name) = rest.split_at(rest.len() - 1);
                let mut driver = None;
                let mut opts = Vec::new();
                let mut it = flags.iter();
                while let Some(flag) = it.next() {
                    match *flag {
                        "-d" => driver = it.next().copied(),
                        "-o" => {
                            let (k, v) = it.next().unwrap().split_once('=').unwrap();
                            opts.push((k.to_owned(), v.to_owned()));
                        }
                        other => panic!("unsupported flag {other} in {command}"),
                    }
                }
                e.volumes()
                    .create(driver.unwrap_or("local"), name[0], opts)
                    .await
                    .map(drop)
            }
            ["docker", "plugin", "create", name, bundle] => {
                let dir = self.bundle(bundle);
                e.plugins().create(name, dir).await.map(drop)
            }
            ["docker", "plugin", "enable", name] => e.plugins().enable(name).await,
            ["docker", "plugin", "disable", "-f", name] => e.plugins().disable(name, true).await,
            ["docker", "plugin", "disable", name] => e.plugins().disable(name, false).await,
            ["docker", "plugin", "rm", "-f", name] => e.plugins().rm(name, true).await,
            ["docker", "plugin", "rm", name] => e.plugins().rm(name, false).await,
            ["docker", "plugin", "set", name, settings @ ..] => e.plugins().set(name, settings),
            ["docker", "plugin", "ls", ..] => {
                e.plugins().ls();
                Ok(())
            }
            ["docker", "plugin", "inspect", .., name] => e.plugins().inspect(name).map(drop),
            ["docker", "inspect", ..] | ["@host-files", _] => Ok(()),
            ["@kill-plugin", name] => {
                let pid = e.plugins().inspect(name)?.pid.expect("running");
                nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                )
                .unwrap();
                // dockerd restarts it at once; wait until the harness has too.
                for _ in 0..100 {
                    let info = e.plugins().inspect(name)?;
                    if info.enabled && info.pid.is_some_and(|p| p != pid) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok(())
            }
            ["docker", "start", name] => {
                let container = self.containers.get_mut(*name).unwrap();
                e.containers().start(container).await
            }
            ["docker", "volume", "ls"] => e.volumes().ls().await.map(drop),
            ["docker", "volume", "inspect", name] => e.volumes().inspect(name).await.map(drop),
            ["docker", "volume", "rm", name] => e.volumes().rm(name).await,
            ["docker", "create" | "run", rest @ ..] => {
                let run = words[1] == "run";
                let (mut name, mut driver, mut volume, mut remove, mut detach) =
                    (None, None, None, false, false);
                let mut it = rest.iter();
                while let Some(word) = it.next() {
                    match *word {
                        "--name" => name = it.next().copied(),
                        "--volume-driver" => driver = it.next().copied(),
                        "-v" => volume = it.next().map(|v| v.split(':').next().unwrap()),
                        "--rm" => remove = true,
                        "-d" => detach = true,
                        _ => break, // the image, then its command
                    }
                }
                let volume = volume.expect("-v");
                let using = match driver {
                    Some(d) => VolumeUse::with_driver(volume, d),
                    None => VolumeUse::existing(volume),
                };
                let mut container = e.containers().create(&[using]).await?;
                if run {
                    e.containers().start(&mut container).await?;
                    if !detach {
                        e.containers().stop(&mut container).await?;
                    }
                    if remove {
                        return e.containers().rm(container).await;
                    }
                }
                self.containers
                    .insert(name.unwrap_or("anonymous").to_owned(), container);
                Ok(())
            }
            ["docker", "stop", "-t", _, name] => {
                let container = self.containers.get_mut(*name).unwrap();
                e.containers().stop(container).await
            }
            ["docker", "rm", names @ ..] => {
                for name in names {
                    let container = self.containers.remove(*name).unwrap();
                    e.containers().rm(container).await?;
                }
                Ok(())
            }
            ["docker", "cp", from, _to] => {
                let name = from.split(':').next().unwrap();
                e.containers().cp(&self.containers[name]).await
            }
            _ => panic!("the replay does not know {command:?}"),
        }
    }
}

/// `Method[plugin] status` per call of command `index`.
fn expected_calls(calls: &[Value], index: u64) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c["command"].as_u64() == Some(index))
        .map(|c| {
            format!(
                "{}[{}] {}",
                c["method"].as_str().unwrap(),
                c["plugin"].as_str().unwrap(),
                c["status"]
            )
        })
        .collect()
}

/// `Method[plugin] BODY` per call of command `index`, IDs hidden, grouped by plugin.
fn expected_bodies(calls: &[Value], index: u64) -> Vec<String> {
    let mut out: Vec<(String, String)> = calls
        .iter()
        .filter(|c| c["command"].as_u64() == Some(index))
        .map(|c| {
            let plugin = c["plugin"].as_str().unwrap().to_owned();
            let body = c["request_body"].as_str().unwrap();
            let line = format!(
                "{}[{plugin}] {:?}",
                c["method"].as_str().unwrap(),
                without_ids(body)
            );
            (plugin, line)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, line)| line).collect()
}

/// What is wrong with the headers of a call the recorder received, if anything:
/// they must be dockerd's (`request_headers` of the fixture, which leaves out
/// `Content-Length`), with a `Content-Length` giving the body's length, on a POST.
fn header_problem(call: &Value, dockerd: &Value) -> Option<String> {
    let mut headers = call["request_headers"].clone();
    let length = headers.as_object_mut()?.remove("content-length");
    let body_length = call["request_body"].as_str()?.len().to_string();
    if headers != *dockerd || length.as_ref().and_then(Value::as_str) != Some(&body_length) {
        return Some(format!(
            "{} sent headers {} (content-length {length:?} for {body_length} bytes), dockerd {dockerd}",
            call["method"], headers
        ));
    }
    (call["http_method"] != "POST")
        .then(|| format!("{} sent as {}", call["method"], call["http_method"]))
}

/// Hides IDs: `<id3>` placeholders and 64-hex IDs both become `<id>`.
fn without_ids(text: &str) -> String {
    let mut out = String::new();
    for word in text.split_inclusive([' ', '[', ']', '"']) {
        let core = word.trim_end_matches([' ', '[', ']', '"']);
        let tail = &word[core.len()..];
        let is_id = (core.len() == 64 && core.bytes().all(|b| b.is_ascii_hexdigit()))
            || (core.starts_with("<id") && core.ends_with('>'));
        out.push_str(if is_id { "<id>" } else { core });
        out.push_str(tail);
    }
    out
}

async fn replay_fixture(path: &Path) -> Vec<String> {
    let fixture: Value = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    let local_only = fixture["action"] == "volume_create_other_driver";
    let mut replay = Replay::new(fixture["plugins"].as_array().unwrap());
    let mut problems = Vec::new();
    for part in ["setup", "main"] {
        let (commands, results, calls) = if part == "setup" {
            let s = &fixture["setup"];
            (&s["commands"], &s["results"], &s["calls"])
        } else {
            (&fixture["commands"], &fixture["results"], &fixture["calls"])
        };
        for (i, command) in commands.as_array().unwrap().iter().enumerate() {
            let command = command.as_str().unwrap();
            // The harness has no local driver: skip what only involves it.
            let involves_local =
                command == "docker volume create vlocal" || command.contains(" vlocal");
            if (local_only && involves_local) || not_replayed(command) {
                replay.engine.calls().take();
                replay.received();
                continue;
            }
            let outcome = replay.run(command).await;
            let actual: Vec<String> = replay
                .engine
                .calls()
                .take()
                .into_iter()
                .filter(|c| c.status.is_some())
                .map(|c| {
                    let plugin = c.plugin.trim_end_matches(":latest");
                    format!("{}[{}] {}", c.method, plugin, c.status.unwrap())
                })
                .collect();
            let expected = expected_calls(calls.as_array().unwrap(), i as u64);
            if actual != expected {
                problems.push(format!(
                    "{part} `{command}`:\n  dockerd: {expected:?}\n  harness: {actual:?}"
                ));
            }
            let received = replay.received();
            for (_, call) in &received {
                if let Some(problem) = header_problem(call, &fixture["request_headers"]) {
                    problems.push(format!("{part} `{command}`: {problem}"));
                }
            }
            let bodies: Vec<String> = received
                .iter()
                .map(|(plugin, call)| {
                    let body = call["request_body"].as_str().unwrap();
                    format!(
                        "{}[{plugin}] {:?}",
                        call["method"].as_str().unwrap(),
                        without_ids(body)
                    )
                })
                .collect();
            let expected = expected_bodies(calls.as_array().unwrap(), i as u64);
            if bodies != expected {
                problems.push(format!(
                    "{part} `{command}` bodies:\n  dockerd: {expected:?}\n  harness: {bodies:?}"
                ));
            }
            let result = &results[i];
            let dockerd_ok = result["exit_code"] == 0;
            match (&outcome, dockerd_ok) {
                (Ok(()), true) => {}
                (Err(err), false) if text_differs_knowingly(command) => {
                    // Not dockerd's words, but the same kind of failure.
                    let fits = match err {
                        HarnessError::Bundle(_) => command.starts_with("docker plugin create"),
                        HarnessError::EnableFailed { .. } => {
                            command.starts_with("docker plugin enable")
                        }
                        _ => false,
                    };
                    if !fits {
                        problems.push(format!("{part} `{command}`: harness failed with {err:?}"));
                    }
                }
                (Err(err), false) => {
                    let stderr = result["stderr"].as_str().unwrap_or("").trim();
                    // The CLI's own last line ("Error: failed to start containers: c1").
                    let stderr = stderr.lines().next().unwrap_or("");
                    let want = stderr
                        .strip_prefix("Error response from daemon: ")
                        .unwrap_or(stderr);
                    if without_ids(&err.to_string()) != without_ids(want) {
                        problems.push(format!(
                            "{part} `{command}`: dockerd said {want:?}, harness {err}"
                        ));
                    }
                }
                _ => problems.push(format!(
                    "{part} `{command}`: dockerd exit {}, harness {outcome:?}",
                    result["exit_code"]
                )),
            }
        }
    }
    problems
}

/// Commands whose failure the harness reproduces but not dockerd's text: the CLI
/// decodes config.json itself (`unexpected EOF`, Go's unmarshal errors, `lstat`),
/// dockerd's `no rootfs found: EOF` (the harness names the missing dir), runc's exec
/// error for a missing entrypoint, and the socket path of a plugin that never listens
/// (the harness's dirs live under its root).
fn text_differs_knowingly(command: &str) -> bool {
    [
        "docker plugin create bad-json",
        "docker plugin create bad-type",
        "docker plugin create no-rootfs",
        "docker plugin create nowhere",
        "docker plugin enable no-binary",
        "docker plugin enable no-socket",
    ]
    .iter()
    .any(|c| command.starts_with(c))
}

/// Commands not replayed: dockerd refuses a second plugin whose rootfs layer it
/// already has (`content sha256:…: already exists`); the harness has no content store
/// and accepts it.
fn not_replayed(command: &str) -> bool {
    command.starts_with("docker plugin create rec-m2 ")
}

fn is_managed(path: &Path) -> bool {
    let fixture: Value = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    fixture["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["managed"] == true)
}

#[tokio::test]
async fn every_recorded_dockerd_sequence_is_reproduced() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dockerd-sequences");
    let mut fixtures: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 24, "fixtures missing: {}", fixtures.len());
    let managed = fixtures.iter().filter(|p| is_managed(p)).count();
    assert!(managed >= 9, "managed fixtures missing: {managed}");
    let mut report = Vec::new();
    for fixture in &fixtures {
        for problem in replay_fixture(fixture).await {
            report.push(format!(
                "{}: {problem}",
                fixture.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(
        report.is_empty(),
        "{} differences:\n{}",
        report.len(),
        report.join("\n")
    );
}
