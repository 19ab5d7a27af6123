//! The checks of a running plugin: its socket answering and `/Plugin.Activate`; for
//! a name, the managed plugin the engine has (and its lines in dockerd's log) and a
//! legacy plugin of the same name that shadows it.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::time::Duration;

use super::{Finding, Options};
use crate::client::Client;
use crate::harness::Discovery;
use crate::package::engine::DockerApi;

/// Is the socket (or URL) there, accepting, and what does `/Plugin.Activate`
/// answer?
pub async fn check_socket(target: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    let client = match Client::locate(target) {
        Ok(client) => client,
        Err(e) => {
            return vec![Finding::problem(
                "socket",
                e.to_string(),
                "give unix:///path.sock, tcp://host:port, a socket path or a plugin name",
            )];
        }
    };
    if let Some(path) = client.socket_path() {
        match std::fs::symlink_metadata(path) {
            Err(_) => {
                return vec![Finding::problem(
                    "socket",
                    format!(
                        "{} does not exist: the plugin is not running, or listens elsewhere",
                        path.display()
                    ),
                    "start the plugin (a managed one: docker plugin enable NAME) and check where it listens",
                )];
            }
            Ok(meta) if !meta.file_type().is_socket() => {
                return vec![Finding::problem(
                    "socket",
                    format!("{} is not a socket", path.display()),
                    "remove it: the plugin creates its socket there",
                )];
            }
            Ok(_) => {}
        }
    }
    let client = client.timeout(Duration::from_secs(10));
    match client.activate().await {
        Ok(activated) => {
            findings.push(Finding::ok("socket", format!("{target} accepts connections")));
            findings.push(Finding::ok(
                "activate",
                format!("/Plugin.Activate answers Implements {:?}", activated.implements),
            ));
        }
        Err(e) if e.is_transport() => findings.push(Finding::problem(
            "socket",
            format!("{target} does not answer: {e}"),
            "a socket left by a plugin that is gone: restart the plugin (it replaces a stale socket)",
        )),
        Err(e) => {
            findings.push(Finding::ok("socket", format!("{target} accepts connections")));
            findings.push(Finding::problem(
                "activate",
                format!("/Plugin.Activate failed: {e}"),
                "a plugin built with docker-plugin-sdk answers it; check that this is a Docker plugin",
            ));
        }
    }
    findings
}

/// The last `n` lines dockerd logged for plugin `id` (its output carries
/// `plugin=<id>`), from `log` or, without one, `journalctl -u docker.service`.
pub fn plugin_log_lines(id: &str, log: Option<&Path>, n: usize) -> Result<Vec<String>, String> {
    let text = match log {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => {
            let out = std::process::Command::new("journalctl")
                .args(["-u", "docker.service", "--no-pager", "-o", "cat"])
                .output()
                .map_err(|e| {
                    format!(
                        "journalctl: {e} (pass --dockerd-log FILE, where dockerd's output goes)"
                    )
                })?;
            if !out.status.success() {
                return Err(format!(
                    "journalctl -u docker.service failed: {} (pass --dockerd-log FILE, where dockerd's output goes)",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    let marker = format!("plugin={id}");
    let lines: Vec<String> = text
        .lines()
        .filter(|l| l.contains(&marker))
        .map(str::to_owned)
        .collect();
    Ok(lines[lines.len().saturating_sub(n)..].to_vec())
}

/// `NAME` without a `:latest` tag: the name a legacy plugin would have.
fn bare(name: &str) -> &str {
    name.strip_suffix(":latest").unwrap_or(name)
}

/// What the engine and the legacy directories have under `name`.
pub async fn check_plugin(name: &str, options: &Options) -> Vec<Finding> {
    let mut findings = Vec::new();
    let legacy = Discovery::system().find(bare(name)).ok();
    let api = DockerApi::from_env();
    let installed = match &api {
        Ok(api) => match api.plugin(name).await {
            Ok(found) => found,
            Err(e) => {
                findings.push(Finding::warning(
                    "engine",
                    e.to_string(),
                    "set DOCKER_HOST to the engine the plugin is installed on",
                ));
                None
            }
        },
        Err(e) => {
            findings.push(Finding::warning("engine", e.to_string(), "set DOCKER_HOST"));
            None
        }
    };
    let Some(plugin) = installed else {
        match legacy {
            Some(found) => {
                findings.push(Finding::ok(
                    "legacy",
                    format!("{name} is a legacy plugin found through {}", found.path.display()),
                ));
                findings.extend(check_socket(&found.addr).await);
            }
            None => findings.push(Finding::problem(
                "plugin",
                format!(
                    "no plugin {name}: the engine{} has no managed plugin of that name, and there is no \
                     /run/docker/plugins/{0}.sock nor {0}.spec/.json in /etc/docker/plugins or /usr/lib/docker/plugins",
                    match &api {
                        Ok(api) => format!(" at {}", api.host()),
                        Err(_) => String::new(),
                    }
                )
                .replace("{0}", bare(name)),
                "install it (docker plugin install, or docker plugin create NAME BUNDLE), or start the legacy plugin",
            )),
        }
        return findings;
    };
    findings.push(Finding::ok(
        "engine",
        format!(
            "{} is installed (ID {}), {}",
            plugin.name,
            plugin.id,
            if plugin.enabled {
                "enabled"
            } else {
                "disabled"
            }
        ),
    ));
    let socket = plugin.socket_path();
    if plugin.enabled {
        findings.extend(check_socket(&socket.display().to_string()).await);
    } else {
        findings.push(Finding::problem(
            "enabled",
            format!("{} is disabled: dockerd does not run it", plugin.name),
            format!("docker plugin enable {}", plugin.name),
        ));
    }
    if let Some(found) = &legacy {
        findings.push(Finding::problem(
            "shadowed",
            format!(
                "a legacy plugin {} ({}) has the same name: once dockerd has used it, `-d {0}` reaches it, \
                 not the managed {}, until dockerd restarts",
                bare(name),
                found.path.display(),
                plugin.name
            )
            .replace("{0}", bare(name)),
            format!(
                "remove the legacy plugin ({}) and restart dockerd, or name the managed one with its tag (-d {})",
                found.path.display(),
                plugin.name
            ),
        ));
    }
    if let Ok(api) = &api
        && let Ok(names) = api.driver_names().await
        && names.iter().any(|n| n == bare(name))
    {
        findings.push(Finding::problem(
            "shadowed",
            format!(
                "dockerd has cached a legacy driver named {} (docker info lists it): `-d {}` reaches that legacy \
                 plugin's socket, not the managed {}, until dockerd restarts",
                bare(name),
                bare(name),
                plugin.name
            ),
            format!(
                "restart dockerd once the legacy plugin is gone (systemctl restart docker), or use -d {}",
                plugin.name
            ),
        ));
    }
    match plugin_log_lines(
        &plugin.id,
        options.dockerd_log.as_deref(),
        options.log_lines,
    ) {
        Ok(lines) if lines.is_empty() => findings.push(Finding::ok(
            "log",
            format!("dockerd's log has no line from plugin={}", plugin.id),
        )),
        Ok(lines) => findings.push(Finding::ok(
            "log",
            format!("its last lines in dockerd's log:\n  {}", lines.join("\n  ")),
        )),
        Err(e) => findings.push(Finding::warning(
            "log",
            format!("cannot read dockerd's log: {e}"),
            "pass --dockerd-log FILE",
        )),
    }
    findings
}
