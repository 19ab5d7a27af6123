//! The user actions recorded, each with its plugins, setup and commands (docker CLI
//! arguments or pseudo-commands), and which commands are expected to fail.

use crate::{HOST_FILES, IMAGE, KILL, RESTART};

pub(crate) struct PluginSpec {
    pub(crate) name: &'static str,
    pub(crate) capabilities: bool,
    pub(crate) bare_get: bool,
    /// A managed ("v2") plugin: a bundle at `{tmp}/NAME.bundle` that the action's
    /// commands `docker plugin create` and enable, instead of a process on a socket.
    pub(crate) managed: bool,
}

pub(crate) const fn plugin(name: &'static str) -> PluginSpec {
    PluginSpec {
        name,
        capabilities: true,
        bare_get: false,
        managed: false,
    }
}

pub(crate) const fn managed(name: &'static str) -> PluginSpec {
    PluginSpec {
        name,
        capabilities: true,
        bare_get: false,
        managed: true,
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
    /// The action: docker CLI arguments (`{tmp}` is a temp dir), or a pseudo-command:
    /// `[RESTART, plugin]`, `[KILL, plugin]`, `[HOST_FILES, plugin]`.
    pub(crate) commands: &'static [&'static [&'static str]],
    /// Which commands are expected to fail (indexes into `commands`).
    pub(crate) failing: &'static [usize],
}

pub(crate) const ACTIONS: &[Action] = &[
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
    },
    Action {
        name: "volume_create_no_capabilities",
        description: "the same two creates on a plugin that does not implement Capabilities \
                      (the SDK answers 404)",
        plugins: &[PluginSpec {
            name: "rec-nocaps",
            capabilities: false,
            bare_get: false,
            managed: false,
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
    },
    Action {
        name: "bare_get",
        description: "inspect, ls and a container when Get and List answer without a \
                      Mountpoint: does dockerd ask VolumeDriver.Path?",
        plugins: &[PluginSpec {
            name: "rec-bare",
            capabilities: true,
            bare_get: true,
            managed: false,
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
    },
];

/// `docker plugin create rec-m <bundle>` and `docker plugin enable rec-m`.
pub(crate) const CREATE_M: &[&str] = &["plugin", "create", "rec-m", "{tmp}/rec-m.bundle"];
pub(crate) const ENABLE_M: &[&str] = &["plugin", "enable", "rec-m"];
