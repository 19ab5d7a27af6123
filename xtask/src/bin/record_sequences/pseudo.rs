//! The pseudo-commands that are neither the docker CLI nor about a plugin:
//! [`WRITE_ENV_FILE`] and [`CREATE_MAC`].

use std::fs;
use std::process::Command;

use docker_plugin_sdk::harness::dockerd::Dockerd;
use serde_json::Value;

use crate::{CREATE_MAC, IMAGE, WRITE_ENV_FILE};

/// `[WRITE_ENV_FILE, path, bytes]`: variables `BIG0=xxx…`, `BIG1=…` of about `bytes`
/// bytes in all, each line under the 64 KiB the CLI's line scanner takes.
pub(crate) fn write_env_file(args: &[&str]) -> Result<(), String> {
    let (Some(path), Some(bytes)) = (args.get(1), args.get(2)) else {
        return Err(format!("{WRITE_ENV_FILE} PATH BYTES"));
    };
    let bytes: usize = bytes
        .parse()
        .map_err(|e| format!("{WRITE_ENV_FILE}: {bytes}: {e}"))?;
    const LINE: usize = 60_000;
    let text: String = (0..bytes.div_ceil(LINE))
        .map(|n| format!("BIG{n}={}\n", "x".repeat(LINE)))
        .collect();
    fs::write(path, text).map_err(|e| format!("{path}: {e}"))
}

/// [`CREATE_MAC`]: `POST /v1.41/containers/create?name=NAME` on dockerd's API socket
/// (curl), the MAC address in the container config as API 1.41 takes it. The exit
/// code is 0 for a 201, else 1 with dockerd's message as stderr, as the CLI would.
pub(crate) fn create_with_mac(
    d: &Dockerd,
    name: &str,
    network: &str,
    mac: &str,
) -> Result<(i32, String, String), String> {
    let socket = d
        .host()
        .strip_prefix("unix://")
        .ok_or_else(|| format!("{CREATE_MAC}: DOCKER_HOST {} is not a socket", d.host()))?;
    let body = serde_json::json!({
        "Image": IMAGE,
        "Cmd": ["sleep", "60"],
        "MacAddress": mac,
        "HostConfig": {"NetworkMode": network},
    });
    let out = Command::new("curl")
        .args(["--silent", "--unix-socket", socket, "-X", "POST"])
        .args([
            "-H",
            "Content-Type: application/json",
            "-w",
            "\n%{http_code}",
        ])
        .arg("--data")
        .arg(body.to_string())
        .arg(format!("http://docker/v1.41/containers/create?name={name}"))
        .output()
        .map_err(|e| format!("{CREATE_MAC}: cannot run curl: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (reply, status) = text.trim_end().rsplit_once('\n').unwrap_or(("", &text));
    if status == "201" {
        Ok((0, String::new(), String::new()))
    } else {
        let message = serde_json::from_str::<Value>(reply)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("status {status}: {reply}"));
        Ok((
            1,
            String::new(),
            format!("Error response from daemon: {message}"),
        ))
    }
}
