//! What the docker CLI prints for the commands whose output the replay compares,
//! rendered from the harness's answers: `docker volume ls` and `docker plugin ls`
//! (Go's `tabwriter`, as the CLI's table formatter uses it), `docker plugin inspect
//! --format`, and the recorder's `@host-files` listing.

use docker_plugin_sdk::harness::{ManagedInfo, VolumeList};
use serde_json::{Value, json};

use super::host_files::walk;
use super::replay::Replay;

/// The CLI's table: `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`: each column as
/// wide as its widest cell plus 3, at least 10; the last one unpadded.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.len() + 3)
                .max()
                .unwrap_or(0)
                .max(10)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<width$}", width = widths[c]));
                }
            }
            line.trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `docker volume ls`, sorted by name as the CLI sorts it.
pub fn volume_ls(list: &VolumeList) -> String {
    let mut volumes: Vec<_> = list.volumes.iter().collect();
    volumes.sort_by(|a, b| a.name.cmp(&b.name));
    let mut rows = vec![vec!["DRIVER".to_owned(), "VOLUME NAME".to_owned()]];
    rows.extend(
        volumes
            .iter()
            .map(|v| vec![v.driver.clone(), v.name.clone()]),
    );
    table(&rows)
}

/// `docker plugin ls [--no-trunc | --format …]`.
pub fn plugin_ls(replay: &Replay, flags: &[&str]) -> String {
    let plugins = replay.engine.plugins().ls();
    let text = match flags {
        ["--format", format] => plugins
            .iter()
            .map(|p| template(format, p))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => {
            let no_trunc = flags.contains(&"--no-trunc");
            let mut rows = vec![vec![
                "ID".to_owned(),
                "NAME".to_owned(),
                "DESCRIPTION".to_owned(),
                "ENABLED".to_owned(),
            ]];
            rows.extend(plugins.iter().map(|p| {
                vec![
                    if no_trunc {
                        p.id.clone()
                    } else {
                        p.id[..12].to_owned()
                    },
                    p.name.clone(),
                    p.config.description.clone(),
                    p.enabled.to_string(),
                ]
            }));
            table(&rows)
        }
    };
    replay.normalize_ids(&text)
}

/// Go's `{{json …}}` of a config env list: fields in Go's (alphabetical) order,
/// `null` for an absent list or value.
fn config_env(info: &ManagedInfo) -> Value {
    Value::Array(
        info.config
            .env
            .iter()
            .map(|e| {
                json!({
                    "Description": e.description,
                    "Name": e.name,
                    "Settable": if e.settable.is_empty() { Value::Null } else { json!(e.settable) },
                    "Value": e.value,
                })
            })
            .collect(),
    )
}

/// The fields of `docker plugin inspect --format` the fixtures use.
fn template(format: &str, info: &ManagedInfo) -> String {
    format
        .replace(
            "{{json .Settings.Env}}",
            &json!(info.settings.env).to_string(),
        )
        .replace("{{json .Settings}}", &info.settings.to_docker_json())
        .replace("{{json .Config.Env}}", &config_env(info).to_string())
        .replace("{{.Name}}", &info.name)
        .replace("{{.Id}}", &info.id)
        .replace("{{.Enabled}}", &info.enabled.to_string())
}

/// `docker plugin inspect --format FORMAT`, for the formats the fixtures use.
pub fn plugin_inspect(format: &str, info: &ManagedInfo) -> Option<String> {
    let text = template(format, info);
    (!text.contains("{{")).then_some(text)
}

/// The recorder's `@host-files NAME`: the plugin's socket dir, its propagated-mount
/// dir and its rootfs's `/mnt/volumes`, with the harness's dirs named as dockerd's.
pub fn host_files(replay: &Replay, name: &str) -> String {
    let info = replay.engine.plugins().inspect(name).unwrap();
    let socket_dir = info.socket.parent().unwrap().to_path_buf();
    let mut lines = Vec::new();
    for root in [
        socket_dir,
        info.propagated_mount.clone(),
        info.rootfs.join("mnt/volumes"),
    ] {
        walk(&root, &mut lines);
    }
    let config = replay.engine.config();
    let data_root = config.data_root.as_ref().unwrap().display().to_string();
    let sockets = config.discovery.socket_dir.display().to_string();
    let text = lines
        .join("\n")
        .replace(&sockets, "/run/docker/plugins")
        .replace(&data_root, "<dockerd-root>/data");
    replay.normalize_ids(&text)
}
