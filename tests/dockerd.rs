//! End to end against a REAL dockerd: the `localvol` example plugin, run as its own
//! process, is discovered by a private dockerd (see `support/dockerd.rs`) and used
//! through the docker CLI: volume create/ls/inspect/rm, `docker run -v`, a TCP plugin
//! found through its `.spec` file, and SIGTERM cleanup.
//!
//! One dockerd serves the whole run; every test uses its own plugin and volume names.
//! dockerd needs root. When it cannot start, the tests fail if `CI=true` (or
//! `DPS_REQUIRE_DOCKERD=1`) and are reported as ignored, with the reason, otherwise.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use docker_plugin_sdk::harness::dockerd::Dockerd;
use docker_plugin_sdk::harness::{Discovery, Engine, PluginProcess};
use libtest_mimic::{Arguments, Failed};
use support::process::example_binary;
use support::shared_dockerd::{DockerdTest, ImageOnce, SharedDockerd};

/// Where dockerd looks for legacy plugin sockets and spec files.
const SOCKET_DIR: &str = "/run/docker/plugins";
const SPEC_DIR: &str = "/etc/docker/plugins";
const IMAGE: &str = "dps-busybox:e2e";

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A name no other test (or earlier run) uses.
fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// The example plugin `localvol`, serving volumes under its own temp root.
struct LocalVol {
    name: String,
    root: PathBuf,
    process: PluginProcess,
    _dir: tempfile::TempDir,
}

impl LocalVol {
    fn start_unix() -> Result<Self, Failed> {
        let name = unique("dps-localvol");
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("volumes");
        let socket = Path::new(SOCKET_DIR).join(format!("{name}.sock"));
        let command = Self::command(&name, &root);
        let process = PluginProcess::start(command, &socket, dir.path().join("plugin.log"))?;
        Ok(Self {
            name,
            root,
            process,
            _dir: dir,
        })
    }

    /// The command serving plugin `name` on /run/docker/plugins, volumes under `root`.
    fn command(name: &str, root: &Path) -> Command {
        let mut command = Command::new(example_binary("localvol"));
        command
            .args(["--name", name, "--socket-dir", SOCKET_DIR, "--root"])
            .arg(root)
            .env("RUST_LOG", "debug");
        command
    }

    fn data(&self, volume: &str) -> PathBuf {
        self.root.join(volume).join("data")
    }
}

fn check(condition: bool, message: impl FnOnce() -> String) -> Result<(), Failed> {
    if condition {
        Ok(())
    } else {
        Err(message().into())
    }
}

fn volume_lifecycle(d: &Dockerd) -> Result<(), Failed> {
    let plugin = LocalVol::start_unix()?;
    let volume = unique("vol");
    let created = d.docker_ok(&[
        "volume",
        "create",
        "-d",
        &plugin.name,
        "-o",
        "mode=0750",
        &volume,
    ])?;
    check(created == volume, || format!("create printed {created:?}"))?;
    let data = plugin.data(&volume);
    let mode = fs::metadata(&data)?.permissions().mode() & 0o7777;
    check(mode == 0o750, || {
        format!("{} has mode {mode:o}, want 750", data.display())
    })?;

    let listed = d.docker_ok(&[
        "volume",
        "ls",
        "--filter",
        &format!("driver={}", plugin.name),
        "--format",
        "{{.Driver}} {{.Name}}",
    ])?;
    check(listed == format!("{} {volume}", plugin.name), || {
        format!("ls printed {listed:?}")
    })?;

    let inspected = d.docker_ok(&[
        "volume",
        "inspect",
        "--format",
        "{{.Driver}}|{{.Mountpoint}}|{{.Status.options.mode}}|{{.Scope}}|{{.CreatedAt}}",
        &volume,
    ])?;
    let fields: Vec<&str> = inspected.split('|').collect();
    check(fields.len() == 5, || {
        format!("inspect printed {inspected:?}")
    })?;
    check(fields[0] == plugin.name, || format!("driver {}", fields[0]))?;
    check(Path::new(fields[1]) == data, || {
        format!("mountpoint {} != {}", fields[1], data.display())
    })?;
    check(fields[2] == "0750", || {
        format!("Status.options.mode {}", fields[2])
    })?;
    check(fields[3] == "local", || format!("scope {}", fields[3]))?;
    check(fields[4].ends_with('Z') && fields[4].len() == 20, || {
        format!("CreatedAt {}", fields[4])
    })?;

    d.docker_ok(&["volume", "rm", &volume])?;
    check(!data.exists(), || "volume rm left the backing dir".into())?;
    let err = d.docker_err(&["volume", "inspect", &volume])?;
    check(err.contains("no such volume"), || {
        format!("inspect after rm said {err:?}")
    })?;

    // The plugin logged a span per call, with the volume name.
    let log = plugin.process.log_text();
    for method in [
        "VolumeDriver.Create",
        "VolumeDriver.Get",
        "VolumeDriver.List",
        "VolumeDriver.Remove",
    ] {
        check(log.contains(method), || {
            format!("plugin log lacks {method}:\n{log}")
        })?;
    }
    check(log.contains(&volume), || {
        format!("plugin log lacks the volume name:\n{log}")
    })?;
    Ok(())
}

/// `docker volume create -d PLUGIN -o OPTION VOLUME`, which must fail: its stderr.
fn refused_create(
    d: &Dockerd,
    plugin: &LocalVol,
    volume: &str,
    option: &str,
) -> Result<String, Failed> {
    let args = ["volume", "create", "-d", &plugin.name, "-o", option, volume];
    Ok(d.docker_err(&args)?)
}

fn wrong_option_is_refused(d: &Dockerd) -> Result<(), Failed> {
    let plugin = LocalVol::start_unix()?;
    let volume = unique("vol");
    let err = refused_create(d, &plugin, &volume, "colour=blue")?;
    check(err.contains("unknown option `colour`"), || {
        format!("stderr {err:?}")
    })?;
    check(!plugin.root.join(&volume).exists(), || {
        "a refused volume left a dir".into()
    })?;
    let err = refused_create(d, &plugin, &volume, "mode=999")?;
    check(err.contains("option `mode` must be"), || {
        format!("stderr {err:?}")
    })?;
    Ok(())
}

/// A Create the plugin refuses reads the same from the harness as from dockerd, word
/// for word: `create VOLUME: VolumeDriver.Create: ERR`, without the plugin's name
/// (moby v20.10.24 `volume/service/store.go` `OpErr`, `pkg/plugins/errors.go`
/// `statusError`). Both ask the same plugin process.
fn a_refused_create_reads_the_same_from_the_harness_as_from_dockerd(
    d: &Dockerd,
) -> Result<(), Failed> {
    let plugin = LocalVol::start_unix()?;
    let volume = unique("vol");
    let from_dockerd = refused_create(d, &plugin, &volume, "colour=blue")?;
    let engine = Engine::new(Discovery::system());
    let created = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(
            engine
                .volumes()
                .create(&plugin.name, &volume, [("colour", "blue")]),
        );
    let from_harness = match created {
        Ok(_) => return Err("the harness created the volume".into()),
        Err(err) => err.to_string(),
    };
    let words = format!(
        "create {volume}: VolumeDriver.Create: invalid options: unknown option `colour` \
         (valid options: mode)"
    );
    check(from_harness == words, || {
        format!("the harness said {from_harness:?}")
    })?;
    check(
        from_dockerd.trim_end() == format!("Error response from daemon: {words}"),
        || format!("docker said {from_dockerd:?}"),
    )?;
    Ok(())
}

fn container_writes_through_the_plugin(d: &Dockerd, image: &ImageOnce) -> Result<(), Failed> {
    image.ensure(d)?;
    let plugin = LocalVol::start_unix()?;
    let volume = unique("vol");
    // The volume does not exist yet: dockerd creates it through --volume-driver.
    d.docker_ok(&[
        "run",
        "--rm",
        "--volume-driver",
        &plugin.name,
        "-v",
        &format!("{volume}:/data"),
        IMAGE,
        "sh",
        "-c",
        "echo hello from a container > /data/greeting && ls /data",
    ])?;
    let written = fs::read_to_string(plugin.data(&volume).join("greeting"))?;
    check(written == "hello from a container\n", || {
        format!("backing file holds {written:?}")
    })?;
    // A second container sees the file; unmounts balanced the mounts, so rm works.
    let read = d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{volume}:/data:ro"),
        IMAGE,
        "cat",
        "/data/greeting",
    ])?;
    check(read == "hello from a container", || {
        format!("second container read {read:?}")
    })?;
    let mounts = d.docker_ok(&[
        "volume",
        "inspect",
        "--format",
        "{{.Status.mounts}}",
        &volume,
    ])?;
    check(mounts == "0", || {
        format!("mounts after both containers exited: {mounts}")
    })?;
    d.docker_ok(&["volume", "rm", &volume])?;
    let log = plugin.process.log_text();
    check(
        log.contains("VolumeDriver.Mount") && log.contains("VolumeDriver.Unmount"),
        || format!("no mount calls in log:\n{log}"),
    )?;
    Ok(())
}

fn tcp_plugin_found_through_spec_file(d: &Dockerd) -> Result<(), Failed> {
    let name = unique("dps-tcpvol");
    let dir = tempfile::tempdir()?;
    let spec = Path::new(SPEC_DIR).join(format!("{name}.spec"));
    let mut command = Command::new(example_binary("localvol"));
    command
        .args([
            "--name",
            &name,
            "--tcp",
            "127.0.0.1:0",
            "--spec-dir",
            SPEC_DIR,
            "--root",
        ])
        .arg(dir.path().join("volumes"));
    let spec_for_wait = spec.clone();
    let mut process =
        PluginProcess::start_with(command, dir.path().join("plugin.log"), move || {
            spec_for_wait.exists()
        })?;
    let url = fs::read_to_string(&spec)?;
    check(url.starts_with("tcp://127.0.0.1:"), || {
        format!("spec holds {url:?}")
    })?;
    let volume = unique("vol");
    d.docker_ok(&["volume", "create", "-d", &name, &volume])?;
    check(
        dir.path()
            .join("volumes")
            .join(&volume)
            .join("data")
            .is_dir(),
        || "no backing dir".into(),
    )?;
    d.docker_ok(&["volume", "rm", &volume])?;
    let status = process.terminate()?;
    check(status.success(), || format!("plugin exited with {status}"))?;
    check(!spec.exists(), || {
        "spec file left behind after SIGTERM".into()
    })?;
    Ok(())
}

fn sigterm_removes_the_socket_and_a_restart_serves_again(d: &Dockerd) -> Result<(), Failed> {
    let mut plugin = LocalVol::start_unix()?;
    let volume = unique("vol");
    d.docker_ok(&["volume", "create", "-d", &plugin.name, &volume])?;
    let socket = Path::new(SOCKET_DIR).join(format!("{}.sock", plugin.name));
    let status = plugin.process.terminate()?;
    check(status.success(), || format!("plugin exited with {status}"))?;
    check(!socket.exists(), || {
        format!("{} left behind", socket.display())
    })?;
    // A new process with the same name and root takes over: dockerd reconnects to the
    // socket and finds the volume the first one created.
    let command = LocalVol::command(&plugin.name, &plugin.root);
    let _restarted =
        PluginProcess::start(command, &socket, plugin._dir.path().join("restarted.log"))?;
    let mountpoint = d.docker_ok(&["volume", "inspect", "--format", "{{.Mountpoint}}", &volume])?;
    check(Path::new(&mountpoint) == plugin.data(&volume), || {
        format!("mountpoint {mountpoint}")
    })?;
    d.docker_ok(&["volume", "rm", &volume])?;
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let tests: Vec<(&str, DockerdTest)> = vec![
        ("volume_lifecycle", |d, _| volume_lifecycle(d)),
        ("wrong_option_is_refused", |d, _| wrong_option_is_refused(d)),
        (
            "a_refused_create_reads_the_same_from_the_harness_as_from_dockerd",
            |d, _| a_refused_create_reads_the_same_from_the_harness_as_from_dockerd(d),
        ),
        (
            "container_writes_through_the_plugin",
            container_writes_through_the_plugin,
        ),
        ("tcp_plugin_found_through_spec_file", |d, _| {
            tcp_plugin_found_through_spec_file(d)
        }),
        (
            "sigterm_removes_the_socket_and_a_restart_serves_again",
            |d, _| sigterm_removes_the_socket_and_a_restart_serves_again(d),
        ),
    ];
    let shared = SharedDockerd::start(&args, "dockerd e2e", IMAGE);
    let trials = tests
        .into_iter()
        .map(|(name, test)| shared.trial(name, test))
        .collect::<Vec<_>>();
    let conclusion = libtest_mimic::run(&args, trials);
    shared.stop();
    conclusion.exit();
}
