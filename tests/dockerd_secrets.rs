//! The example secret provider against a REAL dockerd in swarm mode: `dirsecrets`,
//! packaged by `cargo docker-plugin package -p dirsecrets` as a managed plugin of
//! type `docker.secretprovider/1.0`, serves the secrets of a swarm initialised on
//! loopback (`docker swarm init --advertise-addr 127.0.0.1`, on the shared private
//! dockerd, which runs with `--bridge=none --iptables=false`): `docker secret create
//! --driver NAME:latest` makes secrets without a value, and a service's task reads
//! at `/run/secrets/…` what the provider answered: the file's bytes for a plain
//! secret, a value rendered for the task (its task ID in it, `DoNotReuse`) for a
//! per-task one, different in each of two tasks.
//!
//! It needs root; when dockerd cannot start the tests fail under `CI=true` (or
//! `DPS_REQUIRE_DOCKERD=1`) and are reported as ignored otherwise.

mod support;

use std::fs;
use std::time::{Duration, Instant};

use docker_plugin_sdk::harness::dockerd::Dockerd;
use libtest_mimic::Failed;
use support::cli::{check, package_member, unique};
use support::shared_dockerd::{DockerdTest, ImageOnce, PlainTest, run_trials, with_dockerd_log};

const IMAGE: &str = "dps-busybox:secrets";

/// Waits until `probe` answers `Some`, for up to a minute (a task's scheduling and
/// start); the last answer of `d` in the failure.
fn wait<T>(what: &str, mut probe: impl FnMut() -> Result<Option<T>, Failed>) -> Result<T, Failed> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(found) = probe()? {
            return Ok(found);
        }
        if Instant::now() > deadline {
            return Err(format!("{what}: not within 60 s").into());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The running tasks of `service`: (task ID, container ID) pairs.
fn running_tasks(d: &Dockerd, service: &str) -> Result<Vec<(String, String)>, Failed> {
    let ids = d.docker_ok(&[
        "ps",
        "-q",
        "--no-trunc",
        "--filter",
        &format!("label=com.docker.swarm.service.name={service}"),
    ])?;
    let mut tasks = Vec::new();
    for container in ids.lines().filter(|l| !l.is_empty()) {
        let task = d.docker_ok(&[
            "inspect",
            "--format",
            "{{index .Config.Labels \"com.docker.swarm.task.id\"}}",
            container,
        ])?;
        tasks.push((task, container.to_owned()));
    }
    Ok(tasks)
}

fn a_service_reads_the_providers_values_at_run_secrets(
    d: &Dockerd,
    image: &ImageOnce,
) -> Result<(), Failed> {
    image.ensure(d)?;
    let bundle = package_member("dirsecrets")?;
    let secrets = tempfile::tempdir()?;
    let value = format!("dps-secret-{}", std::process::id());
    fs::write(secrets.path().join("db-password"), &value)?;
    fs::write(secrets.path().join("token"), "token for ${TASK_ID}")?;
    let plugin = unique("dps-dirsecrets");
    let service = unique("dps-svc");
    let (db, token) = (unique("db-password"), unique("token"));
    let mut created = false;
    let mut swarm = false;
    let result = (|| -> Result<(), Failed> {
        d.docker_ok(&["plugin", "create", &plugin, bundle.to_str().ok_or("path")?])?;
        created = true;
        let source = format!("secrets.source={}", secrets.path().display());
        d.docker_ok(&["plugin", "set", &plugin, &source])?;
        d.docker_ok(&["plugin", "enable", &plugin])?;
        // Below Linux's ephemeral ports (32768 and up), where no outgoing connection
        // can hold it; the pid keeps two runs at once apart.
        let port = 20000 + std::process::id() % 12000;
        d.docker_ok(&[
            "swarm",
            "init",
            "--advertise-addr",
            "127.0.0.1",
            "--listen-addr",
            &format!("127.0.0.1:{port}"),
        ])?;
        swarm = true;
        let driver = format!("{plugin}:latest");
        // The secrets are named after the files (the label names the file here, as
        // the names carry this run's suffix).
        for (secret, labels) in [
            (&db, &["dirsecrets.file=db-password"][..]),
            (
                &token,
                &["dirsecrets.file=token", "dirsecrets.per-task=true"][..],
            ),
        ] {
            let mut args = vec!["secret", "create", "--driver", &driver];
            for label in labels {
                args.extend(["--label", label]);
            }
            args.push(secret);
            d.docker_ok(&args)?;
        }
        d.docker_ok(&[
            "service",
            "create",
            "--detach",
            "--name",
            &service,
            "--replicas",
            "2",
            "--secret",
            &db,
            "--secret",
            &token,
            IMAGE,
            "sleep",
            "600",
        ])?;
        let tasks = wait("two running tasks", || {
            let tasks = running_tasks(d, &service)?;
            Ok((tasks.len() == 2).then_some(tasks))
        })?;
        let mut tokens = Vec::new();
        for (task, container) in &tasks {
            let read = |name: &str| {
                d.docker_ok(&["exec", container, "cat", &format!("/run/secrets/{name}")])
            };
            let got = read(&db)?;
            check(got == value, || {
                format!("/run/secrets/{db} holds {got:?}, the file {value:?}")
            })?;
            let got = read(&token)?;
            check(got == format!("token for {task}"), || {
                format!("/run/secrets/{token} of task {task} holds {got:?}")
            })?;
            tokens.push(got);
        }
        check(tokens[0] != tokens[1], || {
            format!("both tasks got {tokens:?}")
        })
    })();
    let _ = d.docker(&["service", "rm", &service]);
    if swarm {
        let _ = d.docker(&["swarm", "leave", "--force"]);
    }
    if created {
        let _ = d.docker(&["plugin", "disable", "-f", &plugin]);
        let _ = d.docker(&["plugin", "rm", "-f", &plugin]);
    }
    with_dockerd_log(d, 60, result)
}

fn main() {
    let plain: Vec<(&str, PlainTest)> = vec![];
    let with_dockerd: Vec<(&str, DockerdTest)> = vec![(
        "a_service_reads_the_providers_values_at_run_secrets",
        a_service_reads_the_providers_values_at_run_secrets,
    )];
    run_trials("secrets e2e", IMAGE, plain, with_dockerd)
}
