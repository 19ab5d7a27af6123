//! The example network and IPAM plugins against a REAL dockerd: `netbridge` (a
//! Linux bridge per network, a veth pair per container) and `poolipam` (addresses
//! from pools, kept across restarts) make a network two busybox containers ping each
//! other on, as legacy socket plugins and as the managed plugins `cargo docker-plugin
//! package` makes; a restart of both plugins between two `docker run`s keeps the
//! allocations and the network working; `docker rm` and `docker network rm` leave no
//! bridge or veth on the host (checked in /sys/class/net).
//!
//! One private dockerd (`--bridge=none --iptables=false`) serves the whole run; every
//! test uses its own plugin names, network and subnet, and removes what it made. It
//! needs root; when dockerd cannot start the tests fail under `CI=true` (or
//! `DPS_REQUIRE_DOCKERD=1`) and are reported as ignored otherwise.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use docker_plugin_sdk::harness::dockerd::Dockerd;
use docker_plugin_sdk::harness::{PluginProcess, Signal};
use libtest_mimic::Failed;
use support::cli::{check, package_member, unique};
use support::process::package_binary;
use support::shared_dockerd::{DockerdTest, ImageOnce, PlainTest, run_trials, with_dockerd_log};

/// Where dockerd looks for legacy plugin sockets.
const SOCKET_DIR: &str = "/run/docker/plugins";
const IMAGE: &str = "dps-busybox:net";

static SUBNETS: AtomicUsize = AtomicUsize::new(0);

/// A /24 no other test of this run (nor, likely, a concurrent run) uses:
/// `10.A.B.0/24`, A from the process ID, B counting.
fn subnet() -> String {
    let a = 150 + std::process::id() % 100;
    let b = SUBNETS.fetch_add(1, Ordering::SeqCst);
    format!("10.{a}.{b}.0/24")
}

/// `10.A.B.N` of subnet `10.A.B.0/24`.
fn host(subnet: &str, n: u8) -> String {
    let prefix = subnet.trim_end_matches(".0/24");
    format!("{prefix}.{n}")
}

/// The links netbridge makes, named from dockerd's IDs (see its `state.rs`).
fn bridge_of(network_id: &str) -> String {
    format!("nb-{}", &network_id[..11])
}
fn veth_of(endpoint_id: &str) -> String {
    format!("nbh-{}", &endpoint_id[..11])
}
fn peer_of(endpoint_id: &str) -> String {
    format!("nbc-{}", &endpoint_id[..11])
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Whether `port` is a port of bridge `bridge`.
fn is_port_of(port: &str, bridge: &str) -> bool {
    let brif = Path::new("/sys/class/net").join(bridge).join("brif");
    brif.join(port).exists()
}

/// netbridge and poolipam as legacy plugins: processes on /run/docker/plugins, their
/// state in a temp dir that outlives a restart.
struct LegacyPlugins {
    bridge_name: String,
    ipam_name: String,
    bridge: PluginProcess,
    ipam: PluginProcess,
    dir: tempfile::TempDir,
    starts: usize,
}

impl LegacyPlugins {
    fn start() -> Result<Self, Failed> {
        let dir = tempfile::tempdir()?;
        let bridge_name = unique("dps-netbridge");
        let ipam_name = unique("dps-poolipam");
        let (bridge, ipam) = Self::spawn(dir.path(), &bridge_name, &ipam_name, 0)?;
        Ok(Self {
            bridge_name,
            ipam_name,
            bridge,
            ipam,
            dir,
            starts: 1,
        })
    }

    fn spawn(
        dir: &Path,
        bridge_name: &str,
        ipam_name: &str,
        start: usize,
    ) -> Result<(PluginProcess, PluginProcess), Failed> {
        let command = |binary: PathBuf, name: &str, state: &str| {
            let mut command = Command::new(binary);
            command
                .args(["--name", name, "--socket-dir", SOCKET_DIR, "--state"])
                .arg(dir.join(state))
                .env("RUST_LOG", "debug");
            command
        };
        let socket = |name: &str| Path::new(SOCKET_DIR).join(format!("{name}.sock"));
        let bridge = PluginProcess::start(
            command(
                package_binary("netbridge", "netbridge"),
                bridge_name,
                "networks.json",
            ),
            &socket(bridge_name),
            dir.join(format!("netbridge-{start}.log")),
        )?;
        let ipam = PluginProcess::start(
            command(
                package_binary("poolipam", "poolipam"),
                ipam_name,
                "allocations.json",
            ),
            &socket(ipam_name),
            dir.join(format!("poolipam-{start}.log")),
        )?;
        Ok((bridge, ipam))
    }

    /// Kills both plugins as a crash would (SIGKILL), runs `meanwhile`, and starts
    /// them again on the same state files and sockets.
    fn crash_and_restart(
        &mut self,
        meanwhile: impl FnOnce() -> Result<(), Failed>,
    ) -> Result<(), Failed> {
        self.bridge.signal_and_wait(Signal::SIGKILL)?;
        self.ipam.signal_and_wait(Signal::SIGKILL)?;
        meanwhile()?;
        let (bridge, ipam) = Self::spawn(
            self.dir.path(),
            &self.bridge_name,
            &self.ipam_name,
            self.starts,
        )?;
        self.starts += 1;
        self.bridge = bridge;
        self.ipam = ipam;
        Ok(())
    }

    /// poolipam's allocations file.
    fn allocations(&self) -> Result<serde_json::Value, Failed> {
        let text = fs::read_to_string(self.dir.path().join("allocations.json"))?;
        Ok(serde_json::from_str(&text)?)
    }

    fn logs(&self) -> String {
        format!(
            "netbridge log:\n{}\npoolipam log:\n{}",
            self.bridge.log_text(),
            self.ipam.log_text()
        )
    }
}

/// Removes the containers and networks a test made, even when it failed (before its
/// plugins stop: declare it after them).
struct Cleanup<'a> {
    d: &'a Dockerd,
    containers: Vec<String>,
    networks: Vec<String>,
}

impl<'a> Cleanup<'a> {
    fn new(d: &'a Dockerd) -> Self {
        Self {
            d,
            containers: Vec::new(),
            networks: Vec::new(),
        }
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for container in &self.containers {
            let _ = self.d.docker(&["rm", "-f", container]);
        }
        for network in &self.networks {
            let _ = self.d.docker(&["network", "rm", network]);
        }
    }
}

/// A network of `driver` and `ipam` on `subnet`, recorded for cleanup; its ID.
fn create_network(
    d: &Dockerd,
    cleanup: &mut Cleanup,
    driver: &str,
    ipam: &str,
    subnet: &str,
) -> Result<(String, String), Failed> {
    let name = unique("dps-net");
    let id = d.docker_ok(&[
        "network",
        "create",
        "-d",
        driver,
        "--ipam-driver",
        ipam,
        "--subnet",
        subnet,
        &name,
    ])?;
    cleanup.networks.push(name.clone());
    Ok((name, id))
}

/// A container sleeping on `network` (with `extra` flags), recorded for cleanup: its
/// name, address and endpoint ID.
fn run_sleeper(
    d: &Dockerd,
    cleanup: &mut Cleanup,
    network: &str,
    extra: &[&str],
) -> Result<(String, String, String), Failed> {
    let name = unique("dps-ctr");
    let mut args = vec!["run", "-d", "--name", &name, "--network", network];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[IMAGE, "sleep", "600"]);
    d.docker_ok(&args)?;
    cleanup.containers.push(name.clone());
    let format = format!(
        "{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}} {{{{(index .NetworkSettings.Networks \"{network}\").EndpointID}}}}"
    );
    let inspected = d.docker_ok(&["inspect", "--format", &format, &name])?;
    let (ip, endpoint) = inspected
        .split_once(' ')
        .ok_or_else(|| format!("inspect printed {inspected:?}"))?;
    Ok((name, ip.to_owned(), endpoint.to_owned()))
}

/// `ping -c 2 target` from a new container on `network` must succeed.
fn ping_from_new_container(d: &Dockerd, network: &str, target: &str) -> Result<(), Failed> {
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        network,
        IMAGE,
        "ping",
        "-c",
        "2",
        "-W",
        "5",
        target,
    ])?;
    check(out.contains("2 packets received"), || {
        format!("ping {target} printed:\n{out}")
    })
}

/// The whole life of a network: two containers that ping each other and the gateway,
/// their addresses from the IPAM driver in `docker network inspect`, then `docker rm`
/// and `docker network rm` leaving no link behind. `allocated` reads the IPAM
/// driver's allocations, when the test can see them.
fn network_life(
    d: &Dockerd,
    driver: &str,
    ipam: &str,
    allocated: &dyn Fn() -> Result<serde_json::Value, Failed>,
) -> Result<(), Failed> {
    let mut cleanup = Cleanup::new(d);
    let subnet = subnet();
    let (network, network_id) = create_network(d, &mut cleanup, driver, ipam, &subnet)?;
    let bridge = bridge_of(&network_id);
    check(link_exists(&bridge), || {
        format!("no bridge {bridge} after network create")
    })?;
    // dockerd shows a gateway here only when the user gave --gateway; the one
    // poolipam chose is checked below, in its allocations and the containers' routes.
    let ipam_config = d.docker_ok(&[
        "network",
        "inspect",
        "--format",
        "{{.IPAM.Driver}} {{range .IPAM.Config}}{{.Subnet}}{{end}}",
        &network,
    ])?;
    check(ipam_config == format!("{ipam} {subnet}"), || {
        format!("network inspect printed {ipam_config:?}")
    })?;

    let (a, a_ip, a_endpoint) = run_sleeper(d, &mut cleanup, &network, &[])?;
    let (b, b_ip, b_endpoint) = run_sleeper(d, &mut cleanup, &network, &[])?;
    check(a_ip == host(&subnet, 2) && b_ip == host(&subnet, 3), || {
        format!("addresses {a_ip} and {b_ip}: poolipam gives .2 then .3 after the gateway .1")
    })?;
    for endpoint in [&a_endpoint, &b_endpoint] {
        let veth = veth_of(endpoint);
        check(is_port_of(&veth, &bridge), || {
            format!("{veth} is not a port of {bridge}")
        })?;
    }
    // Each container reaches the other by address, through the bridge.
    let out = d.docker_ok(&["exec", &a, "ping", "-c", "2", "-W", "5", &b_ip])?;
    check(out.contains("2 packets received"), || {
        format!("a ping b:\n{out}")
    })?;
    let out = d.docker_ok(&["exec", &b, "ping", "-c", "2", "-W", "5", &a_ip])?;
    check(out.contains("2 packets received"), || {
        format!("b ping a:\n{out}")
    })?;
    // Join's answer reached the container: eth0 with the MAC made from its address,
    // the default route via the gateway, which is on the host's bridge.
    let out = d.docker_ok(&["exec", &a, "ip", "route"])?;
    let gateway = host(&subnet, 1);
    check(
        out.contains(&format!("default via {gateway} dev eth0")),
        || format!("routes in a:\n{out}"),
    )?;
    let mac = d.docker_ok(&["exec", &a, "cat", "/sys/class/net/eth0/address"])?;
    let octets: Vec<String> = a_ip
        .split('.')
        .map(|o| format!("{:02x}", o.parse::<u8>().unwrap_or(0)))
        .collect();
    check(mac == format!("02:42:{}", octets.join(":")), || {
        format!("eth0 of {a_ip} has MAC {mac}")
    })?;
    ping_from_new_container(d, &network, &gateway)?;

    // docker network inspect shows the IPAM driver's addresses, and the driver has
    // them recorded.
    let containers = d.docker_ok(&[
        "network",
        "inspect",
        "--format",
        "{{range .Containers}}{{.IPv4Address}} {{end}}",
        &network,
    ])?;
    for ip in [&a_ip, &b_ip] {
        check(containers.contains(&format!("{ip}/24")), || {
            format!("network inspect lists {containers:?}, not {ip}/24")
        })?;
    }
    let allocations = allocated()?;
    let taken = &allocations["pools"][&subnet]["taken"];
    for ip in [&gateway, &a_ip, &b_ip] {
        let listed = taken
            .as_array()
            .is_some_and(|t| t.iter().any(|v| v == ip.as_str()));
        check(listed, || {
            format!("poolipam's allocations lack {ip}: {allocations}")
        })?;
    }

    // Removing a container removes its veth; removing the network, the bridge.
    d.docker_ok(&["rm", "-f", &a])?;
    check(!link_exists(&veth_of(&a_endpoint)), || {
        format!("{} left after docker rm", veth_of(&a_endpoint))
    })?;
    // Disconnecting one: dockerd moves its eth0 back to the host, netbridge deletes
    // the pair.
    d.docker_ok(&["network", "disconnect", &network, &b])?;
    for link in [veth_of(&b_endpoint), peer_of(&b_endpoint)] {
        check(!link_exists(&link), || {
            format!("{link} left after docker network disconnect")
        })?;
    }
    d.docker_ok(&["rm", "-f", &b])?;
    d.docker_ok(&["network", "rm", &network])?;
    for link in [bridge.clone(), veth_of(&a_endpoint), veth_of(&b_endpoint)] {
        check(!link_exists(&link), || {
            format!("{link} left after network rm")
        })?;
    }
    let allocations = allocated()?;
    check(allocations["pools"].get(&subnet).is_none(), || {
        format!("poolipam still holds {subnet}: {allocations}")
    })?;
    Ok(())
}

fn legacy_plugins_connect_containers_and_leave_nothing_behind(
    d: &Dockerd,
    image: &ImageOnce,
) -> Result<(), Failed> {
    image.ensure(d)?;
    let plugins = LegacyPlugins::start()?;
    network_life(d, &plugins.bridge_name, &plugins.ipam_name, &|| {
        plugins.allocations()
    })
    .map_err(|e| format!("{}\n{}", e.message().unwrap_or_default(), plugins.logs()).into())
}

fn a_plugin_restart_keeps_allocations_and_the_network(
    d: &Dockerd,
    image: &ImageOnce,
) -> Result<(), Failed> {
    image.ensure(d)?;
    let mut plugins = LegacyPlugins::start()?;
    let result = (|| -> Result<(), Failed> {
        let mut cleanup = Cleanup::new(d);
        let subnet = subnet();
        let (network, network_id) = create_network(
            d,
            &mut cleanup,
            &plugins.bridge_name,
            &plugins.ipam_name,
            &subnet,
        )?;
        let (_, a_ip, a_endpoint) = run_sleeper(d, &mut cleanup, &network, &[])?;
        check(a_ip == host(&subnet, 2), || format!("first address {a_ip}"))?;

        // While the plugins are down the bridge goes too, as after a host reboot
        // (`ip` here is the test's tool, not the plugin's).
        let bridge = bridge_of(&network_id);
        plugins.crash_and_restart(|| {
            let out = Command::new("ip").args(["link", "del", &bridge]).output()?;
            check(out.status.success(), || {
                format!(
                    "ip link del {bridge}: {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
        })?;

        // The restarted netbridge made the bridge again and put the running
        // container's veth back on it; the restarted poolipam remembers what it gave:
        // the next container gets .3, --ip of a taken address is refused.
        let veth = veth_of(&a_endpoint);
        check(is_port_of(&veth, &bridge), || {
            format!("after the restart, {veth} is not a port of {bridge}")
        })?;
        let (_, b_ip, _) = run_sleeper(d, &mut cleanup, &network, &[])?;
        check(b_ip == host(&subnet, 3), || {
            format!("after the restart the next address is {b_ip}, not .3")
        })?;
        ping_from_new_container(d, &network, &a_ip)?;
        let taken = d.docker_err(&[
            "run",
            "--rm",
            "--network",
            &network,
            "--ip",
            &a_ip,
            IMAGE,
            "true",
        ])?;
        let expected = format!(
            "address {a_ip} of pool {subnet} is already allocated: choose another --ip, or remove the container that has it"
        );
        check(taken.contains(&expected), || {
            format!("--ip {a_ip} said {taken:?}")
        })?;
        // An address asked for with --ip is honoured.
        let wanted = host(&subnet, 50);
        let (_, c_ip, _) = run_sleeper(d, &mut cleanup, &network, &["--ip", &wanted])?;
        check(c_ip == wanted, || format!("--ip {wanted} gave {c_ip}"))?;
        ping_from_new_container(d, &network, &c_ip)?;
        drop(cleanup);
        check(!link_exists(&bridge_of(&network_id)), || {
            "the bridge is left after network rm".into()
        })
    })();
    result.map_err(|e| format!("{}\n{}", e.message().unwrap_or_default(), plugins.logs()).into())
}

/// A network ID of 64 hex digits whose first 11 no other test uses.
fn fake_network_id() -> String {
    let n = (u64::from(std::process::id()) << 12) | SUBNETS.fetch_add(1, Ordering::SeqCst) as u64;
    format!("{n:011x}{}", "0".repeat(53))
}

/// What a crash left under way is finished when netbridge starts, on the real kernel:
/// the bridge of a network it was deleting goes, the missing bridge of a live network
/// comes back with its gateway. (Needs root, as the dockerd tests do.)
fn netbridge_finishes_at_start_what_a_crash_left(_: &Dockerd, _: &ImageOnce) -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let (deleting, live) = (fake_network_id(), fake_network_id());
    let (deleting_bridge, live_bridge) = (bridge_of(&deleting), bridge_of(&live));
    let gateway = host(&subnet(), 1);
    let network = |bridge: &str, gateways: &[String], deleting: bool| {
        serde_json::json!({
            "bridge": bridge, "gateways": gateways, "pools": [], "internal": false,
            "deleting": deleting, "endpoints": {}
        })
    };
    let state = serde_json::json!({ "networks": {
        &deleting: network(&deleting_bridge, &[], true),
        &live: network(&live_bridge, &[format!("{gateway}/24")], false),
    }});
    fs::write(dir.path().join("networks.json"), state.to_string())?;
    // The bridge of the network being deleted still exists (`ip` is the test's tool).
    let out = Command::new("ip")
        .args(["link", "add", &deleting_bridge, "type", "bridge"])
        .output()?;
    check(out.status.success(), || {
        format!("ip link add: {}", String::from_utf8_lossy(&out.stderr))
    })?;

    let name = unique("dps-netbridge");
    let mut command = Command::new(package_binary("netbridge", "netbridge"));
    command
        .args(["--name", &name, "--socket-dir", SOCKET_DIR, "--state"])
        .arg(dir.path().join("networks.json"));
    let socket = Path::new(SOCKET_DIR).join(format!("{name}.sock"));
    let plugin = PluginProcess::start(command, &socket, dir.path().join("netbridge.log"))?;
    let result = (|| -> Result<(), Failed> {
        check(!link_exists(&deleting_bridge), || {
            format!("{deleting_bridge}, of a network being deleted, is still there")
        })?;
        check(link_exists(&live_bridge), || {
            format!("{live_bridge}, of a live network, was not made again")
        })?;
        let out = Command::new("ip")
            .args(["-o", "-4", "addr", "show", "dev", &live_bridge])
            .output()?;
        let addresses = String::from_utf8_lossy(&out.stdout);
        check(addresses.contains(&format!("{gateway}/24")), || {
            format!("{live_bridge} has {addresses:?}, not its gateway {gateway}/24")
        })?;
        let saved: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.path().join("networks.json"))?)?;
        let networks = saved["networks"].as_object().ok_or("no networks")?;
        check(
            !networks.contains_key(&deleting) && networks.contains_key(&live),
            || format!("state after start: {saved}"),
        )
    })();
    // The live network is the test's own: its bridge goes with it.
    let _ = Command::new("ip")
        .args(["link", "del", &live_bridge])
        .output();
    let _ = Command::new("ip")
        .args(["link", "del", &deleting_bridge])
        .output();
    result.map_err(|e| {
        format!(
            "{}
netbridge log:
{}",
            e.message().unwrap_or_default(),
            plugin.log_text()
        )
        .into()
    })
}

fn managed_bundles_connect_containers_and_leave_nothing_behind(
    d: &Dockerd,
    image: &ImageOnce,
) -> Result<(), Failed> {
    image.ensure(d)?;
    let bridge_bundle = package_member("netbridge")?;
    let ipam_bundle = package_member("poolipam")?;
    let config: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(bridge_bundle.join("config.json"))?)?;
    check(
        config["Interface"]["Types"][0] == "docker.networkdriver/1.0"
            && config["Network"]["Type"] == "host"
            && config["Linux"]["Capabilities"][0] == "CAP_NET_ADMIN",
        || format!("netbridge's config.json: {config}"),
    )?;
    let bridge = unique("dps-mnetbridge");
    let ipam = unique("dps-mpoolipam");
    let mut created = Vec::new();
    let result = (|| -> Result<(), Failed> {
        for (name, bundle) in [(&bridge, &bridge_bundle), (&ipam, &ipam_bundle)] {
            d.docker_ok(&["plugin", "create", name, bundle.to_str().ok_or("path")?])?;
            created.push(name.clone());
            d.docker_ok(&["plugin", "enable", name])?;
        }
        let ipam_id = d.docker_ok(&["plugin", "inspect", "--format", "{{.Id}}", &ipam])?;
        let data_root = d.docker_ok(&["info", "--format", "{{.DockerRootDir}}"])?;
        // The managed poolipam keeps its allocations in its rootfs.
        let allocations = Path::new(&data_root)
            .join("plugins")
            .join(ipam_id)
            .join("rootfs/var/lib/poolipam/allocations.json");
        network_life(
            d,
            &format!("{bridge}:latest"),
            &format!("{ipam}:latest"),
            &|| {
                let text = fs::read_to_string(&allocations)
                    .map_err(|e| format!("{}: {e}", allocations.display()))?;
                Ok(serde_json::from_str(&text)?)
            },
        )
    })();
    for name in &created {
        let _ = d.docker(&["plugin", "disable", "-f", name]);
        let _ = d.docker(&["plugin", "rm", "-f", name]);
    }
    with_dockerd_log(d, 60, result)
}

fn main() {
    let plain: Vec<(&str, PlainTest)> = vec![];
    let with_dockerd: Vec<(&str, DockerdTest)> = vec![
        (
            "legacy_plugins_connect_containers_and_leave_nothing_behind",
            legacy_plugins_connect_containers_and_leave_nothing_behind,
        ),
        (
            "a_plugin_restart_keeps_allocations_and_the_network",
            a_plugin_restart_keeps_allocations_and_the_network,
        ),
        (
            "managed_bundles_connect_containers_and_leave_nothing_behind",
            managed_bundles_connect_containers_and_leave_nothing_behind,
        ),
        (
            "netbridge_finishes_at_start_what_a_crash_left",
            netbridge_finishes_at_start_what_a_crash_left,
        ),
    ];
    run_trials("network e2e", IMAGE, plain, with_dockerd)
}
