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
//! The plugin is built once with a throw-away `e2e` cargo profile (dev without debug
//! info, stripped) so the bundle stays small and the run fast. One dockerd serves the
//! whole run; every test uses its own plugin and volume names. When dockerd cannot
//! start, its tests fail if `CI=true` (or `DPS_REQUIRE_DOCKERD=1`) and are reported
//! as ignored otherwise.

mod support;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use docker_plugin_sdk::harness::PluginProcess;
use docker_plugin_sdk::harness::dockerd::Dockerd;
use docker_plugin_sdk::package::archive::sha256;
use docker_plugin_sdk::package::elf::ElfInfo;
use libtest_mimic::{Arguments, Failed, Trial};
use support::process::example_binary;
use support::shared_dockerd::{DockerdTest, ImageOnce, SharedDockerd};

const IMAGE: &str = "dps-busybox:pkg";
const BIN: &str = env!("CARGO_BIN_EXE_cargo-docker-plugin");

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A name no other test (or earlier run) uses.
fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

fn check(condition: bool, message: impl FnOnce() -> String) -> Result<(), Failed> {
    if condition {
        Ok(())
    } else {
        Err(message().into())
    }
}

fn work_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("packager")
}

/// `cargo docker-plugin ARGS` from the repository root, with the `e2e` profile
/// defined.
fn cargo_docker_plugin(args: &[&str]) -> Output {
    cargo_docker_plugin_with_input(args, None)
}

/// [`cargo_docker_plugin`] with `input` on standard input. `DOCKER_CONFIG` points at
/// an empty directory: no stored registry login leaks in.
fn cargo_docker_plugin_with_input(args: &[&str], input: Option<&str>) -> Output {
    static DOCKER_CONFIG: OnceLock<PathBuf> = OnceLock::new();
    let docker_config = DOCKER_CONFIG.get_or_init(|| {
        let dir = work_dir().join(format!("docker-config-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("create DOCKER_CONFIG dir");
        dir
    });
    let mut child = Command::new(BIN)
        .arg("docker-plugin")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_PROFILE_E2E_INHERITS", "dev")
        .env("CARGO_PROFILE_E2E_DEBUG", "false")
        .env("CARGO_PROFILE_E2E_STRIP", "symbols")
        .env_remove("SOURCE_DATE_EPOCH")
        .env("DOCKER_CONFIG", docker_config)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cargo-docker-plugin");
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(input.as_bytes()).expect("write stdin");
    }
    child
        .wait_with_output()
        .expect("wait for cargo-docker-plugin")
}

fn ok(args: &[&str]) -> Result<String, Failed> {
    let out = cargo_docker_plugin(args);
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

/// `cargo docker-plugin package --example localvol --tar` into `out`.
fn package_localvol(out: &Path) -> Result<String, Failed> {
    let out = out.to_str().ok_or("non-UTF-8 path")?;
    ok(&[
        "package",
        "--example",
        "localvol",
        "--features",
        "macros",
        "--profile",
        "e2e",
        "--out",
        out,
        "--tar",
    ])
}

/// The localvol bundle, packaged once per run.
fn bundle() -> Result<PathBuf, Failed> {
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

fn a_metadata_typo_names_the_field() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("plugin.toml");
    fs::write(
        &file,
        "interface = { types = [\"docker.volumedriver/1.0\"], socket = \"x.sock\" }\npropagated-mnt = \"/mnt/volumes\"\n",
    )?;
    let out = cargo_docker_plugin(&[
        "package",
        "--example",
        "localvol",
        "--metadata",
        file.to_str().ok_or("path")?,
        "--out",
        dir.path().join("out").to_str().ok_or("path")?,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    check(!out.status.success(), || "a typo was accepted".into())?;
    check(stderr.contains("unknown field `propagated-mnt`"), || {
        stderr.to_string()
    })?;
    check(stderr.contains("plugin.toml"), || stderr.to_string())?;
    // Refused before any build: no bundle was written.
    check(!dir.path().join("out").exists(), || "bundle written".into())
}

fn an_invalid_config_lists_each_problem() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("plugin.toml");
    fs::write(
        &file,
        "interface = { types = [\"docker.volumedriver/1.0\"], socket = \"a/b.sock\" }\nentrypoint = [\"/localvol\"]\npropagated-mount = \"mnt\"\n",
    )?;
    let out = cargo_docker_plugin(&[
        "package",
        "--example",
        "localvol",
        "--features",
        "macros",
        "--profile",
        "e2e",
        "--metadata",
        file.to_str().ok_or("path")?,
        "--out",
        dir.path().join("out").to_str().ok_or("path")?,
    ]);
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
    let file = dir.path().join("plugin.toml");
    fs::write(
        &file,
        r#"interface = { types = ["docker.volumedriver/1.0"], socket = "localvol.sock" }
propagated-mount = "/mnt/volumes"
binaries = ["/usr/bin/ssh"]
files = [{ source = "extra.conf", destination = "/etc/localvol/extra.conf" }]
dirs = ["/var/lib/localvol"]
"#,
    )?;
    let out = dir.path().join("out");
    ok(&[
        "package",
        "--example",
        "localvol",
        "--features",
        "macros",
        "--profile",
        "e2e",
        "--metadata",
        file.to_str().ok_or("path")?,
        "--out",
        out.to_str().ok_or("path")?,
    ])?;
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

/// Creates, enables and uses plugin `name` (already created or installed), then
/// disables and removes it.
fn use_managed_localvol(d: &Dockerd, name: &str) -> Result<(), Failed> {
    let volume = unique("pkgvol");
    let driver = format!("{name}:latest");
    d.docker_ok(&["volume", "create", "-d", &driver, &volume])?;
    d.docker_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{volume}:/data"),
        IMAGE,
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

/// Debian's `docker-registry` (distribution 2.x) on a free loopback port.
struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Result<Self, Failed> {
        Self::start_with_login(None)
    }

    /// With `login`, the registry wants it (htpasswd, HTTP basic authentication).
    fn start_with_login(login: Option<(&str, &str)>) -> Result<Self, Failed> {
        let program = ["/usr/bin/docker-registry", "/usr/sbin/docker-registry"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .ok_or("docker-registry is not installed (run scripts/install-test-deps)")?;
        let dir = tempfile::tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let config = dir.path().join("config.yml");
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = login {
            let htpasswd = dir.path().join("htpasswd");
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .map_err(|e| {
                    format!(
                        "htpasswd: {e} (install apache2-utils, e.g. with scripts/install-test-deps)"
                    )
                })?;
            check(out.status.success(), || "htpasswd failed".into())?;
            fs::write(&htpasswd, &out.stdout)?;
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: dps-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        fs::write(&config, yaml)?;
        let log = fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new(program)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut registry = Self {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            // 200, or 401 when it wants a login: either way it serves.
            if registry
                .get("/v2/")
                .is_ok_and(|r| r.starts_with("HTTP/1.1 200") || r.starts_with("HTTP/1.1 401"))
            {
                return Ok(registry);
            }
            if let Ok(Some(status)) = registry.child.try_wait() {
                return Err(
                    format!("docker-registry exited with {status}: {}", registry.log()).into(),
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("docker-registry did not answer: {}", registry.log()).into())
    }

    fn log(&self) -> String {
        fs::read_to_string(self._dir.path().join("registry.log")).unwrap_or_default()
    }

    /// A raw `GET path` (status line, headers and body).
    fn get(&self, path: &str) -> std::io::Result<String> {
        Ok(String::from_utf8_lossy(&self.get_bytes(path)?).into_owned())
    }

    fn get_bytes(&self, path: &str) -> std::io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/vnd.docker.distribution.manifest.v2+json\r\nConnection: close\r\n\r\n"
        )?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply)?;
        Ok(reply)
    }
}

impl Registry {
    /// `GET path`, its body parsed as JSON.
    fn json(&self, path: &str) -> Result<serde_json::Value, Failed> {
        Ok(serde_json::from_slice(&self.body(path)?)?)
    }

    /// The body of a `200` answer to `GET path`.
    fn body(&self, path: &str) -> Result<Vec<u8>, Failed> {
        let reply = self.get_bytes(path)?;
        let split = reply
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| format!("GET {path}: no body"))?;
        let head = String::from_utf8_lossy(&reply[..split]);
        check(head.starts_with("HTTP/1.1 200"), || {
            format!("GET {path}: {head}")
        })?;
        check(
            !head
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            || format!("GET {path}: chunked answers are not decoded here"),
        )?;
        Ok(reply[split + 4..].to_vec())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn push_then_install_from_a_registry(d: &Dockerd, image: &ImageOnce) -> Result<(), Failed> {
    image.ensure(d)?;
    let dir = bundle()?;
    let registry = Registry::start()?;
    let reference = format!("127.0.0.1:{}/test/localvol:1", registry.port);
    let out = ok(&["push", dir.to_str().ok_or("path")?, &reference])?;
    check(out.contains("digest   sha256:"), || out.clone())?;
    // The registry serves what dockerd will pull: a schema 2 manifest whose config
    // is a plugin config.
    let manifest = registry.get("/v2/test/localvol/manifests/1")?;
    check(
        manifest.contains("application/vnd.docker.plugin.v1+json")
            && manifest.contains("application/vnd.docker.image.rootfs.diff.tar.gzip"),
        || manifest.clone(),
    )?;
    // Pushing again uploads nothing new and gives the same digest.
    let again = ok(&["push", dir.to_str().ok_or("path")?, &reference])?;
    check(again == out, || format!("{out}\nvs\n{again}"))?;

    let name = unique("dps-pulled");
    d.docker_ok(&[
        "plugin",
        "install",
        "--grant-all-permissions",
        "--alias",
        &name,
        &reference,
    ])?;
    let enabled = d.docker_ok(&["plugin", "inspect", "--format", "{{.Enabled}}", &name])?;
    check(enabled == "true", || {
        format!("installed plugin enabled={enabled}")
    })?;
    use_managed_localvol(d, &name)?;

    // The diff_ids quirk: dockerd's own push writes the digest of the *compressed*
    // layer into rootfs.diff_ids. Which forms does `docker plugin install` take?
    let gz_reference = format!("127.0.0.1:{}/test/localvol:gz", registry.port);
    ok(&[
        "push",
        dir.to_str().ok_or("path")?,
        &gz_reference,
        "--diff-ids",
        "compressed",
    ])?;
    let gz_name = unique("dps-pulled-gz");
    let out = d.docker(&[
        "plugin",
        "install",
        "--grant-all-permissions",
        "--alias",
        &gz_name,
        &gz_reference,
    ]);
    check(out.status.success(), || {
        format!(
            "install with diff_ids = the compressed digest failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    use_managed_localvol(d, &gz_name)?;

    // And what dockerd itself pushes for the same bundle.
    let by_dockerd = format!("127.0.0.1:{}/test/by-dockerd:1", registry.port);
    d.docker_ok(&["plugin", "create", &by_dockerd, dir.to_str().ok_or("path")?])?;
    d.docker_ok(&["plugin", "push", &by_dockerd])?;
    d.docker_ok(&["plugin", "rm", &by_dockerd])?;
    let manifest = registry.json("/v2/test/by-dockerd/manifests/1")?;
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let config_digest = manifest["config"]["digest"].as_str().unwrap_or_default();
    let config = registry.json(&format!("/v2/test/by-dockerd/blobs/{config_digest}"))?;
    let diff_id = config["rootfs"]["diff_ids"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // The quirk is still there: dockerd's diff_id is the compressed layer's digest...
    check(!layer.is_empty() && diff_id == layer, || {
        format!("dockerd pushed diff_id {diff_id} for layer {layer}")
    })?;
    // ...while ours is the image spec's, the uncompressed tar's; dockerd took both.
    let ours = registry.json("/v2/test/localvol/manifests/1")?;
    let ours_layer = ours["layers"][0]["digest"].as_str().unwrap_or_default();
    let ours_config_digest = ours["config"]["digest"].as_str().unwrap_or_default();
    let ours_config = registry.json(&format!("/v2/test/localvol/blobs/{ours_config_digest}"))?;
    let gz = registry.body(&format!("/v2/test/localvol/blobs/{ours_layer}"))?;
    check(sha256(&gz) == ours_layer, || "layer digest mismatch".into())?;
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut tar)?;
    check(
        ours_config["rootfs"]["diff_ids"][0] == sha256(&tar).as_str(),
        || format!("our diff_ids: {}", ours_config["rootfs"]),
    )?;
    check(ours_config["rootfs"]["type"] == "layers", || {
        format!("our rootfs: {}", ours_config["rootfs"])
    })?;
    Ok(())
}

fn push_logs_in_when_the_registry_asks() -> Result<(), Failed> {
    let dir = bundle()?;
    let dir = dir.to_str().ok_or("path")?;
    let registry = Registry::start_with_login(Some(("pusher", "s3cret pass")))?;
    let reference = format!("127.0.0.1:{}/test/private:1", registry.port);
    let anonymous = cargo_docker_plugin(&["push", dir, &reference]);
    let stderr = String::from_utf8_lossy(&anonymous.stderr);
    check(!anonymous.status.success(), || {
        "anonymous push accepted".into()
    })?;
    check(
        stderr.contains("needs a login") && stderr.contains("--username"),
        || stderr.to_string(),
    )?;
    let wrong = cargo_docker_plugin_with_input(
        &[
            "push",
            dir,
            &reference,
            "--username",
            "pusher",
            "--password-stdin",
        ],
        Some("wrong\n"),
    );
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    check(!wrong.status.success(), || {
        "a wrong password was accepted".into()
    })?;
    check(stderr.contains("refused the credentials"), || {
        stderr.to_string()
    })?;
    let out = cargo_docker_plugin_with_input(
        &[
            "push",
            dir,
            &reference,
            "--username",
            "pusher",
            "--password-stdin",
        ],
        Some("s3cret pass\n"),
    );
    check(out.status.success(), || {
        String::from_utf8_lossy(&out.stderr).into_owned()
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    check(stdout.contains(&format!("pushed   {reference}")), || {
        stdout.to_string()
    })?;
    // Without the login, the registry shows nothing.
    let manifest = registry.get("/v2/test/private/manifests/1")?;
    check(manifest.starts_with("HTTP/1.1 401"), || manifest.clone())
}

type PlainTest = fn() -> Result<(), Failed>;

fn main() {
    let args = Arguments::from_args();
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
            "push_logs_in_when_the_registry_asks",
            push_logs_in_when_the_registry_asks,
        ),
    ];
    let with_dockerd: Vec<(&str, DockerdTest)> = vec![
        (
            "create_enable_and_use_the_bundle",
            create_enable_and_use_the_bundle,
        ),
        (
            "push_then_install_from_a_registry",
            push_then_install_from_a_registry,
        ),
    ];
    let shared = SharedDockerd::start(&args, "packager e2e", IMAGE);
    let mut trials: Vec<Trial> = plain
        .into_iter()
        .map(|(name, test)| Trial::test(name, test))
        .collect();
    trials.extend(
        with_dockerd
            .into_iter()
            .map(|(name, test)| shared.trial(name, test)),
    );
    let conclusion = libtest_mimic::run(&args, trials);
    shared.stop();
    conclusion.exit();
}
