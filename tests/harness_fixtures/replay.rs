//! Replaying one recorded action on the harness: the fixture's plugins (legacy ones as
//! recorder processes, managed ones as bundles rebuilt from their recorded config), and
//! each docker command translated into the harness call that plays it, with the stdout
//! the commands that matter would print.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use docker_plugin_sdk::harness::{
    Container, Engine, HarnessError, NetworkOptions, NetworkUse, PluginLogLine, PluginProcess,
    Signal, VolumeUse,
};
use serde_json::Value;

use super::render;
use super::support::bundle;
use super::support::process::xtask_binary;
use super::support::wait::{PATIENCE, wait_for_async};

/// What a command did on the harness.
pub struct Ran {
    pub outcome: Result<(), HarnessError>,
    /// What the docker CLI would print, for the commands whose output is compared.
    pub stdout: Option<String>,
}

impl From<Result<(), HarnessError>> for Ran {
    fn from(outcome: Result<(), HarnessError>) -> Self {
        Self {
            outcome,
            stdout: None,
        }
    }
}

pub struct Replay {
    pub root: tempfile::TempDir,
    pub engine: Engine,
    fixture: Value,
    legacy: HashMap<String, (Value, Option<PluginProcess>)>,
    containers: HashMap<String, Container>,
    /// Fixture placeholders (`<id1>`) of managed plugins → the harness's IDs.
    ids: HashMap<String, String>,
    /// How many of the managed plugins' output lines were seen.
    seen_output: usize,
    /// Lines of each recorder log already read.
    read: HashMap<PathBuf, usize>,
}

/// The fixture's `<tmp>` → the replay's temp dir, in a JSON value.
fn untemp(value: &Value, tmp: &Path) -> Value {
    serde_json::from_str(
        &value
            .to_string()
            .replace("<tmp>", &tmp.display().to_string()),
    )
    .unwrap()
}

impl Replay {
    pub fn new(fixture: Value) -> Self {
        let root = tempfile::tempdir().unwrap();
        let engine = Engine::for_tests(root.path());
        let mut replay = Self {
            root,
            engine,
            fixture,
            legacy: HashMap::new(),
            containers: HashMap::new(),
            ids: HashMap::new(),
            seen_output: 0,
            read: HashMap::new(),
        };
        for plugin in replay.plugins() {
            if plugin["managed"] != true {
                let name = plugin["name"].as_str().unwrap().to_owned();
                let process = replay.start(&plugin);
                replay.legacy.insert(name, (plugin, Some(process)));
            }
        }
        // dockerd --authorization-plugin=NAME for each authz recorder, in order.
        let chain: Vec<String> = replay
            .plugins()
            .iter()
            .filter(|p| p["authz"] == true)
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect();
        if !chain.is_empty() {
            replay.engine.authz().set_plugins(chain);
        }
        replay
    }

    /// Where each recorder writes what it received: a legacy one its `--log`, a
    /// managed one the `--log` of its recorded entrypoint, under the host source of
    /// the mount that holds it.
    fn recorder_logs(&self) -> Vec<(String, PathBuf)> {
        let tmp = self.root.path();
        let mut logs: Vec<(String, PathBuf)> = self
            .legacy
            .keys()
            .map(|name| (name.clone(), tmp.join(format!("{name}.jsonl"))))
            .collect();
        for spec in self.plugins().into_iter().filter(|p| p["managed"] == true) {
            let name = spec["name"].as_str().unwrap().to_owned();
            let config = untemp(&spec["config"], tmp);
            let args: Vec<&str> = config["entrypoint"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let Some(log) = args.windows(2).find(|w| w[0] == "--log").map(|w| w[1]) else {
                continue;
            };
            for mount in config["mounts"].as_array().into_iter().flatten() {
                let (Some(destination), Some(source)) =
                    (mount["destination"].as_str(), mount["source"].as_str())
                else {
                    continue;
                };
                if let Some(rest) = log.strip_prefix(&format!("{destination}/")) {
                    logs.push((name.clone(), Path::new(source).join(rest)));
                }
            }
        }
        logs
    }

    /// What the recorders received since the last call, as they logged it (plugin
    /// name, logged call): the bytes and headers on the wire.
    pub fn received(&mut self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for (name, log) in self.recorder_logs() {
            let text = fs::read_to_string(&log).unwrap_or_default();
            let seen = self.read.entry(log).or_default();
            let lines: Vec<&str> = text.lines().collect();
            for line in lines.iter().skip(*seen) {
                out.push((name.clone(), serde_json::from_str(line).unwrap()));
            }
            *seen = lines.len();
        }
        out
    }

    fn plugins(&self) -> Vec<Value> {
        self.fixture["plugins"].as_array().unwrap().clone()
    }

    /// The name docker commands use for fixture plugin `p`.
    pub fn docker_name(p: &Value) -> &str {
        p["docker_name"]
            .as_str()
            .unwrap_or_else(|| p["name"].as_str().unwrap())
    }

    /// The fixture's label of a harness call's plugin: a managed call (`rec-m:latest`)
    /// names the managed fixture plugin created under that name.
    pub fn label(&self, harness_name: &str) -> String {
        let bare = harness_name.trim_end_matches(":latest");
        if harness_name.ends_with(":latest")
            && let Some(p) = self
                .plugins()
                .into_iter()
                .find(|p| p["managed"] == true && Self::docker_name(p) == bare)
        {
            return p["name"].as_str().unwrap().to_owned();
        }
        bare.to_owned()
    }

    /// The bundle `<tmp>/NAME.bundle`: a managed fixture plugin's (the recorder in a
    /// rootfs with its recorded config) or one of the recorded broken bundles.
    fn bundle(&self, arg: &str) -> PathBuf {
        let tmp = self.root.path();
        let file = Path::new(arg).file_name().unwrap().to_string_lossy();
        let name = file.trim_end_matches(".bundle");
        let dir = tmp.join(format!("{name}.bundle"));
        if dir.exists() {
            return dir;
        }
        if let Some(info) = self.fixture["bundles"].get(name) {
            if let Some(text) = info["config_json"].as_str() {
                let text = text.replace("<tmp>", &tmp.display().to_string());
                if let Some(program) = info["program"].as_str() {
                    // The packager refuses a broken config: it writes a plain one,
                    // replaced by the recorded one.
                    let plain = serde_json::json!({
                        "entrypoint": [program],
                        "interface": {"socket": "x.sock", "types": ["docker.volumedriver/1.0"]}
                    });
                    bundle::packaged(&dir, &plain, &xtask_binary("recorder"), program, &[]);
                }
                fs::create_dir_all(&dir).unwrap();
                fs::write(dir.join("config.json"), text).unwrap();
            }
            if info["rootfs"] == true {
                fs::create_dir_all(dir.join("rootfs")).unwrap();
            }
            return dir;
        }
        // Neither a plugin's nor a recorded broken one: a bundle that is not there.
        let Some(spec) = self.plugins().into_iter().find(|p| p["name"] == name) else {
            return dir;
        };
        let config = untemp(&spec["config"], tmp);
        for mount in config["mounts"].as_array().into_iter().flatten() {
            if let Some(source) = mount["source"].as_str() {
                fs::create_dir_all(source).unwrap();
            }
        }
        bundle::packaged(
            &dir,
            &config,
            &xtask_binary("recorder"),
            "/recorder",
            &["/log", "/tmp", "/mnt/volumes", "/run/docker/plugins"],
        );
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
        if plugin["network"].as_bool() == Some(true) {
            command.arg("--network");
        }
        if plugin["authz"].as_bool() == Some(true) {
            command.arg("--authz");
        }
        if plugin["logging"].as_bool() == Some(true) {
            command.arg("--logging");
        }
        let log = self.root.path().join(format!("{name}.log"));
        PluginProcess::start(command, &socket_dir.join(format!("{name}.sock")), log).unwrap()
    }

    /// `<idN>` and `<idN:12>` → the harness's IDs; `<tmp>` → the temp dir;
    /// `<registry>` → a registry address (the harness pulls nothing).
    fn substitute(&self, word: &str) -> String {
        let mut word = word
            .replace("<tmp>", &self.root.path().display().to_string())
            .replace("<registry>", "127.0.0.1:5000");
        for (placeholder, id) in &self.ids {
            let short = format!("{}:12>", placeholder.trim_end_matches('>'));
            word = word.replace(&short, &id[..12]).replace(placeholder, id);
        }
        word
    }

    /// After `docker plugin create NAME`: the fixture's ID placeholder of NAME is the
    /// harness's new ID.
    fn learn_id(&mut self, name: &str) {
        let Ok(info) = self.engine.plugins().inspect(name) else {
            return;
        };
        for p in self.plugins() {
            if p["managed"] == true
                && Self::docker_name(&p) == name
                && let Some(placeholder) = p["id"].as_str()
            {
                self.ids.insert(placeholder.to_owned(), info.id.clone());
            }
        }
    }

    /// The harness's plugin IDs, short and full, → the fixture's placeholders, and its
    /// temp dir → `<tmp>`.
    pub fn normalize_ids(&self, text: &str) -> String {
        let mut text = text.replace(&self.root.path().display().to_string(), "<tmp>");
        for (placeholder, id) in &self.ids {
            let short = format!("{}:12>", placeholder.trim_end_matches('>'));
            text = text
                .replace(id.as_str(), placeholder)
                .replace(&id[..12], &short);
        }
        text
    }

    /// The managed plugins' output lines printed since the last call, as dockerd logs
    /// them (stdout lines first, as the recorder orders them).
    pub fn new_plugin_output(&mut self) -> Vec<String> {
        let all = self.engine.plugins().output();
        let out: Vec<PluginLogLine> = all[self.seen_output..].to_vec();
        self.seen_output = all.len();
        let mut lines: Vec<(bool, String)> = out
            .iter()
            .map(|l| (!l.to_string().starts_with("level=info"), l.to_string()))
            .collect();
        lines.sort_by_key(|(stderr, _)| *stderr);
        lines.into_iter().map(|(_, l)| l).collect()
    }

    /// Runs one docker command (the subset the fixtures use) on the harness.
    pub async fn run(&mut self, command: &str) -> Ran {
        let words: Vec<String> = split_command(command)
            .iter()
            .map(|w| self.substitute(w))
            .collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let e = self.engine.clone();
        match words.as_slice() {
            ["@restart-plugin", name] => {
                let (spec, process) = self.legacy.remove(*name).unwrap();
                assert!(process.unwrap().terminate().unwrap().success());
                let process = self.start(&spec);
                self.legacy.insert(name.to_string(), (spec, Some(process)));
                Ok(()).into()
            }
            ["@stop-plugin", name] => {
                let (_, process) = self.legacy.get_mut(*name).unwrap();
                process
                    .take()
                    .unwrap()
                    .signal_and_wait(Signal::SIGKILL)
                    .unwrap();
                Ok(()).into()
            }
            ["@start-registry"] => Ok(()).into(),
            ["@host-files", name] => Ran {
                outcome: Ok(()),
                stdout: Some(render::host_files(self, name)),
            },
            ["@kill-plugin", name] => self.kill_plugin(name).await.into(),
            // `POST /containers/create` with `MacAddress` (API 1.41), as recorded.
            ["@create-mac", name, network, mac] => {
                let network = NetworkUse::new(*network).mac(mac.parse().unwrap());
                match e.containers().create_on(&[], &[network]).await {
                    Ok(container) => {
                        self.containers.insert(name.to_string(), container);
                        Ok(()).into()
                    }
                    Err(err) => Err(err).into(),
                }
            }
            ["docker", "plugin", "create", name, bundle] => {
                let dir = self.bundle(bundle);
                let created = e.plugins().create(name, dir).await.map(drop);
                self.learn_id(name);
                created.into()
            }
            ["docker", "plugin", "push", _] => Ok(()).into(),
            [
                "docker",
                "plugin",
                "upgrade",
                "--grant-all-permissions",
                "--skip-remote-check",
                name,
                remote,
            ] => {
                let bundle = remote
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .split(':')
                    .next()
                    .unwrap();
                let dir = self.bundle(&format!("<tmp>/{bundle}.bundle"));
                e.plugins().upgrade(name, dir).await.into()
            }
            ["docker", "plugin", "enable", name] => e.plugins().enable(name).await.into(),
            ["docker", "plugin", "disable", "-f", name] => {
                e.plugins().disable(name, true).await.into()
            }
            ["docker", "plugin", "disable", name] => e.plugins().disable(name, false).await.into(),
            ["docker", "plugin", "rm", "-f", name] => e.plugins().rm(name, true).await.into(),
            ["docker", "plugin", "rm", name] => e.plugins().rm(name, false).await.into(),
            ["docker", "plugin", "set", name, settings @ ..] => {
                e.plugins().set(name, settings).into()
            }
            ["docker", "plugin", "ls", flags @ ..] => Ran {
                outcome: Ok(()),
                stdout: Some(render::plugin_ls(self, flags)),
            },
            ["docker", "plugin", "inspect", "--format", format, name] => {
                match e.plugins().inspect(name) {
                    Ok(info) => Ran {
                        outcome: Ok(()),
                        stdout: render::plugin_inspect(format, &info)
                            .map(|s| self.normalize_ids(&s)),
                    },
                    Err(err) => Err(err).into(),
                }
            }
            ["docker", "plugin", "inspect", name] => e.plugins().inspect(name).map(drop).into(),
            ["docker", "inspect", ..] => Ok(()).into(),
            ["docker", "exec", name, "cat", path] => {
                // The fixtures' containers mount one volume, at /data.
                let mount = &self.containers[*name].mounts[0];
                let file = path.strip_prefix("/data/").expect("a file of the volume");
                Ran {
                    outcome: Ok(()),
                    stdout: Some(
                        fs::read_to_string(mount.mountpoint.join(file)).unwrap_or_default(),
                    ),
                }
            }
            ["docker", "start", name] => {
                let container = self.containers.get_mut(*name).unwrap();
                e.containers().start(container).await.into()
            }
            ["docker", "volume", "create", rest @ ..] => self.volume_create(rest).await.into(),
            ["docker", "volume", "ls"] => match e.volumes().ls().await {
                Ok(list) => Ran {
                    outcome: Ok(()),
                    stdout: Some(render::volume_ls(&list)),
                },
                Err(err) => Err(err).into(),
            },
            ["docker", "volume", "inspect", name] => {
                e.volumes().inspect(name).await.map(drop).into()
            }
            ["docker", "volume", "rm", name] => e.volumes().rm(name).await.into(),
            ["docker", "network", "create", rest @ ..] => network_create(&e, rest).await.into(),
            ["docker", "network", "rm", name] => e.networks().rm(name).await.into(),
            ["docker", "create" | "run", rest @ ..] => {
                let run = words[1] == "run";
                self.create_or_run(rest, run).await.into()
            }
            ["docker", "stop", "-t", _, name] => {
                let container = self.containers.get_mut(*name).unwrap();
                e.containers().stop(container).await.into()
            }
            ["docker", "rm", names @ ..] => {
                for name in names {
                    let container = self.containers.remove(*name).unwrap();
                    if let Err(err) = e.containers().rm(container).await {
                        return Err(err).into();
                    }
                }
                Ok(()).into()
            }
            ["docker", "cp", from, _to] => {
                let name = from.split(':').next().unwrap();
                e.containers().cp(&self.containers[name]).await.into()
            }
            _ => panic!("the replay does not know {command:?}"),
        }
    }

    async fn kill_plugin(&self, name: &str) -> Result<(), HarnessError> {
        let e = &self.engine;
        let pid = e.plugins().inspect(name)?.pid.expect("running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        // dockerd restarts it at once; wait until the harness has too.
        wait_for_async("the plugin restarted", || {
            e.plugins()
                .inspect(name)
                .is_ok_and(|info| info.enabled && info.pid.is_some_and(|p| p != pid))
                .then_some(())
        })
        .await
        .unwrap();
        e.plugins().wait_until_answering(name, PATIENCE).await
    }

    async fn volume_create(&self, rest: &[&str]) -> Result<(), HarnessError> {
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
                other => panic!("unsupported flag {other}"),
            }
        }
        self.engine
            .volumes()
            .create(driver.unwrap_or("local"), name[0], opts)
            .await
            .map(drop)
    }

    async fn create_or_run(&mut self, rest: &[&str], run: bool) -> Result<(), HarnessError> {
        let e = self.engine.clone();
        let (mut name, mut driver, mut volume, mut remove, mut detach) =
            (None, None, None, false, false);
        let mut network: Option<NetworkUse> = None;
        let mut it = rest.iter();
        while let Some(word) = it.next() {
            match *word {
                "--name" => name = it.next().copied(),
                "--network" => network = it.next().map(|n| NetworkUse::new(*n)),
                "--ip" => {
                    let ip = it.next().unwrap().parse().unwrap();
                    network = network.map(|n| n.ip(ip));
                }
                "--volume-driver" => driver = it.next().copied(),
                "-v" => volume = it.next().map(|v| v.split(':').next().unwrap()),
                "--rm" => remove = true,
                "-d" => detach = true,
                _ => break, // the image, then its command
            }
        }
        let volumes: Vec<VolumeUse> = volume
            .map(|volume| match driver {
                Some(d) => VolumeUse::with_driver(volume, d),
                None => VolumeUse::existing(volume),
            })
            .into_iter()
            .collect();
        // `sh -c 'echo TEXT > /data/FILE'`: the container writes into its volume.
        let script = rest
            .iter()
            .position(|w| *w == "-c")
            .and_then(|i| rest.get(i + 1))
            .and_then(|s| s.strip_prefix("echo "))
            .and_then(|s| s.split_once(" > /data/"));
        let networks: Vec<NetworkUse> = network.into_iter().collect();
        let mut container = e.containers().create_on(&volumes, &networks).await?;
        if run {
            e.containers().start(&mut container).await?;
            if let Some((text, file)) = script {
                let mount = &container.mounts[0].mountpoint;
                fs::write(mount.join(file), format!("{text}\n")).unwrap();
            }
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
}

/// `docker network create [OPTIONS] NAME`.
async fn network_create(e: &Engine, rest: &[&str]) -> Result<(), HarnessError> {
    let (name, flags) = rest.split_last().unwrap();
    let mut opts = NetworkOptions::default();
    let mut it = flags.iter();
    while let Some(flag) = it.next() {
        let mut value = || *it.next().unwrap();
        match *flag {
            "-d" => opts.driver = value().to_owned(),
            "--ipam-driver" => opts = opts.ipam_driver(value()),
            "--subnet" => opts = opts.subnet(value().parse().unwrap()),
            "--gateway" => opts = opts.gateway(value().parse().unwrap()),
            "--ip-range" => opts = opts.ip_range(value().parse().unwrap()),
            "--aux-address" => {
                let (k, v) = value().split_once('=').unwrap();
                opts = opts.aux_address(k, v.parse().unwrap());
            }
            "--internal" => opts = opts.internal(),
            "-o" => {
                let (k, v) = value().split_once('=').unwrap();
                opts = opts.option(k, v);
            }
            other => panic!("network create {other}: not replayed"),
        }
    }
    e.networks().create(name, opts).await.map(drop)
}

/// A fixture command's words, with shell quotes (`'{{json .Settings}}'`) removed.
fn split_command(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in command.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                any = false;
            }
            c => word.push(c),
        }
    }
    if any || !word.is_empty() {
        words.push(word);
    }
    words
}
