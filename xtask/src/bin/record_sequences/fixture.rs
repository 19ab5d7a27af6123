//! What is written: the fixture format (one JSON file per action), the normalization
//! that makes it stable (temp paths and 64-hex IDs become placeholders), and the
//! summary table of the fixtures' README.

use std::fs;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

#[derive(Serialize)]
pub(crate) struct Fixture {
    pub(crate) action: String,
    pub(crate) description: String,
    pub(crate) dockerd_version: String,
    pub(crate) api_version: String,
    pub(crate) docker_cli_version: String,
    pub(crate) plugins: Vec<PluginInfo>,
    /// The broken bundles the commands use, by name, as written (so that a replay
    /// can write them again).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub(crate) bundles: std::collections::BTreeMap<String, BundleInfo>,
    /// The headers of the first call (without Content-Length); a call whose headers
    /// differ carries its own.
    pub(crate) request_headers: Value,
    pub(crate) setup: Phase,
    pub(crate) commands: Vec<String>,
    pub(crate) results: Vec<Outcome>,
    pub(crate) calls: Vec<Call>,
}

#[derive(Serialize)]
pub(crate) struct PluginInfo {
    pub(crate) name: String,
    /// The name docker commands use, when it is not `name` (a managed plugin that
    /// takes a legacy plugin's name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) docker_name: Option<String>,
    pub(crate) capabilities: bool,
    pub(crate) bare_get: bool,
    /// Only for recorders that are also network and IPAM drivers (then true).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) network: bool,
    /// Only for recorders that are also the daemon's authorization plugin (then true).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) authz: bool,
    /// Only for recorders that are also log drivers (then true).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) logging: bool,
    /// Only for managed plugins (then true).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) managed: bool,
    /// The managed plugin's ID (`<idN>`), once `docker plugin create` made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    /// The socket dockerd dials, as seen on the host once the plugin listened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) socket: Option<String>,
    /// The managed plugin's bundle config.json, as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) config: Option<Value>,
}

/// A broken bundle as written: its `config.json` text (absent for a missing dir),
/// whether it has a `rootfs/`, and the recorder's path in it, if any.
#[derive(Serialize)]
pub(crate) struct BundleInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) config_json: Option<String>,
    pub(crate) rootfs: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) program: Option<String>,
}

#[derive(Serialize, Default)]
pub(crate) struct Phase {
    pub(crate) commands: Vec<String>,
    pub(crate) results: Vec<Outcome>,
    pub(crate) calls: Vec<Call>,
}

#[derive(Serialize)]
pub(crate) struct Outcome {
    pub(crate) exit_code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    /// Whole seconds, only for commands that took at least [`SLOW`](crate::SLOW).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) duration_s: Option<u64>,
    /// Actions with managed plugins only: what dockerd logged during the command about
    /// the plugins (their output, `plugin=<id>`) and refused API calls, timestamps
    /// replaced by `<time>`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) dockerd_log: Vec<String>,
}

#[derive(Serialize)]
pub(crate) struct Call {
    /// Index into `commands` of the command that caused the call.
    pub(crate) command: usize,
    pub(crate) plugin: String,
    pub(crate) method: String,
    pub(crate) request: Value,
    pub(crate) response: Value,
    pub(crate) status: u64,
    pub(crate) request_body: String,
    pub(crate) response_body: String,
    /// Only when it is not POST (dockerd always posts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) http_method: Option<String>,
    /// Only when they differ from the fixture's `request_headers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) request_headers: Option<Value>,
}

// ---------------------------------------------------------------------------------------
// Normalization: temp paths and 64-hex IDs become placeholders.

pub(crate) struct Normalizer {
    /// (path, placeholder), longest first.
    pub(crate) paths: Vec<(String, String)>,
    pub(crate) ids: Vec<String>,
}

impl Normalizer {
    pub(crate) fn new(mut paths: Vec<(String, String)>) -> Self {
        paths.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
        Self {
            paths,
            ids: Vec::new(),
        }
    }

    pub(crate) fn text(&mut self, text: &str) -> String {
        let mut text = text.to_owned();
        for (path, placeholder) in &self.paths {
            text = replace_path(&text, path, placeholder);
        }
        self.ids_in(&sandbox_keys(&text))
    }

    /// Replaces each run of exactly 64 lowercase hex digits by `<idN>`, numbered in order
    /// of first appearance.
    fn ids_in(&mut self, text: &str) -> String {
        let bytes = text.as_bytes();
        let is_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        let mut copied = 0;
        while i < bytes.len() {
            if !is_hex(bytes[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && is_hex(bytes[i]) {
                i += 1;
            }
            let bounded = (start == 0 || !bytes[start - 1].is_ascii_alphanumeric())
                && (i == bytes.len() || !bytes[i].is_ascii_alphanumeric());
            if i - start == 64 && bounded {
                let id = &text[start..i];
                let n = match self.ids.iter().position(|known| known == id) {
                    Some(n) => n + 1,
                    None => {
                        self.ids.push(id.to_owned());
                        self.ids.len()
                    }
                };
                out.push_str(&text[copied..start]);
                out.push_str(&format!("<id{n}>"));
                copied = i;
            } else if i - start == 12 && bounded {
                // The short form (`docker plugin ls`, `docker ps`) of an ID seen before.
                let short = &text[start..i];
                if let Some(n) = self.ids.iter().position(|known| known.starts_with(short)) {
                    out.push_str(&text[copied..start]);
                    out.push_str(&format!("<id{}:12>", n + 1));
                    copied = i;
                }
            }
        }
        out.push_str(&text[copied..]);
        out
    }

    /// An AuthZReq/AuthZRes body with its base64 `RequestBody` and `ResponseBody`
    /// normalized inside (decoded, [`text`](Self::text) and times as `<time>`, encoded
    /// again), and the (recorded, normalized) base64 pairs, for the same strings in the
    /// body's parsed form.
    pub(crate) fn authz_bodies(&mut self, text: &str) -> (String, Vec<(String, String)>) {
        use base64::Engine;
        use base64::engine::general_purpose::STANDARD;
        let mut out = text.to_owned();
        let mut pairs = Vec::new();
        for key in ["\"RequestBody\":\"", "\"ResponseBody\":\""] {
            let Some(at) = out.find(key) else { continue };
            let start = at + key.len();
            let Some(len) = out[start..].find('"') else {
                continue;
            };
            let encoded = out[start..start + len].to_owned();
            let Some(decoded) = STANDARD
                .decode(&encoded)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
            else {
                continue;
            };
            let normalized = STANDARD.encode(mask_times(&self.text(&decoded)));
            out.replace_range(start..start + len, &normalized);
            pairs.push((encoded, normalized));
        }
        (out, pairs)
    }

    pub(crate) fn value(&mut self, value: Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.text(&s)),
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.value(v)).collect()),
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| (self.text(&k), self.value(v)))
                    .collect(),
            ),
            other => other,
        }
    }
}

/// RFC 3339 times (`2025-01-02T03:04:05.123456789Z`, `…+01:00`) as `<time>`: a
/// volume's `CreatedAt` in dockerd's replies.
fn mask_times(text: &str) -> String {
    let bytes = text.as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:dd";
    let digit = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i + shape.len() <= bytes.len() {
        let fits = shape.iter().enumerate().all(|(k, &c)| {
            if c == b'd' {
                digit(i + k)
            } else {
                bytes[i + k] == c
            }
        });
        if !fits {
            i += 1;
            continue;
        }
        let mut end = i + shape.len();
        if bytes.get(end) == Some(&b'.') {
            end += 1;
            while digit(end) {
                end += 1;
            }
        }
        match bytes.get(end) {
            Some(b'Z') => end += 1,
            Some(b'+' | b'-') if (1..=5).all(|k| k == 3 || digit(end + k)) => end += 6,
            _ => {}
        }
        out.push_str(&text[copied..i]);
        out.push_str("<time>");
        copied = end;
        i = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// A network sandbox's key, `<exec-root>/netns/<12 hex>` (a Join's `SandboxKey`), with
/// its 12 hex digits as `<sandbox>`: they are a random sandbox ID's.
fn sandbox_keys(text: &str) -> String {
    const NETNS: &str = "/netns/";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(NETNS) {
        let (before, after) = rest.split_at(at + NETNS.len());
        out.push_str(before);
        let hex = after
            .bytes()
            .take_while(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            .count();
        if hex == 12 {
            out.push_str("<sandbox>");
            rest = &after[12..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// `path` replaced by `placeholder` where it is a whole path (`<tmp>/rec-shadow` in
/// `<tmp>/rec-shadow/x`, not in `<tmp>/rec-shadow-managed.bundle`).
fn replace_path(text: &str, path: &str, placeholder: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(path) {
        let after = &rest[at + path.len()..];
        let whole = !after.starts_with(|c: char| c.is_alphanumeric() || "-_.".contains(c));
        out.push_str(&rest[..at]);
        out.push_str(if whole { placeholder } else { path });
        rest = after;
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------
// The README summary.

pub(crate) const BEGIN: &str = "<!-- BEGIN GENERATED by xtask/src/bin/record_sequences -->";
pub(crate) const END: &str = "<!-- END GENERATED -->";

/// `Get`, `Capabilities 404`, `Get Err`, `List[other-plugin]`: a call as the summary
/// shows it.
pub(crate) fn short(call: &Call, primary: &str) -> String {
    let name = call
        .method
        .rsplit('.')
        .next()
        .unwrap_or(&call.method)
        .to_owned();
    let name = if call.plugin != primary {
        format!("{name}[{}]", call.plugin)
    } else {
        name
    };
    let failed = call.response.get("Err").is_some_and(|e| e != "");
    match (call.status, failed) {
        (200, false) => name,
        (200, true) => format!("{name} Err"),
        (status, _) => format!("{name} {status}"),
    }
}

pub(crate) fn summarize(phase_commands: &[String], calls: &[Call], primary: &str) -> String {
    phase_commands
        .iter()
        .enumerate()
        .map(|(i, command)| {
            let seq: Vec<String> = calls
                .iter()
                .filter(|c| c.command == i)
                .map(|call| short(call, primary))
                .collect();
            let seq = if seq.is_empty() {
                "(none)".to_owned()
            } else {
                seq.join(" → ")
            };
            format!("`{command}`: {seq}")
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

/// Rewrites the README's table: a row per action of [`actions::all`](crate::actions::all),
/// in that order, made from `fixtures` for the actions just recorded and kept as it was
/// for the others (an `--only` run).
pub(crate) fn write_summary(out_dir: &Path, fixtures: &[Fixture]) -> Result<(), String> {
    let Some(first) = fixtures.first() else {
        return Ok(());
    };
    let readme = out_dir.join("README.md");
    let old = fs::read_to_string(&readme).unwrap_or_default();
    let old_row = |action: &str| {
        let start = format!("| `{action}` |");
        old.lines()
            .find(|line| line.starts_with(&start))
            .map(|line| format!("{line}\n"))
    };
    let mut generated = format!(
        "{BEGIN}\n\nRecorded from dockerd {} (API {}) with docker CLI {}.\n\n\
         | action | setup | calls per command |\n|---|---|---|\n",
        first.dockerd_version, first.api_version, first.docker_cli_version
    );
    for action in crate::actions::all() {
        let Some(f) = fixtures.iter().find(|f| f.action == action.name) else {
            generated.push_str(&old_row(action.name).unwrap_or_default());
            continue;
        };
        let primary = f.plugins.first().map_or("", |p| p.name.as_str());
        let setup = if f.setup.commands.is_empty() {
            "".to_owned()
        } else {
            summarize(&f.setup.commands, &f.setup.calls, primary)
        };
        generated.push_str(&format!(
            "| `{}` | {} | {} |\n",
            f.action,
            setup,
            summarize(&f.commands, &f.calls, primary)
        ));
    }
    generated.push('\n');
    generated.push_str(END);

    let text = match (old.find(BEGIN), old.find(END)) {
        _ if old.is_empty() => format!("# dockerd call sequences\n\n{generated}\n"),
        (Some(b), Some(e)) if b < e => {
            format!("{}{generated}{}", &old[..b], &old[e + END.len()..])
        }
        _ => format!("{}\n{generated}\n", old.trim_end()),
    };
    fs::write(&readme, text).map_err(|e| format!("{}: {e}", readme.display()))
}
