//! The unit tests of `metadata.rs`: every key of `[package.metadata.docker-plugin]`
//! into its config field, the defaults, and the errors that name the field.

use super::*;

const BASE: &str = r#"
[package]
name = "p"
description = "from package"
repository = "https://example.com/p"

[package.metadata.docker-plugin]
interface = { types = ["docker.volumedriver/1.0"], socket = "p.sock" }
"#;

fn parse(extra: &str) -> Result<(PackageInfo, Metadata), PackageError> {
    Metadata::from_manifest_str(&format!("{BASE}{extra}"), Path::new("Cargo.toml"), None)
}

fn config(extra: &str) -> PluginConfig {
    let (info, meta) = parse(extra).expect("parses");
    meta.to_config(&info, "p", Path::new("Cargo.toml"))
        .expect("config")
}

#[test]
fn defaults_come_from_the_package_and_the_binary() {
    let c = config("");
    assert_eq!(c.description, "from package");
    assert_eq!(c.documentation, "https://example.com/p");
    assert_eq!(c.entrypoint, ["/p"]);
    assert_eq!(c.interface.socket, "p.sock");
    assert_eq!(c.interface.types[0].to_string(), "docker.volumedriver/1.0");
    assert!(c.privileges().is_empty());
    c.validate().expect("valid");
}

#[test]
fn every_key_lands_in_its_config_field() {
    let c = config(
        r#"description = "d"
documentation = "https://doc"
entrypoint = ["/bin/p", "-v"]
workdir = "/w"
user = { uid = 1, gid = 2 }
network = "host"
propagated-mount = "/mnt/volumes"
ipc-host = true
pid-host = true
mounts = [{ name = "state", settable = ["source"], source = "/var/lib/p", destination = "/state", type = "bind", options = ["rbind"] }]
env = [{ name = "DEBUG", description = "debug", settable = ["value"], value = "0" }]
args = { name = "args", settable = ["value"], value = ["--x"] }
linux = { capabilities = ["CAP_SYS_ADMIN"], allow-all-devices = true, devices = [{ path = "/dev/fuse" }] }
"#,
    );
    assert_eq!(c.description, "d");
    assert_eq!(c.documentation, "https://doc");
    assert_eq!(c.entrypoint, ["/bin/p", "-v"]);
    assert_eq!(c.work_dir, "/w");
    assert_eq!((c.user.uid, c.user.gid), (1, 2));
    assert_eq!(c.network.r#type, "host");
    assert_eq!(c.propagated_mount, "/mnt/volumes");
    assert!(c.ipc_host && c.pid_host);
    assert_eq!(c.mounts[0].source.as_deref(), Some("/var/lib/p"));
    assert_eq!(c.mounts[0].options, ["rbind"]);
    assert_eq!(c.env[0].value.as_deref(), Some("0"));
    assert_eq!(c.args.value, ["--x"]);
    assert!(c.linux.allow_all_devices);
    assert_eq!(c.linux.devices[0].path.as_deref(), Some("/dev/fuse"));
    let privileges: Vec<String> = c.privileges().iter().map(|p| p.to_string()).collect();
    assert_eq!(
        privileges,
        [
            "network: [host]",
            "host ipc namespace: [true]",
            "host pid namespace: [true]",
            "mount: [/var/lib/p]",
            "device: [/dev/fuse]",
            "allow-all-devices: [true]",
            "capabilities: [CAP_SYS_ADMIN]"
        ]
    );
}

#[test]
fn a_typo_is_an_error_naming_the_field() {
    for (extra, field) in [
        ("entrypont = [\"/p\"]\n", "entrypont"),
        ("linux = { capabilites = [] }\n", "capabilites"),
        ("env = [{ name = \"A\", vaule = \"1\" }]\n", "vaule"),
        ("propagatedmount = \"/x\"\n", "propagatedmount"),
    ] {
        let err = parse(extra).expect_err(extra).to_string();
        assert!(err.contains(&format!("unknown field `{field}`")), "{err}");
        assert!(err.starts_with("Cargo.toml: "), "{err}");
    }
}

#[test]
fn a_wrong_type_names_the_field() {
    let err = parse("network = { type = \"host\" }\n").expect_err("table");
    assert!(err.to_string().contains("network"), "{err}");
}

#[test]
fn a_bad_interface_type_is_refused_at_conversion() {
    let manifest = BASE.replace("docker.volumedriver/1.0", "volumedriver");
    let (info, meta) =
        Metadata::from_manifest_str(&manifest, Path::new("Cargo.toml"), None).expect("parses");
    let err = meta
        .to_config(&info, "p", Path::new("Cargo.toml"))
        .expect_err("bad type")
        .to_string();
    assert!(err.contains("interface.types"), "{err}");
}

#[test]
fn examples_have_their_own_table() {
    let manifest = format!(
        "{BASE}[package.metadata.docker-plugin.examples.ex]\ninterface = {{ types = [\"docker.ipamdriver/1.0\"], socket = \"ex.sock\" }}\n"
    );
    let (info, meta) = Metadata::from_manifest_str(&manifest, Path::new("Cargo.toml"), Some("ex"))
        .expect("example");
    let c = meta
        .to_config(&info, "ex", Path::new("Cargo.toml"))
        .expect("config");
    assert_eq!(c.interface.socket, "ex.sock");
    assert_eq!(c.entrypoint, ["/ex"]);
    let err = Metadata::from_manifest_str(&manifest, Path::new("Cargo.toml"), Some("nope"))
        .expect_err("no such example")
        .to_string();
    assert!(
        err.contains("no [package.metadata.docker-plugin.examples.nope] table"),
        "{err}"
    );
}

#[test]
fn missing_metadata_says_what_to_add() {
    let err =
        Metadata::from_manifest_str("[package]\nname = \"p\"\n", Path::new("Cargo.toml"), None)
            .expect_err("missing")
            .to_string();
    assert!(err.contains("[package.metadata.docker-plugin]"), "{err}");
    assert!(err.contains("socket = \"p.sock\""), "{err}");
}

#[test]
fn workspace_inherited_fields_are_not_strings() {
    let manifest = BASE.replace(
        "description = \"from package\"",
        "description.workspace = true",
    );
    let (info, _) =
        Metadata::from_manifest_str(&manifest, Path::new("Cargo.toml"), None).expect("parses");
    assert_eq!(info.description, None);
}

/// This crate's own `[package.metadata.docker-plugin.examples.localvol]` gives
/// the golden `config.json` (the e2e test checks the packaged bundle's too).
#[test]
fn localvol_metadata_gives_the_golden_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = root.join("Cargo.toml");
    let (info, meta) = Metadata::from_manifest(&manifest, Some("localvol")).expect("metadata");
    let config = meta
        .to_config(&info, "localvol", &manifest)
        .expect("config");
    config.validate().expect("valid");
    let mut json = config.to_json_pretty().expect("json");
    json.push('\n');
    let golden = std::fs::read_to_string(root.join("tests/golden/package/localvol.config.json"))
        .expect("golden file");
    assert_eq!(json, golden);
    assert!(config.privileges().is_empty());
}

#[test]
fn a_standalone_file_has_the_keys_at_the_top() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("plugin.toml");
    std::fs::write(&path, "network = \"host\"\nbinares = []\n").expect("write");
    let err = Metadata::from_file(&path).expect_err("typo").to_string();
    assert!(err.contains("unknown field `binares`"), "{err}");
    std::fs::write(&path, "network = \"host\"\nbinaries = [\"/bin/sh\"]\n").expect("write");
    let meta = Metadata::from_file(&path).expect("parses");
    assert_eq!(meta.binaries, ["/bin/sh"]);
}
