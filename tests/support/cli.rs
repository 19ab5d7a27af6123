//! The `cargo docker-plugin` binary run as a user runs it, for the packager's
//! end-to-end tests: one runner (arguments, standard input, environment), the
//! localvol bundle packaged once per test binary, the example plugins' bundles (each
//! from the binary of the tests' one build, `--binary`), and a managed localvol used
//! through a real dockerd.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use docker_plugin_sdk::harness::dockerd::Dockerd;
use libtest_mimic::Failed;

use super::process::{example_binary, package_binary};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_cargo-docker-plugin");

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// `Ok` when `condition` holds, else the failure `message` says.
pub fn check(condition: bool, message: impl FnOnce() -> String) -> Result<(), Failed> {
    if condition {
        Ok(())
    } else {
        Err(message().into())
    }
}

/// Where the packager tests write.
pub fn work_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("packager")
}

/// An empty `DOCKER_CONFIG`: no stored registry login leaks in.
pub fn empty_docker_config() -> PathBuf {
    static DOCKER_CONFIG: OnceLock<PathBuf> = OnceLock::new();
    DOCKER_CONFIG
        .get_or_init(|| {
            let dir = work_dir().join(format!("docker-config-{}", std::process::id()));
            fs::create_dir_all(&dir).expect("create DOCKER_CONFIG dir");
            dir
        })
        .clone()
}

/// `cargo docker-plugin ARGS` from the repository root, with the `e2e` profile
/// defined, `input` on standard input, an empty `DOCKER_CONFIG` unless `env` sets
/// one, and `env` added.
pub fn run_cli(args: &[&str], input: Option<&str>, env: &[(&str, OsString)]) -> Output {
    let mut command = Command::new(BIN);
    command
        .arg("docker-plugin")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_PROFILE_E2E_INHERITS", "dev")
        .env("CARGO_PROFILE_E2E_DEBUG", "false")
        .env("CARGO_PROFILE_E2E_STRIP", "symbols")
        .env_remove("SOURCE_DATE_EPOCH")
        .env("DOCKER_CONFIG", empty_docker_config())
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("run cargo-docker-plugin");
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(input.as_bytes()).expect("write stdin");
    }
    child
        .wait_with_output()
        .expect("wait for cargo-docker-plugin")
}

/// [`run_cli`] without input or environment.
pub fn cargo_docker_plugin(args: &[&str]) -> Output {
    run_cli(args, None, &[])
}

/// [`run_cli`] with `input` on standard input.
pub fn cargo_docker_plugin_with_input(args: &[&str], input: Option<&str>) -> Output {
    run_cli(args, input, &[])
}

/// The stdout of a run that must succeed; its whole output otherwise.
pub fn expect_ok(out: Output, args: &[&str]) -> Result<String, Failed> {
    if !out.status.success() {
        return Err(format!(
            "cargo docker-plugin {} failed ({}):\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `cargo docker-plugin ARGS`, which must succeed: its stdout.
pub fn ok(args: &[&str]) -> Result<String, Failed> {
    expect_ok(cargo_docker_plugin(args), args)
}

/// A copy of `binary` without its symbols and debug information (`strip -o`), made
/// once per test process: what the bundles package. The tests' build is a debug
/// build (localvol: about 100 MB, stripped about a tenth), and a bundle is copied,
/// archived, pushed and pulled.
pub fn stripped(binary: &Path) -> Result<PathBuf, Failed> {
    static STRIPPED: Mutex<BTreeMap<PathBuf, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut done = STRIPPED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(copy) = done.get(binary) {
        return Ok(copy.clone());
    }
    let dir = work_dir().join(format!("stripped-{}", std::process::id()));
    fs::create_dir_all(&dir)?;
    let copy = dir.join(binary.file_name().ok_or("a binary without a name")?);
    let out = Command::new("strip")
        .arg("-o")
        .arg(&copy)
        .arg(binary)
        .output()
        .map_err(|e| format!("strip (binutils): {e}"))?;
    check(out.status.success(), || {
        format!(
            "strip -o {} {}: {}",
            copy.display(),
            binary.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    done.insert(binary.to_path_buf(), copy.clone());
    Ok(copy)
}

/// `cargo docker-plugin package --example localvol --binary EXAMPLE --tar` into
/// `out`, where EXAMPLE is the localvol of the tests' one build ([`example_binary`],
/// [`stripped`]): packaging compiles nothing (the packager's own tests run the cargo
/// build path, on crates of their own).
pub fn package_localvol(out: &Path) -> Result<String, Failed> {
    let out = out.to_str().ok_or("non-UTF-8 path")?;
    let binary = stripped(&example_binary("localvol"))?;
    ok(&[
        "package",
        "--example",
        "localvol",
        "--binary",
        binary.to_str().ok_or("non-UTF-8 path")?,
        "--out",
        out,
        "--tar",
    ])
}

/// The localvol bundle, packaged once per run.
pub fn bundle() -> Result<PathBuf, Failed> {
    static BUNDLE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUNDLE
        .get_or_init(|| {
            let dir = work_dir().join(format!("localvol-{}", std::process::id()));
            package_localvol(&dir)
                .map(|_| dir)
                .map_err(|e| e.message().map(str::to_owned).unwrap_or_default())
        })
        .clone()
        .map_err(Failed::from)
}

/// Creates, enables and uses plugin `name` (already created or installed), then
/// disables and removes it.
pub fn use_managed_localvol(d: &Dockerd, image: &str, name: &str) -> Result<(), Failed> {
    let volume = unique("pkgvol");
    let driver = format!("{name}:latest");
    d.docker_ok(&["volume", "create", "-d", &driver, &volume])?;
    d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{volume}:/data"),
        image,
        "sh",
        "-c",
        "echo written through a packaged plugin > /data/hello",
    ])?;
    // The plugin answers with its own path, under its propagated mount; dockerd
    // binds that mount from DATA_ROOT/plugins/ID/propagated-mount on the host, so
    // the file the container wrote is in the plugin's storage there.
    let mountpoint = d.docker_ok(&["volume", "inspect", "--format", "{{.Mountpoint}}", &volume])?;
    let inside = mountpoint
        .strip_prefix("/mnt/volumes/")
        .ok_or_else(|| format!("mountpoint {mountpoint} is not under the propagated mount"))?;
    let id = d.docker_ok(&["plugin", "inspect", "--format", "{{.Id}}", name])?;
    let data_root = d.docker_ok(&["info", "--format", "{{.DockerRootDir}}"])?;
    let host = Path::new(&data_root)
        .join("plugins")
        .join(&id)
        .join("propagated-mount")
        .join(inside);
    let written = fs::read_to_string(host.join("hello"))
        .map_err(|e| format!("{}: {e}", host.join("hello").display()))?;
    check(written == "written through a packaged plugin\n", || {
        format!("{}/hello holds {written:?}", host.display())
    })?;
    let ls = d.docker_ok(&["volume", "ls", "--format", "{{.Driver}} {{.Name}}"])?;
    check(ls.contains(&format!("{driver} {volume}")), || ls.clone())?;
    d.docker_ok(&["volume", "rm", &volume])?;
    d.docker_ok(&["plugin", "disable", name])?;
    d.docker_ok(&["plugin", "rm", name])?;
    let plugins = d.docker_ok(&["plugin", "ls", "--format", "{{.Name}}"])?;
    check(!plugins.contains(name), || plugins.clone())
}

/// `cargo docker-plugin package -p MEMBER --binary BINARY` into a directory of this
/// run, where BINARY is the member's binary from the tests' one build
/// ([`package_binary`], [`stripped`]): the bundle. Packaging compiles nothing (with
/// `--profile e2e` instead, each member compiled the SDK again with its features).
pub fn package_member(member: &str) -> Result<PathBuf, Failed> {
    package_member_printing(member).map(|(dir, _)| dir)
}

/// [`package_member`], and what the packager printed.
pub fn package_member_printing(member: &str) -> Result<(PathBuf, String), Failed> {
    let dir = work_dir().join(format!("{member}-{}", std::process::id()));
    let out = dir.to_str().ok_or("non-UTF-8 path")?;
    let binary = stripped(&package_binary(member, member))?;
    let binary = binary.to_str().ok_or("non-UTF-8 path")?;
    let printed = ok(&["package", "-p", member, "--binary", binary, "--out", out])?;
    Ok((dir, printed))
}
