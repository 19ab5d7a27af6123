//! Starting a private dockerd: its command line (the harness's own flags, then the
//! caller's) and the wait until it answers. A separate module so that a test can start
//! dockerd as a plugin kind needs it, e.g. with `--authorization-plugin`, which dockerd
//! refuses to start without (the plugin must listen first).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::cleanup::{self, find_program};
use super::{
    Dockerd, DockerdError, START_TIMEOUT, SYSTEM_CONTAINERD, io_error, short_temp_dir, unique_token,
};

/// How a private dockerd is started: [`Dockerd::builder`], then
/// [`start`](Self::start). Without options it is [`Dockerd::start`].
///
/// ```no_run
/// use docker_plugin_sdk::harness::dockerd::Dockerd;
///
/// # fn run() -> Result<(), docker_plugin_sdk::harness::dockerd::DockerdError> {
/// // The policy plugin listens on /run/docker/plugins/mypolicy.sock first:
/// // dockerd does not start when an authorization plugin is missing.
/// let d = Dockerd::builder()
///     .daemon_arg("--authorization-plugin=mypolicy")
///     .start()?;
/// let err = d.docker_err(&["volume", "create", "forbidden"])?;
/// assert!(err.contains("authorization denied by plugin mypolicy"), "{err}");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct DockerdBuilder {
    daemon_args: Vec<String>,
}

impl DockerdBuilder {
    /// Adds a flag to dockerd's command line, after the harness's own (data and exec
    /// roots, API socket, no bridge, no iptables, vfs): `--authorization-plugin=NAME`
    /// (repeat it for a chain), `--tlsverify`, `--host=tcp://127.0.0.1:PORT` (an API
    /// address besides the private socket the CLI uses), ….
    pub fn daemon_arg(mut self, arg: impl Into<String>) -> Self {
        self.daemon_args.push(arg.into());
        self
    }

    /// Adds several flags, in order: see [`daemon_arg`](Self::daemon_arg).
    pub fn daemon_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.daemon_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Starts the daemon in a fresh temp dir and waits (up to [`START_TIMEOUT`]) until
    /// `docker version` succeeds against it. The error says why (dockerd missing, not
    /// root, the tail of `dockerd.log` when the daemon exits, for instance because a
    /// flag names an authorization plugin that does not listen, or does not come up).
    pub fn start(self) -> Result<Dockerd, DockerdError> {
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
        let (out, err) = setup().map_err(io_error(format!("cannot prepare {}", root.display())))?;

        let mut cmd = Command::new(&dockerd);
        cmd.args(self.command_line(&root, &this.host, &token))
            .env("PATH", cleanup::extended_path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd
            .spawn()
            .map_err(io_error(format!("cannot run {}", dockerd.display())))?;
        this.child = Some(child);

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = this.child.as_mut() {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        return Err(DockerdError::ExitedEarly {
                            status,
                            log: this.log.clone(),
                            tail: this.log_tail(40),
                        });
                    }
                    Ok(None) => {}
                    Err(e) => return Err(io_error("cannot wait for dockerd")(e)),
                }
            }
            let out = this.docker_timeout(&["version"], Duration::from_secs(10));
            if out.status.success() {
                return Ok(this);
            }
            let last = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if Instant::now() >= deadline {
                return Err(DockerdError::NotUp {
                    cli: this.cli.clone(),
                    last,
                    log: this.log.clone(),
                    tail: this.log_tail(40),
                });
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// dockerd's arguments: the private daemon's flags under `root`, then the caller's.
    fn command_line(&self, root: &Path, host: &str, token: &str) -> Vec<String> {
        let p = |name: &str| root.join(name).display().to_string();
        let ns = format!("dps-{token}");
        let mut args = vec![
            format!("--config-file={}", p("daemon.json")),
            "--iptables=false".into(),
            "--ip6tables=false".into(),
            "--ip-forward=false".into(),
            "--ip-masq=false".into(),
            "--bridge=none".into(),
            "--storage-driver=vfs".into(),
            format!("--data-root={}", p("data")),
            format!("--exec-root={}", p("exec")),
            format!("--pidfile={}", p("pid")),
            format!("--host={host}"),
            format!("--containerd-namespace={ns}"),
            format!("--containerd-plugins-namespace={ns}-plugins"),
            "--shutdown-timeout=5".into(),
        ];
        args.extend(self.daemon_args.iter().cloned());
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callers_flags_come_after_the_private_daemons() {
        let args = Dockerd::builder()
            .daemon_arg("--authorization-plugin=a")
            .daemon_args(["--authorization-plugin=b", "--tlsverify"])
            .command_line(
                Path::new("/tmp/dps-1"),
                "unix:///tmp/dps-1/docker.sock",
                "1",
            );
        assert_eq!(args[0], "--config-file=/tmp/dps-1/daemon.json");
        assert!(args.contains(&"--host=unix:///tmp/dps-1/docker.sock".to_owned()));
        assert_eq!(
            args[args.len() - 3..],
            [
                "--authorization-plugin=a",
                "--authorization-plugin=b",
                "--tlsverify"
            ]
        );
        let plain = DockerdBuilder::default().command_line(Path::new("/t"), "unix:///t/s", "1");
        assert_eq!(
            plain.last().map(String::as_str),
            Some("--shutdown-timeout=5")
        );
    }
}
