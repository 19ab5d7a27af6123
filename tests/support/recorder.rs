//! The `recorder` (xtask) as a managed plugin for the harness's tests: a bundle of it
//! in a rootfs, and what it reports about the container it runs in (`--report`,
//! `--print-path`, `--connect`, `--print-env`: one `recorder: …` line each, logged by
//! the engine as dockerd logs a plugin's output).

use std::path::{Path, PathBuf};

use docker_plugin_sdk::harness::Engine;
use serde_json::{Value, json};

use super::bundle::packaged;
use super::process::xtask_binary;
use super::wait::wait_for_async;

/// `dir/file`: the recorder named `name` in a rootfs, reporting its container, with a
/// settable `DEBUG`, its call log in `dir` (bound at `/log`), volumes under the
/// propagated mount `/mnt/volumes`; `extra` config keys over those, `flags` appended
/// to its command line.
pub fn bundle(dir: &Path, file: &str, name: &str, extra: Value, flags: &[&str]) -> PathBuf {
    let mut entrypoint = vec![
        "/recorder",
        "--name",
        name,
        "--socket-dir",
        "/run/docker/plugins",
        "--root",
        "/mnt/volumes",
        "--log",
        "/log/calls.jsonl",
        "--print-env",
        "DEBUG",
        "--report",
        "--print-path",
        "/dev/fuse",
        "--capabilities",
    ];
    entrypoint.extend(flags);
    let mut config = json!({
        "description": "recorder",
        "entrypoint": entrypoint,
        "env": [{"name": "DEBUG", "settable": ["value"], "value": "0"}],
        "interface": {"socket": format!("{name}.sock"), "types": ["docker.volumedriver/1.0"]},
        "propagatedmount": "/mnt/volumes",
        "mounts": [{"name": "log", "source": dir.display().to_string(), "destination": "/log",
                    "type": "bind", "options": ["rbind"]}]
    });
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    packaged(
        &dir.join(file),
        &config,
        &xtask_binary("recorder"),
        "/recorder",
        &[
            "/tmp",
            "/mnt/volumes",
            "/run/docker/plugins",
            "/log",
            "/etc",
        ],
    )
}

/// What managed plugin `name` printed after `recorder: <what>` (`recorder: caps
/// bnd=…` gives `bnd=…`), its latest such line, waited for (see [`super::wait`]): the
/// engine reads the plugin's output as it comes, in a task of its own.
///
/// The latest such line read so far: after a restart it may still be the previous
/// start's while the new one's is on its way (no test expects a report that differs
/// from the previous start's; one that did would have to wait for it).
pub async fn reported(e: &Engine, name: &str, what: &str) -> String {
    let prefix = format!("recorder: {what}");
    let matches = |line: &str| {
        line.strip_prefix(&prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', ':']))
    };
    wait_for_async(&format!("`{prefix}` in {name}'s output"), || {
        let logs = e.plugins().logs(name).unwrap();
        let line = logs.iter().rev().find(|l| matches(&l.line))?;
        Some(line.line[prefix.len()..].trim().to_owned())
    })
    .await
    .unwrap_or_else(|err| panic!("{err}: {:#?}", e.plugins().logs(name)))
}
