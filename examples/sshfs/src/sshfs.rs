//! The sshfs and fusermount commands: the command line a volume's options make
//! ([`arguments`]), a mount that succeeds only once the kernel lists it ([`mount`]),
//! and `fusermount -u` ([`unmount`]).
//!
//! The plugin adds to the user's options only what makes a supervised mount behave:
//! `-f` (foreground: the mount lives as long as the child the plugin watches),
//! `password_stdin` for a password, and, unless the user set them, `BatchMode=yes`
//! for key logins and `StrictHostKeyChecking=yes` (never wait for a prompt nobody
//! answers: an unknown host key fails at once), `ConnectTimeout=20` (an
//! unreachable host fails within dockerd's 2-minute Mount timeout) and
//! `ServerAliveInterval=15`/`ServerAliveCountMax=3` (a dropped network ends sshfs,
//! which the next Mount then remounts). Unlike vieux/sshfs it does not turn off host
//! key checking: known_hosts lives in the sshkey mount.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use docker_plugin_sdk::options::Secret;

use crate::error::MountError;
use crate::mountinfo::{self, Health};
use crate::options::{Auth, VolumeOptions};
use crate::process::Running;

/// The programs and devices the driver uses, and how long a mount may take.
#[derive(Debug, Clone)]
pub struct Tools {
    /// `sshfs` (default `/usr/bin/sshfs`).
    pub sshfs: PathBuf,
    /// `fusermount` (default `/usr/bin/fusermount`).
    pub fusermount: PathBuf,
    /// `/dev/fuse`.
    pub fuse_device: PathBuf,
    /// The sshkey mount: password files are read there.
    pub keys: PathBuf,
    /// How long sshfs may take to mount (below dockerd's 2 minutes for Mount).
    pub mount_timeout: Duration,
}

impl Default for Tools {
    fn default() -> Self {
        Self {
            sshfs: "/usr/bin/sshfs".into(),
            fusermount: "/usr/bin/fusermount".into(),
            fuse_device: "/dev/fuse".into(),
            keys: "/root/.ssh".into(),
            mount_timeout: Duration::from_secs(60),
        }
    }
}

/// Options added unless the user gave the key: key, value.
const DEFAULTS: &[(&str, &str)] = &[
    // ssh's default, `ask`, prompts on the terminal sshfs gives it for a password,
    // where nobody answers: the mount would hang.
    ("StrictHostKeyChecking", "yes"),
    ("ConnectTimeout", "20"),
    ("ServerAliveInterval", "15"),
    ("ServerAliveCountMax", "3"),
];

/// sshfs's command line for `opts` mounted at `point` (no secret in it).
pub fn arguments(opts: &VolumeOptions, point: &Path) -> Vec<OsString> {
    let mut o: Vec<String> = Vec::new();
    match opts.auth {
        Auth::Key => {
            if !opts.sshfs.contains_key("BatchMode") {
                o.push("BatchMode=yes".into());
            }
        }
        Auth::Password(_) | Auth::PasswordFile(_) => o.push("password_stdin".into()),
    }
    for (key, value) in DEFAULTS {
        if !opts.sshfs.contains_key(*key) {
            o.push(format!("{key}={value}"));
        }
    }
    for (key, value) in &opts.sshfs {
        o.push(if value.is_empty() {
            key.clone()
        } else {
            format!("{key}={value}")
        });
    }
    vec![
        opts.sshcmd.to_string().into(),
        point.into(),
        "-f".into(),
        "-p".into(),
        opts.port.to_string().into(),
        "-o".into(),
        o.join(",").into(),
    ]
}

/// The password for `opts`, read from its file (in `keys`) when it has one.
async fn password(opts: &VolumeOptions, keys: &Path) -> Result<Option<Secret<String>>, MountError> {
    match &opts.auth {
        Auth::Key => Ok(None),
        Auth::Password(password) => Ok(Some(password.clone())),
        Auth::PasswordFile(file) => {
            let path = keys.join(&file.0);
            let text = tokio::fs::read_to_string(&path)
                .await
                .map_err(|source| MountError::PasswordFile { path, source })?;
            // One line: the trailing newline an editor adds is not part of it.
            Ok(Some(Secret::new(
                text.trim_end_matches(['\n', '\r']).to_owned(),
            )))
        }
    }
}

/// Checks the password file of `opts` can be read (at Create).
pub async fn check_password_file(opts: &VolumeOptions, keys: &Path) -> Result<(), MountError> {
    password(opts, keys).await.map(drop)
}

/// Mounts `opts` at `point` (created if missing): starts sshfs and returns once the
/// kernel lists the mount, or with why sshfs exited, or after `mount_timeout`.
pub async fn mount(
    tools: &Tools,
    opts: &VolumeOptions,
    point: &Path,
    label: &str,
) -> Result<Running, MountError> {
    crate::checks::can_mount(&tools.fuse_device)?;
    tokio::fs::create_dir_all(point)
        .await
        .map_err(|source| MountError::MountPoint {
            point: point.to_path_buf(),
            source,
        })?;
    let password = password(opts, &tools.keys).await?;
    let args = arguments(opts, point);
    tracing::debug!(volume = %label, ?args, "starting sshfs");
    let running = Running::spawn(&tools.sshfs, &args, password, label)
        .await
        .map_err(|source| MountError::Spawn {
            program: tools.sshfs.clone(),
            source,
        })?;
    let start = Instant::now();
    loop {
        if let Some(status) = running.exit_status() {
            return Err(MountError::from_sshfs(
                &opts.sshcmd,
                opts.port,
                status,
                running.stderr(),
            ));
        }
        let mounts = mountinfo::read().await.unwrap_or_default();
        if mountinfo::is_sshfs_at(&mounts, point) {
            // With password_stdin sshfs mounts first and logs in after: the mount
            // counts once its root answers (a stat waits for the login).
            let left = tools.mount_timeout.saturating_sub(start.elapsed());
            match mountinfo::health(point, left).await {
                Health::Answers if running.exit_status().is_none() => return Ok(running),
                Health::Slow => break,
                Health::Answers | Health::Dead => {
                    let status = tokio::time::timeout(Duration::from_secs(5), running.exited())
                        .await
                        .unwrap_or_else(|_| "running".into());
                    running.kill();
                    let _ = unmount(tools, point, true).await;
                    return Err(MountError::from_sshfs(
                        &opts.sshcmd,
                        opts.port,
                        status,
                        running.stderr(),
                    ));
                }
            }
        }
        if start.elapsed() > tools.mount_timeout {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.kill();
    running.exited().await;
    let _ = unmount(tools, point, true).await;
    Err(MountError::Timeout {
        sshcmd: opts.sshcmd.to_string(),
        secs: tools.mount_timeout.as_secs(),
        stderr: running.stderr(),
    })
}

/// `fusermount -u POINT` (`-z`, lazy, for a dead mount: it detaches even while
/// something holds it).
pub async fn unmount(tools: &Tools, point: &Path, lazy: bool) -> Result<(), MountError> {
    let mut command = tokio::process::Command::new(&tools.fusermount);
    command.arg(if lazy { "-uz" } else { "-u" }).arg(point);
    let out = command.output().await.map_err(|source| MountError::Spawn {
        program: tools.fusermount.clone(),
        source,
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(MountError::Unmount {
            point: point.to_path_buf(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> VolumeOptions {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        VolumeOptions::parse(&map).unwrap()
    }

    fn line(args: &[OsString]) -> String {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn a_key_login_never_waits_for_a_prompt() {
        let args = arguments(
            &opts(&[
                ("sshcmd", "root@h:/srv"),
                ("IdentityFile", "/root/.ssh/id"),
                ("reconnect", ""),
            ]),
            Path::new("/mnt/volumes/v1"),
        );
        assert_eq!(
            line(&args),
            "root@h:/srv /mnt/volumes/v1 -f -p 22 -o BatchMode=yes,StrictHostKeyChecking=yes,\
             ConnectTimeout=20,ServerAliveInterval=15,ServerAliveCountMax=3,IdentityFile=/root/.ssh/id,reconnect"
        );
    }

    #[test]
    fn a_password_goes_to_stdin_never_onto_the_command_line() {
        let args = arguments(
            &opts(&[
                ("sshcmd", "u@h:"),
                ("port", "2222"),
                ("password", "hunter2"),
                ("ConnectTimeout", "5"),
            ]),
            Path::new("/m"),
        );
        assert_eq!(
            line(&args),
            "u@h: /m -f -p 2222 -o password_stdin,StrictHostKeyChecking=yes,ServerAliveInterval=15,ServerAliveCountMax=3,\
             ConnectTimeout=5"
        );
    }

    #[tokio::test]
    async fn a_password_file_is_read_from_the_sshkey_mount_without_its_newline() {
        let keys = tempfile::tempdir().unwrap();
        std::fs::write(keys.path().join("pw"), "s3cret\n").unwrap();
        let o = opts(&[("sshcmd", "u@h:"), ("password_file", "pw")]);
        let got = password(&o, keys.path()).await.unwrap().unwrap();
        assert_eq!(got.expose(), "s3cret");
        let missing = opts(&[("sshcmd", "u@h:"), ("password_file", "nope")]);
        assert_eq!(
            check_password_file(&missing, keys.path())
                .await
                .unwrap_err()
                .to_string(),
            format!(
                "cannot read the password file {}/nope: No such file or directory (os error 2)",
                keys.path().display()
            )
        );
    }
}
