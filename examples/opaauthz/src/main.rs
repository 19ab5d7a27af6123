//! `opaauthz`: an authorization plugin deciding with Rego policies, evaluated
//! in-process by regorus, on the same input document and with the same default query
//! (`data.docker.authz.allow`) as open-policy-agent/opa-docker-authz, so that its
//! policies run unchanged. `input.rs` builds the document (`binds.rs` its
//! `BindMounts`), `policy.rs` compiles and evaluates, `reload.rs` reloads on SIGHUP and
//! on file change (keeping the last policy that compiled), `decisions.rs` writes the
//! decision log, `opa.rs` is the plugin; this file is the command line, in the crate's
//! own idioms (`#[docker_plugin_sdk::main]`, `ListenArgs`).
//!
//! ```text
//! sudo cargo run -p opaauthz -- --policy-file examples/opaauthz/policies/default.rego
//! sudo dockerd --authorization-plugin=opaauthz
//! docker run --privileged busybox true
//! # docker: Error response from daemon: authorization denied by plugin opaauthz:
//! # request rejected by administrative policy.
//! ```
//!
//! As a managed plugin: `cargo docker-plugin package -p opaauthz` (see Cargo.toml's
//! `[package.metadata.docker-plugin]`), then `docker plugin create opaauthz DIR`,
//! `docker plugin enable opaauthz` and dockerd started with
//! `--authorization-plugin=opaauthz:latest`. Its policy is
//! `/etc/opaauthz/authz.rego` in its rootfs (`policies/default.rego`); to use one of
//! the host's instead, before enabling it:
//! `docker plugin set opaauthz policy.source=/etc/docker/authz args="--policy-file /opa/authz.rego"`
//! (the `policy` mount binds a host directory at `/opa`, read-only; `/etc/docker` by
//! default, as opa-docker-authz). Edits of the file are picked up within a second.
//!
//! Options (`--help`):
//!   --policy-file FILE    the Rego policy (default /etc/opaauthz/authz.rego)
//!   --allow-path QUERY    the decision (default data.docker.authz.allow; `/a/b` is `data.a.b`)
//!   --v0-compatible       the policy is Rego v0 (rules without `if`)
//!   --no-skip-ping        ask the policy about `HEAD /_ping` too (by default it is allowed)
//!   --decision-log FILE   where decisions go, one JSON line each (default `-`, stdout)
//!   --log-bodies          log request bodies too (they may hold secrets)
//!   --poll-interval MS    how often the policy file is checked for changes (default 1000)
//!   --eval-timeout MS     how long one evaluation may take (default 2000)
//!   --check               only check that the policy compiles, then exit
//!   and the listen flags of every plugin (--name opaauthz, --socket-dir, …).

mod binds;
mod decisions;
mod input;
mod opa;
mod policy;
mod reload;

#[cfg(test)]
mod opa_example;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use docker_plugin_sdk::Plugin;
use docker_plugin_sdk::args::{ArgsError, Flags};
use docker_plugin_sdk::transport::ListenArgs;

use decisions::{DecisionLog, Target};
use policy::{Options, Policy, normalize_query};
use reload::Policies;

/// What the command line asks for.
struct Config {
    listen: ListenArgs,
    policy_file: PathBuf,
    options: Options,
    skip_ping: bool,
    decision_log: Target,
    log_bodies: bool,
    poll: Duration,
    check: bool,
}

/// Milliseconds, at least 1.
fn millis(flags: &mut Flags) -> Result<Duration, ArgsError> {
    flags.parse_with("a number of milliseconds, such as 1000", |v| {
        v.parse()
            .ok()
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
    })
}

fn parse_args() -> Result<Config, ArgsError> {
    let usage = format!(
        "usage: opaauthz [--policy-file FILE] [--allow-path QUERY] [--v0-compatible] \
         [--no-skip-ping] [--decision-log FILE] [--log-bodies] [--poll-interval MS] \
         [--eval-timeout MS] [--check] {}\n\n  \
         --policy-file FILE    the Rego policy (default /etc/opaauthz/authz.rego)\n  \
         --allow-path QUERY    the decision (default data.docker.authz.allow)\n  \
         --v0-compatible       the policy is Rego v0 (rules without `if`)\n  \
         --no-skip-ping        ask the policy about HEAD /_ping too (allowed by default)\n  \
         --decision-log FILE   one JSON line per decision (default -, stdout)\n  \
         --log-bodies          log request bodies too (they may hold secrets)\n  \
         --poll-interval MS    how often the policy file is checked (default 1000)\n  \
         --eval-timeout MS     how long one evaluation may take (default 2000)\n  \
         --check               only check that the policy compiles\n{}",
        ListenArgs::USAGE,
        ListenArgs::HELP
    );
    let mut config = Config {
        listen: ListenArgs::new("opaauthz"),
        policy_file: PathBuf::from("/etc/opaauthz/authz.rego"),
        options: Options::default(),
        skip_ping: true,
        decision_log: Target::Stdout,
        log_bodies: false,
        poll: Duration::from_secs(1),
        check: false,
    };
    let mut flags = Flags::from_env(usage);
    while let Some(flag) = flags.next_flag()? {
        match flag.as_str() {
            "--policy-file" => config.policy_file = flags.value()?.into(),
            "--allow-path" => config.options.query = normalize_query(&flags.value()?),
            "--v0-compatible" => config.options.v0 = true,
            "--skip-ping" => config.skip_ping = true,
            "--no-skip-ping" => config.skip_ping = false,
            "--decision-log" => {
                config.decision_log = match flags.value()?.as_str() {
                    "-" => Target::Stdout,
                    path => Target::File(path.into()),
                }
            }
            "--log-bodies" => config.log_bodies = true,
            "--poll-interval" => config.poll = millis(&mut flags)?,
            "--eval-timeout" => config.options.limit = millis(&mut flags)?,
            "--check" => config.check = true,
            _ => config.listen.parse_flag(&mut flags)?,
        }
    }
    config.listen.check()?;
    Ok(config)
}

/// `--check`: whether the policy compiles (as opa-docker-authz's `-check`), as an
/// exit code.
fn check(policy_file: &Path, options: &Options) -> i32 {
    match Policy::load(policy_file, options) {
        Ok(_) => {
            println!("policy {} compiles", policy_file.display());
            0
        }
        Err(e) => {
            eprintln!("opaauthz: {e}");
            1
        }
    }
}

#[docker_plugin_sdk::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = parse_args().unwrap_or_else(|err| err.exit("opaauthz"));
    if config.check {
        let (path, options) = (config.policy_file.clone(), config.options.clone());
        let code = tokio::task::spawn_blocking(move || check(&path, &options)).await?;
        // Nothing to clean up yet.
        std::process::exit(code);
    }
    // Bind first: dockerd gives a managed plugin a few seconds to listen.
    let (listener, spec) = config.listen.bind()?;
    let (path, options) = (config.policy_file.clone(), config.options.clone());
    let policies =
        Arc::new(tokio::task::spawn_blocking(move || Policies::load(path, options)).await?);
    Arc::clone(&policies).watch(config.poll)?;
    let log = DecisionLog::start(&config.decision_log, config.log_bodies).await?;
    let plugin = opa::OpaAuthz::new(policies, log, config.skip_ping);
    let mut server = Plugin::new().authz(plugin).server(listener);
    if let Some(spec) = spec {
        server = server.spec_file(spec);
    }
    // Serves until SIGTERM or SIGINT, then removes its socket and spec file.
    server.run().await?;
    Ok(())
}
