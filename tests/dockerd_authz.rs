//! The example authorization plugin `opaauthz` against a REAL dockerd started with
//! `--authorization-plugin`: an allowed `docker volume ls` works and `HEAD /_ping` is
//! asked about (it is in the decision log); a denied `docker run` fails with dockerd's
//! "authorization denied by plugin NAME: <msg>"; a `docker create` whose body is over
//! 1 MiB reaches the policy without its body, as dockerd 20.10 sends it; the plugin
//! killed makes dockerd refuse every call (fail closed) and its restart restores
//! service; a policy that outlasts the SDK's deadline makes dockerd refuse that call
//! (fail closed) while the next ones are answered; 256 concurrent API calls are each
//! answered as the policy decides (none refused by overload); and the managed plugin `cargo docker-plugin package -p opaauthz` makes,
//! enabled, then named by a restarted dockerd (`--authorization-plugin=NAME:latest`).
//!
//! An authorization plugin is a daemon flag, and a dockerd takes seconds to start and
//! stop: one dockerd, started once with `--authorization-plugin=NAME`, serves every
//! test but the managed one. The tests take turns with it: each starts its own opaauthz
//! under that NAME (its own policy, flags and decision log, on the socket dockerd dials
//! for NAME), and stops it before the next test starts another. dockerd reaches the new
//! process on the same socket, as it does after a crash (the killed-plugin test). The
//! managed-plugin test has a dockerd of its own: it installs a managed plugin and
//! restarts dockerd naming it, which would change the flags of the shared daemon.
//! It needs root; when dockerd cannot start the tests fail under `CI=true` (or
//! `DPS_REQUIRE_DOCKERD=1`) and are reported as ignored otherwise.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use docker_plugin_sdk::harness::dockerd::Dockerd;
use docker_plugin_sdk::harness::{PluginProcess, Signal};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;
use support::cli::{check, package_member, unique};
use support::process::package_binary;
use support::shared_dockerd::{PlainTest, required, with_dockerd_log};
use support::wait::wait_for;

/// Where dockerd looks for legacy plugin sockets.
const SOCKET_DIR: &str = "/run/docker/plugins";
/// opa-docker-authz's deny message, which opaauthz keeps.
const REJECTED: &str = "request rejected by administrative policy";
/// An image no test has: a denied create never needs it.
const NO_IMAGE: &str = "dps-authz-none:latest";

/// The tests' policy: everything is allowed but privileged containers, containers
/// labelled `dps.deny`, and container creates whose body dockerd left out.
const POLICY: &str = r#"package docker.authz

default allow := false

allow if not deny

deny if input.Body.HostConfig.Privileged == true

deny if input.Body.Labels["dps.deny"]

deny if {
	input.Method == "POST"
	endswith(input.PathPlain, "/containers/create")
	input.Body == null
}
"#;

/// opaauthz as a legacy plugin on /run/docker/plugins, its policy and decision log in
/// a temp dir.
struct Plugin {
    name: String,
    dir: tempfile::TempDir,
    process: PluginProcess,
    starts: usize,
    /// Flags besides the usual ones, kept for restarts.
    extra: Vec<String>,
}

impl Plugin {
    /// opaauthz named `name`, with `policy` and the flags `extra`.
    fn start_with(name: &str, policy: &str, extra: &[&str]) -> Result<Self, Failed> {
        let dir = tempfile::tempdir()?;
        fs::write(dir.path().join("authz.rego"), policy)?;
        let extra: Vec<String> = extra.iter().map(|arg| arg.to_string()).collect();
        let process = Self::spawn(name, dir.path(), 0, &extra)?;
        Ok(Self {
            name: name.to_string(),
            dir,
            process,
            starts: 1,
            extra,
        })
    }

    fn spawn(
        name: &str,
        dir: &Path,
        start: usize,
        extra: &[String],
    ) -> Result<PluginProcess, Failed> {
        let mut command = Command::new(package_binary("opaauthz", "opaauthz"));
        command
            .args(["--name", name, "--socket-dir", SOCKET_DIR])
            .arg("--policy-file")
            .arg(dir.join("authz.rego"))
            .arg("--decision-log")
            .arg(dir.join("decisions.log"))
            .args(["--log-bodies", "--no-skip-ping"]);
        command.args(extra);
        let socket = Path::new(SOCKET_DIR).join(format!("{name}.sock"));
        let log = dir.join(format!("opaauthz-{start}.log"));
        Ok(PluginProcess::start_answering(command, &socket, log)?)
    }

    /// Kills the plugin as a crash would (SIGKILL), runs `meanwhile`, starts it again.
    fn crash_and_restart(
        &mut self,
        meanwhile: impl FnOnce() -> Result<(), Failed>,
    ) -> Result<(), Failed> {
        self.process.signal_and_wait(Signal::SIGKILL)?;
        meanwhile()?;
        self.process = Self::spawn(&self.name, self.dir.path(), self.starts, &self.extra)?;
        self.starts += 1;
        Ok(())
    }

    /// The decision log, one JSON value per line: the whole lines written so far (a
    /// line being written is left for the next look).
    fn decisions(&self) -> Result<Vec<Value>, Failed> {
        let text = fs::read_to_string(self.dir.path().join("decisions.log"))?;
        let written = text.rfind('\n').map_or("", |end| &text[..end]);
        let lines = written
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?;
        Ok(lines)
    }

    /// The decisions on `method` calls of a path ending in `endpoint`, once there are
    /// at least `count` of them; after `wait::PATIENCE`, an error showing those there are.
    ///
    /// opaauthz answers dockerd first and writes the line from a task of its own
    /// (`examples/opaauthz/src/decisions.rs`), so a call's line can land after the
    /// docker command returned: on a loaded machine a write to the log file can wait
    /// on the disk for a while.
    fn decisions_on(
        &self,
        method: &str,
        endpoint: &str,
        count: usize,
    ) -> Result<Vec<Value>, Failed> {
        let mut seen = Ok(Vec::new());
        let found = wait_for(&format!("{count} decisions on {method} {endpoint}"), || {
            seen = self.decisions().map(|all| {
                all.into_iter()
                    .filter(|d| {
                        let path = d["path"].as_str().unwrap_or_default();
                        let path = path.split('?').next().unwrap_or_default();
                        d["method"] == method && path.ends_with(endpoint)
                    })
                    .collect()
            });
            match &seen {
                Ok(found) if found.len() < count => None,
                _ => Some(()),
            }
        });
        match (found, seen) {
            (Ok(()), seen) => seen,
            (Err(late), Ok(seen)) => Err(format!("{late}; the log has {seen:?}").into()),
            (Err(late), Err(e)) => Err(format!("{late}: {e:?}").into()),
        }
    }

    fn log(&self) -> String {
        self.process.log_text()
    }
}

/// The dockerd the tests share, started with `--authorization-plugin=NAME`.
struct Shared {
    d: Dockerd,
    /// The plugin NAME dockerd asks: each test's opaauthz answers under it.
    name: String,
}

impl Shared {
    /// dockerd checks at start that its authorization plugins exist: an opaauthz with
    /// [`POLICY`] answers under the name while it starts, and is stopped once it runs.
    fn start() -> Result<Self, Failed> {
        let name = unique("dps-opaauthz");
        let plugin = Plugin::start_with(&name, POLICY, &[])?;
        let d = Dockerd::start_with(&[&format!("--authorization-plugin={name}")])
            .map_err(|e| format!("{e}\nopaauthz log:\n{}", plugin.log()))?;
        Ok(Self { d, name })
    }

    /// A test's opaauthz with [`POLICY`].
    fn setup(&self) -> Result<Setup<'_>, Failed> {
        self.setup_with(POLICY, &[])
    }

    /// A test's opaauthz with `policy` and the flags `extra`, answering under the name
    /// dockerd asks, on the socket the previous test's opaauthz removed when it
    /// stopped (at the end of [`Setup::run`]).
    fn setup_with(&self, policy: &str, extra: &[&str]) -> Result<Setup<'_>, Failed> {
        let plugin = Plugin::start_with(&self.name, policy, extra)?;
        Ok(Setup { d: &self.d, plugin })
    }

    /// Stops dockerd; its shutdown calls (`docker ps`) go through the plugin, so one
    /// with [`POLICY`] answers meanwhile.
    fn stop(mut self) {
        let plugin = Plugin::start_with(&self.name, POLICY, &[]);
        if let Err(e) = &plugin {
            eprintln!("authz e2e: no opaauthz for dockerd's shutdown: {e:?}");
        }
        self.d.stop();
    }
}

/// A test's plugin and the shared dockerd that asks it.
struct Setup<'a> {
    d: &'a Dockerd,
    plugin: Plugin,
}

impl Setup<'_> {
    /// Runs `test`, adding the plugin's and dockerd's logs to a failure; stops the
    /// plugin.
    fn run(mut self, test: impl FnOnce(&mut Self) -> Result<(), Failed>) -> Result<(), Failed> {
        let result = test(&mut self);
        result.map_err(|e| {
            format!(
                "{}\nopaauthz log:\n{}\ndockerd log:\n{}",
                e.message().unwrap_or_default(),
                self.plugin.log(),
                self.d.log_tail(40)
            )
            .into()
        })
    }
}

/// What the CLI prints for a call the policy refused.
fn denied_by(plugin: &str) -> String {
    format!("Error response from daemon: authorization denied by plugin {plugin}: {REJECTED}")
}

fn allowed_volume_ls_works_and_ping_is_asked(shared: &Shared) -> Result<(), Failed> {
    shared.setup()?.run(|s| {
        let volume = unique("dps-authz-vol");
        s.d.docker_ok(&["volume", "create", &volume])?;
        let listed = s.d.docker_ok(&["volume", "ls", "--format", "{{.Name}}"])?;
        check(listed.lines().any(|l| l == volume), || {
            format!("volume ls printed {listed:?}")
        })?;
        // The CLI pings before each command; dockerd asks the plugin about it too,
        // and the policy (not --skip-ping) allowed it.
        let pings = s.plugin.decisions_on("HEAD", "/_ping", 1)?;
        check(
            pings.iter().any(|p| {
                p["path"] == "/_ping"
                    && p["allow"] == true
                    && p["reason"] == "data.docker.authz.allow is true"
            }),
            || format!("no allowed HEAD /_ping in the decision log: {pings:?}"),
        )?;
        let lists = s.plugin.decisions_on("GET", "/volumes", 1)?;
        check(lists.iter().any(|l| l["allow"] == true), || {
            format!("no allowed GET /volumes in the decision log: {lists:?}")
        })
    })
}

fn a_denied_docker_run_fails_with_dockerds_words(shared: &Shared) -> Result<(), Failed> {
    shared.setup()?.run(|s| {
        let err =
            s.d.docker_err(&["run", "--rm", "--privileged", NO_IMAGE, "true"])?;
        let expected = denied_by(&s.plugin.name);
        check(err.contains(&expected), || {
            format!("docker run --privileged said {err:?}, not {expected:?}")
        })?;
        let creates = s.plugin.decisions_on("POST", "/containers/create", 1)?;
        check(
            creates.len() == 1
                && creates[0]["allow"] == false
                && creates[0]["reason"] == "data.docker.authz.allow is false"
                && creates[0]["body"]["HostConfig"]["Privileged"] == true,
            || format!("the create's decisions: {creates:?}"),
        )
    })
}

fn a_create_body_over_1_mib_reaches_the_policy_without_its_body(
    shared: &Shared,
) -> Result<(), Failed> {
    shared.setup()?.run(|s| {
        // Under 1 MiB the policy sees the body, and its label.
        let err =
            s.d.docker_err(&["create", "--label", "dps.deny=yes", NO_IMAGE])?;
        check(err.contains(&denied_by(&s.plugin.name)), || {
            format!("the labelled create said {err:?}")
        })?;
        // Over 1 MiB (labels of 1.2 MiB, in lines under the CLI's 64 KiB): dockerd
        // 20.10 sends no body at all, so the label cannot be seen; this policy denies
        // a create it cannot read.
        let labels = s.plugin.dir.path().join("big-labels");
        let line = "x".repeat(60_000);
        let text: String = (0..20).map(|n| format!("dps.big{n}={line}\n")).collect();
        fs::write(&labels, format!("dps.deny=yes\n{text}"))?;
        let labels = labels.to_str().ok_or("path")?;
        let err =
            s.d.docker_err(&["create", "--label-file", labels, NO_IMAGE])?;
        check(err.contains(&denied_by(&s.plugin.name)), || {
            format!("the 1.1 MiB create said {}", &err[..err.len().min(400)])
        })?;
        let creates = s.plugin.decisions_on("POST", "/containers/create", 2)?;
        check(creates.len() == 2, || format!("creates: {creates:?}"))?;
        check(creates[0]["body"]["Labels"]["dps.deny"] == "yes", || {
            format!("the small create's body: {}", creates[0]["body"])
        })?;
        check(
            creates[1]["body"].is_null() && creates[1]["allow"] == false,
            || format!("the big create was logged with {}", creates[1]),
        )
    })
}

fn a_killed_plugin_fails_closed_and_its_restart_restores_service(
    shared: &Shared,
) -> Result<(), Failed> {
    shared.setup()?.run(|s| {
        s.d.docker_ok(&["volume", "ls"])?;
        let name = s.plugin.name.clone();
        let d = s.d;
        s.plugin.crash_and_restart(|| {
            // dockerd retries the dead plugin for about 30 s, then refuses the call.
            let err = d.docker_err(&["volume", "ls"])?;
            let expected = format!("Error response from daemon: plugin {name} failed with error: ");
            check(err.contains(&expected), || {
                format!("with the plugin dead, volume ls said {err:?}")
            })
        })?;
        s.d.docker_ok(&["volume", "ls"])?;
        let err =
            s.d.docker_err(&["run", "--rm", "--privileged", NO_IMAGE, "true"])?;
        check(err.contains(&denied_by(&s.plugin.name)), || {
            format!("after the restart, docker run --privileged said {err:?}")
        })
    })
}

/// One raw API call over dockerd's unix socket (`Connection: close`): its status and
/// body.
fn api_call(socket: &Path, request: &str) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|e| format!("connecting to {}: {e}", socket.display()))?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("writing: {e}"))?;
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .map_err(|e| format!("reading: {e}"))?;
    let status = reply
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line in {reply:?}"))?;
    let body = reply
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    Ok((status, body.to_owned()))
}

/// 256 Engine API calls at once (`GET /_ping`, `/version`, `/containers/json`, and
/// every 32nd a privileged create the policy denies), each on its own connection:
/// every allowed one is answered 200 and every denied one 403 in dockerd's words; an
/// overloaded plugin would fail some closed (a 500, or a 403 for an allowed call).
fn concurrent_api_calls_are_each_decided_by_the_policy(shared: &Shared) -> Result<(), Failed> {
    shared.setup()?.run(|s| {
        let socket = PathBuf::from(s.d.host().trim_start_matches("unix://"));
        let create = format!(r#"{{"Image":"{NO_IMAGE}","HostConfig":{{"Privileged":true}}}}"#);
        let requests: Vec<(bool, String)> = (0..256)
            .map(|n| {
                let get = |path: &str| {
                    format!("GET {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
                };
                match n % 32 {
                    0 => (
                        false,
                        format!(
                            "POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\n\
                             Content-Type: application/json\r\nContent-Length: {}\r\n\
                             Connection: close\r\n\r\n{create}",
                            create.len()
                        ),
                    ),
                    k if k % 3 == 0 => (true, get("/_ping")),
                    k if k % 3 == 1 => (true, get("/v1.41/version")),
                    _ => (true, get("/v1.41/containers/json")),
                }
            })
            .collect();
        let threads: Vec<_> = requests
            .into_iter()
            .map(|(allowed, request)| {
                let socket = socket.clone();
                std::thread::spawn(move || (allowed, api_call(&socket, &request)))
            })
            .collect();
        let denied = format!(
            "authorization denied by plugin {}: {REJECTED}",
            s.plugin.name
        );
        let (mut ok, mut refused) = (0, 0);
        for thread in threads {
            let (allowed, reply) = thread.join().map_err(|_| "a caller panicked")?;
            let (status, body) = reply?;
            match allowed {
                true => check(status == 200, || {
                    format!("an allowed call got {status}: {body}")
                })?,
                false => check(status == 403 && body.contains(&denied), || {
                    format!("the privileged create got {status}: {body}")
                })?,
            }
            match allowed {
                true => ok += 1,
                false => refused += 1,
            }
        }
        check((ok, refused) == (248, 8), || {
            format!("{ok} allowed, {refused} denied")
        })
    })
}

/// A policy that takes far longer than the SDK's 5 s authz deadline for any call on a
/// path naming `dps-slow` (400 million combinations, none matching), and is quick for
/// the rest.
const SLOW_POLICY: &str = r#"package docker.authz

default allow := false

allow if not contains(input.Path, "dps-slow")

allow if {
	contains(input.Path, "dps-slow")
	not slow
}

slow if {
	some a in numbers.range(1, 20000)
	some b in numbers.range(1, 20000)
	a * b == -1
}
"#;

/// A policy that does not answer within the SDK's deadline (5 s for authz) fails
/// closed on the real dockerd: the call is refused with the deadline in dockerd's
/// words, and the plugin goes on answering the next calls. (opaauthz's own evaluation
/// limit is raised to 8 s so that the SDK's deadline is the one that fires.)
fn a_policy_that_times_out_fails_closed(shared: &Shared) -> Result<(), Failed> {
    shared
        .setup_with(SLOW_POLICY, &["--eval-timeout", "8000"])?
        .run(|s| {
            s.d.docker_ok(&["volume", "ls"])?;
            let err = s.d.docker_err(&["volume", "inspect", "dps-slow-volume"])?;
            let expected = format!(
                "Error response from daemon: plugin {} failed with error: \
             AuthZPlugin.AuthZReq: AuthZPlugin.AuthZReq did not finish within 5000 ms",
                s.plugin.name
            );
            check(err.contains(&expected), || {
                format!("a call the policy takes too long on said {err:?}, not {expected:?}")
            })?;
            s.d.docker_ok(&["volume", "ls"])?;
            Ok(())
        })
}

fn the_managed_plugin_denies_once_dockerd_restarts_with_it() -> Result<(), Failed> {
    let bundle = package_member("opaauthz")?;
    let config: Value = serde_json::from_str(&fs::read_to_string(bundle.join("config.json"))?)?;
    check(
        config["Interface"]["Types"][0] == "docker.authz/1.0"
            && config["Mounts"][0]["Name"] == "policy"
            && config["Mounts"][0]["Destination"] == "/opa",
        || format!("opaauthz's config.json: {config}"),
    )?;
    let packaged = bundle.join("rootfs/etc/opaauthz/authz.rego");
    check(packaged.is_file(), || {
        format!("{} is not in the bundle", packaged.display())
    })?;
    // The policy comes from the host, through the `policy` mount.
    let policies = tempfile::tempdir()?;
    fs::write(policies.path().join("authz.rego"), POLICY)?;
    let policy_dir = policies.path().to_str().ok_or("path")?;

    let name = unique("dps-mopaauthz");
    let mut d = Dockerd::start()?;
    let result = (|| -> Result<(), Failed> {
        d.docker_ok(&["plugin", "create", &name, bundle.to_str().ok_or("path")?])?;
        d.docker_ok(&[
            "plugin",
            "set",
            &name,
            &format!("policy.source={policy_dir}"),
            "args=--policy-file /opa/authz.rego --no-skip-ping",
        ])?;
        d.docker_ok(&["plugin", "enable", &name])?;
        let reference = format!("{name}:latest");
        d.restart_with(&[&format!("--authorization-plugin={reference}")])?;
        d.docker_ok(&["volume", "ls"])?;
        let err = d.docker_err(&["run", "--rm", "--privileged", NO_IMAGE, "true"])?;
        check(err.contains(&denied_by(&reference)), || {
            format!("docker run --privileged said {err:?}")
        })?;
        // Its decisions go to dockerd's log, with the plugin's ID: dockerd copies the
        // plugin's stdout, so the line can land after the CLI returned.
        let logged = || -> Result<bool, Failed> {
            let log = fs::read_to_string(d.log())?;
            Ok(
                log.contains(r#"\"method\":\"POST\",\"path\":\"/v1.41/containers/create\""#)
                    || log.contains(r#""method":"POST","path":"/v1.41/containers/create""#),
            )
        };
        wait_for("a create decision in dockerd's log", || {
            logged().map_or_else(|e| Some(Err(e)), |found| found.then_some(Ok(())))
        })??;
        // `plugin disable` takes it out of the chain.
        d.docker_ok(&["plugin", "disable", "-f", &name])?;
        d.docker_ok(&["plugin", "rm", "-f", &name])?;
        Ok(())
    })();
    with_dockerd_log(&d, 60, result)
}

/// A test on the shared dockerd.
type SharedTest = fn(&Shared) -> Result<(), Failed>;

/// The shared dockerd, or why it did not start.
type SharedSlot = Arc<Result<Mutex<Shared>, String>>;

/// A trial: `test` waits for its turn with the shared dockerd; `plain` needs no share
/// of it. Both fail when dockerd is required and did not start.
fn trial(shared: &SharedSlot, name: &str, test: Result<SharedTest, PlainTest>) -> Trial {
    let shared = Arc::clone(shared);
    Trial::test(name, move || match (&*shared, test) {
        (Ok(shared), Ok(test)) => test(&shared.lock().unwrap_or_else(|p| p.into_inner())),
        (Ok(_), Err(plain)) => plain(),
        (Err(why), _) => {
            Err(format!("dockerd is required (CI=true) but did not start: {why}").into())
        }
    })
}

fn main() {
    let args = Arguments::from_args();
    let shared: SharedSlot = Arc::new(if args.list {
        Err("listing only".to_string())
    } else {
        Shared::start()
            .map(Mutex::new)
            .map_err(|e| e.message().unwrap_or_default().to_string())
            .inspect_err(|why| eprintln!("authz e2e: cannot start dockerd: {why}"))
    });
    let ignored = shared.is_err() && !required() && !args.list;
    let tests: Vec<(&str, Result<SharedTest, PlainTest>)> = vec![
        (
            "allowed_volume_ls_works_and_ping_is_asked",
            Ok(allowed_volume_ls_works_and_ping_is_asked),
        ),
        (
            "a_denied_docker_run_fails_with_dockerds_words",
            Ok(a_denied_docker_run_fails_with_dockerds_words),
        ),
        (
            "a_create_body_over_1_mib_reaches_the_policy_without_its_body",
            Ok(a_create_body_over_1_mib_reaches_the_policy_without_its_body),
        ),
        (
            "a_killed_plugin_fails_closed_and_its_restart_restores_service",
            Ok(a_killed_plugin_fails_closed_and_its_restart_restores_service),
        ),
        (
            "concurrent_api_calls_are_each_decided_by_the_policy",
            Ok(concurrent_api_calls_are_each_decided_by_the_policy),
        ),
        (
            "a_policy_that_times_out_fails_closed",
            Ok(a_policy_that_times_out_fails_closed),
        ),
        (
            "the_managed_plugin_denies_once_dockerd_restarts_with_it",
            Err(the_managed_plugin_denies_once_dockerd_restarts_with_it),
        ),
    ];
    let trials = tests
        .into_iter()
        .map(|(name, test)| trial(&shared, name, test).with_ignored_flag(ignored))
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    match Arc::try_unwrap(shared) {
        Ok(Ok(shared)) => shared
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .stop(),
        Ok(Err(_)) => {}
        Err(_) => eprintln!("authz e2e: dockerd still shared at exit; not stopped"),
    }
    conclusion.exit()
}
