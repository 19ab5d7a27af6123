//! Managed ("v2") plugins: their bundles (the static recorder in a rootfs, and broken
//! ones), the static recorder build, and what the host sees of them (processes, files,
//! dockerd's log lines).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use docker_plugin_sdk::harness::dockerd::Dockerd;
use docker_plugin_sdk::managed::bundle::Bundle;
use docker_plugin_sdk::package::elf::ElfInfo;
use serde_json::Value;

use crate::actions::{BadBundle, PluginSpec};
use crate::host_files::walk;
use crate::plugin::RunningPlugin;
use crate::{
    HOST_FILES, KILL, MANAGED_LOG_DIR, PROPAGATED_MOUNT, RESTART_WAIT, SOCKET_DIR,
    STATIC_RECORDER_ENV, STATIC_TARGET, STATIC_TARGET_DIR, build_recorder,
};

pub(crate) fn bundle_dir(tmp: &Path, name: &str) -> PathBuf {
    tmp.join(format!("{name}.bundle"))
}

/// The managed recorder's config.json: by default ([`RECORDER`](crate::actions::RECORDER))
/// host network and PID namespace (so that SO_PEERCRED still names dockerd's host pid),
/// volumes under the propagated mount, the call log in a host directory bind-mounted
/// at [`MANAGED_LOG_DIR`], and the recorder's report of its container printed at start;
/// the spec's [`Container`](crate::actions::Container) changes the rest.
pub(crate) fn managed_config(spec: &PluginSpec, log_dir: &Path) -> Value {
    let c = &spec.container;
    let name = c.docker_name.unwrap_or(spec.name);
    let mut entrypoint = vec![
        "/recorder".to_owned(),
        "--name".to_owned(),
        name.to_owned(),
        "--socket-dir".to_owned(),
        SOCKET_DIR.to_owned(),
        "--root".to_owned(),
        PROPAGATED_MOUNT.to_owned(),
        "--log".to_owned(),
        format!("{MANAGED_LOG_DIR}/calls.jsonl"),
        "--print-env".to_owned(),
        "DEBUG".to_owned(),
        "--report".to_owned(),
        "--print-path".to_owned(),
        "/dev/fuse".to_owned(),
    ];
    if spec.capabilities {
        entrypoint.push("--capabilities".to_owned());
    }
    if spec.bare_get {
        entrypoint.push("--bare-get".to_owned());
    }
    if c.store {
        entrypoint.extend(["--store".to_owned(), "/store".to_owned()]);
    }
    let mut env = vec![serde_json::json!({
        "name": "DEBUG",
        "description": "printed by the recorder at start",
        "settable": ["value"],
        "value": "0"
    })];
    for (name, value) in c.env {
        env.push(serde_json::json!({"name": name, "settable": ["value"], "value": value}));
    }
    let mut config = serde_json::json!({
        "description": "recorder: logs every call",
        "documentation": "https://example.invalid/recorder",
        "entrypoint": entrypoint,
        "env": env,
        "interface": {"socket": format!("{name}.sock"), "types": ["docker.volumedriver/1.0"]},
        "network": {"type": c.network},
        "propagatedmount": PROPAGATED_MOUNT,
        "mounts": [{
            "name": "log",
            "description": "where the recorder writes its call log",
            "source": log_dir.display().to_string(),
            "destination": MANAGED_LOG_DIR,
            "type": "bind",
            "options": ["rbind"]
        }]
    });
    if c.pid_host {
        config["pidhost"] = true.into();
    }
    if c.ipc_host {
        config["ipchost"] = true.into();
    }
    if !c.capabilities.is_empty() || !c.devices.is_empty() {
        let devices: Vec<Value> = c
            .devices
            .iter()
            .map(|path| serde_json::json!({"path": path}))
            .collect();
        config["linux"] = serde_json::json!({"capabilities": c.capabilities, "devices": devices});
    }
    config
}

/// Writes `dir/config.json` and, with a recorder, `dir/rootfs/` (the recorder as
/// `/recorder` plus the directories it uses); checks the result with [`Bundle`].
pub(crate) fn write_bundle(
    dir: &Path,
    config: &Value,
    recorder: Option<PathBuf>,
) -> Result<(), String> {
    let io = |what: &Path, e: std::io::Error| format!("{}: {e}", what.display());
    let rootfs = dir.join("rootfs");
    for sub in [
        &SOCKET_DIR[1..],
        "tmp",
        &PROPAGATED_MOUNT[1..],
        &MANAGED_LOG_DIR[1..],
    ] {
        fs::create_dir_all(rootfs.join(sub)).map_err(|e| io(&rootfs.join(sub), e))?;
    }
    // dockerd 20.10 refuses a second plugin whose rootfs layer is byte for byte one it
    // already has (`content sha256:…: already exists`): each bundle is marked.
    let name = dir.file_stem().unwrap_or_default();
    let marker = rootfs.join("bundle-name");
    fs::write(&marker, name.as_encoded_bytes()).map_err(|e| io(&marker, e))?;
    if let Some(recorder) = recorder {
        let to = rootfs.join("recorder");
        fs::copy(&recorder, &to).map_err(|e| io(&to, e))?;
    }
    let mut json = serde_json::to_string_pretty(config).map_err(|e| e.to_string())?;
    json.push('\n');
    let path = dir.join("config.json");
    fs::write(&path, json).map_err(|e| io(&path, e))?;
    Bundle::open(dir).map_err(|e| e.to_string())?;
    Ok(())
}

/// Writes one of the broken bundles.
pub(crate) fn write_bad_bundle(tmp: &Path, name: &str, kind: BadBundle) -> Result<(), String> {
    let dir = bundle_dir(tmp, name);
    let io = |what: &Path, e: std::io::Error| format!("{}: {e}", what.display());
    let volume_plugin = |entrypoint: &[&str]| {
        serde_json::json!({
            "description": name,
            "entrypoint": entrypoint,
            "interface": {"socket": format!("{name}.sock"), "types": ["docker.volumedriver/1.0"]},
            "network": {"type": "host"}
        })
    };
    match kind {
        BadBundle::InvalidJson | BadBundle::WrongType | BadBundle::NoRootfs => {
            let text = match kind {
                BadBundle::InvalidJson => "{\"description\": \"cut off\",\n".to_owned(),
                BadBundle::WrongType => "{\"description\": 5}\n".to_owned(),
                _ => format!("{:#}\n", volume_plugin(&["/recorder"])),
            };
            fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
            if !matches!(kind, BadBundle::NoRootfs) {
                fs::create_dir_all(dir.join("rootfs")).map_err(|e| io(&dir, e))?;
            }
            let path = dir.join("config.json");
            fs::write(&path, text).map_err(|e| io(&path, e))
        }
        BadBundle::MissingEntrypoint => {
            write_bundle(&dir, &volume_plugin(&["/no-such-binary"]), None)
        }
        BadBundle::NoMountSource
        | BadBundle::EmptyMountSource
        | BadBundle::UnknownMountType
        | BadBundle::MissingDevice => {
            let mut config = volume_plugin(&[
                "/recorder",
                "--name",
                name,
                "--root",
                "/tmp/v",
                "--log",
                "/tmp/calls.jsonl",
            ]);
            match kind {
                BadBundle::NoMountSource => {
                    config["mounts"] = serde_json::json!([{"destination": "/mnt/x", "type": "bind", "options": ["rbind"]}]);
                }
                BadBundle::EmptyMountSource => {
                    config["mounts"] = serde_json::json!([{"source": "", "destination": "/mnt/x", "type": "bind", "options": ["rbind"]}]);
                }
                BadBundle::UnknownMountType => {
                    config["mounts"] = serde_json::json!([{"source": "none", "destination": "/mnt/x", "type": "nosuchfs"}]);
                }
                _ => {
                    config["linux"] =
                        serde_json::json!({"devices": [{"path": "/dev/no-such-device"}]});
                }
            }
            write_bundle(&dir, &config, Some(static_recorder()?))
        }
        BadBundle::NoSocket => {
            let entrypoint = [
                "/recorder",
                "--name",
                name,
                "--socket-dir",
                "/elsewhere",
                "--root",
                "/tmp/volumes",
                "--log",
                "/tmp/calls.jsonl",
            ];
            write_bundle(&dir, &volume_plugin(&entrypoint), Some(static_recorder()?))
        }
    }
}

/// The static recorder built before entering the namespace.
pub(crate) fn static_recorder() -> Result<PathBuf, String> {
    std::env::var_os(STATIC_RECORDER_ENV)
        .map(PathBuf::from)
        .ok_or_else(|| format!("{STATIC_RECORDER_ENV} is not set"))
}

/// Builds the recorder as a static binary (managed plugins' rootfs holds nothing else)
/// into its own target dir, so the ordinary build keeps its RUSTFLAGS.
pub(crate) fn build_static_recorder() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // target/<profile>/record_sequences -> target
    let target = exe
        .ancestors()
        .nth(2)
        .ok_or("record_sequences does not live in target/<profile>/")?
        .join(STATIC_TARGET_DIR);
    build_recorder(|command| {
        command
            .args(["--target", STATIC_TARGET])
            .env("CARGO_TARGET_DIR", &target)
            .env(
                "RUSTFLAGS",
                "-C target-feature=+crt-static -C strip=symbols",
            );
    })
    .map_err(|message| format!("static build: {message}"))?;
    let binary = target.join(STATIC_TARGET).join("debug/recorder");
    let elf = ElfInfo::read(&binary).map_err(|e| e.to_string())?;
    if let Some(interpreter) = elf.interpreter {
        return Err(format!(
            "{} is not static: it needs {}",
            binary.display(),
            interpreter.display()
        ));
    }
    Ok(binary)
}

/// The pids of a managed recorder's processes (its `argv[0]` is `/recorder`), by the
/// name it was started with (`--name`).
pub(crate) fn managed_pids(name: &str) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let cmdline = fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            let named = args
                .windows(2)
                .any(|w| w[0] == b"--name" && w[1] == name.as_bytes());
            (args.first() == Some(&&b"/recorder"[..]) && named).then_some(pid)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// `@kill-plugin NAME`: SIGKILLs the managed plugin's process, then waits for dockerd
/// to start a new one. The outcome is the pseudo-command's stdout.
pub(crate) fn kill_managed(plugin: &RunningPlugin) -> Result<String, String> {
    let before = managed_pids(&plugin.docker_name);
    if before.is_empty() {
        return Err(format!("{KILL} {}: no plugin process", plugin.spec.name));
    }
    let status = Command::new("kill")
        .arg("-KILL")
        .args(before.iter().map(u32::to_string))
        .status()
        .map_err(|e| format!("running kill: {e}"))?;
    if !status.success() {
        return Err(format!("kill {before:?} failed ({status})"));
    }
    let deadline = Instant::now() + RESTART_WAIT;
    while Instant::now() < deadline {
        let now = managed_pids(&plugin.docker_name);
        if !now.is_empty() && now.iter().all(|pid| !before.contains(pid)) {
            return Ok("killed the plugin process; dockerd started a new one".to_owned());
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok(format!(
        "killed the plugin process; no new one within {}s",
        RESTART_WAIT.as_secs()
    ))
}

/// `@host-files NAME`: the managed plugin's socket directory and volume directories on
/// the host, one `path (kind)` a line.
pub(crate) fn host_files(d: &Dockerd, plugin: &RunningPlugin) -> Result<String, String> {
    let id = plugin
        .id
        .as_deref()
        .ok_or_else(|| format!("{HOST_FILES} {}: no plugin ID yet", plugin.spec.name))?;
    let plugin_dir = d.root().join("data/plugins").join(id);
    let roots = [
        Path::new(SOCKET_DIR).join(id),
        plugin_dir.join("propagated-mount"),
        plugin_dir.join("rootfs").join(&PROPAGATED_MOUNT[1..]),
    ];
    let mut lines = Vec::new();
    for root in roots {
        walk(&root, &mut lines);
    }
    Ok(lines.join("\n"))
}

/// The lines dockerd logged about the plugins (`plugin=<id>` output, lines naming a
/// plugin) and refused API calls, without containerd's chatter; `time=` normalized.
pub(crate) fn interesting_log_lines(text: &str, plugins: &[RunningPlugin]) -> Vec<String> {
    const NOISE: &[&str] = &[
        "runtime=io.containerd",
        "module=libcontainerd",
        "module=grpc",
        "shim disconnected",
        "cleaning up",
        "cleanup warnings",
        "starting signal loop",
    ];
    text.lines()
        .filter(|line| {
            // A managed plugin's output, any plugin's (broken bundles too).
            let output = line.contains(" plugin=");
            let named = plugins.iter().filter(|p| p.spec.managed).any(|p| {
                line.contains(p.spec.name) || p.id.as_ref().is_some_and(|id| line.contains(id))
            });
            output
                || ((named || line.contains("Handler for"))
                    && !NOISE.iter().any(|noise| line.contains(noise)))
        })
        .map(normalize_time)
        .collect()
}

/// `time="2026-…"` → `time="<time>"`.
pub(crate) fn normalize_time(line: &str) -> String {
    const KEY: &str = "time=\"";
    match line.find(KEY) {
        Some(start) => {
            let value = start + KEY.len();
            match line[value..].find('"') {
                Some(len) => format!("{}<time>{}", &line[..value], &line[value + len..]),
                None => line.to_owned(),
            }
        }
        None => line.to_owned(),
    }
}
