//! The reference sshfs plugin (`examples/sshfs`) against a REAL dockerd, the way
//! Docker's docs use vieux/sshfs: `cargo docker-plugin package -p sshfs` (its
//! metadata's `verify = true`: sshfs, ssh and fusermount run inside the rootfs), `docker plugin create`, `set`
//! (its sshkey and state mounts), `enable`; `docker volume create -d NAME:latest -o
//! sshcmd=USER@127.0.0.1:DIR -o port=… -o password_file=…` against a real sshd on
//! loopback (the example's test sshd, `examples/sshfs/tests/support/sshd.rs`), the
//! password in a file of the sshkey mount (`-o password_file=…`); two `docker run
//! -v` containers share a file that shows up on the sshd side, and one written on the
//! server shows up in them. The password appears neither in `docker volume
//! inspect`, nor in `docker plugin inspect`, nor in dockerd's log (which holds the
//! plugin's output). Given with `-o password=…` it stays out of the volume's Status,
//! but dockerd shows its own copy of the create options. Everything is removed after: containers, volume, plugin,
//! sshd and its user, and no sshfs mount is left on the host.
//!
//! It needs root, sshd, sshfs and /dev/fuse; when dockerd cannot start the test fails
//! under `CI=true` (or `DPS_REQUIRE_DOCKERD=1`) and is reported as ignored otherwise.

mod support;

#[path = "../examples/sshfs/tests/support/sshd.rs"]
#[allow(dead_code)]
mod sshd;

use std::fs;

use docker_plugin_sdk::harness::dockerd::Dockerd;
use libtest_mimic::Failed;
use support::cli::{check, package_member_printing, unique};
use support::shared_dockerd::{DockerdTest, ImageOnce, PlainTest, run_trials, with_dockerd_log};
use support::wait::wait_for;

const IMAGE: &str = "dps-busybox:sshfs";

/// sshfs mount points on the host (this process's mount namespace is the host's).
fn sshfs_mounts() -> Vec<String> {
    docker_plugin_sdk::mountinfo::read()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.fs_type == "fuse.sshfs")
        .map(|m| m.mount_point.display().to_string())
        .collect()
}

fn two_containers_share_a_remote_directory_and_the_password_stays_hidden(
    d: &Dockerd,
    image: &ImageOnce,
) -> Result<(), Failed> {
    image.ensure(d)?;
    let (bundle, printed) = package_member_printing("sshfs")?;
    for line in [
        "verified /usr/bin/sshfs --version",
        "verified /usr/bin/ssh -V: OpenSSH_",
        "verified /usr/bin/fusermount --version",
    ] {
        check(printed.contains(line), || {
            format!("{line:?} missing:\n{printed}")
        })?;
    }
    let sshd = sshd::Sshd::start(&format!("dpsdk{}", std::process::id()));
    let keys = tempfile::tempdir()?;
    let state = tempfile::tempdir()?;
    fs::write(keys.path().join("known_hosts"), sshd.known_hosts_line())?;
    fs::write(keys.path().join("password"), format!("{}\n", sshd.password))?;
    let remote = sshd.remote("x");
    let plugin = unique("dps-sshfs");
    let volume = unique("sshvol");
    let inline = unique("sshvol-inline");
    let keeper = unique("sshfs-a");
    let mut created = false;
    let result = (|| -> Result<(), Failed> {
        d.docker_ok(&["plugin", "create", &plugin, bundle.to_str().ok_or("path")?])?;
        created = true;
        d.docker_ok(&[
            "plugin",
            "set",
            &plugin,
            &format!("sshkey.source={}", keys.path().display()),
            &format!("state.source={}", state.path().display()),
            "DEBUG=1",
        ])?;
        d.docker_ok(&["plugin", "enable", &plugin])?;
        let driver = format!("{plugin}:latest");
        // `docker volume create -d DRIVER -o sshcmd=… -o port=… -o AUTH NAME`.
        let create = |name: &str, auth: &str| {
            d.docker_ok(&[
                "volume",
                "create",
                "-d",
                &driver,
                "-o",
                &format!("sshcmd={}@127.0.0.1:{}", sshd.user, remote.display()),
                "-o",
                &format!("port={}", sshd.port),
                "-o",
                auth,
                name,
            ])
        };
        create(&volume, "password_file=password")?;
        let mount = format!("{volume}:/data");
        fs::write(remote.join("from-server"), "written on the server\n")?;
        // Container a keeps the volume mounted while b comes and goes.
        d.docker_ok(&[
            "run",
            "-d",
            "--name",
            &keeper,
            "-v",
            &mount,
            IMAGE,
            "sh",
            "-c",
            "echo written by a > /data/from-a; sleep 600",
        ])?;
        // `docker run -d` returns once a started: its write comes after.
        wait_for("container a's file on the server", || {
            remote.join("from-a").exists().then_some(())
        })?;
        let read = d.docker_ok(&[
            "run",
            "--rm",
            "-v",
            &mount,
            IMAGE,
            "sh",
            "-c",
            "cat /data/from-a /data/from-server; echo written by b > /data/from-b",
        ])?;
        check(read == "written by a\nwritten on the server", || {
            read.clone()
        })?;
        let on_server = fs::read_to_string(remote.join("from-b"))?;
        check(on_server == "written by b\n", || on_server.clone())?;
        // b's Unmount left the volume to a.
        let still = d.docker_ok(&["exec", &keeper, "cat", "/data/from-b"])?;
        check(still == "written by b", || still.clone())?;

        let inspect = d.docker_ok(&["volume", "inspect", &volume])?;
        check(inspect.contains("password from file password"), || {
            inspect.clone()
        })?;
        // With -o password=… the plugin's Status hides it too; dockerd itself keeps
        // the create options and shows them under Options (moby v20.10.24
        // volume/service/store.go keeps them, convert.go shows them): hence
        // password_file, the README's safe way.
        create(&inline, &format!("password={}", sshd.password))?;
        let status =
            d.docker_ok(&["volume", "inspect", "--format", "{{json .Status}}", &inline])?;
        check(
            status.contains("password (hidden)") && !status.contains(&sshd.password),
            || status.clone(),
        )?;
        let options = d.docker_ok(&[
            "volume",
            "inspect",
            "--format",
            "{{json .Options}}",
            &inline,
        ])?;
        check(options.contains(&sshd.password), || options.clone())?;
        d.docker_ok(&["volume", "rm", &inline])?;
        let plugin_inspect = d.docker_ok(&["plugin", "inspect", &plugin])?;
        // The plugin's output is in dockerd's log: copied there by goroutines of
        // dockerd's own (moby v20.10.24 `plugin/executor/containerd/containerd.go`
        // `attachStreamsFunc`), some time after the plugin printed it; what follows
        // reads the log once its lines of the mounts are there.
        let log = wait_for("the plugin's lines in dockerd's log", || {
            fs::read_to_string(d.log())
                .ok()
                .filter(|log| log.contains("sshfs::driver: mounted"))
        })
        .map_err(|e| format!("{e}:\n{}", d.log_tail(40)))?;
        for (what, text) in [
            ("docker volume inspect", &inspect),
            ("docker plugin inspect", &plugin_inspect),
            ("dockerd's log", &log),
        ] {
            check(!text.contains(&sshd.password), || {
                format!("the password appears in {what}:\n{text}")
            })?;
        }
        d.docker_ok(&["rm", "-f", &keeper])?;
        d.docker_ok(&["volume", "rm", &volume])?;
        let left = sshfs_mounts();
        check(left.is_empty(), || format!("sshfs mounts left: {left:?}"))
    })();
    let _ = d.docker(&["rm", "-f", &keeper]);
    let _ = d.docker(&["volume", "rm", "-f", &volume]);
    let _ = d.docker(&["volume", "rm", "-f", &inline]);
    if created {
        let _ = d.docker(&["plugin", "rm", "-f", &plugin]);
    }
    with_dockerd_log(d, 60, result)
}

fn main() {
    let plain: Vec<(&str, PlainTest)> = vec![];
    let with_dockerd: Vec<(&str, DockerdTest)> = vec![(
        "two_containers_share_a_remote_directory_and_the_password_stays_hidden",
        two_containers_share_a_remote_directory_and_the_password_stays_hidden,
    )];
    run_trials("sshfs e2e", IMAGE, plain, with_dockerd)
}
