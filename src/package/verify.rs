//! `cargo docker-plugin package --verify` (features `packager` and `harness`): each
//! program of a bundle run inside its rootfs as the harness runs the plugin, to
//! prove that its loader, libraries and run-time files are all there.
//!
//! The rootfs is copied first (running it creates mount targets such as `/proc`),
//! then every program runs through [`rootfs_command`] (private mount namespace,
//! `chroot`, dockerd's `PATH`; without the config's `mounts`, whose host sources
//! exist only where the plugin is installed) with its version flag: `--version`, else `-V`, else
//! `--help` (what the SDK's plugin binaries answer), whichever exits 0 first. A
//! program that none of them starts is reported with what it printed, e.g.
//! "error while loading shared libraries: libfoo.so.1". Needs root (or unprivileged
//! user namespaces), like the harness.
//!
//! ```no_run
//! use docker_plugin_sdk::managed::bundle::Bundle;
//! use docker_plugin_sdk::package::verify::verify;
//!
//! let bundle = Bundle::open("target/docker-plugin/sshfs")?;
//! for ran in verify(&bundle, &["/usr/bin/sshfs".into(), "/usr/bin/ssh".into()])? {
//!     println!("{} {}: {}", ran.program, ran.flag, ran.first_line);
//! }
//! # Ok::<(), docker_plugin_sdk::package::PackageError>(())
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use super::error::{IoContext, PackageError};
use crate::harness::rootfs_command;
use crate::managed::bundle::Bundle;

/// The flags tried, in order, until one exits 0.
pub const VERSION_FLAGS: &[&str] = &["--version", "-V", "--help"];

/// How long one run may take before it is killed.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(20);

/// A program that started in the rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The program, as the plugin sees it (e.g. `/usr/bin/ssh`).
    pub program: String,
    /// The flag it answered (e.g. `-V`).
    pub flag: String,
    /// The first line it printed (stdout, else stderr).
    pub first_line: String,
}

/// A scratch copy of a rootfs, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs each of `programs` in a copy of `bundle`'s rootfs with its version flag;
/// an error lists every program that did not start, with what it printed.
pub fn verify(bundle: &Bundle, programs: &[String]) -> Result<Vec<Verified>, PackageError> {
    let scratch = Scratch(std::env::temp_dir().join(format!(
        "dps-verify-{}-{}",
        std::process::id(),
        crate::package::archive::sha256(bundle.dir().as_os_str().as_encoded_bytes())
            .get(7..19)
            .unwrap_or_default()
    )));
    let _ = std::fs::remove_dir_all(&scratch.0);
    let rootfs = scratch.0.join("rootfs");
    let sockets = scratch.0.join("sockets");
    let propagated = scratch.0.join("propagated-mount");
    for dir in [&sockets, &propagated] {
        std::fs::create_dir_all(dir).at(dir)?;
    }
    crate::harness::copy_tree(&bundle.rootfs(), &rootfs).at(&rootfs)?;

    let mut verified = Vec::new();
    let mut failed = Vec::new();
    for program in programs {
        match run_program(&rootfs, bundle, program, &sockets, &propagated)? {
            Ok(ran) => verified.push(ran),
            Err(why) => failed.push(why),
        }
    }
    if failed.is_empty() {
        Ok(verified)
    } else {
        Err(PackageError::Verify(failed.join("; ")))
    }
}

/// Tries each flag of [`VERSION_FLAGS`]: `Ok(Ok(_))` at the first exit 0,
/// `Ok(Err(why))` when none starts it.
fn run_program(
    rootfs: &Path,
    bundle: &Bundle,
    program: &str,
    sockets: &Path,
    propagated: &Path,
) -> Result<Result<Verified, String>, PackageError> {
    let mut last = String::new();
    for flag in VERSION_FLAGS {
        let mut config = bundle.config().clone();
        config.entrypoint = vec![program.to_owned(), (*flag).to_owned()];
        config.args.value.clear();
        // The config's mounts bind the installer's host paths (`/var/lib/docker/…`,
        // settable sources set at install): absent where the plugin is packaged, and
        // not what decides whether a program of the rootfs starts.
        config.mounts.clear();
        let mut command = rootfs_command(rootfs, &config, sockets, propagated)
            .map_err(|e| PackageError::Verify(format!("{program}: {e}")))?;
        let output = match run(&mut command) {
            Ok(output) => output,
            Err(e) => {
                last = format!("{program} could not be started in the rootfs: {e}");
                continue;
            }
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            let first_line = stdout
                .lines()
                .chain(stderr.lines())
                .find(|l| !l.trim().is_empty())
                .unwrap_or_default()
                .trim()
                .to_owned();
            return Ok(Ok(Verified {
                program: program.to_owned(),
                flag: (*flag).to_owned(),
                first_line,
            }));
        }
        last = format!(
            "`{program} {flag}` in the rootfs exited with {}: {}",
            output.status,
            stderr
                .trim()
                .lines()
                .chain(stdout.trim().lines())
                .take(3)
                .collect::<Vec<_>>()
                .join(" / ")
        );
        // A loader failure is the same whatever the flag.
        if stderr.contains("error while loading shared libraries")
            || output.status.code() == Some(127)
        {
            break;
        }
    }
    Ok(Err(last))
}

/// Runs `command` to its end or [`RUN_TIMEOUT`], collecting its output.
fn run(command: &mut std::process::Command) -> std::io::Result<Output> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            // Its own process group: kill everything it started.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Whatever it left behind (a daemon holding the pipes) goes too.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    Ok(Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    })
}
