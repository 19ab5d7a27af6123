//! A private, throw-away real `dockerd`, so that a plugin can be proven against the
//! real thing in its own tests (the [`Engine`](super::Engine) is the fast double; this
//! is the truth it is checked against).
//!
//! Every [`Dockerd`] gets its own temporary root `$T` (data root, exec root, API
//! socket, pid file, log, CLI config), so it never touches a system daemon's state.
//! When a system containerd is running (`/run/containerd/containerd.sock`), dockerd
//! attaches to it instead of spawning its own; a unique containerd namespace then
//! keeps the private daemon's containers and plugins apart. Plugins are shared with
//! the machine, as dockerd looks for legacy plugins in `/run/docker/plugins` and
//! `/etc/docker/plugins`: give test plugins unique names.
//!
//! It needs root, `dockerd` and the `docker` CLI (Debian: `docker.io`), and for
//! [`Dockerd::import_busybox`] a static busybox (Debian: `busybox-static`).
//!
//! Environment overrides: `DPS_DOCKERD` (dockerd binary), `DPS_DOCKER_CLI` (docker CLI
//! binary, default `docker` from `PATH`), `DPS_BUSYBOX` (static busybox, default
//! `/bin/busybox`), `DPS_KEEP_DOCKERD_ROOT=1` (keep `$T` after [`Dockerd::stop`] for
//! debugging; mounts and processes are still cleaned up).
//!
//! ```no_run
//! use docker_plugin_sdk::harness::dockerd::Dockerd;
//!
//! # fn run() -> Result<(), docker_plugin_sdk::harness::dockerd::DockerdError> {
//! let d = Dockerd::start()?; // about a second; stopped and removed on drop
//! d.import_busybox("busybox:test")?;
//! // ... start your plugin on /run/docker/plugins/myplugin-1234.sock, then:
//! d.docker_ok(&["volume", "create", "-d", "myplugin-1234", "v1"])?;
//! d.docker_ok(&["run", "--rm", "-v", "v1:/data", "busybox:test", "touch", "/data/f"])?;
//! let err = d.docker_err(&["volume", "create", "-d", "myplugin-1234", "-o", "bad=1", "v2"])?;
//! assert!(err.contains("unknown option"), "{err}");
//! # Ok(()) }
//! ```

mod builder;
mod busybox;
mod cleanup;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use builder::DockerdBuilder;
use cleanup::{find_program, kill_matching, run_with_timeout, signal, unmount_under};

/// How long [`Dockerd::start`] waits for the daemon to answer `docker version`.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`Dockerd::stop`] waits after SIGTERM before sending SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Upper bound for a single docker CLI invocation (guards against a wedged daemon).
pub const CLI_TIMEOUT: Duration = Duration::from_secs(300);
/// Address of a system-wide containerd, which dockerd picks up automatically if present.
const SYSTEM_CONTAINERD: &str = "/run/containerd/containerd.sock";

/// Per-process counter making temp dirs and namespaces unique.
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Why a private dockerd could not start, or a command against it did not do what was
/// expected; each names the fix or carries dockerd's log.
#[derive(Debug, thiserror::Error)]
pub enum DockerdError {
    /// No dockerd binary.
    #[error(
        "dockerd not found in PATH or /usr/sbin, /usr/bin: install it (Debian: docker.io; \
         in this SDK's repository: scripts/install-test-deps) or set DPS_DOCKERD"
    )]
    NotInstalled,
    /// dockerd needs root.
    #[error("a private dockerd needs root (effective uid is {uid}); run the tests as root")]
    NotRoot {
        /// The effective uid.
        uid: u32,
    },
    /// The temp dir is so deep that the API socket's path does not fit a unix socket.
    #[error("socket path {} is too long for a unix socket: set TMPDIR to a short dir", .0.display())]
    SocketPathTooLong(PathBuf),
    /// A file system operation or a process failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, e.g. `cannot create /tmp/dps-1`.
        what: String,
        /// What failed.
        source: io::Error,
    },
    /// dockerd exited while starting.
    #[error("dockerd exited early ({status}); last lines of {}:\n{tail}", log.display())]
    ExitedEarly {
        /// How it exited.
        status: ExitStatus,
        /// Its log file.
        log: PathBuf,
        /// The last 40 lines of it.
        tail: String,
    },
    /// dockerd did not answer `docker version` within [`START_TIMEOUT`].
    #[error(
        "dockerd did not come up within {}s (last `{cli} version` error: {last}); \
         last lines of {}:\n{tail}",
        START_TIMEOUT.as_secs(),
        log.display()
    )]
    NotUp {
        /// The docker CLI used.
        cli: String,
        /// Its last error.
        last: String,
        /// dockerd's log file.
        log: PathBuf,
        /// The last 40 lines of it.
        tail: String,
    },
    /// A docker command failed (or succeeded when it should not have): the command,
    /// its status, stdout, stderr and the last lines of dockerd's log.
    #[error("{report}")]
    Command {
        /// The whole report.
        report: String,
    },
    /// A helper program (tar, busybox) failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Tool {
        /// The command line.
        command: String,
        /// How it exited.
        status: ExitStatus,
        /// What it printed on stderr.
        stderr: String,
    },
    /// The busybox given is dynamically linked: it would not run in the image.
    #[error(
        "{} is dynamically linked; install the busybox-static package (or set DPS_BUSYBOX \
         to a static busybox)",
        .0.display()
    )]
    BusyboxNotStatic(PathBuf),
}

fn io_error(what: impl Into<String>) -> impl FnOnce(io::Error) -> DockerdError {
    let what = what.into();
    move |source| DockerdError::Io { what, source }
}

/// A running private dockerd; stopped and cleaned up on [`Dockerd::stop`] or drop.
#[derive(Debug)]
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
    /// The dockerd binary.
    dockerd: PathBuf,
    /// The flags given to [`Dockerd::start_with`] or [`Dockerd::restart_with`].
    extra_args: Vec<String>,
    /// Whether dockerd attached to a system containerd (namespaces need removal).
    system_containerd: bool,
    /// Set once [`Dockerd::stop`] ran, making it idempotent.
    stopped: bool,
}

impl Dockerd {
    /// Starts a private dockerd in a fresh temp dir and waits (up to
    /// [`START_TIMEOUT`]) until `docker version` succeeds against it. The error says
    /// why (dockerd missing, not root, the tail of `dockerd.log` when the daemon does
    /// not come up). [`Dockerd::builder`] starts one with more daemon flags.
    pub fn start() -> Result<Dockerd, DockerdError> {
        Self::start_with(&[])
    }

    /// A private dockerd with extra daemon flags (`--authorization-plugin=NAME`,
    /// `--tlsverify`, …), built up one by one: see [`DockerdBuilder`].
    pub fn builder() -> DockerdBuilder {
        DockerdBuilder::default()
    }

    /// [`Dockerd::start`] with more daemon flags, after the harness's own, such as
    /// `--authorization-plugin=NAME` (dockerd will not start unless that plugin
    /// answers).
    ///
    /// ```no_run
    /// use docker_plugin_sdk::harness::dockerd::Dockerd;
    ///
    /// # fn run() -> Result<(), docker_plugin_sdk::harness::dockerd::DockerdError> {
    /// // ... start your authz plugin on /run/docker/plugins/mypolicy-1234.sock, then:
    /// let d = Dockerd::start_with(&["--authorization-plugin=mypolicy-1234"])?;
    /// let err = d.docker_err(&["run", "--privileged", "busybox:test", "true"])?;
    /// assert!(err.contains("authorization denied by plugin mypolicy-1234: "), "{err}");
    /// # Ok(()) }
    /// ```
    pub fn start_with(args: &[&str]) -> Result<Dockerd, DockerdError> {
        let dockerd = match std::env::var("DPS_DOCKERD") {
            Ok(p) if !p.is_empty() => PathBuf::from(p),
            _ => find_program("dockerd").ok_or(DockerdError::NotInstalled)?,
        };
        let cli = match std::env::var("DPS_DOCKER_CLI") {
            Ok(p) if !p.is_empty() => p,
            _ => "docker".to_string(),
        };
        let uid = nix::unistd::geteuid();
        if !uid.is_root() {
            return Err(DockerdError::NotRoot { uid: uid.as_raw() });
        }

        let token = unique_token();
        let root = short_temp_dir().join(format!("dps-{token}"));
        fs::create_dir_all(&root).map_err(io_error(format!("cannot create {}", root.display())))?;
        let sock = root.join("docker.sock");
        let host = format!("unix://{}", sock.display());
        if sock.as_os_str().len() >= 100 {
            let _ = fs::remove_dir_all(&root);
            return Err(DockerdError::SocketPathTooLong(sock));
        }
        let log = root.join("dockerd.log");

        let mut this = Dockerd {
            root: root.clone(),
            token,
            child: None,
            host,
            log: log.clone(),
            cli,
            dockerd,
            extra_args: args.iter().map(|a| a.to_string()).collect(),
            system_containerd: Path::new(SYSTEM_CONTAINERD).exists(),
            stopped: false,
        };
        // From here on, any early return drops `this`, which stops and cleans up.

        let setup = || -> io::Result<()> {
            // An explicit empty config file: /etc/docker/daemon.json could conflict with our flags.
            fs::write(root.join("daemon.json"), "{}\n")?;
            fs::create_dir_all(root.join("cli-config"))?;
            fs::File::create(&log)?;
            Ok(())
        };
        setup().map_err(io_error(format!("cannot prepare {}", root.display())))?;
        this.launch()?;
        Ok(this)
    }

    /// Stops dockerd as its service would be stopped (SIGTERM; containers, volumes,
    /// plugins and images stay in its data root) and starts it again on the same data
    /// root with the daemon flags `args` instead of the previous ones; waits as
    /// [`Dockerd::start`] does. Managed plugins that were enabled are enabled again by
    /// dockerd itself, before it checks `--authorization-plugin=NAME:latest`.
    pub fn restart_with(&mut self, args: &[&str]) -> Result<(), DockerdError> {
        self.terminate();
        self.extra_args = args.iter().map(|a| a.to_string()).collect();
        self.launch()
    }

    /// Runs dockerd on `$T` with the extra flags and waits until `docker version`
    /// answers; its output is appended to `$T/dockerd.log`.
    fn launch(&mut self) -> Result<(), DockerdError> {
        let open_log = || -> io::Result<(fs::File, fs::File)> {
            let out = fs::OpenOptions::new().append(true).open(&self.log)?;
            let err = out.try_clone()?;
            Ok((out, err))
        };
        let (out, err) =
            open_log().map_err(io_error(format!("cannot open {}", self.log.display())))?;
        let p = |name: &str| self.root.join(name).display().to_string();
        let ns = format!("dps-{}", self.token);
        let mut cmd = Command::new(&self.dockerd);
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
            .arg(format!("--host={}", self.host))
            .arg(format!("--containerd-namespace={ns}"))
            .arg(format!("--containerd-plugins-namespace={ns}-plugins"))
            .arg("--shutdown-timeout=5")
            .args(&self.extra_args)
            .env("PATH", cleanup::extended_path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd
            .spawn()
            .map_err(io_error(format!("cannot run {}", self.dockerd.display())))?;
        self.child = Some(child);

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        self.child = None;
                        return Err(DockerdError::ExitedEarly {
                            status,
                            log: self.log.clone(),
                            tail: self.log_tail(40),
                        });
                    }
                    Ok(None) => {}
                    Err(e) => return Err(io_error("cannot wait for dockerd")(e)),
                }
            }
            let out = self.docker_timeout(&["version"], Duration::from_secs(10));
            if out.status.success() {
                return Ok(());
            }
            let last = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if Instant::now() >= deadline {
                return Err(DockerdError::NotUp {
                    cli: self.cli.clone(),
                    last,
                    log: self.log.clone(),
                    tail: self.log_tail(40),
                });
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The `DOCKER_HOST` value of this daemon, e.g. `unix:///tmp/dps-…/docker.sock`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The temporary root dir `$T` of this daemon (its data root is `$T/data`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `$T/dockerd.log`: what dockerd printed (a managed plugin's output is there too).
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// dockerd's process id, while it runs: the peer a plugin sees on its socket.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Runs the docker CLI against this daemon (DOCKER_HOST set, private
    /// DOCKER_CONFIG, API version negotiated) and returns its output. Never fails: a
    /// CLI that cannot be spawned or runs past [`CLI_TIMEOUT`] yields a failed
    /// `Output` whose stderr says so.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_timeout(args, CLI_TIMEOUT)
    }

    /// Like [`Dockerd::docker`], expecting success: the trimmed stdout, or
    /// [`DockerdError::Command`] with the command, status, stdout, stderr and the last
    /// 40 lines of `dockerd.log`.
    pub fn docker_ok(&self, args: &[&str]) -> Result<String, DockerdError> {
        let out = self.docker(args);
        if !out.status.success() {
            return Err(self.failure("failed", args, &out));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Like [`Dockerd::docker`], expecting failure: stderr (what the user reads), or
    /// the same report as [`Dockerd::docker_ok`] when the command succeeded.
    pub fn docker_err(&self, args: &[&str]) -> Result<String, DockerdError> {
        let out = self.docker(args);
        if out.status.success() {
            return Err(self.failure("unexpectedly succeeded", args, &out));
        }
        Ok(String::from_utf8_lossy(&out.stderr).to_string())
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
    /// running containers, sends SIGTERM (SIGKILL after [`STOP_TIMEOUT`]), kills
    /// leftover containerd / shim processes (and their children) belonging to this
    /// instance, lazily unmounts everything under `$T` (deepest first), and removes
    /// `$T` (unless `DPS_KEEP_DOCKERD_ROOT=1`).
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;

        if let Some(child) = self.child.as_mut()
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
        }
        self.terminate();

        // `dps-TOKEN` occurs in `$T` and in the containerd namespace names: it finds
        // containerd, shims and stray CLIs of this instance.
        kill_matching(&format!("dps-{}", self.token));
        if self.system_containerd {
            self.remove_containerd_namespaces();
        }
        unmount_under(&self.root);

        if std::env::var("DPS_KEEP_DOCKERD_ROOT").is_ok_and(|v| v == "1") {
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

    /// Sends dockerd SIGTERM and waits for it to exit (SIGKILL after
    /// [`STOP_TIMEOUT`]); a no-op when it is not running.
    fn terminate(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        signal(&[child.id()], nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
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

    /// A failed/unexpected CLI result together with the daemon log tail.
    fn failure(&self, what: &str, args: &[&str], out: &Output) -> DockerdError {
        DockerdError::Command {
            report: format!(
                "`{} {}` {what} ({})\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- last 40 lines of {} ---\n{}",
                self.cli,
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout).trim_end(),
                String::from_utf8_lossy(&out.stderr).trim_end(),
                self.log.display(),
                self.log_tail(40)
            ),
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
