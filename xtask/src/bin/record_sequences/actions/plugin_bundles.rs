//! What managed ("v2") plugins' bundles make dockerd do: broken bundles' create and
//! enable errors, the container a config.json asks for, references to a plugin,
//! `docker plugin upgrade`, a legacy plugin of the same name, a propagated mount.

use super::*;

pub(super) const ACTIONS: &[Action] = &[
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
];
