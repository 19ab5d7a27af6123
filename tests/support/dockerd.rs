//! A private, throw-away `dockerd` for integration tests (std only).
//!
//! Every [`Dockerd`] gets its own temporary root `$T` (data root, exec root,
//! API socket, pid file, log, CLI config), so it never touches a system
//! daemon. When a system containerd is running (`/run/containerd/containerd.sock`),
//! dockerd attaches to it instead of spawning its own; a unique containerd
//! namespace then keeps the private daemon's containers and plugins apart.
//!
//! Environment overrides: `DPS_DOCKERD` (dockerd binary), `DPS_DOCKER_CLI`
//! (docker CLI binary, default `docker` from `PATH`), `DPS_BUSYBOX` (static
//! busybox, default `/bin/busybox`), `DPS_KEEP_DOCKERD_ROOT=1` (keep `$T`
//! after [`Dockerd::stop`] for debugging; mounts and processes are still
//! cleaned up).
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long [`Dockerd::start`] waits for the daemon to answer `docker version`.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`Dockerd::stop`] waits after SIGTERM before sending SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Upper bound for a single docker CLI invocation (guards against a wedged daemon).
const CLI_TIMEOUT: Duration = Duration::from_secs(300);
/// Directories appended to `PATH` for dockerd (it needs containerd, runc, docker-init).
const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Address of a system-wide containerd, which dockerd picks up automatically if present.
const SYSTEM_CONTAINERD: &str = "/run/containerd/containerd.sock";

/// Per-process counter making temp dirs and namespaces unique.
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A running private dockerd; stopped and cleaned up on [`Dockerd::stop`] or drop.
pub struct Dockerd {
    /// Temporary root `$T` holding everything the daemon writes.
    root: PathBuf,
    /// Unique token (part of `$T` and of the containerd namespace) used to find leftovers.
    token: String,
    /// The dockerd child process, `None` once stopped.
    child: Option<Child>,
    /// `unix://$T/docker.sock`.
    host: String,
    /// `$T/dockerd.log` (stdout + stderr of dockerd).
    log: PathBuf,
    /// Docker CLI binary used by [`Dockerd::docker`].
    cli: String,
    /// Whether dockerd attached to a system containerd (namespaces need removal).
    system_containerd: bool,
    /// Set once [`Dockerd::stop`] ran, making it idempotent.
    stopped: bool,
}

impl Dockerd {
    /// Starts a private dockerd in a fresh temp dir and waits (up to 60 s) until
    /// `docker version` succeeds against it. Returns `Err` with a readable message
    /// (including the tail of `dockerd.log`) when dockerd is missing, we are not
    /// root, or the daemon does not come up.
    pub fn start() -> Result<Dockerd, String> {
        let dockerd = match std::env::var("DPS_DOCKERD") {
            Ok(p) if !p.is_empty() => PathBuf::from(p),
            _ => find_program("dockerd").ok_or_else(|| {
                "dockerd not found in PATH or /usr/sbin, /usr/bin (install it with scripts/install-test-deps)"
                    .to_string()
            })?,
        };
        let cli = match std::env::var("DPS_DOCKER_CLI") {
            Ok(p) if !p.is_empty() => p,
            _ => "docker".to_string(),
        };
        if let Some(uid) = effective_uid()
            && uid != 0
        {
            return Err(format!(
                "a private dockerd needs root (effective uid is {uid}); run the tests as root"
            ));
        }

        let token = unique_token();
        let root = short_temp_dir().join(format!("dps-{token}"));
        fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        let sock = root.join("docker.sock");
        let host = format!("unix://{}", sock.display());
        if sock.as_os_str().len() >= 100 {
            let _ = fs::remove_dir_all(&root);
            return Err(format!(
                "socket path {} is too long for a unix socket",
                sock.display()
            ));
        }
        let log = root.join("dockerd.log");

        let mut this = Dockerd {
            root: root.clone(),
            token: token.clone(),
            child: None,
            host,
            log: log.clone(),
            cli,
            system_containerd: Path::new(SYSTEM_CONTAINERD).exists(),
            stopped: false,
        };
        // From here on, any early return drops `this`, which stops and cleans up.

        let setup = || -> io::Result<(fs::File, fs::File)> {
            // An explicit empty config file: /etc/docker/daemon.json could conflict with our flags.
            fs::write(root.join("daemon.json"), "{}\n")?;
            fs::create_dir_all(root.join("cli-config"))?;
            let out = fs::File::create(&log)?;
            let err = out.try_clone()?;
            Ok((out, err))
        };
        let (out, err) = setup().map_err(|e| format!("cannot prepare {}: {e}", root.display()))?;

        let p = |name: &str| root.join(name).display().to_string();
        let ns = format!("dps-{token}");
        let mut cmd = Command::new(&dockerd);
        cmd.arg(format!("--config-file={}", p("daemon.json")))
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
            ])
            .args(["--bridge=none", "--storage-driver=vfs"])
            .arg(format!("--data-root={}", p("data")))
            .arg(format!("--exec-root={}", p("exec")))
            .arg(format!("--pidfile={}", p("pid")))
            .arg(format!("--host={}", this.host))
            .arg(format!("--containerd-namespace={ns}"))
            .arg(format!("--containerd-plugins-namespace={ns}-plugins"))
            .arg("--shutdown-timeout=5")
            .env("PATH", extended_path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", dockerd.display()))?;
        this.child = Some(child);

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = this.child.as_mut() {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        let tail = this.log_tail(40);
                        return Err(format!(
                            "dockerd exited early ({status}); last lines of {}:\n{tail}",
                            this.log.display()
                        ));
                    }
                    Ok(None) => {}
                    Err(e) => return Err(format!("cannot wait for dockerd: {e}")),
                }
            }
            let out = this.docker_timeout(&["version"], Duration::from_secs(10));
            if out.status.success() {
                return Ok(this);
            }
            let last = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if Instant::now() >= deadline {
                let tail = this.log_tail(40);
                return Err(format!(
                    "dockerd did not come up within {}s (last `{} version` error: {last}); last lines of {}:\n{tail}",
                    START_TIMEOUT.as_secs(),
                    this.cli,
                    this.log.display()
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The `DOCKER_HOST` value of this daemon, e.g. `unix:///tmp/dps-…/docker.sock`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The temporary root dir `$T` of this daemon.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Runs the docker CLI against this daemon (DOCKER_HOST set, private
    /// DOCKER_CONFIG, API version negotiated) and returns its output. Never panics;
    /// a CLI that cannot be spawned or times out yields a failed `Output`.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_timeout(args, CLI_TIMEOUT)
    }

    /// Like [`Dockerd::docker`] but panics with command, status, stdout, stderr and
    /// the last 40 lines of `dockerd.log` on a non-zero exit; returns trimmed stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        if !out.status.success() {
            panic!("{}", self.failure_report("failed", args, &out));
        }
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Like [`Dockerd::docker`] but expects failure: returns stderr, panics (with
    /// the same report as [`Dockerd::docker_ok`]) if the command succeeded.
    pub fn docker_err(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        if out.status.success() {
            panic!(
                "{}",
                self.failure_report("unexpectedly succeeded", args, &out)
            );
        }
        String::from_utf8_lossy(&out.stderr).to_string()
    }

    /// Imports a tiny image named `tag` built from a static busybox (`/bin/busybox`
    /// from Debian's busybox-static): `/bin/busybox` plus one symlink per applet,
    /// `/etc/passwd`, `/etc/group`, `/tmp`. Does nothing if `tag` already exists.
    pub fn import_busybox(&self, tag: &str) -> Result<(), String> {
        if self
            .docker(&["image", "inspect", "--format", "{{.Id}}", tag])
            .status
            .success()
        {
            return Ok(());
        }
        let busybox = match std::env::var("DPS_BUSYBOX") {
            Ok(p) if !p.is_empty() => PathBuf::from(p),
            _ => PathBuf::from("/bin/busybox"),
        };
        let bytes = fs::read(&busybox).map_err(|e| {
            format!(
                "cannot read {}: {e} (install busybox-static, e.g. with scripts/install-test-deps)",
                busybox.display()
            )
        })?;
        if elf_has_interpreter(&bytes) {
            return Err(format!(
                "{} is dynamically linked; install the busybox-static package",
                busybox.display()
            ));
        }
        let applets = Command::new(&busybox)
            .arg("--list")
            .output()
            .map_err(|e| format!("cannot run {} --list: {e}", busybox.display()))?;
        if !applets.status.success() {
            return Err(format!(
                "{} --list failed: {}",
                busybox.display(),
                applets.status
            ));
        }

        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let rootfs = self.root.join(format!("busybox-rootfs-{n}"));
        let tarball = self.root.join(format!("busybox-{n}.tar"));
        let result = (|| -> Result<(), String> {
            let io = |what: &str, e: io::Error| format!("building busybox rootfs ({what}): {e}");
            let bin = rootfs.join("bin");
            fs::create_dir_all(&bin).map_err(|e| io("mkdir bin", e))?;
            fs::write(bin.join("busybox"), &bytes).map_err(|e| io("copy busybox", e))?;
            fs::set_permissions(bin.join("busybox"), fs::Permissions::from_mode(0o755))
                .map_err(|e| io("chmod busybox", e))?;
            for applet in String::from_utf8_lossy(&applets.stdout).lines() {
                let applet = applet.trim();
                if applet.is_empty() || applet == "busybox" || applet.contains('/') {
                    continue;
                }
                symlink("busybox", bin.join(applet)).map_err(|e| io(applet, e))?;
            }
            for dir in ["etc", "root", "tmp", "proc", "sys", "dev"] {
                fs::create_dir_all(rootfs.join(dir)).map_err(|e| io(dir, e))?;
            }
            fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))
                .map_err(|e| io("chmod tmp", e))?;
            fs::write(
                rootfs.join("etc/passwd"),
                "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
            )
            .map_err(|e| io("passwd", e))?;
            fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")
                .map_err(|e| io("group", e))?;

            let tar = Command::new("tar")
                .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
                .arg(&rootfs)
                .arg("-cf")
                .arg(&tarball)
                .arg(".")
                .output()
                .map_err(|e| format!("cannot run tar: {e}"))?;
            if !tar.status.success() {
                return Err(format!(
                    "tar failed ({}): {}",
                    tar.status,
                    String::from_utf8_lossy(&tar.stderr).trim()
                ));
            }
            let tarball = tarball.display().to_string();
            let out = self.docker(&[
                "import",
                "--change",
                r#"CMD ["sh"]"#,
                "--change",
                "ENV PATH=/bin",
                &tarball,
                tag,
            ]);
            if !out.status.success() {
                return Err(self.failure_report("failed", &["import", "…", &tarball, tag], &out));
            }
            Ok(())
        })();
        let _ = fs::remove_dir_all(&rootfs);
        let _ = fs::remove_file(&tarball);
        result
    }

    /// The last `lines` lines of `dockerd.log` (or a note if it cannot be read).
    pub fn log_tail(&self, lines: usize) -> String {
        match fs::read(&self.log) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let all: Vec<&str> = text.lines().collect();
                all[all.len().saturating_sub(lines)..].join("\n")
            }
            Err(e) => format!("<cannot read {}: {e}>", self.log.display()),
        }
    }

    /// Stops dockerd and cleans up; idempotent and never panics. Force-removes
    /// running containers, sends SIGTERM (SIGKILL after 20 s), kills leftover
    /// containerd / shim processes (and their children) belonging to this
    /// instance, lazily unmounts everything under `$T` (deepest first), and
    /// removes `$T` (unless `DPS_KEEP_DOCKERD_ROOT=1`).
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;

        if let Some(mut child) = self.child.take()
            && let Ok(None) = child.try_wait()
        {
            // Stopping running containers ourselves is much faster than dockerd's
            // shutdown path (which waits for each container's stop timeout).
            let ps = self.docker_timeout(&["ps", "-q"], Duration::from_secs(10));
            if ps.status.success() {
                let ids = String::from_utf8_lossy(&ps.stdout).to_string();
                let ids: Vec<&str> = ids.split_whitespace().collect();
                if !ids.is_empty() {
                    let mut args = vec!["rm", "-f"];
                    args.extend(ids);
                    let _ = self.docker_timeout(&args, Duration::from_secs(20));
                }
            }
            signal(&[child.id()], "TERM");
            let deadline = Instant::now() + STOP_TIMEOUT;
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        thread::sleep(Duration::from_millis(50))
                    }
                    _ => {
                        eprintln!(
                            "dockerd ({}) did not stop within {}s; killing it",
                            self.host,
                            STOP_TIMEOUT.as_secs()
                        );
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }

        self.kill_leftovers();
        if self.system_containerd {
            self.remove_containerd_namespaces();
        }
        unmount_under(&self.root);

        if std::env::var("DPS_KEEP_DOCKERD_ROOT")
            .map(|v| v == "1")
            .unwrap_or(false)
        {
            eprintln!("keeping dockerd root {}", self.root.display());
            return;
        }
        let mut last_err = None;
        for _ in 0..5 {
            match fs::remove_dir_all(&self.root) {
                Ok(()) => return,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return,
                Err(e) => last_err = Some(e),
            }
            unmount_under(&self.root);
            thread::sleep(Duration::from_millis(200));
        }
        if let Some(e) = last_err {
            eprintln!("warning: cannot remove {}: {e}", self.root.display());
        }
    }

    /// Runs the CLI with a time limit; see [`Dockerd::docker`].
    fn docker_timeout(&self, args: &[&str], timeout: Duration) -> Output {
        let mut cmd = Command::new(&self.cli);
        cmd.args(args)
            .env("DOCKER_HOST", &self.host)
            .env("DOCKER_CONFIG", self.root.join("cli-config"))
            .env("DOCKER_CLI_HINTS", "false")
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH");
        run_with_timeout(cmd, timeout)
    }

    /// Formats a failed/unexpected CLI result together with the daemon log tail.
    fn failure_report(&self, what: &str, args: &[&str], out: &Output) -> String {
        format!(
            "`{} {}` {what} ({})\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- last 40 lines of {} ---\n{}",
            self.cli,
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout).trim_end(),
            String::from_utf8_lossy(&out.stderr).trim_end(),
            self.log.display(),
            self.log_tail(40)
        )
    }

    /// SIGKILLs every process whose command line mentions this instance's token
    /// (containerd, shims, stray CLIs) together with all their descendants.
    fn kill_leftovers(&self) {
        let me = std::process::id();
        // `dps-TOKEN` occurs in `$T` and in the containerd namespace names.
        let needle = format!("dps-{}", self.token);
        for _ in 0..10 {
            let procs = list_processes();
            let mut doomed: Vec<u32> = procs
                .iter()
                .filter(|p| p.pid != me && p.cmdline.contains(&needle))
                .map(|p| p.pid)
                .collect();
            if doomed.is_empty() {
                return;
            }
            // Add descendants (container processes of killed shims).
            let mut i = 0;
            while i < doomed.len() {
                let parent = doomed[i];
                for p in &procs {
                    if p.ppid == parent && p.pid != me && !doomed.contains(&p.pid) {
                        doomed.push(p.pid);
                    }
                }
                i += 1;
            }
            signal(&doomed, "KILL");
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Best effort: deletes this instance's namespaces from a system containerd.
    fn remove_containerd_namespaces(&self) {
        let Some(ctr) = find_program("ctr") else {
            return;
        };
        for ns in [
            format!("dps-{}", self.token),
            format!("dps-{}-plugins", self.token),
        ] {
            let mut cmd = Command::new(&ctr);
            cmd.args(["--address", SYSTEM_CONTAINERD, "namespaces", "remove", &ns]);
            let _ = run_with_timeout(cmd, Duration::from_secs(10));
        }
    }
}

impl Drop for Dockerd {
    /// Calls [`Dockerd::stop`] (a no-op if already stopped).
    fn drop(&mut self) {
        self.stop()
    }
}

/// True when the environment variable `CI` is `true` (or `1`): then a missing or
/// broken dockerd must fail the test instead of skipping it.
pub fn required() -> bool {
    std::env::var("CI")
        .map(|v| v.eq_ignore_ascii_case("true") || v == "1")
        .unwrap_or(false)
}

/// A short, unique token: pid, per-process counter and clock nanoseconds.
fn unique_token() -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{n}-{:06x}", std::process::id(), nanos & 0xffffff)
}

/// `std::env::temp_dir()` unless it is too long for unix socket paths, then `/tmp`.
fn short_temp_dir() -> PathBuf {
    let dir = std::env::temp_dir();
    if dir.as_os_str().len() <= 40 && dir.is_dir() {
        dir
    } else {
        PathBuf::from("/tmp")
    }
}

/// The current `PATH` with the usual system directories appended.
fn extended_path() -> String {
    match std::env::var("PATH") {
        Ok(p) if !p.is_empty() => format!("{p}:{SYSTEM_PATH}"),
        _ => SYSTEM_PATH.to_string(),
    }
}

/// Finds an executable in `PATH` or the usual system directories.
fn find_program(name: &str) -> Option<PathBuf> {
    extended_path()
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| {
            fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Effective uid from `/proc/self/status`, if readable.
fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Whether an ELF binary has a `PT_INTERP` segment (i.e. is dynamically linked).
pub fn elf_has_interpreter(b: &[u8]) -> bool {
    let u16_at = |o: usize| {
        b.get(o..o + 2)
            .map(|s| u16::from_le_bytes([s[0], s[1]]) as usize)
    };
    let u32_at = |o: usize| {
        b.get(o..o + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    };
    let u64_at = |o: usize| {
        b.get(o..o + 8).map(|s| {
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            u64::from_le_bytes(a) as usize
        })
    };
    // Only 64-bit little-endian ELF is inspected; anything else is assumed static.
    if b.len() < 64 || &b[0..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum).any(|i| u32_at(phoff + i * phentsize) == Some(3))
}

/// Sends `SIGsig` to `pids` via the shell's `kill` builtin (no libc, no procps needed).
fn signal(pids: &[u32], sig: &str) {
    if pids.is_empty() {
        return;
    }
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("kill -s {sig} \"$@\" 2>/dev/null"))
        .arg("sh")
        .args(pids.iter().map(|p| p.to_string()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _ = cmd.status();
}

/// A live process as seen in `/proc`.
struct Proc {
    pid: u32,
    ppid: u32,
    cmdline: String,
}

/// Lists non-zombie processes with parent pid and command line.
fn list_processes() -> Vec<Proc> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Format: pid (comm) state ppid ...; comm may contain spaces/parens.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("");
        if state == "Z" || state == "X" {
            continue;
        }
        let ppid = fields.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let cmdline = fs::read(entry.path().join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        out.push(Proc { pid, ppid, cmdline });
    }
    out
}

/// Decodes the octal escapes (`\040` etc.) used in `/proc/self/mountinfo`.
fn unescape_mount_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points at or below `root`, from `/proc/self/mountinfo`.
fn mounts_under(root: &Path) -> Vec<String> {
    let root = root.display().to_string();
    let prefix = format!("{root}/");
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mount_path)
        .filter(|m| *m == root || m.starts_with(&prefix))
        .collect()
}

/// Lazily unmounts everything at or below `root`, deepest first, repeating for stacked mounts.
fn unmount_under(root: &Path) {
    for _ in 0..10 {
        let mut mounts = mounts_under(root);
        if mounts.is_empty() {
            return;
        }
        mounts.sort_by_key(|m| std::cmp::Reverse(m.matches('/').count()));
        mounts.dedup();
        for m in mounts {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(OsStr::new(&m))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
    let left = mounts_under(root);
    if !left.is_empty() {
        eprintln!("warning: still mounted under {}: {left:?}", root.display());
    }
}

/// Runs `cmd` capturing stdout/stderr; kills it after `timeout`. Spawn failures
/// and timeouts are reported as a failed `Output` (exit code 127 / SIGKILL) with
/// an explanation appended to stderr.
fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Output {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let failed = |msg: String| Output {
        status: ExitStatus::from_raw(127 << 8),
        stdout: Vec::new(),
        stderr: msg.into_bytes(),
    };
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return failed(format!("cannot run {program}: {e}")),
    };
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let (result, timed_out) = match rx.recv_timeout(timeout) {
        Ok(r) => (r, false),
        Err(_) => {
            signal(&[pid], "KILL");
            match rx.recv() {
                Ok(r) => (r, true),
                Err(_) => return failed(format!("{program}: waiter thread vanished")),
            }
        }
    };
    match result {
        Ok(mut out) => {
            if timed_out {
                out.stderr.extend_from_slice(
                    format!("\n{program} killed after {}s timeout", timeout.as_secs()).as_bytes(),
                );
            }
            out
        }
        Err(e) => failed(format!("waiting for {program} failed: {e}")),
    }
}
