//! The harness against the truth: every call sequence recorded from a real dockerd in
//! `tests/fixtures/dockerd-sequences/` is replayed through the harness, with the same
//! recorder plugin as a real process (legacy) or run from its bundle (managed), and
//! must produce, command by command:
//!
//! - the same calls to each plugin: method, HTTP status and request body (IDs masked),
//!   in order per plugin (dockerd calls plugins concurrently, the order across plugins
//!   means nothing);
//! - the same bytes on the wire: each request body the recorder received equals, byte
//!   for byte (IDs masked), the one dockerd sent, with dockerd's headers (`Host`,
//!   `User-Agent`, `Accept`, `Content-Length`);
//! - the same outcome: success, or dockerd's error message;
//! - the same stdout for the commands whose output the harness models (`volume ls`,
//!   `plugin ls`, `plugin inspect --format`, `exec … cat` through a volume, the
//!   `@host-files` listing);
//! - the same plugin output, as dockerd logs it: the recorder prints its environment
//!   and a report of the container it runs in (namespaces, capabilities, `/dev`,
//!   `/sys`, the init layer's files, propagation) when it starts.
//!
//! The `authz_*` fixtures (dockerd with `--authorization-plugin`) are replayed API call
//! by API call through `engine.authz()` instead (see [`authz`]): the same AuthZReq and
//! AuthZRes bodies, byte for byte, and the deny in the CLI's words. The `logging_*`
//! fixtures (a log driver) through `engine.logging()` (see [`logging`]): the same
//! LogDriver calls, byte for byte, and what `docker logs` printed.
//!
//! Known differences, each checked for what the harness does reproduce: the harness
//! has no `local` driver (`volume_create_other_driver`, and the `local` volume a
//! container silently gets in `legacy_shadows_managed`, are checked for their plugin
//! part only: the harness must fail with "no such volume" where dockerd made a local
//! one, and `local` rows of `volume ls` are left out); the docker CLI decodes
//! `config.json` and refuses `plugin upgrade` of an enabled plugin itself; some error
//! texts name things the harness cannot (see [`text_differs_knowingly`]); containerd's
//! `init-stdout`/`init-stderr` fifos in the socket dir are not made.
#![cfg(all(feature = "harness", feature = "packager"))]

mod support;

#[path = "harness_fixtures/authz.rs"]
mod authz;
/// The recorder's `@host-files` listing, the same code on both sides.
#[path = "../xtask/src/bin/record_sequences/host_files.rs"]
mod host_files;
#[path = "harness_fixtures/logging.rs"]
mod logging;
#[path = "harness_fixtures/render.rs"]
mod render;
#[path = "harness_fixtures/replay.rs"]
mod replay;
/// The TLS action's certificates, made again as the recorder made them (the daemon's
/// flags in it are the recorder's business).
#[path = "../xtask/src/bin/record_sequences/tls.rs"]
#[allow(dead_code)]
mod tls;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use docker_plugin_sdk::harness::HarnessError;
use replay::Replay;
use serde_json::Value;
use support::wait::PATIENCE;

/// Hides IDs: `<id3>` placeholders and 64-hex IDs both become `<id>`.
fn without_ids(text: &str) -> String {
    let mut out = String::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'<'
            && let Some(end) = text[i..].find('>')
            && text[i + 1..i + end].starts_with("id")
        {
            out.push_str("<id>");
            i += end + 1;
            continue;
        }
        let run = bytes[i..]
            .iter()
            .take_while(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            .count();
        if run == 64 && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
            out.push_str("<id>");
            i += 64;
            continue;
        }
        out.push(text[i..].chars().next().unwrap());
        i += text[i..].chars().next().unwrap().len_utf8();
    }
    out
}

/// A request body as compared: its JSON with IDs masked (`null` for an empty body),
/// a Join's `SandboxKey` (a path of each engine's own) as `<sandbox>`, and the random
/// MAC addresses dockerd makes for an IPAM that requires one (`02:42:…`) as `<mac>`.
fn masked(value: &Value) -> String {
    masked_text(&value.to_string())
}

/// [`masked`] on a body's text.
fn masked_text(body: &str) -> String {
    let mut text = without_ids(body);
    const KEY: &str = "\"SandboxKey\":\"";
    if let Some(at) = text.find(KEY)
        && let Some(len) = text[at + KEY.len()..].find('"')
    {
        text.replace_range(at + KEY.len()..at + KEY.len() + len, "<sandbox>");
    }
    while let Some(at) = text.find("\"02:42:") {
        text.replace_range(at + 1..at + 18, "<mac>");
    }
    text
}

/// Per plugin (in the fixture's plugin order), `Method status request` of each call
/// command `index` caused.
fn expected_calls(fixture: &Value, calls: &[Value], index: u64) -> BTreeMap<usize, Vec<String>> {
    let order = plugin_order(fixture);
    let mut out: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for c in calls
        .iter()
        .filter(|c| c["command"].as_u64() == Some(index))
    {
        let plugin = c["plugin"].as_str().unwrap();
        out.entry(order(plugin)).or_default().push(format!(
            "{}[{plugin}] {} {}",
            c["method"].as_str().unwrap(),
            c["status"],
            masked(&c["request"])
        ));
    }
    out
}

fn plugin_order(fixture: &Value) -> impl Fn(&str) -> usize + '_ {
    |name| {
        fixture["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .position(|p| p["name"] == name)
            .unwrap_or(usize::MAX)
    }
}

/// The harness's calls for the command just run, grouped as [`expected_calls`].
fn actual_calls(replay: &Replay, fixture: &Value) -> BTreeMap<usize, Vec<String>> {
    let order = plugin_order(fixture);
    let mut out: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for c in replay.engine.calls().take() {
        let Some(status) = c.status else { continue };
        let plugin = replay.label(&c.plugin);
        out.entry(order(&plugin)).or_default().push(format!(
            "{}[{plugin}] {status} {}",
            c.method,
            masked(&c.request)
        ));
    }
    out
}

/// `Method[plugin] BODY` of each call command `index` caused, the body as dockerd sent
/// it (IDs hidden), grouped by plugin.
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
                masked_text(body)
            );
            (plugin, line)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, line)| line).collect()
}

/// The same for what the recorders received from the harness.
fn received_bodies(received: &[(String, Value)], replay: &Replay) -> Vec<String> {
    let mut out: Vec<(String, String)> = received
        .iter()
        .map(|(plugin, call)| {
            let plugin = replay.label(plugin);
            let body = call["request_body"].as_str().unwrap();
            let line = format!(
                "{}[{plugin}] {:?}",
                call["method"].as_str().unwrap(),
                masked_text(body)
            );
            (plugin, line)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, line)| line).collect()
}

/// What is wrong with the headers of a call a recorder received, if anything: they
/// must be dockerd's (`request_headers` of the fixture, which leaves out
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

/// What dockerd logged of the plugins' output during a command, without the time.
fn expected_output(result: &Value) -> Vec<String> {
    result["dockerd_log"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|line| line.contains(" plugin="))
        .map(|line| without_ids(line.trim_start_matches("time=\"<time>\" ")))
        .collect()
}

/// The managed plugins' output lines of the command just run: waited for until as
/// many as dockerd logged have come (they are read asynchronously; for as long as
/// [`PATIENCE`]), then a moment more for extra ones.
async fn actual_output(replay: &mut Replay, expected: usize) -> Vec<String> {
    let start = Instant::now();
    let mut lines = replay.new_plugin_output();
    while lines.len() < expected && start.elapsed() < PATIENCE {
        tokio::time::sleep(Duration::from_millis(20)).await;
        lines.extend(replay.new_plugin_output());
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    lines.extend(replay.new_plugin_output());
    // stdout lines first, as the recorder orders dockerd's log.
    lines.sort_by_key(|l| !l.starts_with("level=info"));
    lines.iter().map(|l| without_ids(l)).collect()
}

/// Whether a harness error is the kind of failure dockerd reported.
type Fits = fn(&HarnessError) -> bool;

/// Commands whose failure the harness reproduces but not dockerd's text: the CLI
/// decodes config.json itself (`unexpected EOF`, Go's unmarshal errors, `lstat`) and
/// refuses `plugin upgrade` of an enabled plugin itself; dockerd's `no rootfs found:
/// EOF` (the harness names the missing dir); the socket path of a plugin that never
/// listens (the harness's dirs live under its root); runc's words for a mount it
/// cannot make (they name a file descriptor); Go's words for a dead plugin's socket.
/// Each with the kind of error the harness must give instead.
fn text_differs_knowingly(command: &str) -> Option<Fits> {
    let known: [(&str, Fits); 9] = [
        ("docker plugin create bad-json", |e| {
            matches!(e, HarnessError::Bundle(_))
        }),
        ("docker plugin create bad-type", |e| {
            matches!(e, HarnessError::Bundle(_))
        }),
        ("docker plugin create no-rootfs", |e| {
            matches!(e, HarnessError::Bundle(_))
        }),
        ("docker plugin create nowhere", |e| {
            matches!(e, HarnessError::Bundle(_))
        }),
        ("docker plugin enable no-socket", |e| {
            matches!(e, HarnessError::EnableFailed { .. })
        }),
        ("docker plugin enable bad-fs", |e| {
            matches!(e, HarnessError::Runtime { .. })
        }),
        ("docker plugin upgrade", |e| {
            matches!(e, HarnessError::UpgradeEnabled { .. })
        }),
        ("docker volume create -d rec-shadow v1", |e| {
            matches!(e, HarnessError::VolumeOp { op: "create", .. })
        }),
        // dockerd creates a `local` volume; the harness has no local driver.
        ("docker run --rm -v v1:/data busybox true", |e| {
            matches!(e, HarnessError::NoSuchVolume { .. })
        }),
    ];
    known
        .iter()
        .find(|(c, _)| command.starts_with(c))
        .map(|(_, fits)| *fits)
}

/// Commands not replayed: dockerd refuses a second plugin whose rootfs layer it
/// already has (`content sha256:…: already exists`); the harness has no content store
/// and accepts it.
fn not_replayed(command: &str) -> bool {
    command.starts_with("docker plugin create rec-m2 ")
}

/// Whether `command` involves only the `local` driver the harness does not have.
fn local_only(action: &str, command: &str) -> bool {
    match action {
        "volume_create_other_driver" => {
            command == "docker volume create vlocal" || command.contains(" vlocal")
        }
        _ => false,
    }
}

/// The outcome of one command against dockerd's.
fn compare_outcome(
    action: &str,
    command: &str,
    outcome: &Result<(), HarnessError>,
    result: &Value,
) -> Option<String> {
    let dockerd_ok = result["exit_code"] == 0;
    // A container dockerd gave a `local` volume.
    let local_volume = action == "legacy_shadows_managed" && command.starts_with("docker run");
    match (outcome, dockerd_ok) {
        (Ok(()), true) => None,
        (Err(err), dockerd_ok) if dockerd_ok == local_volume => {
            match text_differs_knowingly(command) {
                // Not dockerd's words, but the same kind of failure.
                Some(fits) => {
                    (!fits(err)).then(|| format!("`{command}`: harness failed with {err:?}"))
                }
                None if local_volume => Some(format!("`{command}`: harness failed with {err:?}")),
                None => {
                    let stderr = result["stderr"].as_str().unwrap_or("").trim();
                    // The CLI's own last line ("Error: failed to start containers: c1").
                    let stderr = stderr.lines().next().unwrap_or("");
                    let want = stderr
                        .strip_prefix("Error response from daemon: ")
                        .unwrap_or(stderr);
                    (without_ids(&err.to_string()) != without_ids(want))
                        .then(|| format!("`{command}`: dockerd said {want:?}, harness {err}"))
                }
            }
        }
        _ => Some(format!(
            "`{command}`: dockerd exit {}, harness {outcome:?}",
            result["exit_code"]
        )),
    }
}

/// A command's stdout against dockerd's: as JSON values when both are JSON, else as
/// text, IDs masked; containerd's fifos left out of dockerd's `@host-files`.
fn same_stdout(ours: &str, dockerd: &str) -> bool {
    let dockerd: String = dockerd
        .lines()
        .filter(|l| !l.contains("/init-stdout (") && !l.contains("/init-stderr ("))
        // `local` volumes (the harness has no local driver).
        .filter(|l| !l.starts_with("local "))
        .collect::<Vec<_>>()
        .join("\n");
    let (a, b) = (
        without_ids(ours.trim_end()),
        without_ids(dockerd.trim_end()),
    );
    match (
        serde_json::from_str::<Value>(&a),
        serde_json::from_str::<Value>(&b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

async fn replay_fixture(path: &Path) -> Vec<String> {
    let fixture: Value = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    let action = fixture["action"].as_str().unwrap().to_owned();
    let mut replay = Replay::new(fixture.clone());
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
            let result = &results[i];
            if local_only(&action, command) || not_replayed(command) {
                replay.engine.calls().take();
                replay.received();
                continue;
            }
            let ran = replay.run(command).await;
            let mut problem = |p: String| problems.push(format!("{part} {p}"));
            let actual = actual_calls(&replay, &fixture);
            let expected = expected_calls(&fixture, calls.as_array().unwrap(), i as u64);
            if actual != expected {
                problem(format!(
                    "`{command}`:\n  dockerd: {expected:?}\n  harness: {actual:?}"
                ));
            }
            // What went over the wire: the recorders' bytes and headers.
            let received = replay.received();
            for (_, call) in &received {
                if let Some(p) = header_problem(call, &fixture["request_headers"]) {
                    problem(format!("`{command}`: {p}"));
                }
            }
            let bodies = received_bodies(&received, &replay);
            let dockerd_bodies = expected_bodies(calls.as_array().unwrap(), i as u64);
            if bodies != dockerd_bodies {
                problem(format!(
                    "`{command}` bodies on the wire:\n  dockerd: {dockerd_bodies:?}\n  harness: {bodies:?}"
                ));
            }
            let dockerd_output = expected_output(result);
            let output = actual_output(&mut replay, dockerd_output.len()).await;
            if output != dockerd_output {
                problem(format!(
                    "`{command}` plugin output:\n  dockerd: {dockerd_output:#?}\n  harness: {output:#?}"
                ));
            }
            if let Some(p) = compare_outcome(&action, command, &ran.outcome, result) {
                problem(p);
            }
            if let (Some(ours), true) = (&ran.stdout, result["exit_code"] == 0) {
                let dockerd = result["stdout"].as_str().unwrap_or("");
                if !same_stdout(ours, dockerd) {
                    problem(format!(
                        "`{command}` stdout:\n  dockerd: {dockerd:?}\n  harness: {ours:?}"
                    ));
                }
            }
        }
    }
    problems
}

fn read_fixture(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
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
    let only = std::env::var("DPS_REPLAY_ONLY").ok();
    let mut fixtures: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    fixtures.sort();
    fixtures
        .retain(|p| !authz::is_authz(&read_fixture(p)) && !logging::is_logging(&read_fixture(p)));
    if only.is_none() {
        assert!(fixtures.len() >= 30, "fixtures missing: {}", fixtures.len());
        let managed = fixtures.iter().filter(|p| is_managed(p)).count();
        assert!(managed >= 15, "managed fixtures missing: {managed}");
    }
    let mut report = Vec::new();
    for fixture in &fixtures {
        let name = fixture.file_stem().unwrap().to_string_lossy().into_owned();
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|n| n == name))
        {
            continue;
        }
        for problem in replay_fixture(fixture).await {
            report.push(format!("{name}: {problem}"));
        }
    }
    assert!(
        report.is_empty(),
        "{} differences:\n{}",
        report.len(),
        report.join("\n")
    );
}

/// The fixtures `filter` picks, by action name.
fn fixtures_where(filter: fn(&Value) -> bool) -> Vec<Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dockerd-sequences");
    let mut fixtures: Vec<Value> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| read_fixture(&p))
        .filter(filter)
        .collect();
    fixtures.sort_by_key(|f| f["action"].as_str().unwrap().to_owned());
    fixtures
}

fn action_names(fixtures: &[Value]) -> Vec<&str> {
    fixtures
        .iter()
        .map(|f| f["action"].as_str().unwrap())
        .collect()
}

fn assert_no_differences(report: Vec<String>) {
    assert!(
        report.is_empty(),
        "{} differences:\n{}",
        report.len(),
        report.join("\n")
    );
}

#[tokio::test]
async fn every_recorded_authz_sequence_is_reproduced() {
    let fixtures = fixtures_where(authz::is_authz);
    assert_eq!(action_names(&fixtures), ["authz_calls", "authz_tls"]);
    let mut report = Vec::new();
    for fixture in &fixtures {
        for problem in authz::replay_authz_fixture(fixture).await {
            report.push(format!("{}: {problem}", fixture["action"]));
        }
    }
    assert_no_differences(report);
}

#[tokio::test]
async fn every_recorded_logging_sequence_is_reproduced() {
    let fixtures = fixtures_where(logging::is_logging);
    assert_eq!(action_names(&fixtures), ["logging_run", "logging_running"]);
    let mut report = Vec::new();
    for fixture in &fixtures {
        for problem in logging::replay_logging_fixture(fixture).await {
            report.push(format!("{}: {problem}", fixture["action"]));
        }
    }
    assert_no_differences(report);
}
