//! The sshfs plugin as a MANAGED plugin under the SDK's harness (the dockerd test
//! double: the plugin's own rootfs, namespaces, capabilities, `/dev/fuse` and
//! propagated mount, as runc gives them), against a REAL sshd on loopback with real
//! sshfs and FUSE. The harness's "containers" are closures given the host path of
//! each volume: the propagated mount makes the plugin's sshfs mount visible there,
//! as in a real container. Needs root, sshd, sshfs and /dev/fuse
//! (`scripts/install-test-deps`).

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use docker_plugin_sdk::harness::{Engine, VolumeUse};
use serde_json::Value;
use support::bundle;
use support::sshd::{Sshd, spare_port};

static USERS: AtomicUsize = AtomicUsize::new(0);

/// A user name of this test process: `dpssf<pid>x<n>`.
fn user() -> String {
    format!(
        "dpssf{}x{}",
        std::process::id(),
        USERS.fetch_add(1, Ordering::SeqCst)
    )
}

/// One test's world: an sshd, a harness engine, the plugin's sshkey and state dirs.
struct World {
    sshd: Sshd,
    engine: Engine,
    keys: PathBuf,
    state: PathBuf,
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> Self {
        let sshd = Sshd::start(&user());
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let state = dir.path().join("state");
        fs::create_dir_all(&keys).unwrap();
        fs::create_dir_all(&state).unwrap();
        fs::copy(sshd.client_key(), keys.join("id_ed25519")).unwrap();
        fs::write(keys.join("known_hosts"), sshd.known_hosts_line()).unwrap();
        fs::write(keys.join("password"), format!("{}\n", sshd.password)).unwrap();
        fs::write(keys.join("wrong-password"), "not-it\n").unwrap();
        let engine = Engine::for_tests(dir.path().join("engine"));
        Self {
            sshd,
            engine,
            keys,
            state,
            dir,
        }
    }

    /// Packages the plugin (its config edited by `edit`), creates it as `name`,
    /// points its sshkey and state mounts at this world's dirs, enables it.
    async fn plugin(&self, name: &str, edit: impl FnOnce(&mut Value)) {
        let bundle = bundle::write(&self.dir.path().join(format!("{name}.bundle")), edit);
        // A state directory per plugin: two instances never share one.
        let state = self.state.join(name);
        fs::create_dir_all(&state).unwrap();
        self.engine.plugins().create(name, &bundle).await.unwrap();
        self.engine
            .plugins()
            .set(
                name,
                [
                    format!("sshkey.source={}", self.keys.display()),
                    format!("state.source={}", state.display()),
                    "DEBUG=1".to_owned(),
                ],
            )
            .unwrap();
        self.engine.plugins().enable(name).await.unwrap();
    }

    /// `docker volume create -d DRIVER -o sshcmd=USER@127.0.0.1:REMOTE -o port=PORT …`
    /// of a new remote directory `volume`, logging in with the password file; the
    /// remote directory.
    async fn volume(&self, driver: &str, volume: &str, extra: &[(&str, &str)]) -> PathBuf {
        let remote = self.sshd.remote(volume);
        let mut opts = vec![
            (
                "sshcmd".to_owned(),
                format!("{}@127.0.0.1:{}", self.sshd.user, remote.display()),
            ),
            ("port".to_owned(), self.sshd.port.to_string()),
        ];
        opts.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        self.engine
            .volumes()
            .create(driver, volume, opts)
            .await
            .unwrap();
        remote
    }

    /// `docker run --rm -v VOLUME:… sh -c 'echo TEXT > FILE'`.
    async fn run_writing(&self, volume: &str, file: &str, text: &str) {
        let written = self
            .engine
            .containers()
            .run(&[VolumeUse::existing(volume)], |c| {
                fs::write(c.mountpoint(volume).unwrap().join(file), text)
            })
            .await
            .unwrap();
        written.unwrap();
    }

    /// Everything the plugin printed, as dockerd logs it.
    fn logs(&self, name: &str) -> String {
        self.engine
            .plugins()
            .logs(name)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The plugin's directory on the host (its rootfs's parent).
    fn plugin_dir(&self, name: &str) -> PathBuf {
        let info = self.engine.plugins().inspect(name).unwrap();
        info.rootfs.parent().unwrap().to_path_buf()
    }
}

/// sshfs mount points at or under `dir`, from this process's mountinfo.
fn sshfs_mounts_under(dir: &Path) -> Vec<String> {
    let dir = fs::canonicalize(dir).unwrap();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(" - fuse.sshfs "))
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| Path::new(m).starts_with(&dir))
        .map(str::to_owned)
        .collect()
}

const PASSWORD_FILE: (&str, &str) = ("password_file", "password");

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
    let logs = w.logs("sshfs-auth");
    assert!(logs.contains("mounted"), "{logs}");
    assert!(!logs.contains(&password), "{logs}");
    w.engine.plugins().rm("sshfs-auth", true).await.unwrap();
}

/// The error of Mount for `volume` through plugin `plugin`, as `docker run` would
/// print it, less the engine's wrapping (checked here): the plugin's `Err`.
async fn mount_error(w: &World, plugin: &str, volume: &str) -> String {
    let err = w
        .engine
        .containers()
        .run(&[VolumeUse::existing(volume)], |_| ())
        .await
        .map(|()| w.logs(plugin))
        .unwrap_err()
        .to_string();
    unwrap_plugin_error(
        &err,
        &format!("error while mounting volume '': {plugin}:latest: VolumeDriver.Mount: "),
    )
}

/// The plugin's `Err` inside the engine's message `PREFIX…Err… (HTTP 500)`.
fn unwrap_plugin_error(err: &str, prefix: &str) -> String {
    err.strip_prefix(prefix)
        .and_then(|e| e.strip_suffix(" (HTTP 500)"))
        .unwrap_or_else(|| panic!("{err:?} is not {prefix:?}…"))
        .to_owned()
}

/// The error of `docker volume create` through plugin `plugin`: the plugin's `Err`.
async fn create_error<V: Into<String>>(
    w: &World,
    plugin: &str,
    volume: &str,
    opts: impl IntoIterator<Item = (&'static str, V)>,
) -> String {
    let err = w
        .engine
        .volumes()
        .create(plugin, volume, opts)
        .await
        .unwrap_err()
        .to_string();
    unwrap_plugin_error(
        &err,
        &format!("create {volume}: {plugin}:latest: VolumeDriver.Create: "),
    )
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
        mount_error(&w, "sshfs-err", "unreachable").await,
        format!(
            "cannot mount volume unreachable: cannot reach the SSH server \
             127.0.0.1 port {closed}: ssh: connect to host 127.0.0.1 port {closed}: Connection \
             refused read: Connection reset by peer (check the host in sshcmd, -o port, and that \
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
        mount_error(&w, "sshfs-err", "wrongpw").await,
        format!(
            "cannot mount volume wrongpw: the SSH server 127.0.0.1 refused \
             the login of {user}: {user}@127.0.0.1: Permission denied (publickey,password). read: \
             Connection reset by peer (check the password file, the password, or the key given \
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
        mount_error(&w, "sshfs-err", "hostkey").await,
        format!(
            "cannot mount volume hostkey: the host key of 127.0.0.1 is unknown: No ED25519 host \
             key is known for [127.0.0.1]:{} and you have requested strict checking. Host key \
             verification failed. read: Connection reset by peer (add the server's key to \
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

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "waited 30 s for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    let logs = w.logs("sshfs-crash");
    assert!(
        logs.contains("mounted again at /mnt/volumes/kept for the containers that hold it"),
        "{logs}"
    );
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
    let logs = w.logs("sshfs-dead");
    assert!(
        logs.contains("sshfs had exited (signal: 9 (SIGKILL))"),
        "{logs}"
    );
    c.stop(&mut a).await.unwrap();
    assert_eq!(
        sshfs_mounts_under(&w.plugin_dir("sshfs-dead")),
        Vec::<String>::new()
    );
    c.rm(a).await.unwrap();
    w.engine.plugins().rm("sshfs-dead", true).await.unwrap();
}

fn libc_enotconn() -> i32 {
    nix::errno::Errno::ENOTCONN as i32
}

/// PIDs of processes named `name` with an argument containing `needle`.
fn pids_of(name: &str, needle: &Path) -> Vec<i32> {
    let needle = needle.to_string_lossy().into_owned();
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let comm = fs::read_to_string(e.path().join("comm")).ok()?;
            let cmdline = fs::read_to_string(e.path().join("cmdline")).ok()?;
            (comm.trim() == name && cmdline.contains(&needle)).then_some(pid)
        })
        .collect()
}

#[test]
fn the_bundle_holds_sshfs_ssh_and_fusermount_and_each_runs_in_the_rootfs() {
    let dir = tempfile::tempdir().unwrap();
    let written = bundle::write(&dir.path().join("bundle"), |_| {});
    let ran =
        docker_plugin_sdk::package::verify::verify(&bundle::open(&written), &bundle::programs())
            .unwrap();
    let lines: Vec<String> = ran
        .iter()
        .map(|r| format!("{} {}", r.program, r.flag))
        .collect();
    assert_eq!(
        lines,
        [
            // The plugin has no --version: its --help exits 0.
            "/sshfs --help",
            "/usr/bin/sshfs --version",
            "/usr/bin/ssh -V",
            "/usr/bin/fusermount3 --version",
            "/usr/bin/fusermount --version"
        ]
    );
    let rootfs = written.join("rootfs");
    for file in ["etc/passwd", "etc/group", "etc/nsswitch.conf"] {
        assert!(rootfs.join(file).is_file(), "{file}");
    }
}

#[test]
fn config_json_asks_exactly_what_vieux_sshfs_asks() {
    let dir = tempfile::tempdir().unwrap();
    let written = bundle::write(&dir.path().join("bundle"), |_| {});
    let config: Value =
        serde_json::from_slice(&fs::read(written.join("config.json")).unwrap()).unwrap();
    // vieux/docker-volume-sshfs's config.json, key by key (its entrypoint and
    // description aside).
    assert_eq!(
        config["Interface"]["Types"],
        serde_json::json!(["docker.volumedriver/1.0"])
    );
    assert_eq!(config["Interface"]["Socket"], "sshfs.sock");
    assert_eq!(config["Network"]["Type"], "host");
    assert_eq!(config["PropagatedMount"], "/mnt/volumes");
    assert_eq!(
        config["Linux"]["Capabilities"],
        serde_json::json!(["CAP_SYS_ADMIN"])
    );
    let devices: Vec<&str> = config["Linux"]["Devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["Path"].as_str().unwrap())
        .collect();
    assert_eq!(devices, ["/dev/fuse"]);
    assert_eq!(config["Linux"]["AllowAllDevices"], false);
    assert_eq!(config["IpcHost"], false);
    assert_eq!(config["PidHost"], false);
    let env: Vec<(&str, &str, &Value)> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["Name"].as_str().unwrap(),
                e["Value"].as_str().unwrap(),
                &e["Settable"],
            )
        })
        .collect();
    assert_eq!(env, [("DEBUG", "0", &serde_json::json!(["value"]))]);
    let mounts: Vec<String> = config["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{} {} {} {} {}",
                m["Name"].as_str().unwrap(),
                m["Source"].as_str().unwrap(),
                m["Destination"].as_str().unwrap(),
                m["Type"].as_str().unwrap(),
                m["Settable"]
            )
        })
        .collect();
    assert_eq!(
        mounts,
        [
            r#"state /var/lib/docker/plugins/ /mnt/state bind ["source"]"#,
            r#"sshkey  /root/.ssh bind ["source"]"#
        ]
    );
}
