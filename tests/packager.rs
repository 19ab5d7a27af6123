//! `cargo docker-plugin`, the real binary, end to end.
//!
//! - Without dockerd: the localvol bundle's `config.json` against its golden file,
//!   byte-identical tarballs from two runs, a metadata typo named, `inspect`, `spec`,
//!   `systemd`, and `call` against the running example plugin.
//! - Against a REAL private dockerd (see `support/dockerd.rs`): the bundle goes
//!   through `docker plugin create` / `enable`, serves `docker volume create -d` and
//!   `docker run -v`, then `disable` / `rm`; and, with Debian's `docker-registry` on
//!   loopback, `push` then `docker plugin install` pulls, enables and serves it.
//!
//! The localvol bundle packages the example of the tests' one build (`--binary`,
//! stripped so the bundle stays small): nothing compiles while the tests run; the
//! cargo build path (`-p`, `--target`, `--target-dir`, cargo's flags) is run on a
//! small workspace of two crates of their own. One dockerd serves the whole run;
//! every test uses its own plugin and volume names. When dockerd cannot start, its
//! tests fail if `CI=true` (or `DPS_REQUIRE_DOCKERD=1`) and are reported as ignored
//! otherwise.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use docker_plugin_sdk::harness::PluginProcess;
use docker_plugin_sdk::harness::dockerd::Dockerd;
use docker_plugin_sdk::package::arch::{self, Arch};
use docker_plugin_sdk::package::elf::ElfInfo;
use libtest_mimic::Failed;
use support::cli::{
    bundle, cargo_docker_plugin, check, ok, package_localvol, stripped, unique, work_dir,
};
use support::process::example_binary;
use support::shared_dockerd::{DockerdTest, ImageOnce, PlainTest, run_trials};

const IMAGE: &str = "dps-busybox:pkg";

fn use_managed_localvol(d: &Dockerd, name: &str) -> Result<(), Failed> {
    support::cli::use_managed_localvol(d, IMAGE, name)
}

fn localvol_config_matches_golden() -> Result<(), Failed> {
    let dir = bundle()?;
    let got = fs::read_to_string(dir.join("config.json"))?;
    let golden =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/package/localvol.config.json");
    if std::env::var("DPS_UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        fs::write(&golden, &got)?;
    }
    let want = fs::read_to_string(&golden)?;
    check(got == want, || {
        format!(
            "config.json differs from {} (DPS_UPDATE_GOLDEN=1 rewrites it):\n{got}",
            golden.display()
        )
    })?;
    // The rootfs holds the binary, its libraries and loader, and the directories.
    let rootfs = dir.join("rootfs");
    for path in [
        "localvol",
        "lib/x86_64-linux-gnu/libc.so.6",
        "lib64/ld-linux-x86-64.so.2",
    ] {
        check(rootfs.join(path).is_file(), || {
            format!("rootfs lacks {path}")
        })?;
    }
    // `--binary`: the executable packaged is the one given, unchanged.
    let binary = stripped(&example_binary("localvol"))?;
    check(
        fs::read(rootfs.join("localvol"))? == fs::read(&binary)?,
        || format!("rootfs/localvol is not {}", binary.display()),
    )?;
    for path in ["run/docker/plugins", "tmp", "mnt/volumes"] {
        check(rootfs.join(path).is_dir(), || {
            format!("rootfs lacks {path}/")
        })?;
    }
    Ok(())
}

fn two_runs_give_identical_tarballs() -> Result<(), Failed> {
    let first = work_dir().join(unique("repro-a"));
    let second = work_dir().join(unique("repro-b"));
    let summary = package_localvol(&first)?;
    check(summary.contains("privileges: none"), || summary.clone())?;
    // `--out DIR/`: the tarball is still DIR.tar.gz, next to the bundle.
    package_localvol(&PathBuf::from(format!("{}/", second.display())))?;
    check(!second.join(".tar.gz").exists(), || {
        "--out DIR/ wrote DIR/.tar.gz".into()
    })?;
    let tar = |dir: &Path| fs::read(dir.with_extension("tar.gz"));
    let (a, b) = (tar(&first)?, tar(&second)?);
    check(!a.is_empty() && a == b, || {
        format!("{} bytes vs {} bytes, not identical", a.len(), b.len())
    })?;
    fs::remove_dir_all(&first)?;
    fs::remove_dir_all(&second)?;
    Ok(())
}

/// `cargo docker-plugin package --binary` of the localvol example (the tests' build of
/// it, stripped) with `metadata` written into `DIR/plugin.toml` as its `--metadata`, into
/// `DIR/out`: the run, and that bundle directory.
fn package_localvol_with(dir: &Path, metadata: &str) -> Result<(Output, PathBuf), Failed> {
    let file = dir.join("plugin.toml");
    fs::write(&file, metadata)?;
    let out = dir.join("out");
    // The tests' build of localvol: no build of the SDK of its own for each case.
    let binary = stripped(&example_binary("localvol"))?;
    let args = [
        "package",
        "--example",
        "localvol",
        "--binary",
        binary.to_str().ok_or("path")?,
        "--metadata",
        file.to_str().ok_or("path")?,
        "--out",
        out.to_str().ok_or("path")?,
    ];
    Ok((cargo_docker_plugin(&args), out))
}

fn a_metadata_typo_names_the_field() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let (out, _) = package_localvol_with(
        dir.path(),
        "interface = { types = [\"docker.volumedriver/1.0\"], socket = \"x.sock\" }\npropagated-mnt = \"/mnt/volumes\"\n",
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    check(!out.status.success(), || "a typo was accepted".into())?;
    check(stderr.contains("unknown field `propagated-mnt`"), || {
        stderr.to_string()
    })?;
    check(stderr.contains("plugin.toml"), || stderr.to_string())?;
    // Refused before any build: no bundle was written.
    check(!dir.path().join("out").exists(), || "bundle written".into())
}

/// `--binary` takes the place of cargo's build: its flags are refused beside it, and a
/// path that is not a file is named with the fix, before anything is written.
fn a_prebuilt_binary_refuses_build_flags_and_must_exist() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let out_dir = dir.path().join("out");
    let out_dir = out_dir.to_str().ok_or("path")?;
    let out = cargo_docker_plugin(&[
        "package",
        "--example",
        "localvol",
        "--binary",
        "/bin/true",
        "--features",
        "macros",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    check(
        !out.status.success()
            && stderr.starts_with(
                "error: the argument '--binary <PATH>' cannot be used with '--features <FEATURES>'",
            ),
        || stderr.to_string(),
    )?;
    let missing = dir.path().join("missing");
    let out = cargo_docker_plugin(&[
        "package",
        "--example",
        "localvol",
        "--binary",
        missing.to_str().ok_or("path")?,
        "--out",
        out_dir,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    check(
        !out.status.success()
            && stderr.trim_end()
                == format!(
                    "error: {}: --binary: No such file or directory (os error 2): build the \
                     plugin first (cargo build), or give the path of its executable",
                    missing.display()
                ),
        || stderr.to_string(),
    )?;
    check(!dir.path().join("out").exists(), || "bundle written".into())
}

fn an_invalid_config_lists_each_problem() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let (out, _) = package_localvol_with(
        dir.path(),
        "interface = { types = [\"docker.volumedriver/1.0\"], socket = \"a/b.sock\" }\nentrypoint = [\"/localvol\"]\npropagated-mount = \"mnt\"\n",
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    check(!out.status.success(), || {
        "an invalid config was accepted".into()
    })?;
    check(stderr.contains("config.json has 2 problems"), || {
        stderr.to_string()
    })?;
    check(stderr.contains("interface.socket"), || stderr.to_string())?;
    check(stderr.contains("propagatedMount"), || stderr.to_string())
}

fn host_binaries_and_files_join_the_rootfs() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    fs::write(dir.path().join("extra.conf"), "answer = 42\n")?;
    let (run, out) = package_localvol_with(
        dir.path(),
        r#"interface = { types = ["docker.volumedriver/1.0"], socket = "localvol.sock" }
propagated-mount = "/mnt/volumes"
binaries = ["/usr/bin/ssh"]
files = [{ source = "extra.conf", destination = "/etc/localvol/extra.conf" }]
dirs = ["/var/lib/localvol"]
"#,
    )?;
    support::cli::expect_ok(
        run,
        &[
            "package",
            "--example",
            "localvol",
            "--metadata",
            "plugin.toml",
        ],
    )?;
    let rootfs = out.join("rootfs");
    check(rootfs.join("usr/bin/ssh").is_file(), || {
        "no /usr/bin/ssh".into()
    })?;
    check(
        fs::read_to_string(rootfs.join("etc/localvol/extra.conf"))? == "answer = 42\n",
        || "extra.conf content".into(),
    )?;
    check(rootfs.join("var/lib/localvol").is_dir(), || {
        "no /var/lib/localvol".into()
    })?;
    // Every library ssh needs, and every library those need, is in the rootfs.
    let mut pending = vec![PathBuf::from("/usr/bin/ssh")];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(program) = pending.pop() {
        for name in ElfInfo::read(&program)?.needed {
            let found = [
                "lib/x86_64-linux-gnu",
                "usr/lib/x86_64-linux-gnu",
                "lib",
                "usr/lib",
            ]
            .iter()
            .map(|d| rootfs.join(d).join(&name))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                format!(
                    "{} needs {name}, missing from the rootfs",
                    program.display()
                )
            })?;
            if seen.insert(name) {
                pending.push(found);
            }
        }
    }
    // The entrypoint defaults to the binary.
    let config: serde_json::Value = serde_json::from_slice(&fs::read(out.join("config.json"))?)?;
    check(
        config["Entrypoint"] == serde_json::json!(["/localvol"]),
        || config["Entrypoint"].to_string(),
    )
}

fn inspect_prints_config_and_privileges() -> Result<(), Failed> {
    let dir = bundle()?;
    let out = ok(&["inspect", dir.to_str().ok_or("path")?])?;
    check(out.contains("\"Socket\": \"localvol.sock\""), || {
        out.clone()
    })?;
    check(out.contains("privileges: none"), || out.clone())?;
    check(out.contains("valid: yes"), || out.clone())?;
    check(out.contains(&format!("arch: {}", Arch::host())), || {
        out.clone()
    })?;
    // The tarball `package --tar` writes is inspected the same.
    let tarball = dir.with_extension("tar.gz");
    let from_tar = ok(&["inspect", tarball.to_str().ok_or("path")?])?;
    check(from_tar == out, || format!("{out}\nvs\n{from_tar}"))?;
    // A bundle asking for privileges lists them as `docker plugin install` does.
    let sshfs = tempfile::tempdir()?;
    fs::create_dir(sshfs.path().join("rootfs"))?;
    fs::write(
        sshfs.path().join("config.json"),
        r#"{"description":"sshFS","entrypoint":["/p"],"interface":{"socket":"s.sock","types":["docker.volumedriver/1.0"]},"network":{"type":"host"},"linux":{"capabilities":["CAP_SYS_ADMIN"],"devices":[{"path":"/dev/fuse"}]}}"#,
    )?;
    let out = ok(&["inspect", sshfs.path().to_str().ok_or("path")?])?;
    let expected = "Plugin \"sshFS\" is requesting the following privileges:\n - network: [host]\n - device: [/dev/fuse]\n - capabilities: [CAP_SYS_ADMIN]\n";
    check(out.contains(expected), || out.clone())?;
    // Its volumes would live in the rootfs, which `docker plugin upgrade` replaces.
    check(
        out.contains("warning: propagatedMount: is empty and there are no mounts: the volumes"),
        || out.clone(),
    )?;
    let missing = cargo_docker_plugin(&["inspect", "/nonexistent"]);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    check(
        !missing.status.success() && stderr.contains("config.json is missing"),
        || stderr.to_string(),
    )
}

fn spec_and_systemd_write_their_files() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let d = dir.path().to_str().ok_or("path")?;
    ok(&["spec", "p", "tcp://127.0.0.1:9000", "--dir", d])?;
    check(
        fs::read_to_string(dir.path().join("p.spec"))? == "tcp://127.0.0.1:9000\n",
        || "p.spec content".into(),
    )?;
    ok(&["spec", "q", "https://127.0.0.1:9000", "--dir", d, "--json"])?;
    let json: serde_json::Value = serde_json::from_slice(&fs::read(dir.path().join("q.json"))?)?;
    check(
        json["Addr"] == "https://127.0.0.1:9000" && json["Name"] == "q",
        || json.to_string(),
    )?;
    ok(&["systemd", "p", "--dir", d])?;
    let socket = fs::read_to_string(dir.path().join("p.socket"))?;
    let service = fs::read_to_string(dir.path().join("p.service"))?;
    check(
        socket.contains("ListenStream=/run/docker/plugins/p.sock\n")
            && socket.contains("Before=docker.service\n"),
        || socket.clone(),
    )?;
    check(
        service.contains("ExecStart=/usr/local/bin/p --systemd\n"),
        || service.clone(),
    )
}

fn call_talks_to_a_running_plugin() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let name = unique("dps-call");
    let socket = dir.path().join(format!("{name}.sock"));
    let mut command = Command::new(example_binary("localvol"));
    command
        .args(["--name", &name, "--root"])
        .arg(dir.path().join("volumes"))
        .arg("--socket-dir")
        .arg(dir.path());
    let _plugin = PluginProcess::start(command, &socket, dir.path().join("plugin.log"))?;
    let socket = socket.to_str().ok_or("path")?;
    let out = ok(&["call", socket, "Plugin.Activate"])?;
    check(out.contains("VolumeDriver"), || out.clone())?;
    ok(&["call", socket, "VolumeDriver.Create", r#"{"Name":"v1"}"#])?;
    let out = ok(&["call", socket, "/VolumeDriver.List"])?;
    let list: serde_json::Value = serde_json::from_str(&out)?;
    check(list["Volumes"][0]["Name"] == "v1", || out.clone())?;
    // A driver error is printed and makes the command fail.
    let out = cargo_docker_plugin(&[
        "call",
        socket,
        "VolumeDriver.Create",
        r#"{"Name":"v2","Opts":{"bogus":"1"}}"#,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    check(!out.status.success() && stdout.contains("\"Err\""), || {
        format!("{stdout}{}", String::from_utf8_lossy(&out.stderr))
    })
}

fn create_enable_and_use_the_bundle(d: &Dockerd, image: &ImageOnce) -> Result<(), Failed> {
    image.ensure(d)?;
    let dir = bundle()?;
    let name = unique("dps-pkg");
    d.docker_ok(&["plugin", "create", &name, dir.to_str().ok_or("path")?])?;
    let enabled = d.docker_ok(&["plugin", "inspect", "--format", "{{.Enabled}}", &name])?;
    check(enabled == "false", || {
        format!("created plugin enabled={enabled}")
    })?;
    d.docker_ok(&["plugin", "enable", &name])?;
    use_managed_localvol(d, &name)
}

/// A workspace of two tiny plugin crates (`dpsa`, `dpsb`: `fn main() {}`), with
/// `extra` appended to `dpsb`'s metadata; a lock file, for `--locked`.
fn small_workspace(extra: &str) -> Result<tempfile::TempDir, Failed> {
    let ws = tempfile::tempdir()?;
    fs::write(
        ws.path().join("Cargo.toml"),
        "[workspace]\nmembers = [\"a\", \"b\"]\nresolver = \"3\"\n",
    )?;
    for (dir, name, more) in [("a", "dpsa", ""), ("b", "dpsb", extra)] {
        fs::create_dir_all(ws.path().join(dir).join("src"))?;
        fs::write(ws.path().join(dir).join("src/main.rs"), "fn main() {}\n")?;
        fs::write(
            ws.path().join(dir).join("Cargo.toml"),
            format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
                 [package.metadata.docker-plugin]\ninterface = {{ types = [\"docker.volumedriver/1.0\"], socket = \"{name}.sock\" }}\n{more}"
            ),
        )?;
    }
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["generate-lockfile", "--offline"])
        .current_dir(ws.path())
        .output()?;
    check(out.status.success(), || {
        String::from_utf8_lossy(&out.stderr).into_owned()
    })?;
    Ok(ws)
}

/// `package --manifest-path WS/Cargo.toml -p MEMBER --target-dir WS/t EXTRA…`.
fn package_member(ws: &Path, member: &str, extra: &[&str]) -> Result<std::process::Output, Failed> {
    let (manifest, target_dir) = (ws.join("Cargo.toml"), ws.join("t"));
    let mut args = vec![
        "package",
        "--manifest-path",
        manifest.to_str().ok_or("path")?,
        "-p",
        member,
        "--target-dir",
        target_dir.to_str().ok_or("path")?,
    ];
    args.extend(extra);
    Ok(cargo_docker_plugin(&args))
}

fn cargos_flags_pick_the_member_and_the_target() -> Result<(), Failed> {
    let ws = small_workspace("")?;
    let manifest = ws.path().join("Cargo.toml");
    let target_dir = ws.path().join("t");
    let out_dir = ws.path().join("bundle");
    let triple = Arch::host().rust_target();
    let args = [
        "package",
        "--manifest-path",
        manifest.to_str().ok_or("path")?,
        "-p",
        "dpsb",
        "--target",
        triple,
        "--target-dir",
        target_dir.to_str().ok_or("path")?,
        "--locked",
        "--offline",
        "--color",
        "never",
        "-v",
        "--out",
        out_dir.to_str().ok_or("path")?,
    ];
    let out = cargo_docker_plugin(&args);
    let stdout = support::cli::expect_ok(out.clone(), &args)?;
    check(
        stdout.contains(&format!("arch     {} ({triple})", Arch::host())),
        || stdout.clone(),
    )?;
    // -v reached cargo (it prints the rustc command lines); --target-dir and
    // --target placed the build.
    let stderr = String::from_utf8_lossy(&out.stderr);
    check(
        stderr.contains("Running `") || stderr.contains("Fresh dpsb"),
        || stderr.to_string(),
    )?;
    check(
        target_dir.join(triple).join("release/dpsb").is_file(),
        || format!("no {triple}/release/dpsb in {}", target_dir.display()),
    )?;
    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(out_dir.join("config.json"))?)?;
    check(config["Entrypoint"] == serde_json::json!(["/dpsb"]), || {
        config.to_string()
    })?;
    check(out_dir.join("rootfs/dpsb").is_file(), || "no /dpsb".into())?;
    // -q silences cargo.
    let a_bundle = ws.path().join("a-bundle");
    let quiet = package_member(
        ws.path(),
        "dpsa",
        &["-q", "--out", a_bundle.to_str().ok_or("path")?],
    )?;
    let stderr = String::from_utf8_lossy(&quiet.stderr);
    check(
        quiet.status.success() && !stderr.contains("Compiling"),
        || stderr.to_string(),
    )?;
    // A member that is not there is named with those that are.
    let missing = package_member(ws.path(), "dpsc", &[])?;
    let stderr = String::from_utf8_lossy(&missing.stderr);
    check(
        stderr.contains("-p dpsc: no such package in the workspace (its members: dpsa, dpsb)"),
        || stderr.to_string(),
    )
}

fn a_target_without_its_standard_library_says_how_to_add_it() -> Result<(), Failed> {
    // Only the host's standard library is installed here (rustup target list
    // --installed): another target cannot build, and the error says why.
    let ws = small_workspace("")?;
    let foreign = if Arch::host() == Arch::Arm64 {
        Arch::Amd64
    } else {
        Arch::Arm64
    };
    let triple = foreign.rust_target();
    let out = package_member(ws.path(), "dpsb", &["--target", triple])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    check(
        !out.status.success()
            && stderr.contains(&format!(
                "(building for {triple} needs its standard library, `rustup target add {triple}`, and a linker for it, e.g. CARGO_TARGET_{}_LINKER)",
                triple.to_ascii_uppercase().replace('-', "_")
            )),
        || stderr.to_string(),
    )
}

fn a_foreign_elf_in_the_rootfs_is_refused() -> Result<(), Failed> {
    let foreign = if Arch::host() == Arch::Arm64 {
        Arch::Amd64
    } else {
        Arch::Arm64
    };
    let ws = small_workspace("files = [{ source = \"tool\", destination = \"/usr/bin/tool\" }]\n")?;
    fs::write(ws.path().join("b/tool"), arch::minimal_elf(foreign))?;
    let out_dir = ws.path().join("bundle");
    let out = package_member(
        ws.path(),
        "dpsb",
        &["--out", out_dir.to_str().ok_or("path")?],
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let host = Arch::host();
    check(
        !out.status.success()
            && stderr.contains(&format!(
                "the plugin is built for {host} but /usr/bin/tool is built for {foreign}: it would not start there (exec format error)"
            )),
        || stderr.to_string(),
    )?;
    check(!out_dir.join("config.json").exists(), || {
        "a bundle was left".into()
    })
}

/// The metadata docs' example: sshfs and ssh (plus fusermount3, which sshfs runs), and
/// a state mount whose host source exists only where the plugin is installed.
const SSHFS: &str = "binaries = [\"/usr/bin/sshfs\", \"/usr/bin/ssh\", \"/usr/bin/fusermount3\"]\n\
network = \"host\"\npropagated-mount = \"/mnt/volumes\"\n\
linux = { capabilities = [\"CAP_SYS_ADMIN\"], devices = [{ path = \"/dev/fuse\" }] }\n\
mounts = [{ name = \"state\", destination = \"/mnt/state\", type = \"bind\", options = [\"rbind\"], \
source = \"/nonexistent/dps-state\", settable = [\"source\"] }]\n";

fn the_sshfs_example_verifies_in_its_rootfs() -> Result<(), Failed> {
    let ws = small_workspace(SSHFS)?;
    let out_dir = ws.path().join("sshfs");
    let args = ["--out", out_dir.to_str().ok_or("path")?, "--verify"];
    let out = package_member(ws.path(), "dpsb", &args)?;
    let stdout = support::cli::expect_ok(out.clone(), &args)?;
    for line in [
        "verified /dpsb --version",
        // sshfs prints the version of the fusermount3 it runs first: found in the rootfs.
        "verified /usr/bin/sshfs --version: fusermount3 version",
        "verified /usr/bin/ssh -V: OpenSSH_",
        "verified /usr/bin/fusermount3 --version: fusermount3 version",
    ] {
        check(stdout.contains(line), || {
            format!("{line:?} missing:\n{stdout}")
        })?;
    }
    // What the closure cannot see is named: ssh loads libraries with dlopen.
    let stderr = String::from_utf8_lossy(&out.stderr);
    check(
        stderr.contains("warning: /usr/bin/ssh loads libraries at run time (it calls dlopen)"),
        || stderr.to_string(),
    )?;
    // NSS works in the rootfs: ssh finds root through nsswitch.conf, the files
    // module and /etc/passwd (without them: "No user exists for uid 0").
    let rootfs = out_dir.join("rootfs");
    for file in ["etc/passwd", "etc/group", "etc/nsswitch.conf"] {
        check(rootfs.join(file).is_file(), || format!("no /{file}"))?;
    }
    let bundle = docker_plugin_sdk::managed::bundle::Bundle::open(&out_dir)?;
    let scratch = tempfile::tempdir()?;
    let copy = scratch.path().join("rootfs");
    copy_dir(&rootfs, &copy)?;
    let mut config = bundle.config().clone();
    config.entrypoint = vec!["/usr/bin/ssh".into(), "-G".into(), "example.invalid".into()];
    // The state mount's source exists only where the plugin is installed.
    config.mounts.clear();
    for dir in ["sock", "prop"] {
        fs::create_dir_all(scratch.path().join(dir))?;
    }
    let output = docker_plugin_sdk::harness::rootfs_command(
        &copy,
        &config,
        &scratch.path().join("sock"),
        &scratch.path().join("prop"),
    )?
    .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    check(
        output.status.success() && text.lines().any(|l| l == "user root"),
        || format!("{}{}", text, String::from_utf8_lossy(&output.stderr)),
    )?;
    // A missing library makes --verify fail with the loader's words.
    remove_file_named(&rootfs, "libcrypto.so.3")?;
    let err = docker_plugin_sdk::package::verify::verify(&bundle, &["/usr/bin/ssh".into()])
        .expect_err("libcrypto is gone")
        .to_string();
    check(
        err.starts_with(
            "verify: `/usr/bin/ssh --version` in the rootfs exited with exit status: 127",
        ) && err.contains("error while loading shared libraries: libcrypto.so.3"),
        || err.clone(),
    )
}

/// `verify = true` in the metadata: every `package` runs the programs in the rootfs,
/// without `--verify`.
fn the_metadata_asks_for_verify_at_every_package() -> Result<(), Failed> {
    let ws = small_workspace("binaries = [\"/usr/bin/ssh\"]\nverify = true\n")?;
    let out_dir = ws.path().join("bundle");
    let args = ["--out", out_dir.to_str().ok_or("path")?];
    let out = package_member(ws.path(), "dpsb", &args)?;
    let stdout = support::cli::expect_ok(out, &args)?;
    check(
        stdout.contains("verified /usr/bin/ssh -V: OpenSSH_"),
        || stdout.clone(),
    )
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), Failed> {
    let out = Command::new("cp").arg("-a").arg(from).arg(to).output()?;
    check(out.status.success(), || {
        String::from_utf8_lossy(&out.stderr).into_owned()
    })
}

fn remove_file_named(dir: &Path, name: &str) -> Result<(), Failed> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if fs::symlink_metadata(&path)?.is_dir() {
            remove_file_named(&path, name)?;
        } else if path.file_name().is_some_and(|n| n == name) {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

fn main() {
    let plain: Vec<(&str, PlainTest)> = vec![
        (
            "localvol_config_matches_golden",
            localvol_config_matches_golden,
        ),
        (
            "two_runs_give_identical_tarballs",
            two_runs_give_identical_tarballs,
        ),
        (
            "a_metadata_typo_names_the_field",
            a_metadata_typo_names_the_field,
        ),
        (
            "an_invalid_config_lists_each_problem",
            an_invalid_config_lists_each_problem,
        ),
        (
            "a_prebuilt_binary_refuses_build_flags_and_must_exist",
            a_prebuilt_binary_refuses_build_flags_and_must_exist,
        ),
        (
            "host_binaries_and_files_join_the_rootfs",
            host_binaries_and_files_join_the_rootfs,
        ),
        (
            "inspect_prints_config_and_privileges",
            inspect_prints_config_and_privileges,
        ),
        (
            "spec_and_systemd_write_their_files",
            spec_and_systemd_write_their_files,
        ),
        (
            "call_talks_to_a_running_plugin",
            call_talks_to_a_running_plugin,
        ),
        (
            "cargos_flags_pick_the_member_and_the_target",
            cargos_flags_pick_the_member_and_the_target,
        ),
        (
            "a_target_without_its_standard_library_says_how_to_add_it",
            a_target_without_its_standard_library_says_how_to_add_it,
        ),
        (
            "a_foreign_elf_in_the_rootfs_is_refused",
            a_foreign_elf_in_the_rootfs_is_refused,
        ),
        (
            "the_sshfs_example_verifies_in_its_rootfs",
            the_sshfs_example_verifies_in_its_rootfs,
        ),
        (
            "the_metadata_asks_for_verify_at_every_package",
            the_metadata_asks_for_verify_at_every_package,
        ),
    ];
    let with_dockerd: Vec<(&str, DockerdTest)> = vec![(
        "create_enable_and_use_the_bundle",
        create_enable_and_use_the_bundle,
    )];
    run_trials("packager e2e", IMAGE, plain, with_dockerd)
}
