//! The user actions recorded, each with its plugins, setup and commands (docker CLI
//! arguments or pseudo-commands), and which commands are expected to fail.
//!
//! This module holds what an action is ([`Action`], [`PluginSpec`], [`Container`],
//! [`BadBundle`]); the actions themselves are listed one module a subsystem, in the
//! order [`all`] gives them.

mod authz;
mod logging;
mod network;
mod plugin_bundles;
mod plugin_lifecycle;
mod volume;

use crate::{
    CREATE_MAC, CURL, HOST_FILES, IMAGE, KILL, RESTART, START_REGISTRY, STOP, TLS_DOCKER,
    WRITE_ENV_FILE,
};

#[derive(Clone, Copy)]
pub(crate) struct PluginSpec {
    pub(crate) name: &'static str,
    pub(crate) capabilities: bool,
    pub(crate) bare_get: bool,
    /// Also a network and an IPAM driver (the recorder's `--network`).
    pub(crate) network: bool,
    /// Also an authorization plugin (the recorder's `--authz`): it listens before
    /// dockerd starts, with `--authorization-plugin=NAME`.
    pub(crate) authz: bool,
    /// Also a log driver (the recorder's `--logging`).
    pub(crate) logging: bool,
    /// A managed ("v2") plugin: a bundle at `{tmp}/NAME.bundle` that the action's
    /// commands `docker plugin create` and enable, instead of a process on a socket.
    pub(crate) managed: bool,
    /// For a managed plugin: its container and name (see [`Container`]).
    pub(crate) container: Container,
}

/// How a managed recorder's bundle differs from the usual one ([`RECORDER`]).
#[derive(Clone, Copy)]
pub(crate) struct Container {
    /// The name docker commands create it as (and its socket's): the spec's name when
    /// `None`. Lets a managed plugin share a legacy plugin's name in one action.
    pub(crate) docker_name: Option<&'static str>,
    /// `network.type`.
    pub(crate) network: &'static str,
    pub(crate) pid_host: bool,
    pub(crate) ipc_host: bool,
    /// `linux.capabilities`.
    pub(crate) capabilities: &'static [&'static str],
    /// `linux.devices` paths.
    pub(crate) devices: &'static [&'static str],
    /// Env entries besides `DEBUG`.
    pub(crate) env: &'static [(&'static str, &'static str)],
    /// Volumes' content kept in `/store` and bind-mounted under the propagated mount.
    pub(crate) store: bool,
    /// Another spec whose log dir this bundle's log mount uses (the new version of a
    /// plugin, for `docker plugin upgrade`).
    pub(crate) log_of: Option<&'static str>,
    /// Also marks the rootfs (a file `/version` with this text).
    pub(crate) version: &'static str,
}

/// The usual managed recorder: host network and PID namespace (so that SO_PEERCRED
/// names dockerd's host pid), nothing else.
pub(crate) const RECORDER: Container = Container {
    docker_name: None,
    network: "host",
    pid_host: true,
    ipc_host: false,
    capabilities: &[],
    devices: &[],
    env: &[],
    store: false,
    log_of: None,
    version: "1",
};

pub(crate) const fn plugin(name: &'static str) -> PluginSpec {
    PluginSpec {
        name,
        capabilities: true,
        bare_get: false,
        network: false,
        authz: false,
        logging: false,
        managed: false,
        container: RECORDER,
    }
}

/// A legacy recorder that is also a network and an IPAM driver.
pub(crate) const fn net_plugin(name: &'static str) -> PluginSpec {
    PluginSpec {
        network: true,
        ..plugin(name)
    }
}

/// A legacy recorder that is also a log driver.
pub(crate) const fn log_plugin(name: &'static str) -> PluginSpec {
    PluginSpec {
        logging: true,
        ..plugin(name)
    }
}

/// A legacy recorder that is also the daemon's authorization plugin.
pub(crate) const fn authz_plugin(name: &'static str) -> PluginSpec {
    PluginSpec {
        authz: true,
        ..plugin(name)
    }
}

/// The usual managed recorder ([`RECORDER`]).
pub(crate) const fn managed(name: &'static str) -> PluginSpec {
    managed_in(name, RECORDER)
}

/// A managed recorder in `container` (see [`Container`]).
pub(crate) const fn managed_in(name: &'static str, container: Container) -> PluginSpec {
    PluginSpec {
        managed: true,
        container,
        ..plugin(name)
    }
}

/// Broken bundles for `docker plugin create` / `enable` errors, at `{tmp}/NAME.bundle`.
#[derive(Clone, Copy)]
pub(crate) enum BadBundle {
    /// config.json is not JSON (cut off).
    InvalidJson,
    /// `"description": 5`.
    WrongType,
    /// No rootfs/ directory.
    NoRootfs,
    /// The entrypoint does not exist in rootfs/.
    MissingEntrypoint,
    /// The recorder listens elsewhere, so the socket dockerd waits for never appears.
    NoSocket,
    /// A mount without a source (`null`).
    NoMountSource,
    /// A bind mount whose source is `""`.
    EmptyMountSource,
    /// A mount of a filesystem type the kernel does not know.
    UnknownMountType,
    /// A device that does not exist on the host.
    MissingDevice,
}

pub(crate) struct Action {
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
    pub(crate) plugins: &'static [PluginSpec],
    /// Broken bundles the commands refer to as `{tmp}/NAME.bundle`.
    pub(crate) bundles: &'static [(&'static str, BadBundle)],
    /// Whether containers run (the busybox image is imported first).
    pub(crate) image: bool,
    /// Commands run first, recorded apart from the action's own.
    pub(crate) setup: &'static [&'static [&'static str]],
    /// The action: docker CLI arguments (`{tmp}` is a temp dir, `{id:NAME}` and
    /// `{id12:NAME}` a managed plugin's ID and its short form, `{registry}` the
    /// registry's address), or a pseudo-command: `[RESTART, plugin]`, `[KILL, plugin]`,
    /// `[STOP, plugin]`, `[HOST_FILES, plugin]`, `[START_REGISTRY]`,
    /// `[CREATE_MAC, name, network, mac]`, `[CURL, args…]`, `[TLS_DOCKER, args…]`,
    /// `[WRITE_ENV_FILE, path, bytes]`.
    pub(crate) commands: &'static [&'static [&'static str]],
    /// Which commands are expected to fail (indexes into `commands`).
    pub(crate) failing: &'static [usize],
    /// dockerd also listens on a loopback TCP port with `--tlsverify` (certificates
    /// from [`tls`](crate::tls)), for [`TLS_DOCKER`] commands.
    pub(crate) tls: bool,
}

impl Action {
    /// The description a fixture carries: [`Action::description`] on one line, its
    /// runs of whitespace one space.
    pub(crate) fn fixture_description(&self) -> String {
        self.description
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `docker plugin create rec-m <bundle>` and `docker plugin enable rec-m`.
pub(crate) const CREATE_M: &[&str] = &["plugin", "create", "rec-m", "{tmp}/rec-m.bundle"];
pub(crate) const ENABLE_M: &[&str] = &["plugin", "enable", "rec-m"];

/// Every action, in the order `--list` prints them and the README's table lists them.
pub(crate) fn all() -> impl Iterator<Item = &'static Action> {
    [
        logging::ACTIONS,
        volume::ACTIONS,
        plugin_lifecycle::ACTIONS,
        plugin_bundles::ACTIONS,
        network::ACTIONS,
        authz::ACTIONS,
    ]
    .into_iter()
    .flatten()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::fs;

    use super::all;
    use crate::workspace;

    /// A fixture recorded before its action's text changed (as `network_run.json` was
    /// once) says what the action no longer does: each committed fixture must carry its
    /// action's current description, and every action have its fixture and no fixture
    /// lack its action.
    #[test]
    fn every_fixture_carries_its_actions_current_description() {
        let dir = workspace().join("tests/fixtures/dockerd-sequences");
        for action in all() {
            let path = dir.join(format!("{}.json", action.name));
            let text =
                fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                fixture["description"].as_str(),
                Some(action.fixture_description().as_str()),
                "{} holds an old description: re-record it with \
                 `scripts/record-dockerd-sequences --only {}`",
                path.display(),
                action.name
            );
        }
        let actions: BTreeSet<String> = all().map(|a| format!("{}.json", a.name)).collect();
        let fixtures: BTreeSet<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".json"))
            .collect();
        assert_eq!(
            fixtures,
            actions,
            "fixtures in {} without an action",
            dir.display()
        );
    }
}
