//! Running one action: its plugins (recorder processes, or bundles dockerd runs), its
//! commands one at a time with the calls each caused, and the fixture made of them.
//! A plugin is a [`RunningPlugin`], a command a [`Session`] step.

use std::fs;
use std::path::Path;
use std::time::Instant;

use docker_plugin_sdk::harness::dockerd::Dockerd;
use serde_json::Value;

use crate::actions::Action;
use crate::fixture::{BundleInfo, Call, Fixture, Normalizer, Outcome, Phase, PluginInfo};
use crate::managed::{bundle_dir, write_bad_bundle};
use crate::plugin::RunningPlugin;
use crate::step::{RawStep, Session};
use crate::{IMAGE, tls};

/// `value` with each string that is the first of a pair replaced by its second.
fn replace_strings(value: Value, pairs: &[(String, String)]) -> Value {
    match value {
        Value::String(s) => Value::String(
            pairs
                .iter()
                .find(|(from, _)| *from == s)
                .map_or(s, |(_, to)| to.clone()),
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| replace_strings(v, pairs))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, replace_strings(v, pairs)))
                .collect(),
        ),
        other => other,
    }
}

pub(crate) fn headers_without_length(call: &Value) -> Value {
    let mut headers = call.get("request_headers").cloned().unwrap_or(Value::Null);
    if let Value::Object(map) = &mut headers {
        map.remove("content-length");
    }
    headers
}

pub(crate) struct Versions {
    pub(crate) dockerd: String,
    pub(crate) api: String,
    pub(crate) cli: String,
}

pub(crate) fn versions(d: &Dockerd) -> Versions {
    let get = |format: &str| {
        let out = d.docker(&["version", "--format", format]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    Versions {
        dockerd: get("{{.Server.Version}}"),
        api: get("{{.Server.APIVersion}}"),
        cli: get("{{.Client.Version}}"),
    }
}

pub(crate) fn record_action(
    action: &Action,
    out_dir: &Path,
    raw: Option<&Path>,
) -> Result<Fixture, String> {
    let temp = tempfile::Builder::new()
        .prefix("dps-record-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    // Authorization plugins listen first: dockerd does not start without them.
    let mut plugins = action
        .plugins
        .iter()
        .filter(|spec| spec.authz)
        .map(|spec| RunningPlugin::new(spec, temp.path()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut builder = Dockerd::builder().daemon_args(
        plugins
            .iter()
            .map(|p| format!("--authorization-plugin={}", p.spec.name)),
    );
    let tls = if action.tls {
        Some(tls::write(&temp.path().join("tls"))?)
    } else {
        None
    };
    if let Some(tls) = &tls {
        builder = builder.daemon_args(tls.daemon_args.iter().cloned());
    }
    let t = Instant::now();
    let mut d = builder.start().map_err(|e| e.to_string())?;
    eprintln!("  dockerd up in {:.1}s", t.elapsed().as_secs_f64());
    // The peer every call must come from.
    let dockerd_pid = d.pid().map(i64::from);
    if dockerd_pid.is_none() {
        eprintln!("  warning: no dockerd pid; calls are not filtered by peer");
    }
    let versions = versions(&d);
    if action.image {
        d.import_busybox(IMAGE).map_err(|e| e.to_string())?;
    }
    for (name, kind) in action.bundles {
        write_bad_bundle(temp.path(), name, *kind)?;
    }
    // The calls of the daemon's start, `docker version` and the image import are not
    // the action's.
    for plugin in &mut plugins {
        plugin.new_calls()?;
    }
    for spec in action.plugins.iter().filter(|spec| !spec.authz) {
        plugins.push(RunningPlugin::new(spec, temp.path())?);
    }
    let managed = action.plugins.iter().any(|p| p.managed);
    let mut session = Session {
        d: &d,
        dockerd_pid,
        plugins,
        tmp: temp.path().to_path_buf(),
        // From now on: the lines logged while the daemon started are not the action's.
        dockerd_log: managed.then(|| fs::metadata(d.log()).map_or(0, |m| m.len())),
        registry: None,
        tls_args: tls.map(|tls| tls.client_args).unwrap_or_default(),
    };
    let mut run_all = |commands: &[&[&str]]| -> Result<Vec<RawStep>, String> {
        commands.iter().map(|args| session.run_step(args)).collect()
    };
    let setup = run_all(action.setup);
    let steps = setup.and_then(|setup| Ok((setup, run_all(action.commands)?)));
    let registry = session.registry.take();
    let mut plugins = session.plugins;
    if let Some(raw) = raw
        && managed
    {
        fs::create_dir_all(raw).map_err(|e| format!("{}: {e}", raw.display()))?;
        let to = raw.join(format!("{}.dockerd.log", action.name));
        fs::copy(d.log(), &to).map_err(|e| format!("{}: {e}", to.display()))?;
    }
    // dockerd first (removing containers may unmount), then the plugins.
    d.stop();
    for plugin in &mut plugins {
        if let Some(mut process) = plugin.process.take() {
            let _ = process.terminate();
        }
    }
    if let Some(raw) = raw {
        fs::create_dir_all(raw).map_err(|e| format!("{}: {e}", raw.display()))?;
        for plugin in plugins.iter().filter(|p| p.log.exists()) {
            let to = raw.join(format!("{}.{}.jsonl", action.name, plugin.spec.name));
            fs::copy(&plugin.log, &to).map_err(|e| format!("{}: {e}", to.display()))?;
        }
    }
    let (setup, steps) = steps?;

    let mut problems = Vec::new();
    for (i, step) in setup.iter().enumerate() {
        if step.exit_code != 0 {
            problems.push(format!(
                "setup command {i} `{}` failed: {}",
                step.command, step.stderr
            ));
        }
    }
    for (i, step) in steps.iter().enumerate() {
        let expect_failure = action.failing.contains(&i);
        if (step.exit_code != 0) != expect_failure {
            problems.push(format!(
                "command {i} `{}` exited with {} (expected {}): {}",
                step.command,
                step.exit_code,
                if expect_failure { "failure" } else { "success" },
                step.stderr
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }

    // A managed plugin's volumes are inside it (`/mnt/volumes/...`): left as they are.
    let mut paths: Vec<(String, String)> = plugins
        .iter()
        .filter(|p| !p.spec.managed)
        .map(|p| (p.root.display().to_string(), "<root>".to_owned()))
        .collect();
    paths.push((temp.path().display().to_string(), "<tmp>".to_owned()));
    paths.push((d.root().display().to_string(), "<dockerd-root>".to_owned()));
    if let Some(registry) = &registry {
        paths.push((registry.addr.clone(), "<registry>".to_owned()));
    }
    let mut norm = Normalizer::new(paths);

    let common_headers = setup
        .iter()
        .chain(&steps)
        .flat_map(|s| &s.calls)
        .next()
        .map(|(_, call)| headers_without_length(call))
        .unwrap_or(Value::Null);
    let phase = |raw: Vec<RawStep>, norm: &mut Normalizer| -> Phase {
        let mut phase = Phase::default();
        for (i, step) in raw.into_iter().enumerate() {
            phase.commands.push(norm.text(&step.command));
            for (index, call) in step.calls {
                let headers = headers_without_length(&call);
                let field = |key: &str| call.get(key).cloned().unwrap_or(Value::Null);
                let text = |key: &str| {
                    call.get(key)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                // Authz bodies carry the API call's bodies in base64: normalized inside.
                let (request_body, pairs) = norm.authz_bodies(&text("request_body"));
                let request = replace_strings(field("request"), &pairs);
                phase.calls.push(Call {
                    command: i,
                    plugin: plugins[index].spec.name.to_owned(),
                    method: text("method"),
                    request: norm.value(request),
                    response: norm.value(field("response")),
                    status: call.get("status").and_then(Value::as_u64).unwrap_or(0),
                    request_body: norm.text(&request_body),
                    response_body: norm.text(&text("response_body")),
                    http_method: Some(text("http_method")).filter(|m| m != "POST"),
                    request_headers: (headers != common_headers).then(|| norm.value(headers)),
                });
            }
            phase.results.push(Outcome {
                exit_code: step.exit_code,
                stdout: norm.text(&step.stdout),
                stderr: norm.text(&step.stderr),
                duration_s: step.duration_s,
                dockerd_log: step.dockerd_log.iter().map(|l| norm.text(l)).collect(),
            });
        }
        phase
    };
    // In file order: the plugins (their IDs, config paths) come before the setup.
    let plugin_infos: Vec<PluginInfo> = plugins
        .iter()
        .map(|p| PluginInfo {
            name: p.spec.name.to_owned(),
            docker_name: (p.docker_name != p.spec.name).then(|| p.docker_name.clone()),
            capabilities: p.spec.capabilities,
            bare_get: p.spec.bare_get,
            network: p.spec.network,
            authz: p.spec.authz,
            logging: p.spec.logging,
            managed: p.spec.managed,
            id: p.id.as_deref().map(|id| norm.text(id)),
            socket: p
                .socket
                .as_ref()
                .map(|s| norm.text(&s.display().to_string())),
            config: p.config.clone().map(|c| norm.value(c)),
        })
        .collect();
    let bundles = action
        .bundles
        .iter()
        .map(|(name, _)| {
            let dir = bundle_dir(temp.path(), name);
            let config_json = fs::read_to_string(dir.join("config.json"))
                .ok()
                .map(|text| norm.text(&text));
            let info = BundleInfo {
                config_json,
                rootfs: dir.join("rootfs").is_dir(),
                program: dir
                    .join("rootfs/recorder")
                    .exists()
                    .then(|| "/recorder".to_owned()),
            };
            ((*name).to_owned(), info)
        })
        .collect();
    let setup = phase(setup, &mut norm);
    let main = phase(steps, &mut norm);
    let fixture = Fixture {
        action: action.name.to_owned(),
        description: action.fixture_description(),
        dockerd_version: versions.dockerd,
        api_version: versions.api,
        docker_cli_version: versions.cli,
        plugins: plugin_infos,
        bundles,
        request_headers: norm.value(common_headers),
        setup,
        commands: main.commands,
        results: main.results,
        calls: main.calls,
    };
    let path = out_dir.join(format!("{}.json", action.name));
    let mut json = serde_json::to_string_pretty(&fixture).map_err(|e| e.to_string())?;
    json.push('\n');
    fs::write(&path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(fixture)
}
