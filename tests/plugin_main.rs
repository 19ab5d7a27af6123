//! A plugin built with `#[docker_plugin_sdk::main]`, run as a real process and driven
//! by a client: its runtime serves Get and List while a careless Mount blocks its
//! thread (answered before that Mount ends), its logs fit dockerd (info on stdout,
//! warnings and errors on stderr, no timestamp and no colour when not on a terminal),
//! and a second SIGTERM ends the drain at once.
//!
//! This file is both sides: run by `cargo test`, it is the test runner; run with
//! `DPS_PLUGIN_MAIN_DIR` set (by the tests, through `current_exe`), it is the plugin.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use docker_plugin_sdk::client::Client;
use libtest_mimic::{Arguments, Failed, Trial};
use support::wait::wait_for_async;

/// Where the plugin puts its socket; set only in the plugin process.
const DIR_ENV: &str = "DPS_PLUGIN_MAIN_DIR";

/// The files the plugin makes in its directory when a Mount of `block` starts and
/// ends, and when a Mount of `slow` starts: what the tests wait for, instead of
/// guessing how long the call takes to get there on a loaded machine.
const BLOCK_STARTED: &str = "block-started";
const BLOCK_ENDED: &str = "block-ended";
const SLOW_STARTED: &str = "slow-started";

/// The plugin side.
mod plugin {
    use std::time::Duration;

    use docker_plugin_sdk::volume::*;
    use docker_plugin_sdk::{Error, Plugin, Result, ServeError, async_trait, transport};

    /// Volume names steer it: Mount of `block` blocks its thread for 2 s (as a driver
    /// calling `std::thread::sleep` or a blocking `mount` would), Mount of `slow`
    /// waits a minute without blocking, Get of `panic` panics. Each Mount marks its
    /// progress with a file (see [`super::BLOCK_STARTED`]).
    struct Careless;

    /// Makes the marker file `name` in the plugin's directory.
    fn mark(name: &str) {
        let dir = std::env::var_os(super::DIR_ENV).unwrap_or_default();
        std::fs::write(std::path::Path::new(&dir).join(name), "").expect("a marker file");
    }

    #[async_trait]
    impl Driver for Careless {
        async fn create(&self, _: CreateRequest) -> Result<()> {
            Ok(())
        }
        async fn remove(&self, _: RemoveRequest) -> Result<()> {
            Ok(())
        }
        async fn mount(&self, req: MountRequest) -> Result<MountResponse> {
            match req.name.as_str() {
                "block" => {
                    mark(super::BLOCK_STARTED);
                    std::thread::sleep(Duration::from_secs(2));
                    mark(super::BLOCK_ENDED);
                }
                "slow" => {
                    mark(super::SLOW_STARTED);
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                _ => {}
            }
            Ok(MountResponse::new(format!("/mnt/{}", req.name)))
        }
        async fn unmount(&self, _: UnmountRequest) -> Result<()> {
            Ok(())
        }
        async fn path(&self, _: PathRequest) -> Result<PathResponse> {
            Ok(PathResponse::not_mounted())
        }
        async fn get(&self, req: GetRequest) -> Result<GetResponse> {
            if req.name == "panic" {
                panic!("driver bug on purpose");
            }
            Err(Error::new("no such volume"))
        }
        async fn list(&self) -> Result<ListResponse> {
            Ok(ListResponse::default())
        }
    }

    #[docker_plugin_sdk::main]
    pub async fn main() -> Result<(), ServeError> {
        let dir = std::env::var_os(super::DIR_ENV).unwrap_or_default();
        let listener = transport::UnixSocket::new("main").dir(dir).bind()?;
        Plugin::new().volume(Careless).serve(listener).await
    }
}

fn main() -> ExitCode {
    if std::env::var_os(DIR_ENV).is_some() {
        return plugin::main();
    }
    let trials = vec![
        Trial::test(
            "get_and_list_answer_while_a_mount_blocks_its_thread",
            get_and_list_answer_while_a_mount_blocks,
        ),
        Trial::test(
            "info_goes_to_stdout_and_errors_to_stderr_without_timestamps",
            logs_fit_dockerd,
        ),
        Trial::test(
            "a_second_sigterm_stops_at_once",
            a_second_sigterm_stops_at_once,
        ),
    ];
    libtest_mimic::run(&Arguments::from_args(), trials).exit_code()
}

/// The plugin, started from this binary, its stdout and stderr in files.
struct Running {
    child: Child,
    dir: tempfile::TempDir,
    socket: PathBuf,
}

impl Running {
    fn start() -> Result<Self, Failed> {
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("main.sock");
        let child = Command::new(std::env::current_exe()?)
            .env(DIR_ENV, dir.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("stdout"))?)
            .stderr(std::fs::File::create(dir.path().join("stderr"))?)
            .spawn()?;
        let mut running = Running { child, dir, socket };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&running.socket).is_err() {
            if Instant::now() > deadline || running.child.try_wait()?.is_some() {
                return Err(format!("the plugin did not listen:\n{}", running.output()).into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(running)
    }

    fn client(&self) -> Client {
        Client::unix(&self.socket).timeout(Duration::from_secs(30))
    }

    fn stream(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// Whether the plugin made the marker file `name` (see [`BLOCK_STARTED`]).
    fn marked(&self, name: &str) -> bool {
        self.dir.path().join(name).exists()
    }

    /// Waits (see [`support::wait`]) for the marker file `name`, the client's runtime
    /// going on meanwhile.
    async fn wait_for_mark(&self, name: &str) -> Result<(), Failed> {
        wait_for_async(&format!("the plugin's {name}"), || {
            self.marked(name).then_some(())
        })
        .await
        .map_err(|e| format!("{e}:\n{}", self.output()).into())
    }

    /// Removes the marker file `name`, for the next call to make it again.
    fn unmark(&self, name: &str) -> Result<(), Failed> {
        match std::fs::remove_file(self.dir.path().join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    fn output(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            self.stream("stdout"),
            self.stream("stderr")
        )
    }

    fn sigterm(&self) -> Result<(), Failed> {
        let pid = libc::pid_t::try_from(self.child.id())?;
        // SAFETY: kill(2) with a pid this process started and has not reaped.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(())
    }

    /// Waits up to `within` for the exit.
    fn exited_within(&mut self, within: Duration) -> Result<bool, Failed> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    return Err(format!("exit {status}:\n{}", self.output()).into());
                }
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(false)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the client")
}

fn body(name: &str) -> String {
    format!("{{\"Name\":\"{name}\",\"ID\":\"{}\"}}\n", "ab".repeat(32))
}

fn get_and_list_answer_while_a_mount_blocks() -> Result<(), Failed> {
    let plugin = Running::start()?;
    let client = plugin.client();
    runtime().block_on(async {
        client.activate().await?;
        // Which worker the mount blocks varies: three rounds.
        for round in 0..3 {
            plugin.unmark(BLOCK_STARTED)?;
            plugin.unmark(BLOCK_ENDED)?;
            let mount = tokio::spawn({
                let client = client.clone();
                async move { client.call_raw("VolumeDriver.Mount", body("block")).await }
            });
            // The mount is in the driver, blocking its thread (for 2 s).
            plugin.wait_for_mark(BLOCK_STARTED).await?;
            for (method, request) in [
                ("VolumeDriver.Get", body("v1")),
                ("VolumeDriver.List", "{}\n".to_owned()),
            ] {
                let reply = client.call_raw(method, request).await?;
                // Answered while the mount still blocked its thread: an order, not a
                // time, which a loaded machine cannot get wrong (a runtime whose
                // other workers waited for that thread would answer after the mount).
                if plugin.marked(BLOCK_ENDED) {
                    return Err(format!(
                        "round {round}: {method} was answered ({}) only after the blocking Mount ended:\n{}",
                        reply.status,
                        plugin.output()
                    )
                    .into());
                }
            }
            let mounted = mount.await??;
            if mounted.text() != r#"{"Mountpoint":"/mnt/block"}"# {
                return Err(format!("the blocking mount answered {}", mounted.text()).into());
            }
        }
        Ok::<_, Failed>(())
    })
}

fn logs_fit_dockerd() -> Result<(), Failed> {
    let mut plugin = Running::start()?;
    runtime().block_on(plugin.client().call_raw("VolumeDriver.Get", body("panic")))?;
    plugin.sigterm()?;
    if !plugin.exited_within(Duration::from_secs(10))? {
        return Err(format!("still running after SIGTERM:\n{}", plugin.output()).into());
    }
    let (stdout, stderr) = (plugin.stream("stdout"), plugin.stream("stderr"));
    let output = plugin.output();
    let line = |text: &str, needle: &str| -> Result<String, Failed> {
        text.lines()
            .find(|l| l.contains(needle))
            .map(str::to_owned)
            .ok_or_else(|| format!("no {needle:?} in\n{output}").into())
    };
    // dockerd shows stdout at level info, stderr at level error, with its own time.
    let listening = line(&stdout, "plugin listening")?;
    let sigterm = line(&stdout, "SIGTERM received")?;
    let panicked = line(&stderr, "driver panicked")?;
    for (what, line, level) in [
        ("listening", &listening, "INFO"),
        ("sigterm", &sigterm, "INFO"),
        ("panic", &panicked, "ERROR"),
    ] {
        if !line.trim_start().starts_with(level) {
            return Err(format!("{what}: {line:?} does not start with {level}").into());
        }
    }
    if stderr.contains("plugin listening") || stdout.contains("driver panicked") {
        return Err(format!("a line on the wrong stream:\n{output}").into());
    }
    if output.contains('\u{1b}') {
        return Err(format!("colour codes outside a terminal:\n{output}").into());
    }
    Ok(())
}

fn a_second_sigterm_stops_at_once() -> Result<(), Failed> {
    let mut plugin = Running::start()?;
    let client = plugin.client();
    let rt = runtime();
    // A minute-long mount in flight: in the driver, not merely sent.
    let _mount = rt.spawn(async move { client.call_raw("VolumeDriver.Mount", body("slow")).await });
    rt.block_on(plugin.wait_for_mark(SLOW_STARTED))?;
    plugin.sigterm()?;
    if plugin.exited_within(Duration::from_millis(700))? {
        return Err(format!("no drain after the first SIGTERM:\n{}", plugin.output()).into());
    }
    let start = Instant::now();
    plugin.sigterm()?;
    // The drain (`DEFAULT_DRAIN_TIMEOUT`, 8 s) would go on for 7 s more; an exit at
    // once comes well within 5 s, even on a loaded machine.
    if !plugin.exited_within(Duration::from_secs(5))? {
        return Err(format!(
            "still draining {:?} after a second SIGTERM:\n{}",
            start.elapsed(),
            plugin.output()
        )
        .into());
    }
    let stderr = plugin.stream("stderr");
    if !stderr.contains("SIGTERM received again: stopping at once") {
        return Err(format!("no word of it:\n{}", plugin.output()).into());
    }
    drop(rt);
    Ok(())
}
