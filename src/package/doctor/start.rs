//! A bundle's entrypoint started as the harness starts a managed plugin (a copy of
//! the rootfs, private mount namespace, `chroot`, the socket directory bound on
//! `/run/docker/plugins`), watched as dockerd watches it: does it listen on its
//! socket within dockerd's window, or exit first?

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::Finding;
use crate::harness::rootfs_command;
use crate::managed::bundle::Bundle;

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn last_lines(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}

/// Starts the entrypoint and waits up to `timeout` for its socket.
pub(super) async fn start(bundle: &Bundle, timeout: Duration) -> Finding {
    let bundle = bundle.clone();
    tokio::task::spawn_blocking(move || start_blocking(&bundle, timeout))
        .await
        .unwrap_or_else(|e| Finding::problem("start", e.to_string(), "report this as a bug"))
}

fn start_blocking(bundle: &Bundle, timeout: Duration) -> Finding {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let scratch = Scratch(std::env::temp_dir().join(format!(
        "dps-doctor-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    )));
    let rootfs = scratch.0.join("rootfs");
    let sockets = scratch.0.join("sockets");
    let propagated = scratch.0.join("propagated-mount");
    let log = scratch.0.join("output.log");
    let prepared = std::fs::create_dir_all(&sockets)
        .and_then(|()| std::fs::create_dir_all(&propagated))
        .and_then(|()| crate::harness::copy_tree(&bundle.rootfs(), &rootfs))
        .and_then(|()| std::fs::File::create(&log));
    let output = match prepared {
        Ok(file) => file,
        Err(e) => {
            return Finding::problem(
                "start",
                format!("cannot copy the rootfs to {}: {e}", scratch.0.display()),
                "free some space in the temporary directory (TMPDIR)",
            );
        }
    };
    let config = bundle.config();
    let socket = sockets.join(&config.interface.socket);
    let inside = format!("/run/docker/plugins/{}", config.interface.socket);
    let command = rootfs_command(&rootfs, config, &sockets, &propagated);
    let spawned = command.and_then(|mut command| {
        let stderr = output
            .try_clone()
            .map_err(|e| crate::harness::HarnessError::io("output file", e))?;
        command
            .stdout(Stdio::from(output))
            .stderr(Stdio::from(stderr))
            .spawn()
            .map_err(|e| crate::harness::HarnessError::io("starting the entrypoint", e))
    });
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            return Finding::problem(
                "start",
                format!("the entrypoint {:?} does not start: {e}", config.entrypoint),
                "run doctor as root (it starts the plugin as the harness does); check the problems above",
            );
        }
    };
    let started = Instant::now();
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let stop = |child: &mut std::process::Child| {
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
    };
    loop {
        if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            let after = started.elapsed();
            stop(&mut child);
            return Finding::ok(
                "start",
                format!(
                    "the entrypoint listened on {inside} after {:.1} s",
                    after.as_secs_f64()
                ),
            );
        }
        match child.try_wait() {
            Ok(Some(status)) => {
                let lines = last_lines(&log, 5);
                stop(&mut child);
                return Finding::problem(
                    "start",
                    format!(
                        "the entrypoint exited ({status}) after {:.1} s without listening on {inside}; \
                         its last lines: {}",
                        started.elapsed().as_secs_f64(),
                        if lines.is_empty() {
                            "(none)".into()
                        } else {
                            lines
                        }
                    ),
                    "fix what it says (dockerd logs the same lines with plugin=<ID>; \
                     `cargo docker-plugin package --verify` runs each program in the rootfs)",
                );
            }
            Ok(None) => {}
            Err(e) => {
                stop(&mut child);
                return Finding::problem("start", e.to_string(), "run it again");
            }
        }
        if started.elapsed() >= timeout {
            let lines = last_lines(&log, 5);
            stop(&mut child);
            return Finding::problem(
                "start",
                format!(
                    "the entrypoint did not listen on {inside} within {:.1} s, when dockerd gives up and disables it; \
                     its last lines: {}",
                    timeout.as_secs_f64(),
                    if lines.is_empty() {
                        "(none)".into()
                    } else {
                        lines
                    }
                ),
                "listen first and initialise after (bind the socket before slow setup), \
                 and check that it listens on /run/docker/plugins/<interface.socket>",
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
