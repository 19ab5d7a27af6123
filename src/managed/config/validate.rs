//! The rules [`PluginConfig::validate`] checks, each with what dockerd does.

use std::collections::HashMap;
use std::fmt;

use super::set::{ARGS_FIELDS, DEVICE_FIELDS, ENV_FIELDS, MOUNT_FIELDS};
use super::{
    ConfigError, InterfaceType, KNOWN_INTERFACE_TYPES, PROTOCOL_SCHEME_HTTP_V1, PluginConfig,
    go_quote,
};

/// The directory dockerd binds into every managed plugin for its socket
/// (`defaultPluginRuntimeDestination` in moby's `plugin/v2/plugin.go`).
const PLUGIN_SOCKET_DIR: &str = "/run/docker/plugins";

/// The longest socket name dockerd can dial: it dials
/// `/run/docker/plugins/<64-hex id>/<socket>` (`pluginPostStart` in moby's
/// `plugin/manager_linux.go`; the exec root is fixed to `/run/docker/plugins` by
/// `getPluginExecRoot` in `daemon/daemon_unix.go` "because plugin socket files …
/// cannot exceed max path length of 108 bytes"), and Go refuses unix socket paths of
/// 108 bytes or more: 107 − 85 = 22.
pub const MAX_SOCKET_NAME_LEN: usize = 22;

/// The Linux capability names (`capabilities(7)`), each at its number (0 to 40):
/// the ones runc accepts.
pub(crate) const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Which rule a [`ConfigProblem`] breaks. Each says what dockerd does with such a
/// config, and where in moby that happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// `interface.types` is empty: no subsystem ever finds the plugin (lookups go by
    /// type, `FilterByCap` in moby's `plugin/v2/plugin.go`).
    NoInterfaceTypes,
    /// An interface type dockerd never looks up: the prefix is not `docker` or the
    /// capability not lower case (`FilterByCap` compares both exactly), the
    /// capability is not a subsystem's (see [`KNOWN_INTERFACE_TYPES`]), or the
    /// version is not `1.0` (dockerd ignores the version, but every plugin API is
    /// `1.0`, the only one Docker's `config.md` lists).
    InterfaceType,
    /// `interface.socket` is empty, not a plain file name, not a `.sock`, or too long
    /// to dial (see [`MAX_SOCKET_NAME_LEN`]). dockerd dials
    /// `/run/docker/plugins/<id>/<socket>` up to four times, then leaves the plugin
    /// disabled (`pluginPostStart` in moby's `plugin/manager_linux.go`). The `.sock`
    /// ending is this SDK's convention, not dockerd's.
    Socket,
    /// `interface.protocolScheme` is neither empty nor `moby.plugins.http/v1`, the
    /// only values of the Engine API's enum; dockerd creates no HTTP client for any
    /// other (`pluginPostStart`).
    ProtocolScheme,
    /// `entrypoint` is empty, or its first word is: there is no process to start
    /// (`InitSpec` in moby's `plugin/v2/plugin_linux.go` runs entrypoint + args).
    Entrypoint,
    /// `workDir` is not absolute; the OCI runtime requires an absolute cwd (`InitSpec`
    /// uses it as is, `/` when empty).
    WorkDir,
    /// `network.type` is not `host`, empty, `bridge`, `none` or `null`. Only `host`
    /// changes anything (`InitSpec`); `none` is listed as a privilege at install
    /// (`computePrivileges` skips only `""`, `bridge` and `null`).
    NetworkType,
    /// A `linux.capabilities` entry is not a Linux capability name in runc's
    /// spelling (`CAP_SYS_ADMIN`); `InitSpec` passes them to runc unchanged.
    Capability,
    /// `propagatedMount` is not a clean absolute path below `/`, is inside
    /// `/run/docker/plugins`, or a mount covers it. dockerd bind-mounts the host's
    /// `propagated-mount` directory there before the config's mounts (`InitSpec`),
    /// and maps volume mountpoints under it by string prefix (`ScopedPath` in moby's
    /// `plugin/v2/plugin.go`).
    PropagatedMount,
    /// A mount's `source` is absent (dockerd refuses to enable the plugin: "mount
    /// source is not specified", `InitSpec`), empty without being settable, or a
    /// relative path for a bind mount.
    MountSource,
    /// A mount's `destination` is not an absolute path.
    MountDestination,
    /// A device's `path` is absent (dockerd dereferences it when enabling:
    /// `*dev.Path` in `InitSpec`), empty without being settable, or not absolute.
    DevicePath,
    /// An env entry's `name` is empty or contains `=`.
    EnvName,
    /// A `settable` entry names a field that cannot be set for its kind (env and
    /// args: `value`; mounts: `source`; devices: `path`; compared case-sensitively),
    /// or is listed twice, which makes `docker plugin set NAME=…` fail with
    /// "multiple fields are settable" (`allowedSettableFields*` and `isSettable` in
    /// moby's `plugin/v2/settable.go`).
    Settable,
    /// An entry with `settable` fields has a name `docker plugin set` cannot address:
    /// empty, or containing `=` (`newSettable` splits at the first `=`).
    SettingName,
    /// A settable entry has the name of an earlier entry, so `docker plugin set`
    /// always reaches the earlier one (`Plugin.Set` searches env, mounts, devices,
    /// then args, and stops at the first name that matches).
    ShadowedSetting,
    /// A warning, not an error (see [`PluginConfig::warnings`]): a volume driver with
    /// neither `propagatedMount` nor a mount keeps its volumes in its rootfs, which
    /// `docker plugin upgrade` replaces (moby `upgradePlugin` in
    /// `plugin/manager_linux.go`): every volume's data is lost on upgrade.
    StateInRootfs,
}

/// One problem [`PluginConfig::validate`] found: the field, the rule, and a message
/// that says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The field as written in `config.json`, e.g. `interface.types[0]`.
    pub field: String,
    /// The rule it breaks.
    pub rule: Rule,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    /// `field: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The fields `docker plugin set` may change for one kind of entry.
type Allowed = &'static [&'static str];

#[derive(Default)]
struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn add(&mut self, field: impl Into<String>, rule: Rule, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            field: field.into(),
            rule,
            message: message.into(),
        });
    }
}

impl PluginConfig {
    /// Checks the config against every [`Rule`], reporting all problems at once
    /// (as [`ConfigError::Invalid`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid { problems })
        }
    }

    /// What the config allows but will likely hurt the plugin's users: for now, a
    /// volume driver with neither `propagatedMount` nor a mount, whose volumes live in
    /// the rootfs that `docker plugin upgrade` replaces ([`Rule::StateInRootfs`]).
    /// [`validate`](Self::validate) does not fail on them; the packager prints them.
    ///
    /// ```
    /// use docker_plugin_sdk::managed::config::PluginConfig;
    ///
    /// let config = PluginConfig::from_json(br#"{
    ///     "entrypoint": ["/myplugin"],
    ///     "interface": {"socket": "my.sock", "types": ["docker.volumedriver/1.0"]}
    /// }"#)?;
    /// assert_eq!(
    ///     config.warnings()[0].to_string(),
    ///     "propagatedMount: is empty and there are no mounts: the volumes this driver \
    ///      keeps in its rootfs are lost on `docker plugin upgrade`, which replaces the \
    ///      rootfs; keep them under a propagatedMount such as \"/mnt/volumes\" (or in a \
    ///      mount)"
    /// );
    /// # Ok::<(), docker_plugin_sdk::managed::config::ConfigError>(())
    /// ```
    pub fn warnings(&self) -> Vec<ConfigProblem> {
        let mut p = Problems::default();
        let volume_driver = self
            .interface
            .types
            .iter()
            .any(|t| t.capability == "volumedriver");
        if volume_driver && self.propagated_mount.is_empty() && self.mounts.is_empty() {
            p.add(
                "propagatedMount",
                Rule::StateInRootfs,
                "is empty and there are no mounts: the volumes this driver keeps in its \
                 rootfs are lost on `docker plugin upgrade`, which replaces the rootfs; keep \
                 them under a propagatedMount such as \"/mnt/volumes\" (or in a mount)",
            );
        }
        p.0
    }

    /// Every problem [`validate`](Self::validate) would report, in field order;
    /// empty when the config is fine.
    pub fn problems(&self) -> Vec<ConfigProblem> {
        let mut p = Problems::default();
        self.check_interface(&mut p);
        self.check_process(&mut p);
        self.check_linux(&mut p);
        self.check_propagated_mount(&mut p);
        self.check_mounts(&mut p);
        self.check_env(&mut p);
        self.check_settings(&mut p);
        p.0
    }

    fn check_interface(&self, p: &mut Problems) {
        if self.interface.types.is_empty() {
            p.add(
                "interface.types",
                Rule::NoInterfaceTypes,
                "is empty; list what the plugin implements, e.g. [\"docker.volumedriver/1.0\"]",
            );
        }
        for (i, t) in self.interface.types.iter().enumerate() {
            if let Some(message) = interface_type_problem(t) {
                p.add(
                    format!("interface.types[{i}]"),
                    Rule::InterfaceType,
                    message,
                );
            }
        }

        let socket = &self.interface.socket;
        let field = "interface.socket";
        if socket.is_empty() {
            p.add(
                field,
                Rule::Socket,
                "is empty; name the unix socket the plugin listens on in /run/docker/plugins, \
                 e.g. \"myplugin.sock\"",
            );
        } else {
            if socket.contains('/') || socket == "." || socket == ".." {
                p.add(
                    field,
                    Rule::Socket,
                    format!(
                        "{} must be a plain file name, e.g. \"myplugin.sock\": the plugin listens \
                         on /run/docker/plugins/<socket> and dockerd dials \
                         /run/docker/plugins/<plugin id>/<socket>",
                        go_quote(socket)
                    ),
                );
            }
            if !socket.ends_with(".sock") || socket == ".sock" {
                p.add(
                    field,
                    Rule::Socket,
                    format!(
                        "{} should be a file name ending in .sock, e.g. \"myplugin.sock\"",
                        go_quote(socket)
                    ),
                );
            }
            if socket.len() > MAX_SOCKET_NAME_LEN {
                p.add(
                    field,
                    Rule::Socket,
                    format!(
                        "{} is {} bytes; dockerd dials /run/docker/plugins/<64-hex plugin id>/<socket>, \
                         and a unix socket path must be shorter than 108 bytes, so use at most \
                         {MAX_SOCKET_NAME_LEN}",
                        go_quote(socket),
                        socket.len()
                    ),
                );
            }
        }

        let scheme = &self.interface.protocol_scheme;
        if !scheme.is_empty() && scheme != PROTOCOL_SCHEME_HTTP_V1 {
            p.add(
                "interface.protocolScheme",
                Rule::ProtocolScheme,
                format!(
                    "{} is not a protocol dockerd speaks to plugins; leave it empty or use \
                     \"{PROTOCOL_SCHEME_HTTP_V1}\"",
                    go_quote(scheme)
                ),
            );
        }
    }

    fn check_process(&self, p: &mut Problems) {
        match self.entrypoint.first() {
            None => p.add(
                "entrypoint",
                Rule::Entrypoint,
                "is empty; give the command that starts the plugin, e.g. [\"/usr/bin/myplugin\"]",
            ),
            Some(first) if first.is_empty() => p.add(
                "entrypoint[0]",
                Rule::Entrypoint,
                "is empty; it must be the program to run, e.g. \"/usr/bin/myplugin\"",
            ),
            Some(_) => {}
        }
        if !self.work_dir.is_empty() && !self.work_dir.starts_with('/') {
            p.add(
                "workDir",
                Rule::WorkDir,
                format!(
                    "{} must be an absolute path inside the plugin, e.g. \"/{}\" (empty means /)",
                    go_quote(&self.work_dir),
                    self.work_dir.trim_start_matches("./")
                ),
            );
        }
        let net = self.network.r#type.as_str();
        if !matches!(net, "" | "host" | "bridge" | "none" | "null") {
            p.add(
                "network.type",
                Rule::NetworkType,
                format!(
                    "{} is not a network type; use \"host\" for the host's network, or leave it \
                     empty for a private network namespace",
                    go_quote(net)
                ),
            );
        }
    }

    fn check_linux(&self, p: &mut Problems) {
        for (i, cap) in self.linux.capabilities.iter().enumerate() {
            if CAPABILITIES.contains(&cap.as_str()) {
                continue;
            }
            let upper = cap.to_ascii_uppercase();
            let fixed = if upper.starts_with("CAP_") {
                upper
            } else {
                format!("CAP_{upper}")
            };
            let message = if CAPABILITIES.contains(&fixed.as_str()) {
                format!(
                    "{} is not a capability name; write {}",
                    go_quote(cap),
                    go_quote(&fixed)
                )
            } else {
                format!(
                    "{} is not a Linux capability; use a name from capabilities(7) in the form \
                     \"CAP_SYS_ADMIN\"",
                    go_quote(cap)
                )
            };
            p.add(
                format!("linux.capabilities[{i}]"),
                Rule::Capability,
                message,
            );
        }
        for (i, device) in self.linux.devices.iter().enumerate() {
            let field = format!("linux.devices[{i}].path");
            match device.path.as_deref() {
                None => p.add(
                    field,
                    Rule::DevicePath,
                    "is missing, and dockerd cannot enable a plugin with a device without a path; \
                     give the host device, e.g. \"/dev/fuse\"",
                ),
                Some("") if !device.settable.iter().any(|s| s == "path") => p.add(
                    field,
                    Rule::DevicePath,
                    format!(
                        "is empty and not settable; give the host device, e.g. \"/dev/fuse\", or add \
                         \"path\" to linux.devices[{i}].settable for the user to set"
                    ),
                ),
                Some(path) if !path.is_empty() && !path.starts_with('/') => p.add(
                    field,
                    Rule::DevicePath,
                    format!("{} must be an absolute path to a host device, e.g. \"/dev/fuse\"", go_quote(path)),
                ),
                Some(_) => {}
            }
        }
    }

    fn check_propagated_mount(&self, p: &mut Problems) {
        let pm = self.propagated_mount.as_str();
        if pm.is_empty() {
            return;
        }
        let field = "propagatedMount";
        if !pm.starts_with('/') {
            p.add(
                field,
                Rule::PropagatedMount,
                format!(
                    "{} must be an absolute path inside the plugin, e.g. \"/{}\"",
                    go_quote(pm),
                    pm.trim_start_matches("./")
                ),
            );
            return;
        }
        if pm == "/" {
            p.add(
                field,
                Rule::PropagatedMount,
                "must not be /: dockerd mounts a host directory there, which would hide the plugin's \
                 rootfs; use a directory such as \"/mnt/volumes\"",
            );
            return;
        }
        let clean = clean_path(pm);
        if clean != pm {
            p.add(
                field,
                Rule::PropagatedMount,
                format!(
                    "{} must be a clean path ({}): dockerd recognises mountpoints under it by \
                     string prefix",
                    go_quote(pm),
                    go_quote(&clean)
                ),
            );
        }
        if is_under(&clean, PLUGIN_SOCKET_DIR) {
            p.add(
                field,
                Rule::PropagatedMount,
                format!(
                    "{} must not be inside {PLUGIN_SOCKET_DIR}, where dockerd mounts the plugin's \
                     socket directory; use a directory such as \"/mnt/volumes\"",
                    go_quote(pm)
                ),
            );
        }
        for (i, mount) in self.mounts.iter().enumerate() {
            let dest = clean_path(&mount.destination);
            if mount.destination.starts_with('/') && is_under(&clean, &dest) {
                p.add(
                    format!("mounts[{i}].destination"),
                    Rule::PropagatedMount,
                    format!(
                        "{} covers propagatedMount {}: dockerd mounts it after the propagated \
                         mount, hiding the plugin's volumes from the host; mount it elsewhere",
                        go_quote(&mount.destination),
                        go_quote(pm)
                    ),
                );
            }
        }
    }

    fn check_mounts(&self, p: &mut Problems) {
        for (i, mount) in self.mounts.iter().enumerate() {
            let field = format!("mounts[{i}].source");
            let settable = mount.settable.iter().any(|s| s == "source");
            let bind =
                mount.r#type == "bind" || mount.options.iter().any(|o| o == "bind" || o == "rbind");
            match mount.source.as_deref() {
                None => p.add(
                    field,
                    Rule::MountSource,
                    format!(
                        "is missing, and dockerd refuses to enable the plugin (\"mount source is not \
                         specified\"); give a host path, or \"\" with \"source\" in \
                         mounts[{i}].settable for the user to set"
                    ),
                ),
                Some("") if !settable => p.add(
                    field,
                    Rule::MountSource,
                    format!(
                        "is empty and not settable; give a host path, or add \"source\" to \
                         mounts[{i}].settable for the user to set"
                    ),
                ),
                Some(source) if bind && !source.is_empty() && !source.starts_with('/') => p.add(
                    field,
                    Rule::MountSource,
                    format!("{} must be an absolute host path for a bind mount", go_quote(source)),
                ),
                Some(_) => {}
            }
            if !mount.destination.starts_with('/') {
                p.add(
                    format!("mounts[{i}].destination"),
                    Rule::MountDestination,
                    format!(
                        "{} must be an absolute path inside the plugin, e.g. \"/mnt/state\"",
                        go_quote(&mount.destination)
                    ),
                );
            }
        }
    }

    fn check_env(&self, p: &mut Problems) {
        for (i, env) in self.env.iter().enumerate() {
            let field = format!("env[{i}].name");
            if env.name.is_empty() {
                p.add(
                    field,
                    Rule::EnvName,
                    "is empty; give the variable's name, e.g. \"DEBUG\"",
                );
            } else if env.name.contains('=') {
                p.add(
                    field,
                    Rule::EnvName,
                    format!("{} must not contain '='", go_quote(&env.name)),
                );
            }
        }
    }

    /// The `settable` rules, over every entry in the order `docker plugin set`
    /// searches them.
    fn check_settings(&self, p: &mut Problems) {
        // (field, name, settable, allowed fields, what it is)
        let mut entries: Vec<(String, &str, &[String], Allowed, &str)> = Vec::new();
        for (i, e) in self.env.iter().enumerate() {
            entries.push((
                format!("env[{i}]"),
                &e.name,
                &e.settable,
                ENV_FIELDS,
                "an env entry",
            ));
        }
        for (i, m) in self.mounts.iter().enumerate() {
            entries.push((
                format!("mounts[{i}]"),
                &m.name,
                &m.settable,
                MOUNT_FIELDS,
                "a mount",
            ));
        }
        for (i, d) in self.linux.devices.iter().enumerate() {
            entries.push((
                format!("linux.devices[{i}]"),
                &d.name,
                &d.settable,
                DEVICE_FIELDS,
                "a device",
            ));
        }
        entries.push((
            "args".to_owned(),
            &self.args.name,
            &self.args.settable,
            ARGS_FIELDS,
            "args",
        ));

        let mut first_with_name: HashMap<&str, &str> = HashMap::new();
        for (entry, name, settable, allowed, kind) in &entries {
            for (j, field) in settable.iter().enumerate() {
                if !allowed.contains(&field.as_str()) {
                    p.add(
                        format!("{entry}.settable[{j}]"),
                        Rule::Settable,
                        format!(
                            "{} cannot be settable; the only settable field of {kind} is \"{}\" \
                             (lower case)",
                            go_quote(field),
                            allowed[0]
                        ),
                    );
                } else if settable[..j].contains(field) {
                    p.add(
                        format!("{entry}.settable"),
                        Rule::Settable,
                        format!(
                            "lists {} twice, so `docker plugin set {}=…` fails with \"multiple \
                             fields are settable, one must be specified\"; list it once",
                            go_quote(field),
                            if name.is_empty() { "NAME" } else { name }
                        ),
                    );
                }
            }

            if !settable.is_empty() {
                if name.is_empty() {
                    p.add(
                        format!("{entry}.name"),
                        Rule::SettingName,
                        format!(
                            "is empty, but {entry}.settable is not; `docker plugin set` finds \
                             settings by name, so give it one"
                        ),
                    );
                } else if name.contains('=') && *kind != "an env entry" {
                    p.add(
                        format!("{entry}.name"),
                        Rule::SettingName,
                        format!(
                            "{} contains '='; `docker plugin set` splits NAME=VALUE at the first \
                             '=', so this entry can never be set",
                            go_quote(name)
                        ),
                    );
                }
                if let Some(earlier) = first_with_name.get(name).filter(|_| !name.is_empty()) {
                    p.add(
                        format!("{entry}.name"),
                        Rule::ShadowedSetting,
                        format!(
                            "{} is also the name of {earlier}; `docker plugin set {name}=…` always \
                             changes {earlier} (dockerd searches env, mounts, devices, then args), so \
                             {entry} can never be set; rename one",
                            go_quote(name)
                        ),
                    );
                }
            }
            first_with_name.entry(name).or_insert(entry);
        }
    }
}

/// Why `t` is not a type dockerd looks up, or `None` when it is one.
fn interface_type_problem(t: &InterfaceType) -> Option<String> {
    if t.is_known() {
        return None;
    }
    let shown = go_quote(&t.to_string());
    let known = || KNOWN_INTERFACE_TYPES[..6].join(", ");
    let lower = t.capability.to_ascii_lowercase();
    let known_cap =
        |cap: &str| KNOWN_INTERFACE_TYPES.contains(&format!("docker.{cap}/1.0").as_str());
    Some(if t.prefix != "docker" {
        let hint = if known_cap(&lower) {
            format!("write \"docker.{lower}/1.0\"")
        } else {
            format!("use {}", known())
        };
        format!(
            "{shown} does not start with \"docker.\"; dockerd only uses types docker.<capability>/<version>: {hint}"
        )
    } else if t.capability == "graphdriver" {
        format!(
            "{shown}: graph driver plugins are no longer supported by dockerd (removed in Docker 28)"
        )
    } else if lower != t.capability && known_cap(&lower) {
        format!(
            "{shown}: the capability must be lower case, \"docker.{lower}/1.0\"; dockerd compares it \
             exactly"
        )
    } else if known_cap(&t.capability) {
        format!(
            "{shown}: the version must be 1.0, \"docker.{}/1.0\"",
            t.capability
        )
    } else {
        format!(
            "{shown} is not a known plugin type; use {} (or, in swarm mode, docker.secretprovider/1.0, \
             docker.csicontroller/1.0, docker.csinode/1.0)",
            known()
        )
    })
}

/// `path` with repeated and trailing slashes and `.` / `..` components resolved, as
/// Go's `path.Clean` for an absolute path.
fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Whether the clean absolute path `path` is `dir` or inside it.
fn is_under(path: &str, dir: &str) -> bool {
    dir == "/"
        || path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}
