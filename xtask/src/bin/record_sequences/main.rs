//! Records the plugin calls a REAL dockerd makes for each user action into
//! `tests/fixtures/dockerd-sequences/<action>.json`, for the mini-engine (a dockerd test
//! double) to reproduce exactly.
//!
//! ```text
//! sudo cargo run -p xtask --bin record_sequences            # every action (about 8 minutes)
//! sudo cargo run -p xtask --bin record_sequences -- --only volume_rm,plugin_restart
//! scripts/record-dockerd-sequences                          # the same, as a script
//! ```
//!
//! Each action gets a fresh private dockerd, started exactly as the integration tests
//! start one (`docker_plugin_sdk::harness::dockerd`), and fresh `recorder` plugins
//! (`xtask/src/bin/recorder/`) that log every request and reply on the wire. The action's
//! setup commands run first; then its commands, one at a time, each followed by a quiet
//! second so that asynchronous calls are attributed to the command that caused them.
//!
//! dockerd finds legacy plugins in the machine-wide `/run/docker/plugins` and
//! `/etc/docker/plugins`, so another dockerd running at the same time (a concurrent
//! `cargo test`) would call our plugins and ours theirs. The recorder therefore re-runs
//! itself in a private mount namespace (`unshare --mount`) with empty tmpfs mounts over
//! those directories (`--no-isolate` skips this), and it keeps only calls whose peer
//! process is the action's own dockerd.
//!
//! Managed ("v2") plugins: the same recorder, built as a static binary (its own target
//! dir, `target/static-recorder`), is put into a bundle (`{tmp}/NAME.bundle`) that the
//! action's commands `docker plugin create` and `enable`; dockerd runs it, so it runs
//! with `pidhost` (the peer filter keeps working) and writes its log into a host
//! directory bind-mounted into it. For these actions each result also holds what dockerd
//! logged about the plugin during the command (its output lines, refused API calls),
//! the recorder's report of the container it runs in among them.
//!
//! The modules: `actions` (what is recorded), `session` (running an action),
//! `plugin` (its recorder plugins and their logs), `step` (running one of its
//! commands), `pseudo` (the pseudo-commands that are not about a plugin), `managed`
//! (bundles and the static recorder), `host_files` (the `@host-files` listing, shared
//! with the replay), `registry` (the registry `docker plugin upgrade` pulls from),
//! `fixture` (the files written and their normalization), `tls` (the certificates of
//! the authz action over TLS).
//!
//! Authorization actions: their recorder (`--authz`) listens before dockerd starts,
//! as dockerd is started with `--authorization-plugin=NAME` and refuses to start
//! without it; the calls dockerd makes while starting, and for the versions and the
//! image, are left out.
//!
//! Options:
//!   --only A,B      record only these actions
//!   --out DIR       where fixtures go (default tests/fixtures/dockerd-sequences)
//!   --list          print the actions and exit
//!   --no-isolate    do not enter a private mount namespace
//!   --raw DIR       also keep each plugin's raw log as `DIR/<action>.<plugin>.jsonl`

mod actions;
mod fixture;
mod host_files;
mod managed;
mod plugin;
mod pseudo;
mod registry;
mod session;
mod step;
mod tls;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use actions::Action;
use docker_plugin_sdk::args::{ArgsError, Flags};
use fixture::write_summary;
use managed::build_static_recorder;
use session::record_action;

/// Where dockerd looks for legacy plugin sockets.
const SOCKET_DIR: &str = "/run/docker/plugins";
/// Where dockerd looks for `.spec` / `.json` plugin files.
const SPEC_DIRS: &[&str] = &["/etc/docker/plugins", "/usr/lib/docker/plugins"];
/// The image the container actions use: a static busybox imported into each dockerd.
const IMAGE: &str = "busybox";
/// How long the plugin logs must stay unchanged before a command counts as finished.
const QUIET: Duration = Duration::from_millis(1000);
/// The longest wait for the logs to become quiet.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);
/// Set in the environment of the copy running inside the private mount namespace.
const ISOLATED_ENV: &str = "DPS_RECORD_ISOLATED";
/// The recorder binary built before entering the namespace, passed to the copy inside.
const RECORDER_ENV: &str = "DPS_RECORDER_BIN";
/// The pseudo-command that SIGKILLs a plugin and starts it again on the same socket.
const RESTART: &str = "@restart-plugin";
/// The pseudo-command that SIGKILLs a legacy plugin for good (its socket file stays).
const STOP: &str = "@stop-plugin";
/// The pseudo-command that starts the action's registry (see `registry`).
const START_REGISTRY: &str = "@start-registry";
/// Replaced in command arguments by the action's temp dir (shown as `<tmp>`).
const TMP: &str = "{tmp}";
/// The pseudo-command that SIGKILLs a managed plugin's process and reports whether
/// dockerd starts a new one.
const KILL: &str = "@kill-plugin";
/// The pseudo-command that lists a managed plugin's files on the host: its socket
/// directory and where its volumes are.
const HOST_FILES: &str = "@host-files";
/// The pseudo-command `[CREATE_MAC, name, network, mac]`: creates container `name`
/// (`IMAGE`, `sleep 60`) on `network` with the MAC address `mac` through the Engine
/// API itself, as `POST /v1.41/containers/create` with `MacAddress` in the container
/// config: the docker CLI 28 here sends `--mac-address` only per network, which needs
/// API 1.44, and this dockerd (20.10) speaks 1.41.
const CREATE_MAC: &str = "@create-mac";
/// The static recorder (for managed plugins' rootfs), passed to the copy inside.
const STATIC_RECORDER_ENV: &str = "DPS_STATIC_RECORDER_BIN";
/// The target dir of the static recorder build, under the ordinary one.
const STATIC_TARGET_DIR: &str = "static-recorder";
/// The target triple the static recorder is built for (with `--target`, RUSTFLAGS do
/// not reach build scripts and proc macros).
const STATIC_TARGET: &str = "x86_64-unknown-linux-gnu";
/// The managed recorder's propagated mount, where its volumes live.
const PROPAGATED_MOUNT: &str = "/mnt/volumes";
/// Where the managed recorder's host log directory is mounted inside it.
const MANAGED_LOG_DIR: &str = "/log";
/// How long [`KILL`] waits for dockerd to start the plugin again.
const RESTART_WAIT: Duration = Duration::from_secs(10);
/// The pseudo-command that runs `curl --unix-socket <dockerd's API socket>` with the
/// rest as its arguments: API calls the CLI does not make (`HEAD /_ping`, a chunked
/// JSON body).
const CURL: &str = "@curl";
/// The pseudo-command that runs the docker CLI over TLS (the action's `tls`), with the
/// client certificate, against dockerd's TCP port.
const TLS_DOCKER: &str = "@tls-docker";
/// The pseudo-command that writes an env file (`BIG=xxx…`) of about that many bytes.
const WRITE_ENV_FILE: &str = "@write-env-file";
/// A command that runs this long gets its duration (whole seconds) in the fixture.
const SLOW: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------

struct Options {
    only: Option<Vec<String>>,
    out: PathBuf,
    isolate: bool,
    list: bool,
    raw: Option<PathBuf>,
}

const USAGE: &str =
    "usage: record_sequences [--only A,B] [--out DIR] [--list] [--no-isolate] [--raw DIR]";

fn parse_args() -> Result<Options, ArgsError> {
    let mut options = Options {
        only: None,
        out: workspace().join("tests/fixtures/dockerd-sequences"),
        isolate: true,
        list: false,
        raw: None,
    };
    let mut flags = Flags::from_env(USAGE);
    while let Some(flag) = flags.next_flag()? {
        match flag.as_str() {
            "--only" => {
                options.only = Some(flags.value()?.split(',').map(str::to_owned).collect());
            }
            "--out" => options.out = PathBuf::from(flags.value()?),
            "--no-isolate" => options.isolate = false,
            "--list" => options.list = true,
            "--raw" => options.raw = Some(PathBuf::from(flags.value()?)),
            _ => return Err(flags.unknown()),
        }
    }
    if let Some(only) = &options.only {
        for name in only {
            if !actions::all().any(|a| a.name == name) {
                return Err(ArgsError::Invalid {
                    flag: "--only".into(),
                    value: name.clone(),
                    expected: "action names (see --list)".into(),
                });
            }
        }
    }
    Ok(options)
}

/// The workspace this tool belongs to.
fn workspace() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// `cargo build --quiet -p xtask --bin recorder` in the workspace, with `configure`'s
/// extra arguments and environment.
fn build_recorder(configure: impl FnOnce(&mut Command)) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--quiet",
            "--package",
            "xtask",
            "--bin",
            "recorder",
        ])
        .current_dir(workspace());
    configure(&mut command);
    let out = command
        .output()
        .map_err(|e| format!("running cargo build: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "building the recorder failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// The recorder of this build's profile (beside this program), built first.
fn recorder() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let profile_dir = exe
        .parent()
        .ok_or("record_sequences does not live in target/<profile>/")?;
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    build_recorder(|command| {
        if release {
            command.arg("--release");
        }
    })?;
    Ok(profile_dir.join("recorder"))
}

/// Runs this program again inside a private mount namespace; returns its exit code.
fn reexec_isolated(recorder: &Path) -> Result<ExitCode, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let status = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(ISOLATED_ENV, "1")
        .env(RECORDER_ENV, recorder)
        .status()
        .map_err(|e| format!("cannot run unshare (use --no-isolate to skip it): {e}"))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

/// Inside the namespace: empty plugin directories, private to this process tree.
fn hide_other_plugins() -> Result<(), String> {
    fs::create_dir_all(SOCKET_DIR).map_err(|e| format!("{SOCKET_DIR}: {e}"))?;
    for dir in std::iter::once(&SOCKET_DIR).chain(SPEC_DIRS) {
        if !Path::new(dir).is_dir() {
            continue;
        }
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "mode=0700", "dps-record", dir])
            .status()
            .map_err(|e| format!("running mount: {e}"))?;
        if !status.success() {
            return Err(format!("mounting a tmpfs over {dir} failed ({status})"));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(err) => return err.report("record_sequences"),
    };
    if options.list {
        for action in actions::all() {
            println!("{}: {}", action.name, action.description);
        }
        return ExitCode::SUCCESS;
    }
    let selected = |action: &&Action| {
        options
            .only
            .as_ref()
            .is_none_or(|only| only.iter().any(|name| name == action.name))
    };
    if std::env::var_os(STATIC_RECORDER_ENV).is_none()
        && actions::all()
            .filter(selected)
            .any(|a| a.plugins.iter().any(|p| p.managed) || !a.bundles.is_empty())
    {
        match build_static_recorder() {
            // Safety: no other thread runs yet.
            Ok(binary) => unsafe { std::env::set_var(STATIC_RECORDER_ENV, binary) },
            Err(message) => {
                eprintln!("record_sequences: {message}");
                return ExitCode::FAILURE;
            }
        }
    }
    if options.isolate && std::env::var_os(ISOLATED_ENV).is_none() {
        // Build the plugin once, before entering the namespace.
        return recorder()
            .and_then(|recorder| reexec_isolated(&recorder))
            .unwrap_or_else(|message| {
                eprintln!("record_sequences: {message}");
                ExitCode::FAILURE
            });
    }
    if options.isolate
        && let Err(message) = hide_other_plugins()
    {
        eprintln!("record_sequences: {message}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = fs::create_dir_all(&options.out) {
        eprintln!("record_sequences: {}: {e}", options.out.display());
        return ExitCode::FAILURE;
    }

    let started = Instant::now();
    let mut fixtures = Vec::new();
    let mut failed = false;
    for action in actions::all().filter(selected) {
        eprintln!("== {}", action.name);
        let t = Instant::now();
        match record_action(action, &options.out, options.raw.as_deref()) {
            Ok(fixture) => {
                eprintln!(
                    "   {} calls, {:.1}s",
                    fixture.calls.len(),
                    t.elapsed().as_secs_f64()
                );
                fixtures.push(fixture);
            }
            Err(message) => {
                eprintln!("   FAILED: {message}");
                failed = true;
            }
        }
    }
    // The table lists every action: the rows of those recorded are rewritten, the
    // others kept.
    if !failed && let Err(message) = write_summary(&options.out, &fixtures) {
        eprintln!("record_sequences: {message}");
        failed = true;
    }
    eprintln!(
        "recorded {} action(s) into {} in {:.0}s",
        fixtures.len(),
        options.out.display(),
        started.elapsed().as_secs_f64()
    );
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
