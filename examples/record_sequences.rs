//! Records the plugin calls a REAL dockerd makes for each user action into
//! `tests/fixtures/dockerd-sequences/<action>.json`, for the mini-engine (a dockerd test
//! double) to reproduce exactly.
//!
//! ```text
//! sudo cargo run --example record_sequences            # every action (about 4 minutes)
//! sudo cargo run --example record_sequences -- --only volume_rm,plugin_restart
//! scripts/record-dockerd-sequences                     # the same, as a script
//! ```
//!
//! Each action gets a fresh private dockerd, started exactly as the integration tests
//! start one (`tests/support/dockerd.rs`), and fresh `recorder` plugins
//! (`examples/recorder.rs`) that log every request and reply on the wire. The action's
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
//! logged about the plugin during the command (its output lines, refused API calls).
//!
//! Options:
//!   --only A,B      record only these actions
//!   --out DIR       where fixtures go (default tests/fixtures/dockerd-sequences)
//!   --list          print the actions and exit
//!   --no-isolate    do not enter a private mount namespace
//!   --raw DIR       also keep each plugin's raw log as DIR/<action>.<plugin>.jsonl

// Shared with the integration tests (it allows its own dead code).
#[path = "../tests/support/dockerd.rs"]
mod dockerd;
#[allow(dead_code)]
#[path = "../tests/support/process.rs"]
mod process;

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::thread;
use std::time::{Duration, Instant};

use docker_plugin_sdk::managed::bundle::Bundle;
use dockerd::Dockerd;
use process::{PluginProcess, example_binary};
use serde::Serialize;
use serde_json::Value;

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
/// Replaced in command arguments by the action's temp dir (shown as `<tmp>`).
const TMP: &str = "{tmp}";
/// The pseudo-command that SIGKILLs a managed plugin's process and reports whether
/// dockerd starts a new one.
const KILL: &str = "@kill-plugin";
/// The pseudo-command that lists a managed plugin's files on the host: its socket
/// directory and where its volumes are.
const HOST_FILES: &str = "@host-files";
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
/// A command that runs this long gets its duration (whole seconds) in the fixture.
const SLOW: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------
// The actions.

struct PluginSpec {
    name: &'static str,
    capabilities: bool,
    bare_get: bool,
    /// A managed ("v2") plugin: a bundle at `{tmp}/NAME.bundle` that the action's
    /// commands `docker plugin create` and enable, instead of a process on a socket.
    managed: bool,
}

const fn plugin(name: &'static str) -> PluginSpec {
    PluginSpec {
        name,
        capabilities: true,
        bare_get: false,
        managed: false,
    }
}

const fn managed(name: &'static str) -> PluginSpec {
    PluginSpec {
        name,
        capabilities: true,
        bare_get: false,
        managed: true,
    }
}

/// Broken bundles for `docker plugin create` / `enable` errors, at `{tmp}/NAME.bundle`.
#[derive(Clone, Copy)]
enum BadBundle {
    /// config.json is not JSON (cut off).
    InvalidJson,
    /// `"description": 5`.
    WrongType,
    /// No rootfs/ directory.
    NoRootfs,
    /// The entrypoint does not exist in rootfs/.
    MissingEntrypoint,
    /// The recorder listens elsewhere, so the socket dockerd waits for never appears.
    NoSocket,
}

struct Action {
    name: &'static str,
    description: &'static str,
    plugins: &'static [PluginSpec],
    /// Broken bundles the commands refer to as `{tmp}/NAME.bundle`.
    bundles: &'static [(&'static str, BadBundle)],
    /// Whether containers run (the busybox image is imported first).
    image: bool,
    /// Commands run first, recorded apart from the action's own.
    setup: &'static [&'static [&'static str]],
    /// The action: docker CLI arguments (`{tmp}` is a temp dir), or a pseudo-command:
    /// `[RESTART, plugin]`, `[KILL, plugin]`, `[HOST_FILES, plugin]`.
    commands: &'static [&'static [&'static str]],
    /// Which commands are expected to fail (indexes into `commands`).
    failing: &'static [usize],
}

const ACTIONS: &[Action] = &[
    Action {
        name: "volume_create",
        description: "docker volume create with -o options, then one without options, on a \
                      plugin that implements Capabilities (scope local)",
        plugins: &[plugin("rec-create")],
        bundles: &[],
        image: false,
        setup: &[],
        commands: &[
            &[
                "volume",
                "create",
                "-d",
                "rec-create",
                "-o",
                "a=b",
                "-o",
                "c=d",
                "v1",
            ],
            &["volume", "create", "-d", "rec-create", "v2"],
        ],
        failing: &[],
    },
    Action {
        name: "volume_create_no_capabilities",
        description: "the same two creates on a plugin that does not implement Capabilities \
                      (the SDK answers 404)",
        plugins: &[PluginSpec {
            name: "rec-nocaps",
            capabilities: false,
            bare_get: false,
            managed: false,
        }],
        bundles: &[],
        image: false,
        setup: &[],
        commands: &[
            &[
                "volume",
                "create",
                "-d",
                "rec-nocaps",
                "-o",
                "a=b",
                "-o",
                "c=d",
                "v1",
            ],
            &["volume", "create", "-d", "rec-nocaps", "v2"],
        ],
        failing: &[],
    },
    Action {
        name: "volume_create_existing",
        description: "docker volume create of the same name twice",
        plugins: &[plugin("rec-exists")],
        bundles: &[],
        image: false,
        setup: &[],
        commands: &[
            &["volume", "create", "-d", "rec-exists", "-o", "a=b", "v1"],
            &["volume", "create", "-d", "rec-exists", "-o", "a=b", "v1"],
        ],
        failing: &[],
    },
    Action {
        name: "volume_create_other_driver",
        description: "create -d PLUGIN of a name the local driver already has, then create \
                      without -d (the CLI sends driver local) of a name the plugin already has: \
                      both refused",
        plugins: &[plugin("rec-other")],
        bundles: &[],
        image: false,
        setup: &[
            &["volume", "create", "vlocal"],
            &["volume", "create", "-d", "rec-other", "vplugin"],
        ],
        commands: &[
            &["volume", "create", "-d", "rec-other", "vlocal"],
            &["volume", "create", "vplugin"],
        ],
        failing: &[0, 1],
    },
    Action {
        name: "volume_ls",
        description: "docker volume ls with one volume on rec-ls and a second plugin, \
                      rec-ls-idle, that dockerd never heard of before",
        plugins: &[plugin("rec-ls"), plugin("rec-ls-idle")],
        bundles: &[],
        image: false,
        setup: &[&["volume", "create", "-d", "rec-ls", "-o", "a=b", "v1"]],
        commands: &[&["volume", "ls"]],
        failing: &[],
    },
    Action {
        name: "volume_inspect",
        description: "docker volume inspect of a plugin volume (Get answers with a Mountpoint)",
        plugins: &[plugin("rec-inspect")],
        bundles: &[],
        image: false,
        setup: &[&["volume", "create", "-d", "rec-inspect", "-o", "a=b", "v1"]],
        commands: &[&["volume", "inspect", "v1"]],
        failing: &[],
    },
    Action {
        name: "bare_get",
        description: "inspect, ls and a container when Get and List answer without a \
                      Mountpoint: does dockerd ask VolumeDriver.Path?",
        plugins: &[PluginSpec {
            name: "rec-bare",
            capabilities: true,
            bare_get: true,
            managed: false,
        }],
        bundles: &[],
        image: true,
        setup: &[&["volume", "create", "-d", "rec-bare", "v1"]],
        commands: &[
            &["volume", "inspect", "v1"],
            &["volume", "ls"],
            &["run", "--rm", "-v", "v1:/data", IMAGE, "true"],
        ],
        failing: &[],
    },
    Action {
        name: "volume_inspect_unknown",
        description: "docker volume inspect of a name no driver has, with a plugin running \
                      that dockerd never used",
        plugins: &[plugin("rec-unknown")],
        bundles: &[],
        image: false,
        setup: &[],
        commands: &[&["volume", "inspect", "nosuch"]],
        failing: &[0],
    },
    Action {
        name: "volume_rm",
        description: "docker volume rm of an unused plugin volume",
        plugins: &[plugin("rec-rm")],
        bundles: &[],
        image: false,
        setup: &[&["volume", "create", "-d", "rec-rm", "v1"]],
        commands: &[&["volume", "rm", "v1"]],
        failing: &[],
    },
    Action {
        name: "volume_rm_in_use",
        description: "docker volume rm of a volume a stopped (created, never started) \
                      container references: dockerd refuses",
        plugins: &[plugin("rec-inuse")],
        bundles: &[],
        image: true,
        setup: &[
            &["volume", "create", "-d", "rec-inuse", "v1"],
            &["create", "--name", "c1", "-v", "v1:/data", IMAGE, "true"],
        ],
        commands: &[&["volume", "rm", "v1"]],
        failing: &[0],
    },
    Action {
        name: "run_with_volume",
        description: "docker run --rm -v VOLUME:/data with an existing plugin volume",
        plugins: &[plugin("rec-run")],
        bundles: &[],
        image: true,
        setup: &[&["volume", "create", "-d", "rec-run", "v1"]],
        commands: &[&["run", "--rm", "-v", "v1:/data", IMAGE, "true"]],
        failing: &[],
    },
    Action {
        name: "run_with_volume_auto_create",
        description: "docker run --rm --volume-driver PLUGIN -v NEWVOLUME:/data: dockerd \
                      creates the volume itself",
        plugins: &[plugin("rec-autocreate")],
        bundles: &[],
        image: true,
        setup: &[],
        commands: &[&[
            "run",
            "--rm",
            "--volume-driver",
            "rec-autocreate",
            "-v",
            "v1:/data",
            IMAGE,
            "true",
        ]],
        failing: &[],
    },
    Action {
        name: "two_containers_sharing_volume",
        description: "two detached containers mount the same volume, are stopped one after \
                      the other, then removed: one mount ID per container",
        plugins: &[plugin("rec-shared")],
        bundles: &[],
        image: true,
        setup: &[&["volume", "create", "-d", "rec-shared", "v1"]],
        commands: &[
            &[
                "run", "-d", "--name", "c1", "-v", "v1:/data", IMAGE, "sleep", "60",
            ],
            &[
                "run", "-d", "--name", "c2", "-v", "v1:/data", IMAGE, "sleep", "60",
            ],
            &["stop", "-t", "1", "c1"],
            &["stop", "-t", "1", "c2"],
            &["rm", "c1", "c2"],
        ],
        failing: &[],
    },
    Action {
        name: "cp_from_running_container",
        description: "docker cp out of a running container that mounts the volume: dockerd \
                      mounts the volume again, with the container's mount ID",
        plugins: &[plugin("rec-cp")],
        bundles: &[],
        image: true,
        setup: &[
            &["volume", "create", "-d", "rec-cp", "v1"],
            &[
                "run", "-d", "--name", "c1", "-v", "v1:/data", IMAGE, "sleep", "60",
            ],
        ],
        commands: &[
            &["cp", "c1:/etc/passwd", "{tmp}/passwd"],
            &["stop", "-t", "1", "c1"],
        ],
        failing: &[],
    },
    Action {
        name: "plugin_restart",
        description: "the plugin is killed (SIGKILL) and started again on the same socket; \
                      then inspect, ls and a container using the volume",
        plugins: &[plugin("rec-restart")],
        bundles: &[],
        image: true,
        setup: &[&["volume", "create", "-d", "rec-restart", "v1"]],
        commands: &[
            &[RESTART, "rec-restart"],
            &["volume", "inspect", "v1"],
            &["volume", "ls"],
            &["run", "--rm", "-v", "v1:/data", IMAGE, "true"],
        ],
        failing: &[],
    },
    // Managed ("v2") plugins: `rec-m` is a bundle of the static recorder that the
    // commands create and enable (see `managed_config`).
    Action {
        name: "plugin_enable",
        description: "docker plugin create of a managed plugin, ls, inspect, enable, ls: \
                      which calls the plugin gets on enable, and where its socket is",
        plugins: &[managed("rec-m")],
        bundles: &[],
        image: false,
        setup: &[],
        commands: &[
            CREATE_M,
            &["plugin", "ls"],
            &["plugin", "inspect", "rec-m"],
            ENABLE_M,
            &["plugin", "ls"],
            &[HOST_FILES, "rec-m"],
        ],
        failing: &[],
    },
    Action {
        name: "managed_volume_lifecycle",
        description: "volumes of an enabled managed plugin: create (-d NAME and -d \
                      NAME:latest), ls, inspect, a container writing to one, the files on \
                      the host, a running container's mounts, rm",
        plugins: &[managed("rec-m")],
        bundles: &[],
        image: true,
        setup: &[CREATE_M, ENABLE_M],
        commands: &[
            &["volume", "create", "-d", "rec-m", "v1"],
            &["volume", "create", "-d", "rec-m:latest", "v2"],
            &["volume", "ls"],
            &["volume", "inspect", "v1"],
            &[
                "run",
                "--rm",
                "-v",
                "v1:/data",
                IMAGE,
                "sh",
                "-c",
                "echo hi > /data/f",
            ],
            &[HOST_FILES, "rec-m"],
            &[
                "run", "-d", "--name", "c1", "-v", "v2:/data", IMAGE, "sleep", "60",
            ],
            &["inspect", "--format", "{{json .Mounts}}", "c1"],
            &["stop", "-t", "1", "c1"],
            &["rm", "c1"],
            &["volume", "rm", "v1"],
            &["volume", "ls"],
        ],
        failing: &[],
    },
    Action {
        name: "plugin_disable_in_use",
        description: "docker plugin disable of a managed plugin with a volume (no \
                      container), then with a created container using it, then disable -f; \
                      then the volume and the container without their plugin",
        plugins: &[managed("rec-m")],
        bundles: &[],
        image: true,
        setup: &[
            CREATE_M,
            ENABLE_M,
            &["volume", "create", "-d", "rec-m", "v1"],
        ],
        commands: &[
            &["plugin", "disable", "rec-m"],
            &["create", "--name", "c1", "-v", "v1:/data", IMAGE, "true"],
            &["plugin", "disable", "rec-m"],
            &["plugin", "disable", "-f", "rec-m"],
            &["plugin", "ls"],
            &["volume", "ls"],
            &["volume", "inspect", "v1"],
            &["volume", "rm", "v1"],
            &["volume", "create", "-d", "rec-m", "v2"],
            &["start", "c1"],
        ],
        failing: &[0, 2, 6, 7, 8, 9],
    },
    Action {
        name: "plugin_disable_enable",
        description: "disable after the plugin's only volume was removed, enable again, \
                      volume calls; then disable -f with a volume and enable again",
        plugins: &[managed("rec-m")],
        bundles: &[],
        image: false,
        setup: &[CREATE_M, ENABLE_M],
        commands: &[
            &["volume", "create", "-d", "rec-m", "v1"],
            &["volume", "rm", "v1"],
            &["plugin", "disable", "rec-m"],
            ENABLE_M,
            &["volume", "create", "-d", "rec-m", "v2"],
            &["volume", "ls"],
            &["plugin", "disable", "-f", "rec-m"],
            ENABLE_M,
            &["volume", "ls"],
            &["volume", "inspect", "v2"],
        ],
        failing: &[],
    },
    Action {
        name: "plugin_rm",
        description: "docker plugin rm of a managed plugin: in use (a volume), enabled, \
                      disabled with a volume, rm -f",
        plugins: &[managed("rec-m")],
        bundles: &[],
        image: false,
        setup: &[
            CREATE_M,
            ENABLE_M,
            &["volume", "create", "-d", "rec-m", "v1"],
        ],
        commands: &[
            &["plugin", "rm", "rec-m"],
            &["volume", "rm", "v1"],
            &["plugin", "rm", "rec-m"],
            &["volume", "create", "-d", "rec-m", "v2"],
            &["plugin", "disable", "-f", "rec-m"],
            &["plugin", "rm", "rec-m"],
            &["plugin", "rm", "-f", "rec-m"],
            &["plugin", "ls"],
            &["volume", "ls"],
        ],
        failing: &[0, 2, 5],
    },
    Action {
        name: "plugin_rm_force_enabled",
        description: "docker plugin rm -f of an enabled managed plugin that has a volume; \
                      then the orphaned volume",
        plugins: &[managed("rec-m")],
        bundles: &[],
        image: false,
        setup: &[
            CREATE_M,
            ENABLE_M,
            &["volume", "create", "-d", "rec-m", "v1"],
        ],
        commands: &[
            &["plugin", "rm", "-f", "rec-m"],
            &["plugin", "ls"],
            &["volume", "ls"],
            &["volume", "rm", "v1"],
        ],
        failing: &[3],
    },
    Action {
        name: "plugin_set",
        description: "docker plugin set: while enabled, after disable, an unknown key, a \
                      mount that is not settable, a mix of good and bad; the settings \
                      afterwards and the environment the plugin starts with",
        plugins: &[managed("rec-m")],
        bundles: &[],
        image: false,
        setup: &[CREATE_M, ENABLE_M],
        commands: &[
            &["plugin", "set", "rec-m", "DEBUG=1"],
            &["plugin", "disable", "rec-m"],
            &["plugin", "set", "rec-m", "DEBUG=1"],
            &["plugin", "set", "rec-m", "NOPE=1"],
            &["plugin", "set", "rec-m", "log.source=/tmp"],
            &["plugin", "set", "rec-m", "DEBUG=2", "log.source=/tmp"],
            &[
                "plugin",
                "inspect",
                "--format",
                "{{json .Settings}}",
                "rec-m",
            ],
            ENABLE_M,
            &[
                "plugin",
                "inspect",
                "--format",
                "{{json .Settings.Env}} {{json .Config.Env}}",
                "rec-m",
            ],
        ],
        failing: &[0, 3, 4, 5],
    },
    Action {
        name: "plugin_crash_restart",
        description: "the managed plugin's process is SIGKILLed: dockerd starts it again; \
                      then ls, inspect, create and a container",
        plugins: &[managed("rec-m")],
        bundles: &[],
        image: true,
        setup: &[
            CREATE_M,
            ENABLE_M,
            &["volume", "create", "-d", "rec-m", "v1"],
        ],
        commands: &[
            &[KILL, "rec-m"],
            &["plugin", "ls"],
            &["volume", "ls"],
            &["volume", "inspect", "v1"],
            &["volume", "create", "-d", "rec-m", "v2"],
            &["run", "--rm", "-v", "v1:/data", IMAGE, "true"],
        ],
        failing: &[],
    },
    Action {
        name: "plugin_create_errors",
        description: "docker plugin create of broken bundles, of a name twice, of the same \
                      bundle under a second name; enable of a plugin whose entrypoint is \
                      missing and of one whose socket never appears; rm and create again: \
                      a new ID",
        plugins: &[managed("rec-m")],
        bundles: &[
            ("bad-json", BadBundle::InvalidJson),
            ("bad-type", BadBundle::WrongType),
            ("no-rootfs", BadBundle::NoRootfs),
            ("no-binary", BadBundle::MissingEntrypoint),
            ("no-socket", BadBundle::NoSocket),
        ],
        image: false,
        setup: &[],
        commands: &[
            &["plugin", "create", "bad-json", "{tmp}/bad-json.bundle"],
            &["plugin", "create", "bad-type", "{tmp}/bad-type.bundle"],
            &["plugin", "create", "no-rootfs", "{tmp}/no-rootfs.bundle"],
            &["plugin", "create", "nowhere", "{tmp}/nowhere.bundle"],
            CREATE_M,
            CREATE_M,
            &["plugin", "create", "rec-m2", "{tmp}/rec-m.bundle"],
            &["plugin", "create", "no-binary", "{tmp}/no-binary.bundle"],
            &["plugin", "enable", "no-binary"],
            &["plugin", "create", "no-socket", "{tmp}/no-socket.bundle"],
            &["plugin", "enable", "no-socket"],
            &["plugin", "ls", "--no-trunc"],
            &["plugin", "rm", "rec-m"],
            CREATE_M,
            &["plugin", "inspect", "--format", "{{.Id}}", "rec-m"],
        ],
        failing: &[0, 1, 2, 3, 5, 6, 8, 10],
    },
];

/// `docker plugin create rec-m <bundle>` and `docker plugin enable rec-m`.
const CREATE_M: &[&str] = &["plugin", "create", "rec-m", "{tmp}/rec-m.bundle"];
const ENABLE_M: &[&str] = &["plugin", "enable", "rec-m"];

// ---------------------------------------------------------------------------------------
// The fixture format.

#[derive(Serialize)]
struct Fixture {
    action: String,
    description: String,
    dockerd_version: String,
    api_version: String,
    docker_cli_version: String,
    plugins: Vec<PluginInfo>,
    /// The headers of the first call (without Content-Length); a call whose headers
    /// differ carries its own.
    request_headers: Value,
    setup: Phase,
    commands: Vec<String>,
    results: Vec<Outcome>,
    calls: Vec<Call>,
}

#[derive(Serialize)]
struct PluginInfo {
    name: String,
    capabilities: bool,
    bare_get: bool,
    /// Only for managed plugins (then true).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    managed: bool,
    /// The managed plugin's ID (`<idN>`), once `docker plugin create` made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    /// The socket dockerd dials, as seen on the host once the plugin listened.
    #[serde(skip_serializing_if = "Option::is_none")]
    socket: Option<String>,
    /// The managed plugin's bundle config.json, as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<Value>,
}

#[derive(Serialize, Default)]
struct Phase {
    commands: Vec<String>,
    results: Vec<Outcome>,
    calls: Vec<Call>,
}

#[derive(Serialize)]
struct Outcome {
    exit_code: i32,
    stdout: String,
    stderr: String,
    /// Whole seconds, only for commands that took at least [`SLOW`].
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_s: Option<u64>,
    /// Actions with managed plugins only: what dockerd logged during the command about
    /// the plugins (their output, `plugin=<id>`) and refused API calls, timestamps
    /// replaced by `<time>`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dockerd_log: Vec<String>,
}

#[derive(Serialize)]
struct Call {
    /// Index into `commands` of the command that caused the call.
    command: usize,
    plugin: String,
    method: String,
    request: Value,
    response: Value,
    status: u64,
    request_body: String,
    response_body: String,
    /// Only when it is not POST (dockerd always posts).
    #[serde(skip_serializing_if = "Option::is_none")]
    http_method: Option<String>,
    /// Only when they differ from the fixture's `request_headers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_headers: Option<Value>,
}

// ---------------------------------------------------------------------------------------
// Normalization: temp paths and 64-hex IDs become placeholders.

struct Normalizer {
    /// (path, placeholder), longest first.
    paths: Vec<(String, String)>,
    ids: Vec<String>,
}

impl Normalizer {
    fn new(mut paths: Vec<(String, String)>) -> Self {
        paths.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
        Self {
            paths,
            ids: Vec::new(),
        }
    }

    fn text(&mut self, text: &str) -> String {
        let mut text = text.to_owned();
        for (path, placeholder) in &self.paths {
            text = text.replace(path.as_str(), placeholder);
        }
        self.ids_in(&text)
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

    fn value(&mut self, value: Value) -> Value {
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

// ---------------------------------------------------------------------------------------
// Managed plugins: bundles, the static recorder, and what the host sees of them.

fn bundle_dir(tmp: &Path, name: &str) -> PathBuf {
    tmp.join(format!("{name}.bundle"))
}

/// The managed recorder's config.json: host network and PID namespace (so that
/// SO_PEERCRED still names dockerd's host pid), volumes under the propagated mount, and
/// the call log in a host directory bind-mounted at [`MANAGED_LOG_DIR`].
fn managed_config(spec: &PluginSpec, log_dir: &Path) -> Value {
    let mut entrypoint = vec![
        "/recorder".to_owned(),
        "--name".to_owned(),
        spec.name.to_owned(),
        "--socket-dir".to_owned(),
        SOCKET_DIR.to_owned(),
        "--root".to_owned(),
        PROPAGATED_MOUNT.to_owned(),
        "--log".to_owned(),
        format!("{MANAGED_LOG_DIR}/calls.jsonl"),
        "--print-env".to_owned(),
        "DEBUG".to_owned(),
    ];
    if spec.capabilities {
        entrypoint.push("--capabilities".to_owned());
    }
    if spec.bare_get {
        entrypoint.push("--bare-get".to_owned());
    }
    serde_json::json!({
        "description": "recorder: logs every call",
        "documentation": "https://example.invalid/recorder",
        "entrypoint": entrypoint,
        "env": [{
            "name": "DEBUG",
            "description": "printed by the recorder at start",
            "settable": ["value"],
            "value": "0"
        }],
        "interface": {"socket": format!("{}.sock", spec.name), "types": ["docker.volumedriver/1.0"]},
        "network": {"type": "host"},
        "pidhost": true,
        "propagatedmount": PROPAGATED_MOUNT,
        "mounts": [{
            "name": "log",
            "description": "where the recorder writes its call log",
            "source": log_dir.display().to_string(),
            "destination": MANAGED_LOG_DIR,
            "type": "bind",
            "options": ["rbind"]
        }]
    })
}

/// Writes `dir/config.json` and, with a recorder, `dir/rootfs/` (the recorder as
/// `/recorder` plus the directories it uses); checks the result with [`Bundle`].
fn write_bundle(dir: &Path, config: &Value, recorder: Option<PathBuf>) -> Result<(), String> {
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
fn write_bad_bundle(tmp: &Path, name: &str, kind: BadBundle) -> Result<(), String> {
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
            write_bundle(&dir, &volume_plugin(&entrypoint), Some(static_recorder()?))?;
            // dockerd 20.10 refuses a second plugin whose rootfs layer is byte for byte
            // one it already has (`content sha256:…: already exists`): differ from rec-m.
            let marker = dir.join("rootfs/bundle-name");
            fs::write(&marker, name).map_err(|e| io(&marker, e))
        }
    }
}

/// The static recorder built before entering the namespace.
fn static_recorder() -> Result<PathBuf, String> {
    std::env::var_os(STATIC_RECORDER_ENV)
        .map(PathBuf::from)
        .ok_or_else(|| format!("{STATIC_RECORDER_ENV} is not set"))
}

/// Builds the recorder as a static binary (managed plugins' rootfs holds nothing else)
/// into its own target dir, so the ordinary build keeps its RUSTFLAGS.
fn build_static_recorder() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // target/<profile>/examples/record_sequences -> target
    let target = exe
        .ancestors()
        .nth(3)
        .ok_or("record_sequences does not live in target/<profile>/examples")?
        .join(STATIC_TARGET_DIR);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--example",
            "recorder",
            "--target",
            STATIC_TARGET,
        ])
        .env("CARGO_TARGET_DIR", &target)
        .env(
            "RUSTFLAGS",
            "-C target-feature=+crt-static -C strip=symbols",
        )
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .map_err(|e| format!("running cargo build: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "building the static recorder failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let binary = target.join(STATIC_TARGET).join("debug/examples/recorder");
    let bytes = fs::read(&binary).map_err(|e| format!("{}: {e}", binary.display()))?;
    if dockerd::elf_has_interpreter(&bytes) {
        return Err(format!("{} is not static", binary.display()));
    }
    Ok(binary)
}

/// The pids of a managed recorder's processes (its argv[0] is `/recorder`).
fn managed_pids(name: &str) -> Vec<u32> {
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
fn kill_managed(plugin: &RunningPlugin) -> Result<String, String> {
    let before = managed_pids(&plugin.name);
    if before.is_empty() {
        return Err(format!("{KILL} {}: no plugin process", plugin.name));
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
        let now = managed_pids(&plugin.name);
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
fn host_files(d: &Dockerd, plugin: &RunningPlugin) -> Result<String, String> {
    let id = plugin
        .id
        .as_deref()
        .ok_or_else(|| format!("{HOST_FILES} {}: no plugin ID yet", plugin.name))?;
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

fn walk(path: &Path, lines: &mut Vec<String>) {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = fs::symlink_metadata(path) else {
        lines.push(format!("{} (missing)", path.display()));
        return;
    };
    let kind = meta.file_type();
    let kind = if kind.is_dir() {
        "dir"
    } else if kind.is_socket() {
        "socket"
    } else if kind.is_fifo() {
        "fifo"
    } else if kind.is_symlink() {
        "symlink"
    } else {
        "file"
    };
    lines.push(format!("{} ({kind})", path.display()));
    if kind == "dir"
        && let Ok(entries) = fs::read_dir(path)
    {
        let mut children: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        children.sort();
        for child in children {
            walk(&child, lines);
        }
    }
}

/// The lines dockerd logged about the plugins (`plugin=<id>` output, lines naming a
/// plugin) and refused API calls, without containerd's chatter; `time=` normalized.
fn interesting_log_lines(text: &str, plugins: &[RunningPlugin]) -> Vec<String> {
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
            let named = plugins.iter().filter(|p| p.managed).any(|p| {
                line.contains(p.name.as_str()) || p.id.as_ref().is_some_and(|id| line.contains(id))
            });
            output
                || ((named || line.contains("Handler for"))
                    && !NOISE.iter().any(|noise| line.contains(noise)))
        })
        .map(normalize_time)
        .collect()
}

/// `time="2026-…"` → `time="<time>"`.
fn normalize_time(line: &str) -> String {
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

// ---------------------------------------------------------------------------------------
// Running plugins and commands.

struct RunningPlugin {
    name: String,
    capabilities: bool,
    bare_get: bool,
    managed: bool,
    root: PathBuf,
    log: PathBuf,
    dir: PathBuf,
    offset: u64,
    starts: usize,
    process: Option<PluginProcess>,
    /// Managed: the config.json written into the bundle.
    config: Option<Value>,
    /// Managed: the plugin ID, once `docker plugin create` made it.
    id: Option<String>,
    /// Managed: the socket dockerd dials, once it was seen on the host.
    socket: Option<PathBuf>,
}

impl RunningPlugin {
    fn new(spec: &PluginSpec, dir: &Path) -> Result<Self, String> {
        let mut plugin = RunningPlugin {
            name: spec.name.to_owned(),
            capabilities: spec.capabilities,
            bare_get: spec.bare_get,
            managed: spec.managed,
            root: dir.join(spec.name),
            log: dir.join(format!("{}.calls.jsonl", spec.name)),
            dir: dir.to_path_buf(),
            offset: 0,
            starts: 0,
            process: None,
            config: None,
            id: None,
            socket: None,
        };
        if plugin.managed {
            // dockerd runs it: only the bundle is made here; its log comes back
            // through a bind mount of a host directory.
            let log_dir = dir.join(format!("{}.log", spec.name));
            fs::create_dir_all(&log_dir).map_err(|e| format!("{}: {e}", log_dir.display()))?;
            plugin.log = log_dir.join("calls.jsonl");
            let config = managed_config(spec, &log_dir);
            write_bundle(
                &bundle_dir(dir, spec.name),
                &config,
                Some(static_recorder()?),
            )?;
            plugin.config = Some(config);
        } else {
            plugin.start()?;
        }
        Ok(plugin)
    }

    fn start(&mut self) -> Result<(), String> {
        let binary = std::env::var_os(RECORDER_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| example_binary("recorder"));
        let mut command = Command::new(binary);
        command
            .args(["--name", &self.name, "--socket-dir", SOCKET_DIR, "--root"])
            .arg(&self.root)
            .arg("--log")
            .arg(&self.log);
        if self.capabilities {
            command.arg("--capabilities");
        }
        if self.bare_get {
            command.arg("--bare-get");
        }
        self.starts += 1;
        let stderr = self
            .dir
            .join(format!("{}.stderr.{}.log", self.name, self.starts));
        let socket = Path::new(SOCKET_DIR).join(format!("{}.sock", self.name));
        self.process = Some(PluginProcess::start(command, &socket, stderr)?);
        Ok(())
    }

    /// SIGKILL (the socket file stays behind, as after a crash), then start again.
    fn restart(&mut self) -> Result<(), String> {
        if self.managed {
            return Err(format!("{RESTART} {}: managed, use {KILL}", self.name));
        }
        if let Some(mut process) = self.process.take() {
            process.signal_and_wait("KILL")?;
        }
        self.start()
    }

    fn log_len(&self) -> u64 {
        fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }

    /// The complete log lines written since the last call.
    fn new_calls(&mut self) -> Result<Vec<Value>, String> {
        let mut file = match fs::File::open(&self.log) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("{}: {e}", self.log.display())),
        };
        let mut text = String::new();
        file.seek(SeekFrom::Start(self.offset))
            .and_then(|_| file.read_to_string(&mut text))
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        self.offset += complete as u64;
        text[..complete]
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                serde_json::from_str(line).map_err(|e| format!("bad log line {line:?}: {e}"))
            })
            .collect()
    }
}

/// Waits until no plugin log has grown for [`QUIET`].
/// With `dockerd_log`, that log must be quiet too (managed plugins' output reaches it
/// asynchronously).
fn settle(plugins: &[RunningPlugin], dockerd_log: Option<&Path>) {
    let sizes = || {
        let mut sizes = plugins
            .iter()
            .map(RunningPlugin::log_len)
            .collect::<Vec<_>>();
        if let Some(log) = dockerd_log {
            sizes.push(fs::metadata(log).map(|m| m.len()).unwrap_or(0));
        }
        sizes
    };
    let deadline = Instant::now() + SETTLE_LIMIT;
    let mut last = sizes();
    let mut changed = Instant::now();
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
        let now = sizes();
        if now != last {
            last = now;
            changed = Instant::now();
        } else if changed.elapsed() >= QUIET {
            return;
        }
    }
    eprintln!("  warning: plugin logs still growing after {SETTLE_LIMIT:?}");
}

fn display_command(args: &[&str]) -> String {
    if args.first().is_some_and(|a| a.starts_with('@')) {
        return args.join(" ");
    }
    let quoted: Vec<String> = args
        .iter()
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$\\".contains(c)) {
                format!("'{}'", a.replace('\'', r"'\''"))
            } else {
                (*a).to_owned()
            }
        })
        .collect();
    format!("docker {}", quoted.join(" "))
}

struct RawStep {
    command: String,
    exit_code: i32,
    stdout: String,
    stderr: String,
    duration_s: Option<u64>,
    dockerd_log: Vec<String>,
    /// (plugin index, log line) in plugin order, then log order.
    calls: Vec<(usize, Value)>,
}

/// What a step needs besides the command: the daemon, the plugins, and (for actions
/// with managed plugins) where dockerd's log was read up to.
struct Session<'a> {
    d: &'a Dockerd,
    dockerd_pid: Option<i64>,
    plugins: Vec<RunningPlugin>,
    tmp: PathBuf,
    /// `Some(offset)` when dockerd's log is collected.
    dockerd_log: Option<u64>,
}

impl Session<'_> {
    fn dockerd_log_path(&self) -> PathBuf {
        self.d.root().join("dockerd.log")
    }

    /// The complete lines dockerd logged since the last call.
    fn new_log_text(&mut self) -> String {
        let Some(offset) = self.dockerd_log else {
            return String::new();
        };
        let mut text = String::new();
        if let Ok(mut file) = fs::File::open(self.dockerd_log_path()) {
            let _ = file
                .seek(SeekFrom::Start(offset))
                .and_then(|_| file.read_to_string(&mut text));
        }
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        self.dockerd_log = Some(offset + complete as u64);
        text.truncate(complete);
        text
    }

    /// Learns managed plugins' IDs (after `docker plugin create`) and sockets.
    fn observe_managed(&mut self) {
        for plugin in self.plugins.iter_mut().filter(|p| p.managed) {
            if plugin.id.is_none() {
                let out =
                    self.d
                        .docker(&["plugin", "inspect", "--format", "{{.Id}}", &plugin.name]);
                if out.status.success() {
                    plugin.id = Some(String::from_utf8_lossy(&out.stdout).trim().to_owned());
                }
            }
            if plugin.socket.is_none()
                && let Some(id) = &plugin.id
            {
                let socket = Path::new(SOCKET_DIR)
                    .join(id)
                    .join(format!("{}.sock", plugin.name));
                if socket.exists() {
                    plugin.socket = Some(socket);
                }
            }
        }
    }

    /// Runs one command (or pseudo-command) and collects the calls it caused.
    fn run_step(&mut self, args: &[&str]) -> Result<RawStep, String> {
        let tmp = self.tmp.display().to_string();
        let args: Vec<String> = args.iter().map(|a| a.replace(TMP, &tmp)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let args = args.as_slice();
        let command = display_command(args);
        let started = Instant::now();
        let pseudo = args.first().copied().filter(|a| a.starts_with('@'));
        let (exit_code, stdout, stderr) = if let Some(pseudo) = pseudo {
            let name = args.get(1).copied().unwrap_or_default();
            let plugin = self
                .plugins
                .iter_mut()
                .find(|p| p.name == name)
                .ok_or_else(|| format!("{pseudo}: no plugin {name}"))?;
            let stdout = match pseudo {
                RESTART => {
                    plugin.restart()?;
                    String::new()
                }
                KILL => kill_managed(plugin)?,
                HOST_FILES => host_files(self.d, plugin)?,
                other => return Err(format!("unknown pseudo-command {other}")),
            };
            (0, stdout, String::new())
        } else {
            let out = self.d.docker(args);
            // The CLI's own log lines (`time="…" level=error msg="Can't add file … to
            // tar: io: read/write on closed pipe"` when dockerd refuses a plugin create
            // before the upload ends) come or not from run to run: left out.
            let stderr = String::from_utf8_lossy(&out.stderr)
                .lines()
                .filter(|line| !line.starts_with("time=\""))
                .collect::<Vec<_>>()
                .join("\n");
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).trim_end().to_owned(),
                stderr.trim_end().to_owned(),
            )
        };
        let ran = started.elapsed();
        let log_path = self.dockerd_log.map(|_| self.dockerd_log_path());
        settle(&self.plugins, log_path.as_deref());
        eprintln!(
            "  $ {command}  [exit {exit_code}, {:.1}s]",
            ran.as_secs_f64()
        );
        if self.dockerd_log.is_some() {
            self.observe_managed();
        }
        let log_text = self.new_log_text();
        let mut dockerd_log = interesting_log_lines(&log_text, &self.plugins);
        // dockerd reads a plugin's stdout and stderr from two pipes, so their relative
        // order varies from run to run: stdout lines (level=info) first, for stable
        // fixtures.
        dockerd_log.sort_by_key(|line| !(line.contains(" plugin=") && line.contains("level=info")));
        let mut calls = Vec::new();
        for (index, plugin) in self.plugins.iter_mut().enumerate() {
            for call in plugin.new_calls()? {
                let peer = call.get("peer_pid").and_then(Value::as_i64);
                if self.dockerd_pid.is_some() && peer != self.dockerd_pid {
                    eprintln!(
                        "  warning: ignoring a call to {} from pid {peer:?}, not our dockerd: {}",
                        plugin.name, call["path"]
                    );
                    continue;
                }
                calls.push((index, call));
            }
        }
        Ok(RawStep {
            command,
            exit_code,
            stdout,
            stderr,
            duration_s: (ran >= SLOW).then_some(ran.as_secs()),
            dockerd_log,
            calls,
        })
    }
}

fn headers_without_length(call: &Value) -> Value {
    let mut headers = call.get("request_headers").cloned().unwrap_or(Value::Null);
    if let Value::Object(map) = &mut headers {
        map.remove("content-length");
    }
    headers
}

struct Versions {
    dockerd: String,
    api: String,
    cli: String,
}

fn versions(d: &Dockerd) -> Versions {
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

fn record_action(action: &Action, out_dir: &Path, raw: Option<&Path>) -> Result<Fixture, String> {
    let temp = tempfile::Builder::new()
        .prefix("dps-record-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let t = Instant::now();
    let mut d = Dockerd::start()?;
    eprintln!("  dockerd up in {:.1}s", t.elapsed().as_secs_f64());
    let dockerd_pid = fs::read_to_string(d.root().join("pid"))
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok());
    if dockerd_pid.is_none() {
        eprintln!("  warning: no dockerd pid file; calls are not filtered by peer");
    }
    let versions = versions(&d);
    if action.image {
        d.import_busybox(IMAGE)?;
    }
    for (name, kind) in action.bundles {
        write_bad_bundle(temp.path(), name, *kind)?;
    }
    let plugins = action
        .plugins
        .iter()
        .map(|spec| RunningPlugin::new(spec, temp.path()))
        .collect::<Result<Vec<_>, _>>()?;
    let managed = action.plugins.iter().any(|p| p.managed);
    let mut session = Session {
        d: &d,
        dockerd_pid,
        plugins,
        tmp: temp.path().to_path_buf(),
        // From now on: the lines logged while the daemon started are not the action's.
        dockerd_log: managed
            .then(|| fs::metadata(d.root().join("dockerd.log")).map_or(0, |m| m.len())),
    };
    let mut run_all = |commands: &[&[&str]]| -> Result<Vec<RawStep>, String> {
        commands.iter().map(|args| session.run_step(args)).collect()
    };
    let setup = run_all(action.setup);
    let steps = setup.and_then(|setup| Ok((setup, run_all(action.commands)?)));
    let mut plugins = session.plugins;
    if let Some(raw) = raw
        && managed
    {
        fs::create_dir_all(raw).map_err(|e| format!("{}: {e}", raw.display()))?;
        let to = raw.join(format!("{}.dockerd.log", action.name));
        fs::copy(d.root().join("dockerd.log"), &to)
            .map_err(|e| format!("{}: {e}", to.display()))?;
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
            let to = raw.join(format!("{}.{}.jsonl", action.name, plugin.name));
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
        .filter(|p| !p.managed)
        .map(|p| (p.root.display().to_string(), "<root>".to_owned()))
        .collect();
    paths.push((temp.path().display().to_string(), "<tmp>".to_owned()));
    paths.push((d.root().display().to_string(), "<dockerd-root>".to_owned()));
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
                phase.calls.push(Call {
                    command: i,
                    plugin: plugins[index].name.clone(),
                    method: text("method"),
                    request: norm.value(field("request")),
                    response: norm.value(field("response")),
                    status: call.get("status").and_then(Value::as_u64).unwrap_or(0),
                    request_body: norm.text(&text("request_body")),
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
            name: p.name.clone(),
            capabilities: p.capabilities,
            bare_get: p.bare_get,
            managed: p.managed,
            id: p.id.as_deref().map(|id| norm.text(id)),
            socket: p
                .socket
                .as_ref()
                .map(|s| norm.text(&s.display().to_string())),
            config: p.config.clone().map(|c| norm.value(c)),
        })
        .collect();
    let setup = phase(setup, &mut norm);
    let main = phase(steps, &mut norm);
    let fixture = Fixture {
        action: action.name.to_owned(),
        description: action
            .description
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
        dockerd_version: versions.dockerd,
        api_version: versions.api,
        docker_cli_version: versions.cli,
        plugins: plugin_infos,
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

// ---------------------------------------------------------------------------------------
// The README summary.

const BEGIN: &str = "<!-- BEGIN GENERATED by examples/record_sequences.rs -->";
const END: &str = "<!-- END GENERATED -->";

/// `Get`, `Capabilities 404`, `Get Err`, `List[other-plugin]`: a call as the summary
/// shows it.
fn short(call: &Call, primary: &str) -> String {
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

fn summarize(phase_commands: &[String], calls: &[Call], primary: &str) -> String {
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

fn write_summary(out_dir: &Path, fixtures: &[Fixture]) -> Result<(), String> {
    let Some(first) = fixtures.first() else {
        return Ok(());
    };
    let mut generated = format!(
        "{BEGIN}\n\nRecorded from dockerd {} (API {}) with docker CLI {}.\n\n\
         | action | setup | calls per command |\n|---|---|---|\n",
        first.dockerd_version, first.api_version, first.docker_cli_version
    );
    for f in fixtures {
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

    let readme = out_dir.join("README.md");
    let text = match fs::read_to_string(&readme) {
        Ok(old) => match (old.find(BEGIN), old.find(END)) {
            (Some(b), Some(e)) if b < e => {
                format!("{}{generated}{}", &old[..b], &old[e + END.len()..])
            }
            _ => format!("{}\n{generated}\n", old.trim_end()),
        },
        Err(_) => format!("# dockerd call sequences\n\n{generated}\n"),
    };
    fs::write(&readme, text).map_err(|e| format!("{}: {e}", readme.display()))
}

// ---------------------------------------------------------------------------------------

struct Options {
    only: Option<Vec<String>>,
    out: PathBuf,
    isolate: bool,
    list: bool,
    raw: Option<PathBuf>,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        only: None,
        out: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dockerd-sequences"),
        isolate: true,
        list: false,
        raw: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--only" => {
                options.only = Some(value()?.split(',').map(str::to_owned).collect());
            }
            "--out" => options.out = PathBuf::from(value()?),
            "--no-isolate" => options.isolate = false,
            "--list" => options.list = true,
            "--raw" => options.raw = Some(PathBuf::from(value()?)),
            "-h" | "--help" => {
                return Err(
                    "usage: record_sequences [--only A,B] [--out DIR] [--list] [--no-isolate] \
                     [--raw DIR]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    if let Some(only) = &options.only {
        for name in only {
            if !ACTIONS.iter().any(|a| a.name == name) {
                return Err(format!("unknown action {name:?} (see --list)"));
            }
        }
    }
    Ok(options)
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
        Err(message) => {
            eprintln!("record_sequences: {message}");
            return ExitCode::from(2);
        }
    };
    if options.list {
        for action in ACTIONS {
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
        && ACTIONS
            .iter()
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
        let recorder = example_binary("recorder");
        return reexec_isolated(&recorder).unwrap_or_else(|message| {
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
    for action in ACTIONS.iter().filter(selected) {
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
    // The table lists every action, so only a complete run rewrites it.
    if options.only.is_none()
        && !failed
        && let Err(message) = write_summary(&options.out, &fixtures)
    {
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
