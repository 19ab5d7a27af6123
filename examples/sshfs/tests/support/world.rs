//! One test's world: a real sshd ([`super::sshd`]), the SDK's harness engine, and the
//! plugin packaged from this crate ([`super::bundle`]) with its sshkey and state
//! mounts pointing at directories of the test; and what the tests ask of it (the
//! engine's error around the plugin's, the mounts left, the processes).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use docker_plugin_sdk::harness::{Engine, VolumeUse};
use serde_json::Value;

use super::bundle;
use super::sshd::Sshd;

static USERS: AtomicUsize = AtomicUsize::new(0);

/// A user name of this test process: `dpssf<pid>x<n>`.
pub fn user() -> String {
    format!(
        "dpssf{}x{}",
        std::process::id(),
        USERS.fetch_add(1, Ordering::SeqCst)
    )
}

/// One test's world: an sshd, a harness engine, the plugin's sshkey and state dirs.
pub struct World {
    pub sshd: Sshd,
    pub engine: Engine,
    pub keys: PathBuf,
    state: PathBuf,
    dir: tempfile::TempDir,
}

impl World {
    pub fn new() -> Self {
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
    pub async fn plugin(&self, name: &str, edit: impl FnOnce(&mut Value)) {
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
    pub async fn volume(&self, driver: &str, volume: &str, extra: &[(&str, &str)]) -> PathBuf {
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
    pub async fn run_writing(&self, volume: &str, file: &str, text: &str) {
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

    /// Everything the plugin printed so far, as dockerd logs it.
    pub fn logs(&self, name: &str) -> String {
        self.engine
            .plugins()
            .logs(name)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// What the plugin printed, once it holds `text`. The engine reads a plugin's
    /// output in a task of its own, as dockerd does (moby v20.10.24
    /// `plugin/executor/containerd/containerd.go` `attachStreamsFunc`): a line the
    /// plugin printed before it answered a call may come after the answer.
    pub async fn logs_once_they_hold(&self, name: &str, text: &str) -> String {
        let start = Instant::now();
        loop {
            let logs = self.logs(name);
            if logs.contains(text) {
                return logs;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "waited {PATIENCE:?} for {text:?} in the plugin's output:\n{logs}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The plugin's directory on the host (its rootfs's parent).
    pub fn plugin_dir(&self, name: &str) -> PathBuf {
        let info = self.engine.plugins().inspect(name).unwrap();
        info.rootfs.parent().unwrap().to_path_buf()
    }
}

/// sshfs mount points at or under `dir`, from this process's mountinfo.
pub fn sshfs_mounts_under(dir: &Path) -> Vec<String> {
    let dir = fs::canonicalize(dir).unwrap();
    docker_plugin_sdk::mountinfo::read()
        .unwrap()
        .into_iter()
        .filter(|m| m.fs_type == sshfs::mountinfo::SSHFS_TYPE && m.mount_point.starts_with(&dir))
        .map(|m| m.mount_point.display().to_string())
        .collect()
}

pub const PASSWORD_FILE: (&str, &str) = ("password_file", "password");

/// The error of Mount for `volume` through plugin `plugin`, as `docker run` would
/// print it, less the engine's wrapping (checked here): the plugin's `Err`.
pub async fn mount_error(w: &World, plugin: &str, volume: &str) -> String {
    let err = w
        .engine
        .containers()
        .run(&[VolumeUse::existing(volume)], |_| ())
        .await
        .map(|()| w.logs(plugin))
        .unwrap_err()
        .to_string();
    unwrap_plugin_error(&err, "error while mounting volume '': VolumeDriver.Mount: ")
}

/// The plugin's `Err` inside the engine's message `PREFIX…Err…`.
pub fn unwrap_plugin_error(err: &str, prefix: &str) -> String {
    err.strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{err:?} is not {prefix:?}…"))
        .to_owned()
}

/// The error of `docker volume create` through plugin `plugin`: the plugin's `Err`.
pub async fn create_error<V: Into<String>>(
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
    unwrap_plugin_error(&err, &format!("create {volume}: VolumeDriver.Create: "))
}

/// How long a wait for something asynchronous goes on (a restarted plugin, its
/// output, a mount): generous, for CI's loaded two cores; a wait ends when its
/// condition holds.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < PATIENCE, "waited {PATIENCE:?} for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn libc_enotconn() -> i32 {
    nix::errno::Errno::ENOTCONN as i32
}

/// PIDs of processes named `name` with an argument containing `needle`.
pub fn pids_of(name: &str, needle: &Path) -> Vec<i32> {
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
