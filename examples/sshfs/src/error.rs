//! [`MountError`]: why a volume could not be mounted or unmounted, in the words
//! `docker run` prints. vieux/sshfs answered "exit status 1"; here each failure names
//! its cause, quotes what sshfs and ssh said (trimmed), and says what to do.
//!
//! [`MountError::from_sshfs`] reads sshfs's stderr for the causes users meet:
//! an unreachable server, a refused login, an unknown or changed host key. The
//! plugin's own container is checked before sshfs runs ([`crate::checks`]): a missing
//! `/dev/fuse` or `CAP_SYS_ADMIN` is reported as such, not as sshfs's
//! "fuse: device not found".

use std::io;
use std::path::PathBuf;

use crate::options::SshCmd;

/// Why a mount or unmount failed.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// ssh could not connect.
    #[error(
        "cannot reach the SSH server {host} port {port}: {stderr} (check the host in sshcmd, \
         -o port, and that sshd runs there and the plugin's network reaches it)"
    )]
    Unreachable {
        host: String,
        port: u16,
        stderr: String,
    },
    /// The server refused the login.
    #[error(
        "the SSH server {host} refused the login of {user}: {stderr} (check the password \
         file, the password, or the key given with -o IdentityFile=/root/.ssh/NAME and that \
         the server accepts it)"
    )]
    Auth {
        host: String,
        user: String,
        stderr: String,
    },
    /// StrictHostKeyChecking refused a host whose key is not in known_hosts.
    #[error(
        "the host key of {host} is unknown: {stderr} (add the server's key to known_hosts \
         in the plugin's sshkey mount, or accept it at first use with \
         -o StrictHostKeyChecking=accept-new)"
    )]
    UnknownHostKey { host: String, stderr: String },
    /// The host's key differs from the one in known_hosts.
    #[error(
        "the host key of {host} differs from the one in known_hosts: {stderr} (if the \
         server's key really changed, replace its line in known_hosts in the plugin's \
         sshkey mount)"
    )]
    ChangedHostKey { host: String, stderr: String },
    /// The server refused the remote directory (missing, or not the user's to enter).
    #[error(
        "the remote directory {sshcmd} cannot be used: {stderr} (check that it exists on the \
         server and that the user may enter it)"
    )]
    RemoteDir { sshcmd: String, stderr: String },
    /// `/dev/fuse` is not in the plugin's container.
    #[error(
        "/dev/fuse is missing in the plugin's container: the plugin's config.json must \
         list it in linux.devices (and the host needs the fuse module: modprobe fuse)"
    )]
    NoFuseDevice,
    /// `/dev/fuse` is there but may not be opened (the device cgroup).
    #[error(
        "/dev/fuse cannot be opened ({reason}): the plugin's config.json must list it in \
         linux.devices"
    )]
    FuseDenied { reason: String },
    /// Mounting needs CAP_SYS_ADMIN.
    #[error(
        "mounting FUSE needs CAP_SYS_ADMIN, which the plugin does not have: the plugin's \
         config.json must list it in linux.capabilities"
    )]
    NoCapability,
    /// The password file could not be read.
    #[error("cannot read the password file {}: {source}", path.display())]
    PasswordFile { path: PathBuf, source: io::Error },
    /// sshfs could not be started.
    #[error("cannot run {}: {source}", program.display())]
    Spawn { program: PathBuf, source: io::Error },
    /// sshfs failed for another reason.
    #[error("sshfs failed ({status}): {stderr}")]
    Sshfs { status: String, stderr: String },
    /// sshfs neither mounted nor failed in time.
    #[error("sshfs did not mount {sshcmd} within {secs} s (it was stopped): {stderr}")]
    Timeout {
        sshcmd: String,
        secs: u64,
        stderr: String,
    },
    /// `fusermount -u` failed (e.g. the volume is busy).
    #[error("cannot unmount {}: {stderr}", point.display())]
    Unmount { point: PathBuf, stderr: String },
    /// The mount directory could not be made.
    #[error("cannot create the mount point {}: {source}", point.display())]
    MountPoint { point: PathBuf, source: io::Error },
}

impl MountError {
    /// The failure sshfs reported for `sshcmd` (port `port`): `status` is how it
    /// exited, `stderr` what it and ssh printed (trimmed).
    pub fn from_sshfs(sshcmd: &SshCmd, port: u16, status: String, stderr: String) -> Self {
        let host = sshcmd.host.clone();
        let has = |needle: &str| stderr.contains(needle);
        if has("REMOTE HOST IDENTIFICATION HAS CHANGED") {
            MountError::ChangedHostKey { host, stderr }
        } else if has("Host key verification failed")
            || has("No ED25519 host key is known")
            || has("host key is known")
        {
            MountError::UnknownHostKey { host, stderr }
        } else if stderr.starts_with(&format!("{sshcmd}: ")) {
            // sshfs's own check of the path: `user@host:/path: No such file or directory`.
            MountError::RemoteDir {
                sshcmd: sshcmd.to_string(),
                stderr,
            }
        } else if has("Permission denied (")
            || has("Permission denied, please try again")
            || has("Too many authentication failures")
        {
            MountError::Auth {
                host,
                user: sshcmd.user.clone().unwrap_or_else(|| "root".into()),
                stderr,
            }
        } else if has("Connection refused")
            || has("Connection timed out")
            || has("No route to host")
            || has("Network is unreachable")
            || has("Could not resolve hostname")
            || has("Name or service not known")
        {
            MountError::Unreachable { host, port, stderr }
        } else {
            MountError::Sshfs { status, stderr }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(stderr: &str) -> String {
        let cmd: SshCmd = "alice@srv:/data".parse().unwrap();
        MountError::from_sshfs(&cmd, 2222, "exit status: 1".into(), stderr.into()).to_string()
    }

    #[test]
    fn each_cause_is_named_with_what_ssh_said_and_the_fix() {
        assert_eq!(
            classify(
                "ssh: connect to host srv port 2222: Connection refused read: Connection reset by peer"
            ),
            "cannot reach the SSH server srv port 2222: ssh: connect to host srv port 2222: \
             Connection refused read: Connection reset by peer (check the host in sshcmd, -o port, \
             and that sshd runs there and the plugin's network reaches it)"
        );
        assert_eq!(
            classify(
                "alice@srv: Permission denied (publickey,password). read: Connection reset by peer"
            ),
            "the SSH server srv refused the login of alice: alice@srv: Permission denied \
             (publickey,password). read: Connection reset by peer (check the password file, the \
             password, or the key given with -o IdentityFile=/root/.ssh/NAME and that the server \
             accepts it)"
        );
        assert_eq!(
            classify("Host key verification failed. read: Connection reset by peer"),
            "the host key of srv is unknown: Host key verification failed. read: Connection reset \
             by peer (add the server's key to known_hosts in the plugin's sshkey mount, or accept \
             it at first use with -o StrictHostKeyChecking=accept-new)"
        );
        assert_eq!(
            classify(
                "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ @    WARNING: REMOTE \
                 HOST IDENTIFICATION HAS CHANGED!     @ Host key verification failed."
            ),
            "the host key of srv differs from the one in known_hosts: @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ \
             @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @ Host key verification \
             failed. (if the server's key really changed, replace its line in known_hosts in the \
             plugin's sshkey mount)"
        );
        // A refused path is not a refused login.
        assert_eq!(
            classify("alice@srv:/data: Permission denied"),
            "the remote directory alice@srv:/data cannot be used: alice@srv:/data: Permission \
             denied (check that it exists on the server and that the user may enter it)"
        );
        assert_eq!(
            classify("fuse: unknown option(s): `-o bogus'"),
            "sshfs failed (exit status: 1): fuse: unknown option(s): `-o bogus'"
        );
    }
}
