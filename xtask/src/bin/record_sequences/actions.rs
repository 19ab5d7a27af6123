//! The user actions recorded, each with its plugins, setup and commands (docker CLI
//! arguments or pseudo-commands), and which commands are expected to fail.

use crate::{
    CREATE_MAC, CURL, HOST_FILES, IMAGE, KILL, RESTART, START_REGISTRY, STOP, TLS_DOCKER,
    WRITE_ENV_FILE,
};

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

pub(crate) const fn managed(name: &'static str) -> PluginSpec {
    managed_in(name, RECORDER)
}

pub(crate) const fn managed_in(name: &'static str, container: Container) -> PluginSpec {
    PluginSpec {
        name,
        capabilities: true,
        bare_get: false,
        network: false,
        authz: false,
        logging: false,
        managed: true,
        container,
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

/// What the logging actions' first container prints: two lines, then one of 20000
/// bytes (over dockerd's 16 KiB copier buffer), each ending with a newline.
pub(crate) const LONG_LINE_SCRIPT: &str =
    "echo line-one; echo line-two; head -c 20000 /dev/zero | tr '\\0' x; echo";

/// What the logging actions' second container prints: a line, a pause, a line.
pub(crate) const SLOW_SCRIPT: &str = "echo one; sleep 3; echo two";

pub(crate) const ACTIONS: &[Action] = &[
    Action {
        name: "logging_run",
        description: "docker run --log-driver on a legacy log driver (ReadLogs capable): two \
                      lines and a line of 20000 bytes; then docker logs of the stopped \
                      container, with --tail 2 and with --since",
        plugins: &[log_plugin("rec-log")],
        bundles: &[],
        image: true,
        setup: &[],
        commands: &[
            &[
                "run",
                "--name",
                "c1",
                "--log-driver",
                "rec-log",
                IMAGE,
                "sh",
                "-c",
                LONG_LINE_SCRIPT,
            ],
            &["logs", "c1"],
            &["logs", "--tail", "2", "c1"],
            &["logs", "--since", "2000-01-01T00:00:00Z", "c1"],
            &["rm", "c1"],
        ],
        failing: &[],
        tls: false,
    },
    Action {
        name: "logging_running",
        description: "docker logs of a running container (one ReadLogs), then docker logs -f \
                      until the container exits (StopLogging ends the follow stream)",
        plugins: &[log_plugin("rec-log")],
        bundles: &[],
        image: true,
        setup: &[],
        commands: &[
            &[
                "run",
                "-d",
                "--name",
                "c2",
                "--log-driver",
                "rec-log",
                IMAGE,
                "sh",
                "-c",
                SLOW_SCRIPT,
            ],
            &["logs", "c2"],
            &["logs", "-f", "c2"],
            &["rm", "c2"],
        ],
        failing: &[],
        tls: false,
    },
    Action {
        name: "volume_create",
        description: "docker volume create with -o options, then one without options, on a \
                      plugin that implements Capabilities (scope local)",
        plugins: &[plugin("rec-create")],
        bundles: &[],
        image: false,
        setup: &[],
        commands: &[
            &[
                "volume",
                "create",
                "-d",
                "rec-create",
                "-o",
                "a=b",
                "-o",
                "c=d",
                "v1",
            ],
            &["volume", "create", "-d", "rec-create", "v2"],
        ],
        failing: &[],
        tls: false,
    },
    Action {
        name: "volume_create_no_capabilities",
        description: "the same two creates on a plugin that does not implement Capabilities \
                      (the SDK answers 404)",
        plugins: &[PluginSpec {
            name: "rec-nocaps",
            capabilities: false,
            bare_get: false,
            network: false,
            authz: false,
            logging: false,
            managed: false,
            container: RECORDER,
        }],
        bundles: &[],
        image: false,
        setup: &[],
        commands: &[
            &[
                "volume",
                "create",
                "-d",
                "rec-nocaps",
                "-o",
                "a=b",
                "-o",
                "c=d",
                "v1",
            ],
            &["volume", "create", "-d", "rec-nocaps", "v2"],
        ],
        failing: &[],
        tls: false,
    },
    Action {
        name: "volume_create_existing",
        description: "docker volume create of the same name twice",
        plugins: &[plugin("rec-exists")],
        bundles: &[],
        image: false,
        setup: &[],
        commands: &[
            &["volume", "create", "-d", "rec-exists", "-o", "a=b", "v1"],
            &["volume", "create", "-d", "rec-exists", "-o", "a=b", "v1"],
        ],
        failing: &[],
        tls: false,
    },
    Action {
        name: "volume_create_other_driver",
        description: "create -d PLUGIN of a name the local driver already has, then create \
                      without -d (the CLI sends driver local) of a name the plugin already has: \
                      both refused",
        plugins: &[plugin("rec-other")],
        bundles: &[],
        image: false,
        setup: &[
            &["volume", "create", "vlocal"],
            &["volume", "create", "-d", "rec-other", "vplugin"],
        ],
        commands: &[
            &["volume", "create", "-d", "rec-other", "vlocal"],
            &["volume", "create", "vplugin"],
        ],
        failing: &[0, 1],
        tls: false,
    },
    Action {
        name: "volume_ls",
        description: "docker volume ls with one volume on rec-ls and a second plugin, \
                      rec-ls-idle, that dockerd never heard of before",
        plugins: &[plugin("rec-ls"), plugin("rec-ls-idle")],
        bundles: &[],
        image: false,
        setup: &[&["volume", "create", "-d", "rec-ls", "-o", "a=b", "v1"]],
        commands: &[&["volume", "ls"]],
        failing: &[],
        tls: false,
    },
    Action {
        name: "volume_inspect",
        description: "docker volume inspect of a plugin volume (Get answers with a Mountpoint)",
        plugins: &[plugin("rec-inspect")],
        bundles: &[],
        image: false,
        setup: &[&["volume", "create", "-d", "rec-inspect", "-o", "a=b", "v1"]],
        commands: &[&["volume", "inspect", "v1"]],
        failing: &[],
        tls: false,
    },
    Action {
        name: "bare_get",
        description: "inspect, ls and a container when Get and List answer without a \
                      Mountpoint: does dockerd ask VolumeDriver.Path?",
        plugins: &[PluginSpec {
            name: "rec-bare",
            capabilities: true,
            bare_get: true,
            network: false,
            authz: false,
            logging: false,
            managed: false,
            container: RECORDER,
        }],
        bundles: &[],
        image: true,
        setup: &[&["volume", "create", "-d", "rec-bare", "v1"]],
        commands: &[
            &["volume", "inspect", "v1"],
            &["volume", "ls"],
            &["run", "--rm", "-v", "v1:/data", IMAGE, "true"],
        ],
        failing: &[],
        tls: false,
    },
    Action {
        name: "volume_inspect_unknown",
        description: "docker volume inspect of a name no driver has, with a plugin running \
                      that dockerd never used",
        plugins: &[plugin("rec-unknown")],
        bundles: &[],
        image: false,
        setup: &[],
        commands: &[&["volume", "inspect", "nosuch"]],
        failing: &[0],
        tls: false,
    },
    Action {
        name: "volume_rm",
        description: "docker volume rm of an unused plugin volume",
        plugins: &[plugin("rec-rm")],
        bundles: &[],
        image: false,
        setup: &[&["volume", "create", "-d", "rec-rm", "v1"]],
        commands: &[&["volume", "rm", "v1"]],
        failing: &[],
        tls: false,
    },
    Action {
        name: "volume_rm_in_use",
        description: "docker volume rm of a volume a stopped (created, never started) \
                      container references: dockerd refuses",
        plugins: &[plugin("rec-inuse")],
        bundles: &[],
        image: true,
        setup: &[
            &["volume", "create", "-d", "rec-inuse", "v1"],
            &["create", "--name", "c1", "-v", "v1:/data", IMAGE, "true"],
        ],
        commands: &[&["volume", "rm", "v1"]],
        failing: &[0],
        tls: false,
    },
    Action {
        name: "run_with_volume",
        description: "docker run --rm -v VOLUME:/data with an existing plugin volume",
        plugins: &[plugin("rec-run")],
        bundles: &[],
        image: true,
        setup: &[&["volume", "create", "-d", "rec-run", "v1"]],
        commands: &[&["run", "--rm", "-v", "v1:/data", IMAGE, "true"]],
        failing: &[],
        tls: false,
    },
    Action {
        name: "run_with_volume_auto_create",
        description: "docker run --rm --volume-driver PLUGIN -v NEWVOLUME:/data: dockerd \
                      creates the volume itself",
        plugins: &[plugin("rec-autocreate")],
        bundles: &[],
        image: true,
        setup: &[],
        commands: &[&[
            "run",
            "--rm",
            "--volume-driver",
            "rec-autocreate",
            "-v",
            "v1:/data",
            IMAGE,
            "true",
        ]],
        failing: &[],
        tls: false,
    },
    Action {
        name: "two_containers_sharing_volume",
        description: "two detached containers mount the same volume, are stopped one after \
                      the other, then removed: one mount ID per container",
        plugins: &[plugin("rec-shared")],
        bundles: &[],
        image: true,
        setup: &[&["volume", "create", "-d", "rec-shared", "v1"]],
        commands: &[
            &[
                "run", "-d", "--name", "c1", "-v", "v1:/data", IMAGE, "sleep", "60",
            ],
            &[
                "run", "-d", "--name", "c2", "-v", "v1:/data", IMAGE, "sleep", "60",
            ],
            &["stop", "-t", "1", "c1"],
            &["stop", "-t", "1", "c2"],
            &["rm", "c1", "c2"],
        ],
        failing: &[],
        tls: false,
    },
    Action {
        name: "cp_from_running_container",
        description: "docker cp out of a running container that mounts the volume: dockerd \
                      mounts the volume again, with the container's mount ID",
        plugins: &[plugin("rec-cp")],
        bundles: &[],
        image: true,
        setup: &[
            &["volume", "create", "-d", "rec-cp", "v1"],
            &[
                "run", "-d", "--name", "c1", "-v", "v1:/data", IMAGE, "sleep", "60",
            ],
        ],
        commands: &[
            &["cp", "c1:/etc/passwd", "{tmp}/passwd"],
            &["stop", "-t", "1", "c1"],
        ],
        failing: &[],
        tls: false,
    },
    Action {
        name: "plugin_restart",
        description: "the plugin is killed (SIGKILL) and started again on the same socket; \
                      then inspect, ls and a container using the volume",
        plugins: &[plugin("rec-restart")],
        bundles: &[],
        image: true,
        setup: &[&["volume", "create", "-d", "rec-restart", "v1"]],
        commands: &[
            &[RESTART, "rec-restart"],
            &["volume", "inspect", "v1"],
            &["volume", "ls"],
            &["run", "--rm", "-v", "v1:/data", IMAGE, "true"],
        ],
        failing: &[],
        tls: false,
    },
    // Managed ("v2") plugins: `rec-m` is a bundle of the static recorder that the
    // commands create and enable (see `managed_config`).
    Action {
        name: "plugin_enable",
        description: "docker plugin create of a managed plugin, ls, inspect, enable, ls: \
                      which calls the plugin gets on enable, and where its socket is",
        plugins: &[managed("rec-m")],
        bundles: &[],
        image: false,
        setup: &[],
        commands: &[
            CREATE_M,
            &["plugin", "ls"],
            &["plugin", "inspect", "rec-m"],
            ENABLE_M,
            &["plugin", "ls"],
            &[HOST_FILES, "rec-m"],
        ],
        failing: &[],
        tls: false,
    },
    Action {
        name: "managed_volume_lifecycle",
        description: "volumes of an enabled managed plugin: create (-d NAME and -d \
                      NAME:latest), ls, inspect, a container writing to one, the files on \
                      the host, a running container's mounts, rm",
        plugins: &[managed("rec-m")],
        bundles: &[],
        image: true,
        setup: &[CREATE_M, ENABLE_M],
        commands: &[
            &["volume", "create", "-d", "rec-m", "v1"],
            &["volume", "create", "-d", "rec-m:latest", "v2"],
            &["volume", "ls"],
            &["volume", "inspect", "v1"],
            &[
                "run",
                "--rm",
                "-v",
                "v1:/data",
                IMAGE,
                "sh",
                "-c",
                "echo hi > /data/f",
            ],
            &[HOST_FILES, "rec-m"],
            &[
                "run", "-d", "--name", "c1", "-v", "v2:/data", IMAGE, "sleep", "60",
            ],
            &["inspect", "--format", "{{json .Mounts}}", "c1"],
            &["stop", "-t", "1", "c1"],
            &["rm", "c1"],
            &["volume", "rm", "v1"],
            &["volume", "ls"],
        ],
        failing: &[],
        tls: false,
    },
    Action {
        name: "plugin_disable_in_use",
        description: "docker plugin disable of a managed plugin with a volume (no \
                      container), then with a created container using it, then disable -f; \
                      then the volume and the container without their plugin",
        plugins: &[managed("rec-m")],
        bundles: &[],
        image: true,
        setup: &[
            CREATE_M,
            ENABLE_M,
            &["volume", "create", "-d", "rec-m", "v1"],
        ],
        commands: &[
            &["plugin", "disable", "rec-m"],
            &["create", "--name", "c1", "-v", "v1:/data", IMAGE, "true"],
            &["plugin", "disable", "rec-m"],
            &["plugin", "disable", "-f", "rec-m"],
            &["plugin", "ls"],
            &["volume", "ls"],
            &["volume", "inspect", "v1"],
            &["volume", "rm", "v1"],
            &["volume", "create", "-d", "rec-m", "v2"],
            &["start", "c1"],
        ],
        failing: &[0, 2, 6, 7, 8, 9],
        tls: false,
    },
    Action {
        name: "plugin_disable_enable",
        description: "disable after the plugin's only volume was removed, enable again, \
                      volume calls; then disable -f with a volume and enable again",
        plugins: &[managed("rec-m")],
        bundles: &[],
        image: false,
        setup: &[CREATE_M, ENABLE_M],
        commands: &[
            &["volume", "create", "-d", "rec-m", "v1"],
            &["volume", "rm", "v1"],
            &["plugin", "disable", "rec-m"],
            ENABLE_M,
            &["volume", "create", "-d", "rec-m", "v2"],
            &["volume", "ls"],
            &["plugin", "disable", "-f", "rec-m"],
            ENABLE_M,
            &["volume", "ls"],
            &["volume", "inspect", "v2"],
        ],
        failing: &[],
        tls: false,
    },
    Action {
        name: "plugin_rm",
        description: "docker plugin rm of a managed plugin: in use (a volume), enabled, \
                      disabled with a volume, rm -f",
        plugins: &[managed("rec-m")],
        bundles: &[],
        image: false,
        setup: &[
            CREATE_M,
            ENABLE_M,
            &["volume", "create", "-d", "rec-m", "v1"],
        ],
        commands: &[
            &["plugin", "rm", "rec-m"],
            &["volume", "rm", "v1"],
            &["plugin", "rm", "rec-m"],
            &["volume", "create", "-d", "rec-m", "v2"],
            &["plugin", "disable", "-f", "rec-m"],
            &["plugin", "rm", "rec-m"],
            &["plugin", "rm", "-f", "rec-m"],
            &["plugin", "ls"],
            &["volume", "ls"],
        ],
        failing: &[0, 2, 5],
        tls: false,
    },
    Action {
        name: "plugin_rm_force_enabled",
        description: "docker plugin rm -f of an enabled managed plugin that has a volume; \
                      then the orphaned volume",
        plugins: &[managed("rec-m")],
        bundles: &[],
        image: false,
        setup: &[
            CREATE_M,
            ENABLE_M,
            &["volume", "create", "-d", "rec-m", "v1"],
        ],
        commands: &[
            &["plugin", "rm", "-f", "rec-m"],
            &["plugin", "ls"],
            &["volume", "ls"],
            &["volume", "rm", "v1"],
        ],
        failing: &[3],
        tls: false,
    },
    Action {
        name: "plugin_set",
        description: "docker plugin set: while enabled, after disable, an unknown key, a \
                      mount that is not settable, a mix of good and bad; the settings \
                      afterwards and the environment the plugin starts with",
        plugins: &[managed("rec-m")],
        bundles: &[],
        image: false,
        setup: &[CREATE_M, ENABLE_M],
        commands: &[
            &["plugin", "set", "rec-m", "DEBUG=1"],
            &["plugin", "disable", "rec-m"],
            &["plugin", "set", "rec-m", "DEBUG=1"],
            &["plugin", "set", "rec-m", "NOPE=1"],
            &["plugin", "set", "rec-m", "log.source=/tmp"],
            &["plugin", "set", "rec-m", "DEBUG=2", "log.source=/tmp"],
            &[
                "plugin",
                "inspect",
                "--format",
                "{{json .Settings}}",
                "rec-m",
            ],
            ENABLE_M,
            &[
                "plugin",
                "inspect",
                "--format",
                "{{json .Settings.Env}} {{json .Config.Env}}",
                "rec-m",
            ],
        ],
        failing: &[0, 3, 4, 5],
        tls: false,
    },
    Action {
        name: "plugin_crash_restart",
        description: "the managed plugin's process is SIGKILLed: dockerd starts it again; \
                      then ls, inspect, create and a container",
        plugins: &[managed("rec-m")],
        bundles: &[],
        image: true,
        setup: &[
            CREATE_M,
            ENABLE_M,
            &["volume", "create", "-d", "rec-m", "v1"],
        ],
        commands: &[
            &[KILL, "rec-m"],
            &["plugin", "ls"],
            &["volume", "ls"],
            &["volume", "inspect", "v1"],
            &["volume", "create", "-d", "rec-m", "v2"],
            &["run", "--rm", "-v", "v1:/data", IMAGE, "true"],
        ],
        failing: &[],
        tls: false,
    },
    Action {
        name: "plugin_create_errors",
        description: "docker plugin create of broken bundles, of a name twice, of the same \
                      bundle under a second name; enable of a plugin whose entrypoint is \
                      missing and of one whose socket never appears; rm and create again: \
                      a new ID",
        plugins: &[managed("rec-m")],
        bundles: &[
            ("bad-json", BadBundle::InvalidJson),
            ("bad-type", BadBundle::WrongType),
            ("no-rootfs", BadBundle::NoRootfs),
            ("no-binary", BadBundle::MissingEntrypoint),
            ("no-socket", BadBundle::NoSocket),
        ],
        image: false,
        setup: &[],
        commands: &[
            &["plugin", "create", "bad-json", "{tmp}/bad-json.bundle"],
            &["plugin", "create", "bad-type", "{tmp}/bad-type.bundle"],
            &["plugin", "create", "no-rootfs", "{tmp}/no-rootfs.bundle"],
            &["plugin", "create", "nowhere", "{tmp}/nowhere.bundle"],
            CREATE_M,
            CREATE_M,
            &["plugin", "create", "rec-m2", "{tmp}/rec-m.bundle"],
            &["plugin", "create", "no-binary", "{tmp}/no-binary.bundle"],
            &["plugin", "enable", "no-binary"],
            &["plugin", "create", "no-socket", "{tmp}/no-socket.bundle"],
            &["plugin", "enable", "no-socket"],
            &["plugin", "ls", "--no-trunc"],
            &["plugin", "rm", "rec-m"],
            CREATE_M,
            &["plugin", "inspect", "--format", "{{.Id}}", "rec-m"],
        ],
        failing: &[0, 1, 2, 3, 5, 6, 8, 10],
        tls: false,
    },
    Action {
        name: "plugin_container",
        description: "what a managed plugin sees of its container (the recorder's report): \
                      defaults (private network and PID namespace, Docker's capabilities), \
                      then network type bridge, CAP_SYS_ADMIN, /dev/fuse and the host IPC \
                      namespace",
        plugins: &[
            managed_in(
                "rec-c",
                Container {
                    network: "",
                    pid_host: false,
                    ..RECORDER
                },
            ),
            managed_in(
                "rec-c2",
                Container {
                    network: "bridge",
                    pid_host: false,
                    ipc_host: true,
                    capabilities: &["CAP_SYS_ADMIN"],
                    devices: &["/dev/fuse"],
                    ..RECORDER
                },
            ),
        ],
        bundles: &[],
        image: false,
        setup: &[],
        commands: &[
            &["plugin", "create", "rec-c", "{tmp}/rec-c.bundle"],
            &["plugin", "enable", "rec-c"],
            &["plugin", "create", "rec-c2", "{tmp}/rec-c2.bundle"],
            &["plugin", "enable", "rec-c2"],
            &["plugin", "disable", "rec-c"],
            &["plugin", "disable", "rec-c2"],
        ],
        failing: &[],
        tls: false,
    },
    Action {
        name: "plugin_references",
        description: "enable, disable and rm of a managed plugin whose volume two \
                      containers reference: enable twice, disable in use, disable -f, \
                      disable again (in use before already disabled), by ID prefix and full \
                      ID; volume rm while referenced",
        plugins: &[managed("rec-m")],
        bundles: &[],
        image: true,
        setup: &[
            CREATE_M,
            ENABLE_M,
            &["volume", "create", "-d", "rec-m", "v1"],
            &["create", "--name", "c1", "-v", "v1:/data", IMAGE, "true"],
            &["create", "--name", "c2", "-v", "v1:/data", IMAGE, "true"],
        ],
        commands: &[
            ENABLE_M,
            &["plugin", "disable", "rec-m"],
            &["volume", "rm", "v1"],
            &["plugin", "disable", "-f", "rec-m"],
            &["plugin", "disable", "rec-m"],
            &["plugin", "disable", "-f", "rec-m"],
            &["plugin", "enable", "{id12:rec-m}"],
            &[
                "plugin",
                "inspect",
                "--format",
                "{{.Name}} {{.Enabled}}",
                "{id:rec-m}",
            ],
            &["plugin", "inspect", "--format", "{{.Name}}", "rec-m:latest"],
            &["plugin", "inspect", "--format", "{{.Name}}", "rec-m:other"],
            &["rm", "c1", "c2"],
            &["volume", "rm", "v1"],
            &["plugin", "disable", "rec-m:latest"],
            &["plugin", "rm", "{id12:rec-m}"],
            &["plugin", "ls"],
        ],
        failing: &[0, 1, 2, 4, 5, 9],
        tls: false,
    },
    Action {
        name: "plugin_upgrade",
        description: "docker plugin upgrade to a version whose config adds an env var and \
                      /dev/fuse: refused while enabled; after disable -f the rootfs and config \
                      are new, the ID, volume and old settings stay",
        plugins: &[
            managed("rec-m"),
            managed_in(
                "rec-up",
                Container {
                    docker_name: Some("rec-m"),
                    devices: &["/dev/fuse"],
                    env: &[("NEWVAR", "new")],
                    log_of: Some("rec-m"),
                    version: "2",
                    ..RECORDER
                },
            ),
        ],
        bundles: &[],
        image: false,
        setup: &[
            &[START_REGISTRY],
            &[
                "plugin",
                "create",
                "{registry}/rec-up:v2",
                "{tmp}/rec-up.bundle",
            ],
            &["plugin", "push", "{registry}/rec-up:v2"],
            &["plugin", "rm", "{registry}/rec-up:v2"],
            CREATE_M,
            ENABLE_M,
            &["volume", "create", "-d", "rec-m", "v1"],
        ],
        commands: &[
            &[
                "plugin",
                "upgrade",
                "--grant-all-permissions",
                "--skip-remote-check",
                "rec-m",
                "{registry}/rec-up:v2",
            ],
            &["plugin", "disable", "-f", "rec-m"],
            &[
                "plugin",
                "upgrade",
                "--grant-all-permissions",
                "--skip-remote-check",
                "rec-m",
                "{registry}/rec-up:v2",
            ],
            ENABLE_M,
            &[
                "plugin",
                "inspect",
                "--format",
                "{{.Id}} {{.Name}}",
                "rec-m",
            ],
            &[
                "plugin",
                "inspect",
                "--format",
                "{{json .Settings}}",
                "rec-m",
            ],
            &["volume", "ls"],
        ],
        failing: &[0],
        tls: false,
    },
    Action {
        name: "legacy_shadows_managed",
        description: "a legacy volume driver rec-shadow is used, then dies; a managed \
                      plugin is created and enabled as rec-shadow: dockerd keeps the legacy \
                      driver by name and never reaches the managed one by that name",
        plugins: &[
            plugin("rec-shadow"),
            managed_in(
                "rec-shadow-managed",
                Container {
                    docker_name: Some("rec-shadow"),
                    ..RECORDER
                },
            ),
        ],
        bundles: &[],
        image: true,
        setup: &[&["volume", "create", "-d", "rec-shadow", "v0"]],
        commands: &[
            &[STOP, "rec-shadow"],
            &[
                "plugin",
                "create",
                "rec-shadow",
                "{tmp}/rec-shadow-managed.bundle",
            ],
            &["plugin", "enable", "rec-shadow"],
            &["volume", "create", "-d", "rec-shadow", "v1"],
            &["volume", "ls"],
            &["run", "--rm", "-v", "v1:/data", IMAGE, "true"],
            &["volume", "ls"],
            &["volume", "create", "-d", "rec-shadow:latest", "v2"],
        ],
        failing: &[3],
        tls: false,
    },
    Action {
        name: "plugin_propagated_mount",
        description: "a managed plugin that bind-mounts each volume under its propagated \
                      mount on Mount (like FUSE or NFS): the container and the host see the \
                      content through the propagated mount; Unmount and disable unmount it",
        plugins: &[managed_in(
            "rec-p",
            Container {
                capabilities: &["CAP_SYS_ADMIN"],
                store: true,
                ..RECORDER
            },
        )],
        bundles: &[],
        image: true,
        setup: &[
            &["plugin", "create", "rec-p", "{tmp}/rec-p.bundle"],
            &["plugin", "enable", "rec-p"],
            &["volume", "create", "-d", "rec-p", "v1"],
        ],
        commands: &[
            &[
                "run", "-d", "--name", "c1", "-v", "v1:/data", IMAGE, "sleep", "60",
            ],
            &["exec", "c1", "cat", "/data/created-by-recorder"],
            &[HOST_FILES, "rec-p"],
            &["stop", "-t", "1", "c1"],
            &[HOST_FILES, "rec-p"],
            &["start", "c1"],
            &[HOST_FILES, "rec-p"],
            &["plugin", "disable", "-f", "rec-p"],
            &[HOST_FILES, "rec-p"],
        ],
        failing: &[],
        tls: false,
    },
    Action {
        name: "plugin_enable_errors",
        description: "docker plugin enable of bundles with mounts and devices dockerd may \
                      not make: a mount without a source, a bind mount of an empty source \
                      (runc binds its bundle dir: it works), a mount of an unknown \
                      filesystem type, a device the host does not have",
        plugins: &[managed("rec-m")],
        bundles: &[
            ("no-source", BadBundle::NoMountSource),
            ("empty-source", BadBundle::EmptyMountSource),
            ("bad-fs", BadBundle::UnknownMountType),
            ("no-device", BadBundle::MissingDevice),
        ],
        image: false,
        setup: &[
            &["plugin", "create", "no-source", "{tmp}/no-source.bundle"],
            &[
                "plugin",
                "create",
                "empty-source",
                "{tmp}/empty-source.bundle",
            ],
            &["plugin", "create", "bad-fs", "{tmp}/bad-fs.bundle"],
            &["plugin", "create", "no-device", "{tmp}/no-device.bundle"],
        ],
        commands: &[
            &["plugin", "enable", "no-source"],
            &["plugin", "enable", "empty-source"],
            &["plugin", "enable", "bad-fs"],
            &["plugin", "enable", "no-device"],
            &["plugin", "ls", "--format", "{{.Name}} {{.Enabled}}"],
        ],
        failing: &[0, 2, 3],
        tls: false,
    },
    Action {
        name: "network_create",
        description: "docker network create -d P with dockerd's default IPAM: without \
                      options, then with --subnet, --gateway, --ip-range, --aux-address, \
                      --internal and -o; docker network rm of each",
        plugins: &[net_plugin("rec-net")],
        bundles: &[],
        image: false,
        setup: &[],
        commands: &[
            &["network", "create", "-d", "rec-net", "n1"],
            &[
                "network",
                "create",
                "-d",
                "rec-net",
                "--subnet",
                "10.202.0.0/24",
                "--gateway",
                "10.202.0.254",
                "--ip-range",
                "10.202.0.128/25",
                "--aux-address",
                "host1=10.202.0.10",
                "--internal",
                "-o",
                "mtu=1400",
                "-o",
                "x=y",
                "n2",
            ],
            &["network", "create", "-d", "rec-net", "n1"],
            &["network", "rm", "n1"],
            &["network", "rm", "n2"],
        ],
        failing: &[2],
        tls: false,
    },
    Action {
        name: "network_create_ipam",
        description: "docker network create -d P --ipam-driver P: the IPAM driver's pool, \
                      gateway and aux addresses, then the network; docker network rm \
                      releases them",
        plugins: &[net_plugin("rec-net")],
        bundles: &[],
        image: false,
        setup: &[],
        commands: &[
            &[
                "network",
                "create",
                "-d",
                "rec-net",
                "--ipam-driver",
                "rec-net",
                "n1",
            ],
            &[
                "network",
                "create",
                "-d",
                "rec-net",
                "--ipam-driver",
                "rec-net",
                "--subnet",
                "10.203.0.0/24",
                "--gateway",
                "10.203.0.1",
                "--ip-range",
                "10.203.0.128/25",
                "--aux-address",
                "host1=10.203.0.10",
                "-o",
                "mtu=1400",
                "n2",
            ],
            &["network", "rm", "n1"],
            &["network", "rm", "n2"],
        ],
        failing: &[],
        tls: false,
    },
    Action {
        name: "network_run",
        description: "containers on a plugin network with the plugin's IPAM (which requires \
                      MAC addresses): docker run --rm, then one with --ip, stopped and \
                      removed; docker network rm refused while it is connected, then done \
                      (`--mac-address`: see network_run_mac)",
        plugins: &[net_plugin("rec-net")],
        bundles: &[],
        image: true,
        setup: &[&[
            "network",
            "create",
            "-d",
            "rec-net",
            "--ipam-driver",
            "rec-net",
            "--subnet",
            "10.204.0.0/24",
            "n1",
        ]],
        commands: &[
            &["run", "--rm", "--network", "n1", IMAGE, "true"],
            &[
                "run",
                "-d",
                "--name",
                "c1",
                "--network",
                "n1",
                "--ip",
                "10.204.0.50",
                IMAGE,
                "sleep",
                "60",
            ],
            &["network", "rm", "n1"],
            &["stop", "-t", "1", "c1"],
            &["rm", "c1"],
            &["network", "rm", "n1"],
        ],
        failing: &[2],
        tls: false,
    },
    Action {
        name: "network_run_mac",
        description: "a container with a MAC address on a plugin network with the plugin's \
                      IPAM: created through the API (POST /v1.41/containers/create with \
                      MacAddress; docker CLI 28 sends --mac-address per network, which needs \
                      API 1.44), started, stopped and removed",
        plugins: &[net_plugin("rec-net")],
        bundles: &[],
        image: true,
        setup: &[&[
            "network",
            "create",
            "-d",
            "rec-net",
            "--ipam-driver",
            "rec-net",
            "--subnet",
            "10.206.0.0/24",
            "n1",
        ]],
        commands: &[
            &[CREATE_MAC, "c1", "n1", "02:42:0a:ce:00:99"],
            &["start", "c1"],
            &["stop", "-t", "1", "c1"],
            &["rm", "c1"],
            &["network", "rm", "n1"],
        ],
        failing: &[],
        tls: false,
    },
    Action {
        name: "network_run_default_ipam",
        description: "a container on a plugin network with dockerd's default IPAM and \
                      --subnet: docker run --rm, then one with --ip, stopped and removed",
        plugins: &[net_plugin("rec-net")],
        bundles: &[],
        image: true,
        setup: &[&[
            "network",
            "create",
            "-d",
            "rec-net",
            "--subnet",
            "10.205.0.0/24",
            "n1",
        ]],
        commands: &[
            &["run", "--rm", "--network", "n1", IMAGE, "true"],
            &[
                "run",
                "-d",
                "--name",
                "c1",
                "--network",
                "n1",
                "--ip",
                "10.205.0.50",
                IMAGE,
                "sleep",
                "60",
            ],
            &["stop", "-t", "1", "c1"],
            &["rm", "c1"],
            &["network", "rm", "n1"],
        ],
        failing: &[],
        tls: false,
    },
    Action {
        name: "authz_calls",
        description: "dockerd --authorization-plugin=rec-authz (the recorder allows every API \
                      call but those marked rec-authz-deny): each call goes AuthZReq, then \
                      AuthZRes; docker volume ls; a volume create (its JSON body); HEAD /_ping \
                      (curl); a docker create whose body is over 1 MiB (an --env-file); a \
                      chunked JSON body (curl; the CLI sends JSON with a length); a denied \
                      volume create",
        plugins: &[authz_plugin("rec-authz")],
        bundles: &[],
        image: true,
        setup: &[&[WRITE_ENV_FILE, "{tmp}/big.env", "1100000"]],
        commands: &[
            &["volume", "ls"],
            &["volume", "create", "--label", "a=b", "v1"],
            &[CURL, "-sS", "-I", "http://localhost/_ping"],
            &[
                "create",
                "--name",
                "big",
                "--env-file",
                "{tmp}/big.env",
                IMAGE,
                "true",
            ],
            &[
                CURL,
                "-sS",
                // The status only: the volume's CreatedAt changes from run to run.
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "-H",
                "Transfer-Encoding: chunked",
                "--data-binary",
                r#"{"Name":"chunked"}"#,
                "http://localhost/v1.41/volumes/create",
            ],
            &["volume", "create", "rec-authz-deny-x"],
        ],
        failing: &[5],
        tls: false,
    },
    Action {
        name: "authz_tls",
        description: "dockerd --authorization-plugin=rec-authz --tlsverify on a loopback \
                      port: docker volume ls over TLS with a client certificate whose subject \
                      has two common names (CN=team,O=example,CN=alice: dockerd sends the \
                      last as User), then without TLS on the private socket",
        plugins: &[authz_plugin("rec-authz")],
        bundles: &[],
        image: false,
        setup: &[],
        commands: &[&[TLS_DOCKER, "volume", "ls"], &["volume", "ls"]],
        failing: &[],
        tls: true,
    },
];

/// `docker plugin create rec-m <bundle>` and `docker plugin enable rec-m`.
pub(crate) const CREATE_M: &[&str] = &["plugin", "create", "rec-m", "{tmp}/rec-m.bundle"];
pub(crate) const ENABLE_M: &[&str] = &["plugin", "enable", "rec-m"];
