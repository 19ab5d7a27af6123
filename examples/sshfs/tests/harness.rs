//! The sshfs plugin as a MANAGED plugin under the SDK's harness (the dockerd test
//! double: the plugin's own rootfs, namespaces, capabilities, `/dev/fuse` and
//! propagated mount, as runc gives them), against a REAL sshd on loopback with real
//! sshfs and FUSE: files both ways, two containers sharing, key and password logins,
//! a plugin killed while containers hold a volume, a dead sshfs. The harness's
//! "containers" are closures given the host path of each volume: the propagated
//! mount makes the plugin's sshfs mount visible there, as in a real container. Needs
//! root, sshd, sshfs and /dev/fuse (`scripts/install-test-deps`).

mod support;

use std::fs;

use docker_plugin_sdk::harness::VolumeUse;
use support::world::*;

#[tokio::test(flavor = "multi_thread")]
async fn files_cross_both_ways_and_two_containers_share_the_volume() {
    let w = World::new();
    w.plugin("sshfs-share", |_| {}).await;
    let remote = w.volume("sshfs-share", "share", &[PASSWORD_FILE]).await;
    fs::write(remote.join("from-server"), "written on the server").unwrap();

    let c = w.engine.containers();
    let mut a = c.create(&[VolumeUse::existing("share")]).await.unwrap();
    let mut b = c.create(&[VolumeUse::existing("share")]).await.unwrap();
    c.start(&mut a).await.unwrap();
    c.start(&mut b).await.unwrap();
    let in_a = a.mountpoint("share").unwrap().to_path_buf();
    let in_b = b.mountpoint("share").unwrap().to_path_buf();
    assert_eq!(
        fs::read_to_string(in_a.join("from-server")).unwrap(),
        "written on the server"
    );
    fs::write(in_a.join("from-a"), "written by container a").unwrap();
    assert_eq!(
        fs::read_to_string(remote.join("from-a")).unwrap(),
        "written by container a"
    );
    assert_eq!(
        fs::read_to_string(in_b.join("from-a")).unwrap(),
        "written by container a"
    );
    // a's stop (its Unmount) leaves the volume to b.
    c.stop(&mut a).await.unwrap();
    fs::write(in_b.join("from-b"), "written by container b").unwrap();
    assert_eq!(
        fs::read_to_string(remote.join("from-b")).unwrap(),
        "written by container b"
    );
    assert_eq!(sshfs_mounts_under(&w.plugin_dir("sshfs-share")).len(), 1);
    c.stop(&mut b).await.unwrap();
    assert_eq!(
        sshfs_mounts_under(&w.plugin_dir("sshfs-share")),
        Vec::<String>::new()
    );
    c.rm(a).await.unwrap();
    c.rm(b).await.unwrap();
    w.engine.volumes().rm("share").await.unwrap();
    assert_eq!(
        fs::read_to_string(remote.join("from-b")).unwrap(),
        "written by container b"
    );
    w.engine.plugins().rm("sshfs-share", true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_login_as_root_and_the_password_never_shown() {
    let w = World::new();
    w.plugin("sshfs-auth", |_| {}).await;
    // root with the client key from the sshkey mount.
    let remote = w.sshd.remote("bykey");
    w.engine
        .volumes()
        .create(
            "sshfs-auth",
            "bykey",
            [
                ("sshcmd", format!("root@127.0.0.1:{}", remote.display())),
                ("port", w.sshd.port.to_string()),
                ("IdentityFile", "/root/.ssh/id_ed25519".to_owned()),
            ],
        )
        .await
        .unwrap();
    w.run_writing("bykey", "k", "by key").await;
    assert_eq!(fs::read_to_string(remote.join("k")).unwrap(), "by key");

    // A password given with -o password: used, and shown nowhere.
    let password = w.sshd.password.clone();
    let remote = w
        .volume(
            "sshfs-auth",
            "bypassword",
            &[("password", password.as_str())],
        )
        .await;
    w.run_writing("bypassword", "p", "by password").await;
    assert_eq!(fs::read_to_string(remote.join("p")).unwrap(), "by password");
    let inspect = w.engine.volumes().inspect("bypassword").await.unwrap();
    let shown = format!("{inspect:?}");
    assert!(shown.contains("password (hidden)"), "{shown}");
    assert!(!shown.contains(&password), "{shown}");
    let logs = w.logs_once_they_hold("sshfs-auth", "mounted").await;
    assert!(!logs.contains(&password), "{logs}");
    w.engine.plugins().rm("sshfs-auth", true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_killed_while_two_containers_hold_the_volume_comes_back_mounted() {
    let w = World::new();
    w.plugin("sshfs-crash", |_| {}).await;
    let remote = w.volume("sshfs-crash", "kept", &[PASSWORD_FILE]).await;
    let c = w.engine.containers();
    let mut a = c.create(&[VolumeUse::existing("kept")]).await.unwrap();
    let mut b = c.create(&[VolumeUse::existing("kept")]).await.unwrap();
    c.start(&mut a).await.unwrap();
    c.start(&mut b).await.unwrap();
    let point = a.mountpoint("kept").unwrap().to_path_buf();
    fs::write(point.join("before"), "before the crash").unwrap();

    let first = w
        .engine
        .plugins()
        .inspect("sshfs-crash")
        .unwrap()
        .pid
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until("the restarted plugin", || {
        w.engine
            .plugins()
            .inspect("sshfs-crash")
            .unwrap()
            .pid
            .is_some_and(|pid| pid != first)
    })
    .await;
    // At start it mounted the volume again for the two containers holding it.
    wait_until("the volume mounted again", || {
        fs::read_to_string(point.join("before")).is_ok()
    })
    .await;
    fs::write(point.join("after"), "after the restart").unwrap();
    assert_eq!(sshfs_mounts_under(&w.plugin_dir("sshfs-crash")).len(), 1);

    // Both Unmounts work: the counts survived; the last one unmounts.
    c.stop(&mut a).await.unwrap();
    assert_eq!(
        fs::read_to_string(b.mountpoint("kept").unwrap().join("after")).unwrap(),
        "after the restart"
    );
    c.stop(&mut b).await.unwrap();
    assert_eq!(
        sshfs_mounts_under(&w.plugin_dir("sshfs-crash")),
        Vec::<String>::new()
    );
    assert_eq!(
        fs::read_to_string(remote.join("before")).unwrap(),
        "before the crash"
    );
    assert_eq!(
        fs::read_to_string(remote.join("after")).unwrap(),
        "after the restart"
    );
    w.logs_once_they_hold(
        "sshfs-crash",
        "mounted again at /mnt/volumes/kept for the containers that hold it",
    )
    .await;
    c.rm(a).await.unwrap();
    c.rm(b).await.unwrap();
    w.engine.plugins().rm("sshfs-crash", true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_sshfs_is_mounted_again_at_the_next_mount() {
    let w = World::new();
    w.plugin("sshfs-dead", |_| {}).await;
    let remote = w.volume("sshfs-dead", "flaky", &[PASSWORD_FILE]).await;
    fs::write(remote.join("f"), "still there").unwrap();
    let c = w.engine.containers();
    let mut a = c.create(&[VolumeUse::existing("flaky")]).await.unwrap();
    c.start(&mut a).await.unwrap();
    // The network drops: the sshfs process dies (its mount stays, dead).
    let sshfs = pids_of("sshfs", &remote);
    assert_eq!(sshfs.len(), 1, "{sshfs:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sshfs[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let point = a.mountpoint("flaky").unwrap().to_path_buf();
    wait_until("the dead mount", || {
        fs::metadata(&point).is_err_and(|e| e.raw_os_error() == Some(libc_enotconn()))
    })
    .await;
    // The next container's Mount finds it dead and mounts it again.
    let read = c
        .run(&[VolumeUse::existing("flaky")], |c| {
            fs::read_to_string(c.mountpoint("flaky").unwrap().join("f"))
        })
        .await
        .unwrap();
    assert_eq!(read.unwrap(), "still there");
    w.logs_once_they_hold("sshfs-dead", "sshfs had exited (signal: 9 (SIGKILL))")
        .await;
    c.stop(&mut a).await.unwrap();
    assert_eq!(
        sshfs_mounts_under(&w.plugin_dir("sshfs-dead")),
        Vec::<String>::new()
    );
    c.rm(a).await.unwrap();
    w.engine.plugins().rm("sshfs-dead", true).await.unwrap();
}
