//! The example log drivers against a REAL dockerd, as managed plugins of type
//! `docker.logdriver/1.0` packaged by `cargo docker-plugin package -p …`:
//!
//! - `filelog`: `docker run --log-driver NAME:latest` writes lines that land in its
//!   files (read here from its state mount on the host), and `docker logs` (with
//!   `--tail 2`, `--since`, `-f`) gives back exactly the bytes the container printed,
//!   a line over 16 KiB whole; a stopped container's logs read, a restarted one
//!   appends; rotation keeps `max-file` files; a bad `--log-opt` fails `docker run`
//!   with the driver's words, the same words, to the letter, as the harness's
//!   (`failed to initialize logging driver: error creating logger: …`).
//! - `slowsink`: with its TCP receiver paused, a container writing 50 MB of logs still
//!   exits, `docker rm` returns within seconds and `docker rm -f` within seconds of
//!   the same removal on dockerd's json-file driver, and the drop counters (its log
//!   at the end of a container's logging) add up with what the receiver got once
//!   resumed.
//!
//! It needs root; when dockerd cannot start the tests fail under `CI=true` (or
//! `DPS_REQUIRE_DOCKERD=1`) and are reported as ignored otherwise.

mod support;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use std::{fs, thread};

use docker_plugin_sdk::harness::dockerd::Dockerd;
use docker_plugin_sdk::harness::{Engine, LogContainer, PluginProcess};
use docker_plugin_sdk::protocol::Timestamp;
use libtest_mimic::Failed;
use support::cli::{check, package_member, unique};
use support::process::package_binary;
use support::shared_dockerd::{DockerdTest, ImageOnce, PlainTest, run_trials, with_dockerd_log};
use support::wait::wait_for;

const IMAGE: &str = "dps-busybox:logging";

/// A line longer than dockerd's 16 KiB pieces.
const LONG: usize = 20_000;

/// A plugin made once per run from a packaged example and shared by the trials, each
/// with containers of its own: dockerd 20.10 refuses a second `docker plugin create`
/// of the same bundle ("content sha256:…: already exists"). Its directory (filelog's
/// state mount) is under the daemon's root; the daemon's stop removes both.
#[derive(Clone)]
struct Shared {
    name: String,
    dir: PathBuf,
}

impl Shared {
    /// `member` created, `settings` set (`{dir}` replaced by the plugin's directory),
    /// enabled; the first call does it, later ones get its result.
    fn get(d: &Dockerd, member: &str, settings: &[&str]) -> Result<Self, Failed> {
        static PLUGINS: Mutex<BTreeMap<String, Result<Shared, String>>> =
            Mutex::new(BTreeMap::new());
        let mut plugins = PLUGINS.lock().unwrap_or_else(|p| p.into_inner());
        let plugin = plugins.entry(member.to_owned()).or_insert_with(|| {
            Self::enable(d, member, settings)
                .map_err(|e| e.message().unwrap_or_default().to_owned())
        });
        plugin.clone().map_err(Failed::from)
    }

    fn enable(d: &Dockerd, member: &str, settings: &[&str]) -> Result<Self, Failed> {
        let bundle = package_member(member)?;
        let name = unique(&format!("dps-{member}"));
        let dir = d.root().join(&name);
        fs::create_dir_all(&dir)?;
        d.docker_ok(&["plugin", "create", &name, bundle.to_str().ok_or("path")?])?;
        for setting in settings {
            let setting = setting.replace("{dir}", dir.to_str().ok_or("path")?);
            d.docker_ok(&["plugin", "set", &name, &setting])?;
        }
        d.docker_ok(&["plugin", "enable", &name])?;
        Ok(Self { name, dir })
    }

    /// filelog, its files in its directory.
    fn filelog(d: &Dockerd) -> Result<Self, Failed> {
        Self::get(d, "filelog", &["logs.source={dir}"])
    }
}

/// The containers of one trial, logging to one plugin; removed when dropped.
struct Containers<'d> {
    d: &'d Dockerd,
    driver: String,
    names: Vec<String>,
}

impl<'d> Containers<'d> {
    fn new(d: &'d Dockerd, plugin: &Shared) -> Self {
        Self {
            d,
            driver: format!("{}:latest", plugin.name),
            names: Vec::new(),
        }
    }

    /// Containers on dockerd's own `json-file` driver: what a plugin is compared with.
    fn json_file(d: &'d Dockerd) -> Self {
        Self {
            d,
            driver: "json-file".into(),
            names: Vec::new(),
        }
    }

    /// The arguments of a `docker run` of a new container (its name first), logging
    /// to the plugin, without network, with `flags` (`-d`, `--log-opt …`) and
    /// `command` run in the test image.
    fn run_args(&mut self, flags: &[&str], command: &[&str]) -> (String, Vec<String>) {
        let name = unique("dps-logs");
        self.names.push(name.clone());
        let mut args: Vec<String> = ["run", "--name", &name, "--network", "none"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        args.extend(["--log-driver".to_string(), self.driver.clone()]);
        args.extend(flags.iter().map(|f| f.to_string()));
        args.push(IMAGE.to_string());
        args.extend(command.iter().map(|c| c.to_string()));
        (name, args)
    }

    /// `docker run` of a new container, which must succeed: its name.
    fn run(&mut self, flags: &[&str], command: &[&str]) -> Result<String, Failed> {
        let (name, args) = self.run_args(flags, command);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.d.docker_ok(&args)?;
        Ok(name)
    }

    /// `docker run` of a new container, which must fail: what it printed.
    fn run_err(&mut self, flags: &[&str], command: &[&str]) -> Result<String, Failed> {
        let (_, args) = self.run_args(flags, command);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Ok(self.d.docker_err(&args)?)
    }
}

impl Drop for Containers<'_> {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = self.d.docker(&["rm", "-f", name]);
        }
    }
}

/// `docker ARGS`, which must succeed: its stdout and stderr, as bytes.
fn docker_bytes(d: &Dockerd, args: &[&str]) -> Result<(Vec<u8>, Vec<u8>), Failed> {
    let out = d.docker(args);
    check(out.status.success(), || {
        format!(
            "docker {} failed ({}):\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    Ok((out.stdout, out.stderr))
}

/// Asserts that `got` is `want`, showing both (long runs of `x` shortened).
fn same_bytes(what: &str, got: &[u8], want: &[u8]) -> Result<(), Failed> {
    let show = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes).replace(&"x".repeat(LONG), &format!("<x × {LONG}>"))
    };
    check(got == want, || {
        format!("{what}:\n got {:?}\nwant {:?}", show(got), show(want))
    })
}

/// One stored record of filelog's files.
#[derive(Debug, serde::Deserialize)]
struct Record {
    log: String,
    stream: String,
    time: Timestamp,
}

/// The records of the container `id` in filelog's directory `logs`, oldest file first.
fn records(logs: &Path, id: &str) -> Result<Vec<Record>, Failed> {
    let dir = logs.join(id);
    let mut files: Vec<PathBuf> = (1..)
        .map(|n| dir.join(format!("container.log.{n}")))
        .take_while(|p| p.exists())
        .collect();
    files.reverse();
    files.push(dir.join("container.log"));
    let mut records = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        for line in text.lines() {
            records.push(serde_json::from_str(line).map_err(|e| format!("{line}: {e}"))?);
        }
    }
    Ok(records)
}

/// The bytes of `stream` in `records`.
fn stream_of(records: &[Record], stream: &str) -> Vec<u8> {
    records
        .iter()
        .filter(|r| r.stream == stream)
        .flat_map(|r| r.log.bytes())
        .collect()
}

/// The container's full ID.
fn container_id(d: &Dockerd, name: &str) -> Result<String, Failed> {
    Ok(d.docker_ok(&["inspect", "--format", "{{.Id}}", name])?)
}

/// `--since` as a Unix time with nanoseconds, which the docker CLI passes on as is.
fn unix(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}", since.as_secs(), since.subsec_nanos())
}

/// Runs `test` with the shared filelog plugin and containers of its own (removed at
/// its end); a failure comes with dockerd's log.
fn with_filelog(
    d: &Dockerd,
    image: &ImageOnce,
    test: impl FnOnce(&Shared, &mut Containers) -> Result<(), Failed>,
) -> Result<(), Failed> {
    image.ensure(d)?;
    let result = Shared::filelog(d).and_then(|plugin| {
        let mut containers = Containers::new(d, &plugin);
        test(&plugin, &mut containers)
    });
    with_dockerd_log(d, 60, result)
}

/// What the container of [`filelog_stores_the_lines_and_docker_logs_reads_them_back_exactly`]
/// prints: some lines, an empty one, a line over 16 KiB, one on stderr, the last.
const SCRIPT: &str = "echo first; echo '  spaced  out  '; echo; \
     head -c 20000 /dev/zero | tr '\\0' x; echo; echo err >&2; sleep 1; \
     printf 'tab\\there\\n'; echo last";

fn expected_stdout() -> Vec<u8> {
    format!(
        "first\n  spaced  out  \n\n{}\ntab\there\nlast\n",
        "x".repeat(LONG)
    )
    .into_bytes()
}

fn filelog_stores_the_lines_and_docker_logs_reads_them_back_exactly(
    d: &Dockerd,
    image: &ImageOnce,
) -> Result<(), Failed> {
    with_filelog(d, image, |plugin, containers| {
        let logs = plugin.dir.as_path();
        let c = containers.run(
            &["--log-opt", "max-size=10m", "--log-opt", "max-file=3"],
            &["sh", "-c", SCRIPT],
        )?;
        let id = container_id(d, &c)?;
        // The files, on the host.
        let stored = records(logs, &id)?;
        same_bytes(
            "stdout in the files",
            &stream_of(&stored, "stdout"),
            &expected_stdout(),
        )?;
        same_bytes(
            "stderr in the files",
            &stream_of(&stored, "stderr"),
            b"err\n",
        )?;
        check(stored.iter().any(|r| r.log.len() == LONG + 1), || {
            "the long line is not one record".into()
        })?;
        // docker logs of the stopped container, whole and by the options.
        let (out, err) = docker_bytes(d, &["logs", &c])?;
        same_bytes("docker logs (stdout)", &out, &expected_stdout())?;
        same_bytes("docker logs (stderr)", &err, b"err\n")?;
        let (out, err) = docker_bytes(d, &["logs", "--tail", "2", &c])?;
        same_bytes("docker logs --tail 2", &out, b"tab\there\nlast\n")?;
        same_bytes("docker logs --tail 2 (stderr)", &err, b"")?;
        // Since the line after the pause: stderr's `err` is older (the two streams'
        // lines before it may carry any order of times: dockerd copies each stream on
        // its own).
        let since = stored
            .iter()
            .find(|r| r.log.starts_with("tab"))
            .map(|r| r.time.system_time())
            .ok_or("no `tab` record")?;
        let (out, err) = docker_bytes(d, &["logs", "--since", &unix(since), &c])?;
        same_bytes("docker logs --since (stdout)", &out, b"tab\there\nlast\n")?;
        same_bytes("docker logs --since (stderr)", &err, b"")?;
        // Started again: appended, the first run's lines kept.
        d.docker_ok(&["start", "--attach", &c])?;
        let again = records(logs, &id)?;
        check(again.len() == 2 * stored.len(), || {
            format!(
                "{} records after a restart, {} before",
                again.len(),
                stored.len()
            )
        })?;
        same_bytes(
            "the files after a restart begin with the first run",
            &stream_of(&again[..stored.len()], "stdout"),
            &expected_stdout(),
        )?;
        let (out, _) = docker_bytes(d, &["logs", &c])?;
        same_bytes(
            "docker logs after a restart",
            &out,
            &expected_stdout().repeat(2),
        )
    })
}

fn filelog_follows_a_running_container_until_it_exits(
    d: &Dockerd,
    image: &ImageOnce,
) -> Result<(), Failed> {
    with_filelog(d, image, |plugin, containers| {
        let logs = plugin.dir.as_path();
        let c = containers.run(
            &["-d"],
            &["sh", "-c", "echo a; sleep 3; echo b; sleep 1; echo c"],
        )?;
        let id = container_id(d, &c)?;
        // `a` is in the files: the follow reads it from them, `b` and `c` live.
        wait_for("the first line in the files", || {
            records(logs, &id)
                .is_ok_and(|r| !r.is_empty())
                .then_some(())
        })?;
        let started = Instant::now();
        let follow = d.docker(&["logs", "-f", &c]);
        check(follow.status.success(), || {
            format!(
                "docker logs -f: {}",
                String::from_utf8_lossy(&follow.stderr)
            )
        })?;
        same_bytes("docker logs -f", &follow.stdout, b"a\nb\nc\n")?;
        // It ended with the container (StopLogging), not at the CLI's timeout.
        check(started.elapsed() < Duration::from_secs(30), || {
            format!("docker logs -f ended after {:?}", started.elapsed())
        })
    })
}

fn filelog_rotates_and_keeps_max_file_files(d: &Dockerd, image: &ImageOnce) -> Result<(), Failed> {
    with_filelog(d, image, |plugin, containers| {
        let logs = plugin.dir.as_path();
        let c = containers.run(
            &["--log-opt", "max-size=2k", "--log-opt", "max-file=3"],
            &[
                "sh",
                "-c",
                "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done",
            ],
        )?;
        let id = container_id(d, &c)?;
        let dir = logs.join(&id);
        let mut names: Vec<String> = fs::read_dir(&dir)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()?;
        names.sort();
        check(
            names == ["container.log", "container.log.1", "container.log.2"],
            || format!("files: {names:?}"),
        )?;
        for name in &names {
            let size = fs::metadata(dir.join(name))?.len();
            check(size <= 2000, || format!("{name} has {size} bytes"))?;
        }
        // docker logs reads what is kept: the last lines, in order, none missing.
        let (out, _) = docker_bytes(d, &["logs", &c])?;
        let out = String::from_utf8(out)?;
        let lines: Vec<&str> = out.lines().collect();
        let first: usize = lines
            .first()
            .and_then(|l| l.strip_prefix("line-"))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("docker logs: {out:?}"))?;
        check(first > 0, || "nothing was rotated away".into())?;
        let want: Vec<String> = (first..200).map(|n| format!("line-{n}")).collect();
        check(lines == want, || format!("docker logs: {out:?}"))
    })
}

fn filelog_refuses_bad_log_opts_in_its_own_words(
    d: &Dockerd,
    image: &ImageOnce,
) -> Result<(), Failed> {
    with_filelog(d, image, |_, containers| {
        for (opt, words) in [
            (
                "max-size=10x",
                "invalid options: option `max-size` must be a positive size such as 10m \
                 (k, m, g: 1000s of bytes), got `10x`: unknown unit `x`",
            ),
            (
                "max-file=0",
                "invalid options: option `max-file` must be a whole number of files, 1 or \
                 more, got `0`: max-file cannot be less than 1",
            ),
            (
                "colour=red",
                "invalid options: unknown option `colour` (valid options: max-size, max-file)",
            ),
        ] {
            let err = containers.run_err(&["--log-opt", opt], &["true"])?;
            check(err.contains(words), || format!("--log-opt {opt}: {err}"))?;
        }
        // dockerd's own options are not the driver's business.
        containers.run(
            &[
                "--log-opt",
                "mode=non-blocking",
                "--log-opt",
                "max-buffer-size=4m",
            ],
            &["true"],
        )?;
        Ok(())
    })
}

/// A StartLogging the plugin refuses reads the same from the harness as from dockerd,
/// word for word (moby v20.10.24 `daemon/logger/plugin.go` `makePluginCreator`: `error
/// creating logger: `; `container/container.go` `startLogging`: `failed to initialize
/// logging driver: `; `pkg/plugins/errors.go` `statusError`: `METHOD: MESSAGE`).
/// dockerd asks the shared managed filelog, the harness the same binary as a legacy
/// plugin of an engine of its own: the same words from the same code.
fn a_refused_start_logging_reads_the_same_from_the_harness_as_from_dockerd(
    d: &Dockerd,
    image: &ImageOnce,
) -> Result<(), Failed> {
    with_filelog(d, image, |_, containers| {
        let from_dockerd = containers.run_err(&["--log-opt", "colour=red"], &["true"])?;
        let dir = tempfile::tempdir()?;
        let engine = Engine::for_tests(dir.path());
        let sockets = engine.discovery().socket_dir.clone();
        fs::create_dir_all(&sockets)?;
        let name = unique("dps-filelog");
        let mut command = Command::new(package_binary("filelog", "filelog"));
        command
            .args(["--name", &name, "--socket-dir"])
            .arg(&sockets)
            .arg("--dir")
            .arg(dir.path().join("logs"));
        let socket = sockets.join(format!("{name}.sock"));
        let _plugin = PluginProcess::start(command, &socket, dir.path().join("plugin.log"))?;
        let container = LogContainer::new("web", IMAGE).opt("colour", "red");
        let started = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(engine.logging().start(&name, &container));
        let from_harness = match started {
            Ok(_) => return Err("the harness started the logger".into()),
            Err(err) => err.to_string(),
        };
        let words = "failed to initialize logging driver: error creating logger: \
                     LogDriver.StartLogging: invalid options: unknown option `colour` \
                     (valid options: max-size, max-file)";
        check(from_harness == words, || {
            format!("the harness said {from_harness:?}")
        })?;
        // The docker CLI (28) puts its prefix before the API's message and its hint
        // after.
        let printed = format!(
            "docker: Error response from daemon: {words}\n\n\
             Run 'docker run --help' for more information"
        );
        check(from_dockerd.trim_end() == printed, || {
            format!("docker said {from_dockerd:?}")
        })
    })
}

/// A TCP receiver that accepts connections but reads nothing until resumed, then
/// counts the lines it reads.
struct PausedReceiver {
    addr: SocketAddr,
    resumed: Arc<AtomicBool>,
    lines: Arc<AtomicU64>,
    closed: Arc<AtomicU64>,
}

impl PausedReceiver {
    fn start() -> Result<Self, Failed> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let resumed = Arc::new(AtomicBool::new(false));
        let lines = Arc::new(AtomicU64::new(0));
        let closed = Arc::new(AtomicU64::new(0));
        let (r, l, c) = (resumed.clone(), lines.clone(), closed.clone());
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (r, l, c) = (r.clone(), l.clone(), c.clone());
                thread::spawn(move || read_when_resumed(conn, &r, &l, &c));
            }
        });
        Ok(Self {
            addr,
            resumed,
            lines,
            closed,
        })
    }
}

fn read_when_resumed(
    mut conn: TcpStream,
    resumed: &AtomicBool,
    lines: &AtomicU64,
    closed: &AtomicU64,
) {
    while !resumed.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_millis(50));
    }
    let mut buf = vec![0u8; 1 << 16];
    while let Ok(n) = conn.read(&mut buf) {
        if n == 0 {
            break;
        }
        let newlines = buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        lines.fetch_add(newlines, Ordering::SeqCst);
    }
    closed.fetch_add(1, Ordering::SeqCst);
}

/// The counts slowsink logged when the logging of `container` ended, from dockerd's
/// log (a managed plugin's output is there).
fn ended_counts(d: &Dockerd, container: &str) -> Option<Vec<(String, u64)>> {
    let log = fs::read_to_string(d.log()).ok()?;
    let needle = format!("container={container} ");
    let line = log
        .lines()
        .find(|l| l.contains("slowsink: logging ended") && l.contains(&needle))?;
    let counts = ["received", "forwarded", "dropped", "unsent"]
        .iter()
        .map(|key| {
            let at = line.find(&format!(" {key}="))? + key.len() + 2;
            let digits: String = line[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            Some((key.to_string(), digits.parse().ok()?))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(counts)
}

/// Starts a container of `containers` writing `y` lines as fast as it can, lets it
/// write for 2 s, and removes it with `docker rm -f`: its name, and how long the
/// removal took.
fn removed_by_force_while_writing(
    d: &Dockerd,
    containers: &mut Containers,
) -> Result<(String, Duration), Failed> {
    let c = containers.run(&["-d"], &["sh", "-c", "yes y"])?;
    thread::sleep(Duration::from_secs(2));
    let rm = Instant::now();
    d.docker_ok(&["rm", "-f", &c])?;
    Ok((c, rm.elapsed()))
}

/// 500,000 lines of 100 bytes: 50 MB.
const LINES: u64 = 500_000;

fn slowsink_never_blocks_a_container_while_its_receiver_is_paused(
    d: &Dockerd,
    image: &ImageOnce,
) -> Result<(), Failed> {
    image.ensure(d)?;
    let receiver = PausedReceiver::start()?;
    let result = (|| -> Result<(), Failed> {
        let args = format!(
            "args=--address {} --overflow drop-newest --buffer 1048576 --flush-timeout 2",
            receiver.addr
        );
        let plugin = Shared::get(d, "slowsink", &[&args])?;
        let mut containers = Containers::new(d, &plugin);
        let script = format!("yes {} | head -n {LINES}", "x".repeat(99));
        let started = Instant::now();
        let c = containers.run(&["-d"], &["sh", "-c", &script])?;
        let status = d.docker_ok(&["wait", &c])?;
        check(status == "0", || format!("exit status {status}"))?;
        let ran = started.elapsed();
        check(ran < Duration::from_secs(120), || {
            format!("50 MB of logs took {ran:?}")
        })?;
        let rm = Instant::now();
        d.docker_ok(&["rm", &c])?;
        check(rm.elapsed() < Duration::from_secs(15), || {
            format!("docker rm took {:?}", rm.elapsed())
        })?;
        // A container still writing, removed by force: a driver that blocked would
        // hang dockerd's close of its log, and `docker rm -f` with it. What the same
        // removal costs without a plugin, on dockerd's json-file driver just before,
        // is the measure (under parallel tests it takes seconds of its own): slowsink
        // may add to it its flush timeout (2 s) and a margin, not hang.
        let (_, baseline) = removed_by_force_while_writing(d, &mut Containers::json_file(d))?;
        let (c2, took) = removed_by_force_while_writing(d, &mut containers)?;
        let bound = baseline * 2 + Duration::from_secs(15);
        check(took < bound, || {
            format!("docker rm -f took {took:?}, more than {bound:?} (on json-file: {baseline:?})")
        })?;
        // The counts: every line received, most dropped, the forwarded ones what the
        // receiver reads once resumed. slowsink prints them when a container's logging
        // ends; dockerd copies a managed plugin's output into its log in a goroutine of
        // its own (moby v20.10.24 `plugin/executor/containerd/containerd.go`
        // `attachStreamsFunc`, `plugin/manager.go` `makeLoggerStreams`): the lines come
        // some time after the `docker rm` that ended the logging, waited for here.
        let counts = wait_for("slowsink's counts in dockerd's log", || ended_counts(d, &c))?;
        let counts2 = wait_for("slowsink's counts of the second container", || {
            ended_counts(d, &c2)
        })?;
        let get = |key: &str| counts.iter().find(|(k, _)| k == key).map_or(0, |(_, v)| *v);
        let (received, forwarded, dropped, unsent) = (
            get("received"),
            get("forwarded"),
            get("dropped"),
            get("unsent"),
        );
        check(received == LINES, || {
            format!("received {received} of {LINES}: {counts:?}")
        })?;
        check(dropped > 0, || format!("nothing dropped: {counts:?}"))?;
        check(forwarded + dropped + unsent == LINES, || {
            format!("the counts do not add up to {LINES}: {counts:?}")
        })?;
        // What the 1 MiB buffer holds (an entry weighs its line and 64 bytes) and a
        // batch being written: what a flush timeout may leave unsent.
        let bound = (1 << 20) / (99 + 64) + 256 + 1;
        check(unsent <= bound, || {
            format!("{unsent} unsent, more than {bound}")
        })?;
        // Resumed: the receiver reads what was forwarded into its socket, no more.
        receiver.resumed.store(true, Ordering::SeqCst);
        wait_for("both connections closed and read", || {
            (receiver.closed.load(Ordering::SeqCst) >= 2).then_some(())
        })?;
        let (_, forwarded2) = counts2
            .into_iter()
            .find(|(k, _)| k == "forwarded")
            .ok_or("no `forwarded` in the second container's counts")?;
        let got = receiver.lines.load(Ordering::SeqCst);
        check(got == forwarded + forwarded2, || {
            format!("the receiver read {got} lines, slowsink forwarded {forwarded} + {forwarded2}")
        })
    })();
    with_dockerd_log(d, 80, result)
}

fn main() {
    let plain: Vec<(&str, PlainTest)> = vec![];
    let with_dockerd: Vec<(&str, DockerdTest)> = vec![
        (
            "filelog_stores_the_lines_and_docker_logs_reads_them_back_exactly",
            filelog_stores_the_lines_and_docker_logs_reads_them_back_exactly,
        ),
        (
            "filelog_follows_a_running_container_until_it_exits",
            filelog_follows_a_running_container_until_it_exits,
        ),
        (
            "filelog_rotates_and_keeps_max_file_files",
            filelog_rotates_and_keeps_max_file_files,
        ),
        (
            "filelog_refuses_bad_log_opts_in_its_own_words",
            filelog_refuses_bad_log_opts_in_its_own_words,
        ),
        (
            "a_refused_start_logging_reads_the_same_from_the_harness_as_from_dockerd",
            a_refused_start_logging_reads_the_same_from_the_harness_as_from_dockerd,
        ),
        (
            "slowsink_never_blocks_a_container_while_its_receiver_is_paused",
            slowsink_never_blocks_a_container_while_its_receiver_is_paused,
        ),
    ];
    run_trials("logging e2e", IMAGE, plain, with_dockerd)
}
