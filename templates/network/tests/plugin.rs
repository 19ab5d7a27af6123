//! `{{project-name}}` end to end: the real binary, found and driven by the SDK's
//! harness (a dockerd test double) exactly as dockerd would drive it: a network
//! created with the plugin's own IPAM, a container joining it (in a network namespace
//! of its own), both removed; refusals in dockerd's words; and the plugin packaged
//! from this crate's own `[package.metadata.docker-plugin]` and run as a managed
//! plugin. The plugin makes bridges and veth pairs, and containers get network
//! namespaces: run as root.

use std::path::{Path, PathBuf};
use std::process::Command;

use docker_plugin_sdk::harness::{Engine, NetworkOptions, NetworkUse, PluginProcess};
use docker_plugin_sdk::package::metadata::Metadata;
use {{crate_name}}::{Endpoint, Network};

/// The plugin's name: its socket is `NAME.sock`.
const PLUGIN: &str = "{{project-name}}";

/// The plugin binary listening where `engine` looks, its state in `root/state`, its
/// log in `root/plugin.log`. Returns once the plugin answers; fails with the plugin's
/// log. Stopped with SIGTERM when dropped.
fn start(root: &Path, engine: &Engine) -> PluginProcess {
    let socket_dir = &engine.discovery().socket_dir;
    let mut command = Command::new(env!("CARGO_BIN_EXE_{{project-name}}"));
    command
        .arg("--state-dir")
        .arg(root.join("state"))
        .arg("--socket-dir")
        .arg(socket_dir);
    let socket = socket_dir.join(format!("{PLUGIN}.sock"));
    PluginProcess::start_answering(command, &socket, root.join("plugin.log")).unwrap()
}

/// `docker network create -d DRIVER --ipam-driver DRIVER --subnet NET.0/24 -o
/// mtu=1400`.
fn options(driver: &str, net: &str) -> NetworkOptions {
    NetworkOptions::driver(driver)
        .ipam_driver(driver)
        .subnet(format!("{net}.0/24").parse().unwrap())
        .option("mtu", "1400")
}

/// Whether link `name` exists on the host.
fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", "dev", name])
        .output()
        .unwrap()
        .status
        .success()
}

/// `ip -o ARGS` in the network namespace at `key` (`nsenter --net=KEY`).
fn ip_in(key: &Path, args: &[&str]) -> String {
    let output = Command::new("nsenter")
        .arg(format!("--net={}", key.display()))
        .args(["ip", "-o"])
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// A network `NET.0/24` and a container on it: the calls dockerd makes, the bridge
/// with the gateway `NET.1`, the veth pair, `eth0` in the container's namespace with
/// the IPAM's address `NET.2` and the MTU of `-o mtu`; nothing left after the
/// container and the network are removed.
async fn network_life(engine: &Engine, driver: &str, net: &str) {
    let info = engine
        .networks()
        .create("n1", options(driver, net))
        .await
        .unwrap();
    let gateway = info.ipv4[0].gateway.map(|g| g.to_string());
    assert_eq!(gateway, Some(format!("{net}.1/24")));
    let bridge = Network::bridge_name(&info.id);
    let on_bridge = Command::new("ip")
        .args(["-o", "-4", "address", "show", "dev", &bridge])
        .output()
        .unwrap();
    let on_bridge = String::from_utf8_lossy(&on_bridge.stdout);
    assert!(
        on_bridge.contains(&format!("inet {net}.1/24")),
        "{on_bridge}"
    );

    let containers = engine.containers();
    let mut container = containers
        .create_on(&[], &[NetworkUse::new("n1")])
        .await
        .unwrap();
    engine.calls().take();
    containers.start(&mut container).await.unwrap();
    assert_eq!(
        engine.calls().take_methods(),
        [
            "IpamDriver.RequestAddress",
            "NetworkDriver.CreateEndpoint",
            "NetworkDriver.Join",
            "NetworkDriver.ProgramExternalConnectivity",
            "NetworkDriver.EndpointOperInfo",
            "NetworkDriver.EndpointOperInfo"
        ]
    );
    let endpoint = container.endpoint("n1").unwrap();
    assert_eq!(
        endpoint.address.map(|a| a.to_string()),
        Some(format!("{net}.2/24"))
    );
    assert_eq!(endpoint.interface.as_deref(), Some("eth0"));
    let pair = Endpoint::new(&endpoint.endpoint_id);
    assert!(link_exists(&pair.host), "no {} on the host", pair.host);
    assert!(
        !link_exists(&pair.container),
        "{} left on the host",
        pair.container
    );
    let key = container.sandbox_key().unwrap();
    let eth0 = ip_in(&key, &["-4", "address", "show", "dev", "eth0"]);
    assert!(eth0.contains(&format!("inet {net}.2/24")), "{eth0}");
    let link = ip_in(&key, &["link", "show", "dev", "eth0"]);
    assert!(link.contains("mtu 1400"), "{link}");

    containers.rm(container).await.unwrap();
    assert_eq!(
        engine.calls().take_methods(),
        [
            "NetworkDriver.RevokeExternalConnectivity",
            "NetworkDriver.Leave",
            "NetworkDriver.DeleteEndpoint",
            "IpamDriver.ReleaseAddress"
        ]
    );
    assert!(!link_exists(&pair.host), "{} left behind", pair.host);
    engine.networks().rm("n1").await.unwrap();
    assert_eq!(
        engine.calls().take_methods(),
        [
            "IpamDriver.ReleaseAddress",
            "IpamDriver.ReleasePool",
            "NetworkDriver.DeleteNetwork"
        ]
    );
    assert!(!link_exists(&bridge), "{bridge} left behind");
}

#[tokio::test]
async fn a_container_joins_a_network_through_the_harness() {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::for_tests(root.path());
    let _plugin = start(root.path(), &engine);
    engine.calls().take();
    network_life(&engine, PLUGIN, "10.213.0").await;
}

#[tokio::test]
async fn refusals_reach_the_user_in_dockerds_words() {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::for_tests(root.path());
    let _plugin = start(root.path(), &engine);
    let networks = engine.networks();

    // Bad `-o` options: CreateNetwork refuses them all in one message, and dockerd
    // gives the pool and the gateway back.
    let bad = options(PLUGIN, "10.214.0")
        .option("mtu", "big")
        .option("colour", "red");
    let err = networks.create("n1", bad).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "NetworkDriver.CreateNetwork: invalid options: unknown option `colour` (valid options: mtu); \
         option `mtu` must be a non-negative whole number, got `big`: invalid digit found in string"
    );
    let methods = engine.calls().take_methods();
    assert_eq!(
        methods[methods.len() - 3..],
        [
            "NetworkDriver.CreateNetwork",
            "IpamDriver.ReleaseAddress",
            "IpamDriver.ReleasePool"
        ]
    );

    // No `--subnet`: the IPAM driver says what to give.
    let err = networks
        .create("n1", NetworkOptions::driver(PLUGIN).ipam_driver(PLUGIN))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "IpamDriver.RequestPool: {PLUGIN} needs a subnet: \
             give one with --subnet, such as --subnet 10.99.0.0/24"
        )
    );
    assert!(networks.ls().is_empty());

    // The subnet is free again: the same network now goes through.
    let net = networks
        .create("n1", options(PLUGIN, "10.214.0"))
        .await
        .unwrap();
    networks.rm("n1").await.unwrap();
    assert!(!link_exists(&Network::bridge_name(&net.id)));
}

/// The bundle `cargo docker-plugin package` would write, from this crate's metadata
/// and the binary cargo built for the tests.
fn package(into: &Path) -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = crate_dir.join("Cargo.toml");
    let (package, metadata) = Metadata::from_manifest(&manifest, None).unwrap();
    let config = metadata.to_config(&package, PLUGIN, &manifest).unwrap();
    let bundle = into.join("bundle");
    let binary = env!("CARGO_BIN_EXE_{{project-name}}");
    metadata
        .bundle_writer(&bundle, config, PLUGIN, binary, crate_dir)
        .write()
        .unwrap();
    bundle
}

#[tokio::test]
async fn as_a_managed_plugin_packaged_from_its_metadata() {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::for_tests(root.path());
    let plugins = engine.plugins();
    plugins.create(PLUGIN, package(root.path())).await.unwrap();
    // What `docker plugin install` asks the user to grant.
    let privileges: Vec<String> = plugins
        .privileges(PLUGIN)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        privileges,
        ["network: [host]", "capabilities: [CAP_NET_ADMIN]"]
    );
    plugins.enable(PLUGIN).await.unwrap();
    // dockerd knows a managed network or IPAM driver by its name with the tag.
    network_life(&engine, &format!("{PLUGIN}:latest"), "10.215.0").await;
    plugins.disable(PLUGIN, false).await.unwrap();
    plugins.rm(PLUGIN, false).await.unwrap();
}
