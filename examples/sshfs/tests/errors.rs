//! Each failure of the sshfs plugin, word for word, as `docker volume create` and
//! `docker run` print it, against a REAL sshd through the SDK's harness: a malformed
//! `sshcmd`, an unreachable server, a refused login, a missing remote directory, an
//! unknown host key, an unreadable password file, and a plugin container without
//! `/dev/fuse` or `CAP_SYS_ADMIN`. Needs root, sshd, sshfs and /dev/fuse.

mod support;

use std::fs;

use serde_json::Value;
use support::sshd::spare_port;
use support::world::*;

/// What sshfs adds when ssh has exited: the error of its next call on the pipe to
/// ssh, `read: Connection reset by peer`, or `write: Broken pipe` when it was
/// writing at that moment. Both say the same (ssh, its peer, went away), and which
/// call comes first is a race; the tests expect [`PEER_GONE`] in their place.
const PEER_GONE_WORDINGS: [&str; 2] = ["read: Connection reset by peer", "write: Broken pipe"];

/// Stands for one of [`PEER_GONE_WORDINGS`] in an expected message.
const PEER_GONE: &str = "<read: Connection reset by peer | write: Broken pipe>";

/// `message` with the first of [`PEER_GONE_WORDINGS`] it holds replaced by
/// [`PEER_GONE`]; everything else is compared word for word.
fn peer_gone(message: String) -> String {
    match PEER_GONE_WORDINGS.iter().find(|w| message.contains(*w)) {
        Some(wording) => message.replacen(wording, PEER_GONE, 1),
        None => message,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_failure_names_its_cause_with_what_ssh_said() {
    let w = World::new();
    w.plugin("sshfs-err", |_| {}).await;
    let user = w.sshd.user.clone();

    assert_eq!(
        create_error(&w, "sshfs-err", "bad", [("sshcmd", "127.0.0.1/srv")]).await,
        "invalid options: option `sshcmd` must be the remote \
         directory as user@host:/path (e.g. root@10.0.0.5:/srv/data), got `127.0.0.1/srv`: no \
         `:` between host and path"
    );

    let closed = spare_port();
    w.engine
        .volumes()
        .create(
            "sshfs-err",
            "unreachable",
            [
                ("sshcmd", format!("{user}@127.0.0.1:/")),
                ("port", closed.to_string()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        peer_gone(mount_error(&w, "sshfs-err", "unreachable").await),
        format!(
            "cannot mount volume unreachable: cannot reach the SSH server \
             127.0.0.1 port {closed}: ssh: connect to host 127.0.0.1 port {closed}: Connection \
             refused {PEER_GONE} (check the host in sshcmd, -o port, and that \
             sshd runs there and the plugin's network reaches it)"
        )
    );

    w.volume(
        "sshfs-err",
        "wrongpw",
        &[("password_file", "wrong-password")],
    )
    .await;
    assert_eq!(
        peer_gone(mount_error(&w, "sshfs-err", "wrongpw").await),
        format!(
            "cannot mount volume wrongpw: the SSH server 127.0.0.1 refused \
             the login of {user}: {user}@127.0.0.1: Permission denied (publickey,password). \
             {PEER_GONE} (check the password file, the password, or the key given \
             with -o IdentityFile=/root/.ssh/NAME and that the server accepts it)"
        )
    );

    let missing = w.sshd.remote("parent").join("missing");
    let missing = missing.display();
    w.engine
        .volumes()
        .create(
            "sshfs-err",
            "nodir",
            [
                ("sshcmd", format!("{user}@127.0.0.1:{missing}")),
                ("port", w.sshd.port.to_string()),
                ("password_file", "password".to_owned()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        mount_error(&w, "sshfs-err", "nodir").await,
        format!(
            "cannot mount volume nodir: the remote directory {user}@127.0.0.1:{missing} cannot \
             be used: {user}@127.0.0.1:{missing}: No such file or directory (check that it \
             exists on the server and that the user may enter it)"
        )
    );

    fs::write(w.keys.join("no_known_hosts"), "").unwrap();
    w.volume(
        "sshfs-err",
        "hostkey",
        &[
            PASSWORD_FILE,
            ("UserKnownHostsFile", "/root/.ssh/no_known_hosts"),
        ],
    )
    .await;
    assert_eq!(
        peer_gone(mount_error(&w, "sshfs-err", "hostkey").await),
        format!(
            "cannot mount volume hostkey: the host key of 127.0.0.1 is unknown: No ED25519 host \
             key is known for [127.0.0.1]:{} and you have requested strict checking. Host key \
             verification failed. {PEER_GONE} (add the server's key to \
             known_hosts in the plugin's sshkey mount, or accept it at first use with \
             -o StrictHostKeyChecking=accept-new)",
            w.sshd.port
        )
    );

    assert_eq!(
        create_error(
            &w,
            "sshfs-err",
            "nofile",
            [
                ("sshcmd", format!("{user}@127.0.0.1:/")),
                ("password_file", "nope".into()),
            ],
        )
        .await,
        "cannot read the password file /root/.ssh/nope: No such file or directory (os error 2)"
    );
    w.engine.plugins().rm("sshfs-err", true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn without_dev_fuse_or_cap_sys_admin_mount_says_what_config_json_lacks() {
    let w = World::new();
    w.plugin("sshfs-nofuse", |c| {
        c["linux"]["devices"] = Value::Array(vec![]);
    })
    .await;
    w.volume("sshfs-nofuse", "nofuse", &[PASSWORD_FILE]).await;
    assert_eq!(
        mount_error(&w, "sshfs-nofuse", "nofuse").await,
        "cannot mount volume nofuse: /dev/fuse is missing in the plugin's \
         container: the plugin's config.json must list it in linux.devices (and the host needs \
         the fuse module: modprobe fuse)"
    );
    w.plugin("sshfs-nocap", |c| {
        c["linux"]["capabilities"] = Value::Array(vec![]);
    })
    .await;
    w.volume("sshfs-nocap", "nocap", &[PASSWORD_FILE]).await;
    assert_eq!(
        mount_error(&w, "sshfs-nocap", "nocap").await,
        "cannot mount volume nocap: mounting FUSE needs CAP_SYS_ADMIN, \
         which the plugin does not have: the plugin's config.json must list it in \
         linux.capabilities"
    );
    w.engine.plugins().rm("sshfs-nofuse", true).await.unwrap();
    w.engine.plugins().rm("sshfs-nocap", true).await.unwrap();
}
