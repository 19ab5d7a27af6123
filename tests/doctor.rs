//! `cargo docker-plugin doctor`, the real binary: one broken bundle per cause, each
//! finding with its fix (wrong architecture, missing library, a crash at start, no
//! `/run/docker/plugins`, no propagated-mount dir, FUSE without `/dev/fuse`, a
//! network client without a network), sockets that are missing, not sockets or
//! stale; and, against a real dockerd, a legacy plugin shadowing a managed plugin
//! of the same name, the managed plugin's lines from dockerd's log, and `call NAME`
//! reaching the managed plugin through the engine.

mod support;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use docker_plugin_sdk::harness::PluginProcess;
use docker_plugin_sdk::harness::dockerd::Dockerd;
use docker_plugin_sdk::managed::config::PluginConfig;
use docker_plugin_sdk::package::arch::{self, Arch};
use docker_plugin_sdk::package::rootfs::BundleWriter;
use libtest_mimic::Failed;
use support::cli::{bundle, check, ok, run_cli, unique};
use support::process::example_binary;
use support::shared_dockerd::{DockerdTest, ImageOnce, PlainTest, run_trials};
use support::wait::wait_for;

const IMAGE: &str = "dps-busybox:doctor";

/// The config of a localvol bundle listening on `dr.sock`, with `extra` keys.
fn config(extra: serde_json::Value) -> PluginConfig {
    let mut value = serde_json::json!({
        "description": "doctor test",
        "entrypoint": ["/localvol", "--name", "dr", "--root", "/mnt/volumes"],
        "interface": {"socket": "dr.sock", "types": ["docker.volumedriver/1.0"]},
        "propagatedmount": "/mnt/volumes",
    });
    if let (Some(base), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    PluginConfig::from_value(value).expect("config")
}

/// A working localvol bundle in `dir`, changed by `edit` before it is written.
fn localvol_bundle(
    dir: &Path,
    extra: serde_json::Value,
    edit: impl FnOnce(BundleWriter) -> BundleWriter,
) -> PathBuf {
    let writer =
        BundleWriter::new(dir, config(extra)).program("/localvol", example_binary("localvol"));
    edit(writer).write().expect("bundle");
    dir.to_path_buf()
}

/// `doctor TARGET`, with a start window that a loaded CI machine does not miss (no
/// test waits it out: an entrypoint that never listens is not among them).
fn doctor(target: &Path, extra: &[&str]) -> Output {
    let target = target.to_str().expect("path");
    let mut args = vec!["doctor", target, "--timeout", "60"];
    args.extend(extra);
    run_cli(&args, None, &[])
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn a_healthy_bundle_has_no_problem() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let bundle = localvol_bundle(&dir.path().join("ok"), serde_json::json!({}), |w| w);
    let out = doctor(&bundle, &[]);
    let text = stdout(&out);
    check(out.status.success(), || text.clone())?;
    for line in [
        "ok       config: config.json is valid",
        &format!(
            "ok       architecture: /localvol is built for {}, as this host",
            Arch::host()
        ),
        "ok       socket dir: /run/docker/plugins is in the rootfs",
        "ok       propagated mount: /mnt/volumes is in the rootfs",
        "ok       start: the entrypoint listened on /run/docker/plugins/dr.sock after",
        "no problem found",
    ] {
        check(text.contains(line), || format!("{line:?} missing:\n{text}"))?;
    }
    // The tarball `package --tar` writes is a bundle too.
    let tarball = dir.path().join("ok.tar.gz");
    docker_plugin_sdk::package::archive::Archive::of_dir(&bundle, &Default::default())?
        .write_to(&tarball)?;
    let out = doctor(&tarball, &["--no-start"]);
    check(out.status.success(), || stdout(&out))
}

fn a_bundle_for_another_architecture() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let foreign = if Arch::host() == Arch::Arm64 {
        Arch::Amd64
    } else {
        Arch::Arm64
    };
    let elf = dir.path().join("localvol-foreign");
    fs::write(&elf, arch::minimal_elf(foreign))?;
    let bundle = BundleWriter::new(dir.path().join("b"), config(serde_json::json!({})))
        .arch(foreign)
        .file("/localvol", &elf)
        .write()?;
    let out = doctor(bundle.bundle.dir(), &[]);
    let text = stdout(&out);
    let host = Arch::host();
    check(!out.status.success(), || text.clone())?;
    check(
        text.contains(&format!(
            "problem  architecture: /localvol is built for {foreign}, this host is {host}: dockerd fails to start it with `exec format error`\n         fix: install the {host} build of the plugin (cargo docker-plugin package --target {}, pushed with --arch-tags)",
            host.rust_target()
        )),
        || text.clone(),
    )
}

/// Removes the rootfs files named `name` (wherever the packager put them).
fn remove_named(rootfs: &Path, name: &str) -> Result<Vec<PathBuf>, Failed> {
    let mut removed = Vec::new();
    let mut stack = vec![rootfs.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if fs::symlink_metadata(&path)?.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == name) {
                fs::remove_file(&path)?;
                removed.push(path);
            }
        }
    }
    Ok(removed)
}

fn a_bundle_missing_a_library() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let bundle = localvol_bundle(&dir.path().join("b"), serde_json::json!({}), |w| w);
    let removed = remove_named(&bundle.join("rootfs"), "libgcc_s.so.1")?;
    check(!removed.is_empty(), || {
        "localvol needs libgcc_s.so.1".into()
    })?;
    let out = doctor(&bundle, &[]);
    let text = stdout(&out);
    check(!out.status.success(), || text.clone())?;
    check(
        text.contains("problem  libraries: /localvol needs libgcc_s.so.1, not in the rootfs")
            && text.contains("fix: package again with cargo docker-plugin package (it copies each program's libraries), or add the missing files with `files`"),
        || text.clone(),
    )?;
    // Started, it fails as dockerd would see it fail: in the loader.
    check(
        text.contains("problem  start: the entrypoint exited (exit status: 127)")
            && text.contains("error while loading shared libraries: libgcc_s.so.1"),
        || text.clone(),
    )
}

fn a_bundle_whose_entrypoint_crashes_at_start() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let bundle = BundleWriter::new(
        dir.path().join("b"),
        config(serde_json::json!({
            "entrypoint": ["/bin/busybox", "sh", "-c", "echo cannot read /etc/dr.conf >&2; exit 3"],
        })),
    )
    .program("/bin/busybox", "/bin/busybox")
    .write()?;
    let out = doctor(bundle.bundle.dir(), &[]);
    let text = stdout(&out);
    check(!out.status.success(), || text.clone())?;
    check(
        text.contains("problem  start: the entrypoint exited (exit status: 3)")
            && text.contains("without listening on /run/docker/plugins/dr.sock; its last lines: cannot read /etc/dr.conf")
            && text.contains("fix: fix what it says (dockerd logs the same lines with plugin=<ID>"),
        || text.clone(),
    )
}

fn a_bundle_without_its_mount_points() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let bundle = localvol_bundle(&dir.path().join("b"), serde_json::json!({}), |w| w);
    fs::remove_dir_all(bundle.join("rootfs/run"))?;
    fs::remove_dir_all(bundle.join("rootfs/mnt"))?;
    let out = doctor(&bundle, &["--no-start"]);
    let text = stdout(&out);
    for line in [
        "warning  socket dir: the rootfs has no /run/docker/plugins, where dockerd binds the plugin's socket directory",
        "fix: create /run/docker/plugins in the rootfs (cargo docker-plugin package does) and listen there",
        "warning  propagated mount: the rootfs has no /mnt/volumes (propagatedMount)",
        "fix: create /mnt/volumes in the rootfs (cargo docker-plugin package does)",
    ] {
        check(text.contains(line), || format!("{line:?} missing:\n{text}"))?;
    }
    Ok(())
}

fn a_bundle_with_fuse_but_no_dev_fuse() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let bundle = localvol_bundle(&dir.path().join("b"), serde_json::json!({}), |w| {
        w.host_program("/usr/bin/fusermount3")
            .host_program("/usr/bin/ssh")
    });
    let out = doctor(&bundle, &["--no-start"]);
    let text = stdout(&out);
    check(!out.status.success(), || text.clone())?;
    check(
        text.contains("problem  devices: the rootfs holds FUSE (/usr/bin/fusermount3) but the config does not ask for the device /dev/fuse (dockerd's device rules deny it: `fuse: device not found`) nor CAP_SYS_ADMIN")
            && text.contains("fix: add `linux = { capabilities = [\"CAP_SYS_ADMIN\"], devices = [{ path = \"/dev/fuse\" }] }` to the metadata"),
        || text.clone(),
    )?;
    check(
        text.contains("warning  network: the rootfs holds network clients (/usr/bin/ssh) but the plugin gets only `lo`")
            && text.contains("fix: add `network = \"host\"` to the metadata if they reach other hosts"),
        || text.clone(),
    )?;
    // Asked for, both are fine.
    let bundle = localvol_bundle(
        &dir.path().join("c"),
        serde_json::json!({
            "network": {"type": "host"},
            "linux": {"capabilities": ["CAP_SYS_ADMIN"], "devices": [{"path": "/dev/fuse"}]},
        }),
        |w| {
            w.host_program("/usr/bin/fusermount3")
                .host_program("/usr/bin/ssh")
        },
    );
    let out = doctor(&bundle, &["--no-start"]);
    let text = stdout(&out);
    check(
        out.status.success() && text.contains("ok       devices: FUSE is shipped"),
        || text.clone(),
    )?;
    check(!text.contains("network:"), || text.clone())
}

fn sockets_that_do_not_answer() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("gone.sock");
    let out = doctor(&missing, &[]);
    let text = stdout(&out);
    check(
        !out.status.success()
            && text.contains(&format!(
                "problem  socket: {} does not exist: the plugin is not running, or listens elsewhere",
                missing.display()
            )),
        || text.clone(),
    )?;
    // A socket left behind by a process that is gone.
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale)?);
    let out = doctor(&stale, &[]);
    let text = stdout(&out);
    check(
        !out.status.success()
            && text.contains(&format!(
                "problem  socket: {} does not answer",
                stale.display()
            )),
        || text.clone(),
    )
}

fn call_help_says_where_sockets_are() -> Result<(), Failed> {
    let help = ok(&["call", "--help"])?;
    check(
        help.contains("a managed plugin (docker plugin install/create) on /run/docker/plugins/<plugin ID>/<its config's socket>"),
        || help.clone(),
    )
}

fn a_legacy_plugin_shadows_a_managed_one(d: &Dockerd, image: &ImageOnce) -> Result<(), Failed> {
    image.ensure(d)?;
    let name = unique("dpsshadow");
    let legacy_root = tempfile::tempdir()?;
    let socket_dir = Path::new("/run/docker/plugins");
    fs::create_dir_all(socket_dir)?;
    let socket = socket_dir.join(format!("{name}.sock"));
    let mut command = Command::new(example_binary("localvol"));
    command
        .args(["--name", &name, "--root"])
        .arg(legacy_root.path())
        .arg("--socket-dir")
        .arg(socket_dir);
    let mut legacy = PluginProcess::start(command, &socket, legacy_root.path().join("legacy.log"))?;
    // dockerd uses the legacy plugin once: it keeps its name for its life.
    let volume = unique("shadowvol");
    d.docker_ok(&["volume", "create", "-d", &name, &volume])?;
    let bundle = bundle()?;
    d.docker_ok(&["plugin", "create", &name, bundle.to_str().ok_or("path")?])?;
    d.docker_ok(&["plugin", "enable", &name])?;
    let id = d.docker_ok(&["plugin", "inspect", "--format", "{{.Id}}", &name])?;
    // The plugin's lines reach dockerd's log through goroutines of dockerd's own
    // (moby v20.10.24 `plugin/executor/containerd/containerd.go` `attachStreamsFunc`),
    // some time after `docker plugin enable` returned: the doctor is asked once its
    // first line is there, as a user would ask it about a plugin that started.
    let tag = format!("plugin={id}");
    wait_for("the plugin's first line in dockerd's log", || {
        fs::read_to_string(d.log())
            .is_ok_and(|log| {
                log.lines()
                    .any(|l| l.contains(&tag) && l.contains("plugin listening"))
            })
            .then_some(())
    })
    .map_err(|e| format!("{e}:\n{}", d.log_tail(40)))?;
    let env: [(&str, OsString); 1] = [("DOCKER_HOST", d.host().into())];
    let log = d.log().to_str().ok_or("path")?.to_owned();
    let args = ["doctor", name.as_str(), "--dockerd-log", log.as_str()];
    let out = run_cli(&args, None, &env);
    let text = stdout(&out);
    check(!out.status.success(), || text.clone())?;
    for line in [
        format!("ok       engine: {name}:latest is installed (ID {id}), enabled"),
        format!(
            "problem  shadowed: a legacy plugin {name} ({}) has the same name: once dockerd has used it, `-d {name}` reaches it, not the managed {name}:latest, until dockerd restarts",
            socket.display()
        ),
        format!(
            "fix: remove the legacy plugin ({}) and restart dockerd, or name the managed one with its tag (-d {name}:latest)",
            socket.display()
        ),
        format!(
            "problem  shadowed: dockerd has cached a legacy driver named {name} (docker info lists it)"
        ),
        "ok       log: its last lines in dockerd's log:".to_owned(),
        format!("plugin={id}"),
        "plugin listening".to_owned(),
    ] {
        check(text.contains(&line), || {
            format!("{line:?} missing:\n{text}")
        })?;
    }
    // Gone, the legacy plugin still shadows the managed one from dockerd's cache.
    legacy.terminate()?;
    let out = run_cli(&args, None, &env);
    let text = stdout(&out);
    check(
        !text.contains("has the same name") && text.contains("dockerd has cached a legacy driver"),
        || text.clone(),
    )?;
    // `call NAME` reaches the managed plugin through the engine, not the legacy name.
    let args = [
        "call",
        name.as_str(),
        "VolumeDriver.Create",
        r#"{"Name":"viacall"}"#,
    ];
    support::cli::expect_ok(run_cli(&args, None, &env), &args)?;
    let data_root = d.docker_ok(&["info", "--format", "{{.DockerRootDir}}"])?;
    let created = Path::new(&data_root)
        .join("plugins")
        .join(&id)
        .join("propagated-mount/viacall");
    check(created.is_dir(), || {
        format!("{} missing", created.display())
    })?;
    check(!legacy_root.path().join("viacall").exists(), || {
        "the legacy plugin got it".into()
    })?;
    d.docker_ok(&["plugin", "disable", "-f", &name])?;
    d.docker_ok(&["plugin", "rm", "-f", &name])?;
    Ok(())
}

fn main() {
    let plain: Vec<(&str, PlainTest)> = vec![
        (
            "a_healthy_bundle_has_no_problem",
            a_healthy_bundle_has_no_problem,
        ),
        (
            "a_bundle_for_another_architecture",
            a_bundle_for_another_architecture,
        ),
        ("a_bundle_missing_a_library", a_bundle_missing_a_library),
        (
            "a_bundle_whose_entrypoint_crashes_at_start",
            a_bundle_whose_entrypoint_crashes_at_start,
        ),
        (
            "a_bundle_without_its_mount_points",
            a_bundle_without_its_mount_points,
        ),
        (
            "a_bundle_with_fuse_but_no_dev_fuse",
            a_bundle_with_fuse_but_no_dev_fuse,
        ),
        ("sockets_that_do_not_answer", sockets_that_do_not_answer),
        (
            "call_help_says_where_sockets_are",
            call_help_says_where_sockets_are,
        ),
    ];
    let with_dockerd: Vec<(&str, DockerdTest)> = vec![(
        "a_legacy_plugin_shadows_a_managed_one",
        a_legacy_plugin_shadows_a_managed_one,
    )];
    run_trials("doctor e2e", IMAGE, plain, with_dockerd)
}
