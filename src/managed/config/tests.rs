use super::*;

/// `config.json` of the vieux/sshfs plugin, the example of Docker's managed plugin
/// docs (github.com/vieux/docker-volume-sshfs, commit 0fc99c42), byte for byte.
const SSHFS: &str = r#"{
  "description": "sshFS plugin for Docker",
  "documentation": "https://docs.docker.com/engine/extend/plugins/",
  "entrypoint": [
    "/docker-volume-sshfs"
  ],
  "env": [
    {
      "name": "DEBUG",
      "settable": [
        "value"
      ],
      "value": "0"
    }
  ],
  "interface": {
    "socket": "sshfs.sock",
    "types": [
      "docker.volumedriver/1.0"
    ]
  },
  "linux": {
    "capabilities": [
      "CAP_SYS_ADMIN"
    ],
    "devices": [
      {
        "path": "/dev/fuse"
      }
    ]
  },
  "mounts": [
    {
      "destination": "/mnt/state",
      "options": [
        "rbind"
      ],
      "name": "state",
      "source": "/var/lib/docker/plugins/",
      "settable": [
        "source"
      ],
      "type": "bind"
    }
  ],
  "network": {
    "type": "host"
  },
  "propagatedmount": "/mnt/volumes"
}
"#;

/// The same config as `to_json_pretty` writes it: moby's keys, moby's field order.
const SSHFS_CANONICAL: &str = r#"{
  "Description": "sshFS plugin for Docker",
  "Documentation": "https://docs.docker.com/engine/extend/plugins/",
  "Interface": {
    "Types": [
      "docker.volumedriver/1.0"
    ],
    "Socket": "sshfs.sock"
  },
  "Entrypoint": [
    "/docker-volume-sshfs"
  ],
  "WorkDir": "",
  "User": {},
  "Network": {
    "Type": "host"
  },
  "Linux": {
    "Capabilities": [
      "CAP_SYS_ADMIN"
    ],
    "AllowAllDevices": false,
    "Devices": [
      {
        "Name": "",
        "Description": "",
        "Settable": [],
        "Path": "/dev/fuse"
      }
    ]
  },
  "PropagatedMount": "/mnt/volumes",
  "IpcHost": false,
  "PidHost": false,
  "Mounts": [
    {
      "Name": "state",
      "Description": "",
      "Settable": [
        "source"
      ],
      "Source": "/var/lib/docker/plugins/",
      "Destination": "/mnt/state",
      "Type": "bind",
      "Options": [
        "rbind"
      ]
    }
  ],
  "Env": [
    {
      "Name": "DEBUG",
      "Description": "",
      "Settable": [
        "value"
      ],
      "Value": "0"
    }
  ],
  "Args": {
    "Name": "",
    "Description": "",
    "Settable": [],
    "Value": []
  }
}"#;

/// The example config of Docker's `config.md` (tiborvass/sample-volume-plugin), as
/// dockerd prints it: capitalised keys, `null` slices, `"Workdir"` spelt differently
/// from moby's `WorkDir`.
const SAMPLE_FROM_DOCS: &str = r#"{
  "Args": {"Description": "", "Name": "", "Settable": null, "Value": null},
  "Description": "A sample volume plugin for Docker",
  "Documentation": "https://docs.docker.com/engine/extend/plugins/",
  "Entrypoint": ["/usr/bin/sample-volume-plugin", "/data"],
  "Env": [{"Description": "", "Name": "DEBUG", "Settable": ["value"], "Value": "0"}],
  "Interface": {"Socket": "plugin.sock", "Types": ["docker.volumedriver/1.0"]},
  "Linux": {"Capabilities": null, "AllowAllDevices": false, "Devices": null},
  "Mounts": null,
  "Network": {"Type": ""},
  "PropagatedMount": "/data",
  "User": {},
  "Workdir": ""
}"#;

fn sshfs() -> PluginConfig {
    PluginConfig::from_json(SSHFS.as_bytes()).unwrap()
}

/// A config with no problems, for the rule tests to break one thing at a time.
fn valid() -> PluginConfig {
    PluginConfig {
        description: "test plugin".into(),
        interface: Interface {
            types: vec![InterfaceType::docker("volumedriver")],
            socket: "test.sock".into(),
            protocol_scheme: String::new(),
        },
        entrypoint: vec!["/bin/test-plugin".into()],
        ..Default::default()
    }
}

fn messages(config: &PluginConfig) -> Vec<String> {
    config.problems().iter().map(ToString::to_string).collect()
}

/// Asserts `config` has exactly one problem, of `rule`, printed as `expected`.
#[track_caller]
fn assert_problem(config: &PluginConfig, rule: Rule, expected: &str) {
    let problems = config.problems();
    assert_eq!(messages(config), [expected]);
    assert_eq!(problems[0].rule, rule);
}

// ---- decoding and encoding ----

#[test]
fn sshfs_config_decodes_with_every_field() {
    let c = sshfs();
    assert_eq!(c.description, "sshFS plugin for Docker");
    assert_eq!(
        c.documentation,
        "https://docs.docker.com/engine/extend/plugins/"
    );
    assert_eq!(c.entrypoint, ["/docker-volume-sshfs"]);
    assert_eq!(
        c.interface.types,
        [InterfaceType::new("docker", "volumedriver", "1.0")]
    );
    assert_eq!(c.interface.socket, "sshfs.sock");
    assert_eq!(c.linux.capabilities, ["CAP_SYS_ADMIN"]);
    assert_eq!(c.linux.devices[0].path.as_deref(), Some("/dev/fuse"));
    assert_eq!(c.network.r#type, "host");
    // "propagatedmount", all lower case, is PropagatedMount, as in Go.
    assert_eq!(c.propagated_mount, "/mnt/volumes");
    let m = &c.mounts[0];
    assert_eq!(
        (
            m.name.as_str(),
            m.source.as_deref(),
            m.destination.as_str(),
            m.r#type.as_str()
        ),
        (
            "state",
            Some("/var/lib/docker/plugins/"),
            "/mnt/state",
            "bind"
        )
    );
    assert_eq!(
        (m.options.clone(), m.settable.clone()),
        (vec!["rbind".to_owned()], vec!["source".to_owned()])
    );
    assert_eq!(c.env[0].name, "DEBUG");
    assert_eq!(c.env[0].value.as_deref(), Some("0"));
    assert_eq!(c.env[0].settable, ["value"]);
    assert_eq!(c.args, Args::default());
    assert_eq!(c.rootfs, None);
    assert!(c.problems().is_empty(), "{:?}", c.problems());
}

#[test]
fn sshfs_config_encodes_with_mobys_keys_and_round_trips() {
    let c = sshfs();
    let out = c.to_json_pretty().unwrap();
    assert_eq!(out, SSHFS_CANONICAL);
    assert_eq!(PluginConfig::from_json(out.as_bytes()).unwrap(), c);
    // Through serde directly, too.
    let compact = serde_json::to_vec(&c).unwrap();
    assert_eq!(serde_json::from_slice::<PluginConfig>(&compact).unwrap(), c);
}

#[test]
fn docs_sample_with_nulls_and_other_spellings_decodes() {
    let c = PluginConfig::from_json(SAMPLE_FROM_DOCS.as_bytes()).unwrap();
    assert_eq!(c.entrypoint, ["/usr/bin/sample-volume-plugin", "/data"]);
    assert_eq!(c.args, Args::default());
    assert!(c.linux.capabilities.is_empty() && c.linux.devices.is_empty() && c.mounts.is_empty());
    assert_eq!(c.interface.socket, "plugin.sock");
    assert_eq!(c.propagated_mount, "/data");
    assert!(c.privileges().is_empty());
}

#[test]
fn rootfs_and_docker_version_round_trip_with_lower_case_rootfs_keys() {
    let json = br#"{"DockerVersion": "20.10.24", "rootfs": {"type": "layers", "diff_ids": ["sha256:abc"]},
                    "Interface": {"Types": ["docker.logdriver/1.0"], "Socket": "l.sock", "ProtocolScheme": "moby.plugins.http/v1"},
                    "User": {"UID": 1000, "gid": 10}}"#;
    let c = PluginConfig::from_json(json).unwrap();
    assert_eq!(c.docker_version, "20.10.24");
    assert_eq!(
        c.rootfs,
        Some(Rootfs {
            r#type: "layers".into(),
            diff_ids: vec!["sha256:abc".into()]
        })
    );
    assert_eq!(c.user, User { uid: 1000, gid: 10 });
    assert_eq!(c.interface.protocol_scheme, PROTOCOL_SCHEME_HTTP_V1);
    let v: serde_json::Value = serde_json::from_str(&c.to_json_pretty().unwrap()).unwrap();
    assert_eq!(
        v["rootfs"],
        serde_json::json!({"type": "layers", "diff_ids": ["sha256:abc"]})
    );
    assert_eq!(v["DockerVersion"], "20.10.24");
    assert_eq!(v["User"], serde_json::json!({"UID": 1000, "GID": 10}));
    assert_eq!(v["Interface"]["ProtocolScheme"], PROTOCOL_SCHEME_HTTP_V1);
    assert_eq!(PluginConfig::from_value(v).unwrap(), c);
}

#[test]
fn empty_optional_fields_are_omitted_or_null_as_in_moby() {
    let v = serde_json::to_value(PluginConfig::default()).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    // No DockerVersion, no rootfs, no ProtocolScheme, an empty User.
    assert!(!keys.contains(&"DockerVersion") && !keys.contains(&"rootfs"));
    assert_eq!(v["User"], serde_json::json!({}));
    assert_eq!(
        v["Interface"],
        serde_json::json!({"Types": [], "Socket": ""})
    );
    let mut c = PluginConfig::default();
    c.env.push(Env {
        name: "X".into(),
        ..Default::default()
    });
    c.mounts.push(Mount::default());
    c.linux.devices.push(Device::default());
    let v = serde_json::to_value(&c).unwrap();
    // Go *string fields: null when absent.
    assert!(v["Env"][0]["Value"].is_null() && v["Mounts"][0]["Source"].is_null());
    assert!(v["Linux"]["Devices"][0]["Path"].is_null());
}

#[test]
fn keys_match_case_insensitively_like_go() {
    let c = PluginConfig::from_json(
        br#"{"INTERFACE": {"SoCkEt": "a.sock", "types": ["docker.authz/1.0"]},
             "pidhost": true, "IPCHOST": true, "workdir": "/w",
             "linux": {"allowalldevices": true}}"#,
    )
    .unwrap();
    assert_eq!(c.interface.socket, "a.sock");
    assert!(c.pid_host && c.ipc_host && c.linux.allow_all_devices);
    assert_eq!(c.work_dir, "/w");
    // Go's case folding also maps U+212A (Kelvin sign) to k and U+017F (long s) to s.
    let c = PluginConfig::from_json(
        "{\"\u{17f}ocket\": 1, \"Interface\": {\"\u{17f}oc\u{212a}et\": \"x.sock\"}}".as_bytes(),
    )
    .unwrap();
    assert_eq!(c.interface.socket, "x.sock");
}

#[test]
fn unknown_keys_are_ignored_as_dockerd_ignores_them() {
    // The managed plugin docs put "capabilities" at the top level: dockerd ignores it.
    let c = PluginConfig::from_json(br#"{"capabilities": ["CAP_SYS_ADMIN"], "extra": {"a": 1}}"#)
        .unwrap();
    assert!(c.linux.capabilities.is_empty());
    assert!(c.privileges().is_empty());
}

#[test]
fn null_leaves_fields_at_their_defaults_and_duplicates_merge_like_go() {
    let c = PluginConfig::from_json(
        br#"{"description": "a", "Description": null, "network": null, "rootfs": null,
             "entrypoint": null, "env": [null, {"name": "A", "value": null}],
             "interface": {"socket": "s.sock"}, "Interface": {"types": ["docker.ipamdriver/1.0"]},
             "linux": {"capabilities": ["CAP_NET_ADMIN"]}, "Linux": {"capabilities": ["CAP_SYS_ADMIN"]}}"#,
    )
    .unwrap();
    assert_eq!(c.description, "a");
    assert_eq!(c.rootfs, None);
    assert!(c.entrypoint.is_empty());
    assert_eq!(
        c.env,
        [
            Env::default(),
            Env {
                name: "A".into(),
                ..Default::default()
            }
        ]
    );
    // Two objects for one field merge; two arrays: the later wins.
    assert_eq!(c.interface.socket, "s.sock");
    assert_eq!(c.interface.types, [InterfaceType::docker("ipamdriver")]);
    assert_eq!(c.linux.capabilities, ["CAP_SYS_ADMIN"]);
}

#[test]
fn fields_missing_from_config_json_get_gos_zero_values() {
    // A mount without a destination and an env without a name decode as in dockerd
    // (the packager's TOML requires both; config.json does not).
    let c = PluginConfig::from_json(
        br#"{"mounts": [{"source": "/src"}], "env": [{"value": "1"}], "rootfs": {}}"#,
    )
    .unwrap();
    assert_eq!(
        c.mounts,
        [Mount {
            source: Some("/src".into()),
            ..Default::default()
        }]
    );
    assert_eq!(
        c.env,
        [Env {
            value: Some("1".into()),
            ..Default::default()
        }]
    );
    assert_eq!(c.rootfs, Some(Rootfs::default()));
}

#[test]
fn values_of_the_wrong_type_are_errors_naming_the_field() {
    let err = |json: &str| {
        PluginConfig::from_json(json.as_bytes())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err(r#"{"linux": {"capabilities": "CAP_SYS_ADMIN"}}"#),
        r#"config.json: linux.capabilities: expected an array of strings, found the string "CAP_SYS_ADMIN""#
    );
    assert_eq!(
        err(r#"{"mounts": [{"source": 1}]}"#),
        "config.json: mounts[0].source: expected a string or null, found the number 1"
    );
    assert_eq!(
        err(r#"{"user": {"uid": -1}}"#),
        "config.json: user.uid: expected a whole number from 0 to 4294967295, found the number -1"
    );
    assert_eq!(
        err(r#"{"interface": {"types": [{"prefix": "docker"}]}}"#),
        "config.json: interface.types[0]: expected a string, found an object"
    );
    assert_eq!(
        err(r#"{"pidHost": "yes"}"#),
        r#"config.json: pidHost: expected true or false, found the string "yes""#
    );
    assert_eq!(
        err("[]"),
        "config.json: (top level): expected a JSON object, found an array"
    );
    assert!(err("{").starts_with("config.json: EOF while parsing an object at line 1 column 1"));
}

#[test]
fn interface_types_parse_as_dockerd_parses_them() {
    let t = |s: &str| InterfaceType::parse_lenient(s);
    assert_eq!(
        t("docker.volumedriver/1.0"),
        InterfaceType::new("docker", "volumedriver", "1.0")
    );
    assert_eq!(
        t("com.example.docker.volumedriver/1.0"),
        InterfaceType::new("com.example.docker", "volumedriver", "1.0")
    );
    assert_eq!(
        t("volumedriver"),
        InterfaceType::new("", "volumedriver", "")
    );
    assert_eq!(
        t("docker.volumedriver"),
        InterfaceType::new("docker", "volumedriver", "")
    );
    assert_eq!(
        t("docker.x/1.0/2"),
        InterfaceType::new("docker", "x", "1.0/2")
    );
    assert_eq!(t("a/b.c"), InterfaceType::new("", "a", "b.c"));
    assert_eq!(
        t("docker.volumedriver/1.0").to_string(),
        "docker.volumedriver/1.0"
    );
    assert!(t("docker.authz/1.0").is_known() && !t("docker.volume/1.0").is_known());
}

#[test]
fn interface_type_from_str_is_strict() {
    assert_eq!(
        "docker.netWORKdriver/1.0".parse::<InterfaceType>().unwrap(),
        InterfaceType::new("docker", "netWORKdriver", "1.0")
    );
    let err = |s: &str| s.parse::<InterfaceType>().unwrap_err().to_string();
    assert_eq!(
        err("docker.volumedriver"),
        r#"interface type "docker.volumedriver": missing "/<version>"; write <prefix>.<capability>/<version>, e.g. docker.volumedriver/1.0"#
    );
    assert!(err("volumedriver/1.0").contains(r#"missing "<prefix>." ("docker.")"#));
    assert!(err("docker./1.0").contains("missing the capability"));
    assert!(err("docker.x/").contains("missing the version"));
    assert!(err("docker.x/1/2").contains(r#"more than one "/""#));
}

#[test]
fn interface_types_that_cannot_round_trip_are_not_encoded() {
    let mut c = valid();
    c.interface.types = vec![InterfaceType::new("docker", "volume.driver", "1.0")];
    let err = c.to_json_pretty().unwrap_err().to_string();
    assert_eq!(
        err,
        r#"config.json: capability "volume.driver" cannot contain a dot"#
    );
    c.interface.types = vec![InterfaceType::new("dock/er", "volumedriver", "1.0")];
    assert!(
        c.to_json_pretty()
            .unwrap_err()
            .to_string()
            .contains("prefix \"dock/er\" cannot contain a slash")
    );
}

// ---- privileges ----

fn privilege(name: &str, description: &str, value: &[&str]) -> Privilege {
    Privilege {
        name: name.into(),
        description: description.into(),
        value: value.iter().map(|v| v.to_string()).collect(),
    }
}

#[test]
fn sshfs_privileges_are_what_docker_plugin_install_prints() {
    // `docker plugin install vieux/sshfs` prints exactly these four lines.
    let lines: Vec<String> = sshfs()
        .privileges()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        [
            "network: [host]",
            "mount: [/var/lib/docker/plugins/]",
            "device: [/dev/fuse]",
            "capabilities: [CAP_SYS_ADMIN]"
        ]
    );
}

#[test]
fn privileges_are_computed_in_mobys_order() {
    let mut c = valid();
    c.network.r#type = "host".into();
    c.ipc_host = true;
    c.pid_host = true;
    c.mounts = vec![
        Mount {
            name: "state".into(),
            source: Some("/var/lib/state".into()),
            destination: "/state".into(),
            ..Default::default()
        },
        // No source: not listed.
        Mount {
            destination: "/tmp".into(),
            r#type: "tmpfs".into(),
            ..Default::default()
        },
        // An empty source is listed (as "mount: []").
        Mount {
            name: "keys".into(),
            source: Some(String::new()),
            destination: "/keys".into(),
            settable: vec!["source".into()],
            ..Default::default()
        },
    ];
    c.linux.devices = vec![
        Device {
            path: Some("/dev/fuse".into()),
            ..Default::default()
        },
        Device::default(),
        Device {
            path: Some("/dev/kvm".into()),
            ..Default::default()
        },
    ];
    c.linux.allow_all_devices = true;
    c.linux.capabilities = vec!["CAP_SYS_ADMIN".into(), "CAP_NET_ADMIN".into()];
    assert_eq!(
        c.privileges(),
        [
            privilege("network", "permissions to access a network", &["host"]),
            privilege(
                "host ipc namespace",
                "allow access to host ipc namespace",
                &["true"]
            ),
            privilege(
                "host pid namespace",
                "allow access to host pid namespace",
                &["true"]
            ),
            privilege("mount", "host path to mount", &["/var/lib/state"]),
            privilege("mount", "host path to mount", &[""]),
            privilege("device", "host device to access", &["/dev/fuse"]),
            privilege("device", "host device to access", &["/dev/kvm"]),
            privilege(
                "allow-all-devices",
                "allow 'rwm' access to all devices",
                &["true"]
            ),
            privilege(
                "capabilities",
                "list of additional capabilities required",
                &["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]
            ),
        ]
    );
    assert_eq!(c.privileges()[4].to_string(), "mount: []");
    assert_eq!(
        c.privileges()[8].to_string(),
        "capabilities: [CAP_SYS_ADMIN CAP_NET_ADMIN]"
    );
}

#[test]
fn only_empty_bridge_and_null_networks_ask_no_network_privilege() {
    for (net, asked) in [
        ("", false),
        ("bridge", false),
        ("null", false),
        ("host", true),
        ("none", true),
    ] {
        let mut c = valid();
        c.network.r#type = net.into();
        assert_eq!(!c.privileges().is_empty(), asked, "network type {net:?}");
    }
}

#[test]
fn privileges_use_dockerd_json_keys() {
    let p = privilege("network", "permissions to access a network", &["host"]);
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(
        json,
        r#"{"Name":"network","Description":"permissions to access a network","Value":["host"]}"#
    );
    assert_eq!(serde_json::from_str::<Privilege>(&json).unwrap(), p);
    let no_value: Privilege =
        serde_json::from_str(r#"{"Name":"n","Description":"d","Value":null}"#).unwrap();
    assert!(no_value.value.is_empty());
}

// ---- set ----

#[test]
fn set_changes_env_args_mounts_and_devices() {
    let mut c = sshfs();
    c.args = Args {
        name: "args".into(),
        settable: vec!["value".into()],
        ..Default::default()
    };
    c.linux.devices[0].name = "fuse".into();
    c.linux.devices[0].settable = vec!["path".into()];
    c.set([
        "DEBUG=1",
        "state.source=/srv/state",
        "fuse=/dev/fuse2",
        "args=-v  --port 80",
    ])
    .unwrap();
    assert_eq!(c.env[0].value.as_deref(), Some("1"));
    assert_eq!(c.mounts[0].source.as_deref(), Some("/srv/state"));
    assert_eq!(c.linux.devices[0].path.as_deref(), Some("/dev/fuse2"));
    // Split at every space, as Go's strings.Split.
    assert_eq!(c.args.value, ["-v", "", "--port", "80"]);
    // An explicit field, a value with '=' and '.', and no value at all.
    c.set(["DEBUG.value=a=b.c"]).unwrap();
    assert_eq!(c.env[0].value.as_deref(), Some("a=b.c"));
    c.set(["DEBUG"]).unwrap();
    assert_eq!(c.env[0].value.as_deref(), Some(""));
    c.set(["args="]).unwrap();
    assert_eq!(c.args.value, [""]);
    c.set(Vec::<String>::new()).unwrap();
}

#[test]
fn set_gives_env_a_value_it_did_not_have() {
    let mut c = valid();
    c.env.push(Env {
        name: "TOKEN".into(),
        settable: vec!["value".into()],
        ..Default::default()
    });
    c.set(["TOKEN=x"]).unwrap();
    assert_eq!(c.env[0].value.as_deref(), Some("x"));
}

#[test]
fn set_refuses_with_dockerds_messages() {
    let err = |args: &[&str]| sshfs().set(args).unwrap_err().to_string();
    assert_eq!(
        err(&["=1"]),
        "invalid format, must be <name>[.<field>][=<value>]"
    );
    assert_eq!(
        err(&["PATH=/bin"]),
        r#"setting "PATH" not found in the plugin configuration"#
    );
    assert_eq!(err(&["DEBUG.name=x"]), r#""DEBUG.name" is not settable"#);
    assert_eq!(
        err(&["state.destination=/x"]),
        r#""state.destination" is not settable"#
    );
    assert_eq!(
        err(&["state.source.x=/y"]),
        r#"setting "state.source" not found in the plugin configuration"#
    );
    // A format error is found before anything is looked up.
    assert_eq!(
        err(&["PATH=/bin", "=1"]),
        "invalid format, must be <name>[.<field>][=<value>]"
    );

    let mut c = valid();
    c.env = vec![
        Env {
            name: "FIXED".into(),
            value: Some("1".into()),
            ..Default::default()
        },
        // A settable field dockerd does not allow: the field defaults to it, and the
        // message names it.
        Env {
            name: "CAPS".into(),
            settable: vec!["Value".into()],
            ..Default::default()
        },
        Env {
            name: "TWICE".into(),
            settable: vec!["value".into(), "value".into()],
            ..Default::default()
        },
    ];
    c.mounts = vec![Mount {
        name: "nosource".into(),
        settable: vec!["source".into()],
        destination: "/x".into(),
        ..Default::default()
    }];
    c.linux.devices = vec![Device {
        name: "nopath".into(),
        settable: vec!["path".into()],
        ..Default::default()
    }];
    let err = |args: &[&str]| c.clone().set(args).unwrap_err().to_string();
    assert_eq!(err(&["FIXED=2"]), r#""FIXED" is not settable"#);
    assert_eq!(err(&["CAPS=2"]), r#""CAPS.Value" is not settable"#);
    assert_eq!(
        err(&["TWICE=2"]),
        "multiple fields are settable, one must be specified"
    );
    c.clone().set(["TWICE.value=2"]).unwrap();
    assert_eq!(err(&["nosource=/x"]), "Plugin config has no mount source");
    assert_eq!(err(&["nopath=/dev/x"]), "Plugin config has no device path");
    assert_eq!(
        err(&["we\"ird=1"]),
        r#"setting "we\"ird" not found in the plugin configuration"#
    );
    assert!(
        matches!(c.clone().set(["x=1"]), Err(ConfigError::SettingNotFound { name }) if name == "x")
    );
}

#[test]
fn set_is_all_or_nothing() {
    let mut c = sshfs();
    let before = c.clone();
    assert!(c.set(["DEBUG=1", "state.source=/srv", "nope=1"]).is_err());
    assert_eq!(c, before);
}

#[test]
fn set_finds_env_before_mounts_devices_and_args() {
    let mut c = valid();
    c.env.push(Env {
        name: "x".into(),
        settable: vec!["value".into()],
        ..Default::default()
    });
    c.mounts.push(Mount {
        name: "x".into(),
        settable: vec!["source".into()],
        source: Some("/a".into()),
        destination: "/x".into(),
        ..Default::default()
    });
    c.set(["x=/b"]).unwrap();
    assert_eq!(c.env[0].value.as_deref(), Some("/b"));
    assert_eq!(c.mounts[0].source.as_deref(), Some("/a"));
    // Even a field only the mount has goes to the env entry, and is refused there.
    assert_eq!(
        c.set(["x.source=/b"]).unwrap_err().to_string(),
        r#""x.source" is not settable"#
    );
}

// ---- validation: one test per rule ----

#[test]
fn valid_configs_have_no_problems() {
    assert!(valid().validate().is_ok());
    assert!(sshfs().validate().is_ok());
    let mut c = valid();
    c.interface.types = KNOWN_INTERFACE_TYPES
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
    c.interface.protocol_scheme = PROTOCOL_SCHEME_HTTP_V1.into();
    c.work_dir = "/data".into();
    c.network.r#type = "none".into();
    assert!(c.validate().is_ok(), "{:?}", c.problems());
}

#[test]
fn rule_no_interface_types() {
    let mut c = valid();
    c.interface.types.clear();
    assert_problem(
        &c,
        Rule::NoInterfaceTypes,
        r#"interface.types: is empty; list what the plugin implements, e.g. ["docker.volumedriver/1.0"]"#,
    );
}

#[test]
fn rule_interface_type_unknown() {
    let mut c = valid();
    c.interface.types = vec!["docker.volume/1.0".parse().unwrap()];
    assert_problem(
        &c,
        Rule::InterfaceType,
        "interface.types[0]: \"docker.volume/1.0\" is not a known plugin type; use docker.volumedriver/1.0, \
         docker.networkdriver/1.0, docker.ipamdriver/1.0, docker.authz/1.0, docker.logdriver/1.0, \
         docker.metricscollector/1.0 (or, in swarm mode, docker.secretprovider/1.0, \
         docker.csicontroller/1.0, docker.csinode/1.0)",
    );
}

#[test]
fn rule_interface_type_prefix_case_version_and_graphdriver() {
    let mut c = valid();
    c.interface.types = [
        "volumedriver",
        "moby.volumedriver/1.0",
        "docker.VolumeDriver/1.0",
        "docker.authz/2.0",
        "docker.graphdriver/1.0",
    ]
    .iter()
    .map(|s| InterfaceType::parse_lenient(s))
    .collect();
    assert_eq!(
        messages(&c),
        [
            "interface.types[0]: \".volumedriver/\" does not start with \"docker.\"; dockerd only uses types \
             docker.<capability>/<version>: write \"docker.volumedriver/1.0\"",
            "interface.types[1]: \"moby.volumedriver/1.0\" does not start with \"docker.\"; dockerd only uses \
             types docker.<capability>/<version>: write \"docker.volumedriver/1.0\"",
            "interface.types[2]: \"docker.VolumeDriver/1.0\": the capability must be lower case, \
             \"docker.volumedriver/1.0\"; dockerd compares it exactly",
            "interface.types[3]: \"docker.authz/2.0\": the version must be 1.0, \"docker.authz/1.0\"",
            "interface.types[4]: \"docker.graphdriver/1.0\": graph driver plugins are no longer supported by \
             dockerd (removed in Docker 28)",
        ]
    );
    assert!(c.problems().iter().all(|p| p.rule == Rule::InterfaceType));
}

#[test]
fn rule_socket_empty() {
    let mut c = valid();
    c.interface.socket.clear();
    assert_problem(
        &c,
        Rule::Socket,
        "interface.socket: is empty; name the unix socket the plugin listens on in /run/docker/plugins, \
         e.g. \"myplugin.sock\"",
    );
}

#[test]
fn rule_socket_plain_file_name() {
    let mut c = valid();
    c.interface.socket = "/run/docker/plugins/t.sock".into();
    let problems = c.problems();
    assert_eq!(
        problems[0].to_string(),
        "interface.socket: \"/run/docker/plugins/t.sock\" must be a plain file name, e.g. \"myplugin.sock\": \
         the plugin listens on /run/docker/plugins/<socket> and dockerd dials \
         /run/docker/plugins/<plugin id>/<socket>"
    );
    assert_eq!(problems[0].rule, Rule::Socket);
}

#[test]
fn rule_socket_ends_in_sock() {
    let mut c = valid();
    c.interface.socket = "test".into();
    assert_problem(
        &c,
        Rule::Socket,
        "interface.socket: \"test\" should be a file name ending in .sock, e.g. \"myplugin.sock\"",
    );
}

#[test]
fn rule_socket_length() {
    let mut c = valid();
    c.interface.socket = "a-22-byte-socket-.sock".into();
    assert!(c.problems().is_empty());
    c.interface.socket = "a-23-byte-socket-x.sock".into();
    assert_problem(
        &c,
        Rule::Socket,
        "interface.socket: \"a-23-byte-socket-x.sock\" is 23 bytes; dockerd dials \
         /run/docker/plugins/<64-hex plugin id>/<socket>, and a unix socket path must be shorter than \
         108 bytes, so use at most 22",
    );
}

#[test]
fn rule_protocol_scheme() {
    let mut c = valid();
    c.interface.protocol_scheme = "grpc".into();
    assert_problem(
        &c,
        Rule::ProtocolScheme,
        "interface.protocolScheme: \"grpc\" is not a protocol dockerd speaks to plugins; leave it empty or \
         use \"moby.plugins.http/v1\"",
    );
}

#[test]
fn rule_entrypoint() {
    let mut c = valid();
    c.entrypoint.clear();
    assert_problem(
        &c,
        Rule::Entrypoint,
        "entrypoint: is empty; give the command that starts the plugin, e.g. [\"/usr/bin/myplugin\"]",
    );
    c.entrypoint = vec![String::new(), "--flag".into()];
    assert_problem(
        &c,
        Rule::Entrypoint,
        "entrypoint[0]: is empty; it must be the program to run, e.g. \"/usr/bin/myplugin\"",
    );
}

#[test]
fn rule_work_dir() {
    let mut c = valid();
    c.work_dir = "data".into();
    assert_problem(
        &c,
        Rule::WorkDir,
        "workDir: \"data\" must be an absolute path inside the plugin, e.g. \"/data\" (empty means /)",
    );
}

#[test]
fn rule_network_type() {
    let mut c = valid();
    c.network.r#type = "hosts".into();
    assert_problem(
        &c,
        Rule::NetworkType,
        "network.type: \"hosts\" is not a network type; use \"host\" for the host's network, or leave it \
         empty for a private network namespace",
    );
}

#[test]
fn rule_capability() {
    let mut c = valid();
    c.linux.capabilities = vec![
        "CAP_SYS_ADMIN".into(),
        "sys_admin".into(),
        "cap_net_admin".into(),
        "CAP_SUPERUSER".into(),
    ];
    assert_eq!(
        messages(&c),
        [
            "linux.capabilities[1]: \"sys_admin\" is not a capability name; write \"CAP_SYS_ADMIN\"",
            "linux.capabilities[2]: \"cap_net_admin\" is not a capability name; write \"CAP_NET_ADMIN\"",
            "linux.capabilities[3]: \"CAP_SUPERUSER\" is not a Linux capability; use a name from \
             capabilities(7) in the form \"CAP_SYS_ADMIN\"",
        ]
    );
    assert!(c.problems().iter().all(|p| p.rule == Rule::Capability));
}

#[test]
fn rule_propagated_mount_path() {
    let cases = [
        (
            "mnt/volumes",
            "propagatedMount: \"mnt/volumes\" must be an absolute path inside the plugin, e.g. \"/mnt/volumes\"",
        ),
        (
            "/",
            "propagatedMount: must not be /: dockerd mounts a host directory there, which would hide the \
             plugin's rootfs; use a directory such as \"/mnt/volumes\"",
        ),
        (
            "/mnt/volumes/",
            "propagatedMount: \"/mnt/volumes/\" must be a clean path (\"/mnt/volumes\"): dockerd recognises \
             mountpoints under it by string prefix",
        ),
        (
            "/run/docker/plugins/volumes",
            "propagatedMount: \"/run/docker/plugins/volumes\" must not be inside /run/docker/plugins, where \
             dockerd mounts the plugin's socket directory; use a directory such as \"/mnt/volumes\"",
        ),
    ];
    for (path, expected) in cases {
        let mut c = valid();
        c.propagated_mount = path.into();
        assert_problem(&c, Rule::PropagatedMount, expected);
    }
}

#[test]
fn rule_propagated_mount_covered_by_a_mount() {
    let mut c = valid();
    c.propagated_mount = "/mnt/volumes".into();
    c.mounts = vec![
        Mount {
            source: Some("/var/lib/x".into()),
            destination: "/mnt".into(),
            r#type: "bind".into(),
            ..Default::default()
        },
        // A sibling with a common string prefix is fine.
        Mount {
            source: Some("/var/lib/y".into()),
            destination: "/mnt/vol".into(),
            r#type: "bind".into(),
            ..Default::default()
        },
    ];
    assert_problem(
        &c,
        Rule::PropagatedMount,
        "mounts[0].destination: \"/mnt\" covers propagatedMount \"/mnt/volumes\": dockerd mounts it after \
         the propagated mount, hiding the plugin's volumes from the host; mount it elsewhere",
    );
}

#[test]
fn rule_mount_source() {
    let mount = |source: Option<&str>, settable: &[&str]| Mount {
        name: "state".into(),
        source: source.map(Into::into),
        settable: settable.iter().map(|s| s.to_string()).collect(),
        destination: "/state".into(),
        r#type: "bind".into(),
        options: vec!["rbind".into()],
        ..Default::default()
    };
    let mut c = valid();
    c.mounts = vec![mount(None, &[])];
    assert_problem(
        &c,
        Rule::MountSource,
        "mounts[0].source: is missing, and dockerd refuses to enable the plugin (\"mount source is not \
         specified\"); give a host path, or \"\" with \"source\" in mounts[0].settable for the user to set",
    );
    c.mounts = vec![mount(Some(""), &[])];
    assert_problem(
        &c,
        Rule::MountSource,
        "mounts[0].source: is empty and not settable; give a host path, or add \"source\" to \
         mounts[0].settable for the user to set",
    );
    c.mounts = vec![mount(Some("var/lib/state"), &[])];
    assert_problem(
        &c,
        Rule::MountSource,
        "mounts[0].source: \"var/lib/state\" must be an absolute host path for a bind mount",
    );
    // Empty but settable: the user sets it at install.
    c.mounts = vec![mount(Some(""), &["source"])];
    assert!(c.problems().is_empty());
}

#[test]
fn rule_mount_destination() {
    let mut c = valid();
    c.mounts = vec![Mount {
        source: Some("tmpfs".into()),
        destination: "state".into(),
        r#type: "tmpfs".into(),
        ..Default::default()
    }];
    assert_problem(
        &c,
        Rule::MountDestination,
        "mounts[0].destination: \"state\" must be an absolute path inside the plugin, e.g. \"/mnt/state\"",
    );
}

#[test]
fn rule_device_path() {
    let device = |path: Option<&str>| Device {
        path: path.map(Into::into),
        ..Default::default()
    };
    let mut c = valid();
    c.linux.devices = vec![device(None), device(Some("")), device(Some("fuse"))];
    assert_eq!(
        messages(&c),
        [
            "linux.devices[0].path: is missing, and dockerd cannot enable a plugin with a device without a \
             path; give the host device, e.g. \"/dev/fuse\"",
            "linux.devices[1].path: is empty and not settable; give the host device, e.g. \"/dev/fuse\", or \
             add \"path\" to linux.devices[1].settable for the user to set",
            "linux.devices[2].path: \"fuse\" must be an absolute path to a host device, e.g. \"/dev/fuse\"",
        ]
    );
    assert!(c.problems().iter().all(|p| p.rule == Rule::DevicePath));
}

#[test]
fn rule_env_name() {
    let mut c = valid();
    c.env = vec![
        Env {
            value: Some("1".into()),
            ..Default::default()
        },
        Env {
            name: "A=B".into(),
            ..Default::default()
        },
    ];
    assert_eq!(
        messages(&c),
        [
            "env[0].name: is empty; give the variable's name, e.g. \"DEBUG\"",
            "env[1].name: \"A=B\" must not contain '='",
        ]
    );
    assert!(c.problems().iter().all(|p| p.rule == Rule::EnvName));
}

#[test]
fn rule_settable_field_not_allowed() {
    let mut c = valid();
    c.env = vec![Env {
        name: "DEBUG".into(),
        settable: vec!["Value".into()],
        value: Some("0".into()),
        ..Default::default()
    }];
    c.mounts = vec![Mount {
        name: "state".into(),
        settable: vec!["destination".into()],
        source: Some("/var/lib/state".into()),
        destination: "/state".into(),
        ..Default::default()
    }];
    assert_eq!(
        messages(&c),
        [
            "env[0].settable[0]: \"Value\" cannot be settable; the only settable field of an env entry is \
             \"value\" (lower case)",
            "mounts[0].settable[0]: \"destination\" cannot be settable; the only settable field of a mount is \
             \"source\" (lower case)",
        ]
    );
    assert!(c.problems().iter().all(|p| p.rule == Rule::Settable));
}

#[test]
fn rule_settable_listed_twice() {
    let mut c = valid();
    c.env = vec![Env {
        name: "DEBUG".into(),
        settable: vec!["value".into(), "value".into()],
        value: Some("0".into()),
        ..Default::default()
    }];
    assert_problem(
        &c,
        Rule::Settable,
        "env[0].settable: lists \"value\" twice, so `docker plugin set DEBUG=…` fails with \"multiple fields \
         are settable, one must be specified\"; list it once",
    );
}

#[test]
fn rule_setting_name() {
    let mut c = valid();
    c.args = Args {
        settable: vec!["value".into()],
        value: vec!["-v".into()],
        ..Default::default()
    };
    assert_problem(
        &c,
        Rule::SettingName,
        "args.name: is empty, but args.settable is not; `docker plugin set` finds settings by name, so give \
         it one",
    );
    c.args.name = "a=b".into();
    assert_problem(
        &c,
        Rule::SettingName,
        "args.name: \"a=b\" contains '='; `docker plugin set` splits NAME=VALUE at the first '=', so this \
         entry can never be set",
    );
}

#[test]
fn rule_shadowed_setting() {
    let mut c = valid();
    c.env = vec![Env {
        name: "state".into(),
        value: Some("1".into()),
        ..Default::default()
    }];
    c.mounts = vec![Mount {
        name: "state".into(),
        settable: vec!["source".into()],
        source: Some("/var/lib/state".into()),
        destination: "/state".into(),
        ..Default::default()
    }];
    assert_problem(
        &c,
        Rule::ShadowedSetting,
        "mounts[0].name: \"state\" is also the name of env[0]; `docker plugin set state=…` always changes \
         env[0] (dockerd searches env, mounts, devices, then args), so mounts[0] can never be set; rename one",
    );
    // The problem is real: dockerd's search stops at env[0].
    assert_eq!(
        c.set(["state=/srv"]).unwrap_err().to_string(),
        r#""state" is not settable"#
    );
}

#[test]
fn validate_reports_every_problem_at_once() {
    let mut c = PluginConfig::default();
    c.network.r#type = "hosts".into();
    let err = c.validate().unwrap_err();
    let ConfigError::Invalid { problems } = &err else {
        panic!("{err:?}")
    };
    let rules: Vec<Rule> = problems.iter().map(|p| p.rule).collect();
    assert_eq!(
        rules,
        [
            Rule::NoInterfaceTypes,
            Rule::Socket,
            Rule::Entrypoint,
            Rule::NetworkType
        ]
    );
    let text = err.to_string();
    assert!(
        text.starts_with("config.json has 4 problems:\n  - interface.types: is empty;"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 5);
}

#[test]
fn go_quote_escapes_like_go() {
    assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
    assert_eq!(go_quote("\n\t\x00\x7f"), r#""\n\t\x00\x7f""#);
    assert_eq!(go_quote("é\u{a0}\u{200b}😀"), r#""é\u00a0\u200b😀""#);
}
