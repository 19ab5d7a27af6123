//! netbridge under the SDK's harness (a dockerd test double), served in-process:
//! the harness's containers each get a network namespace of their own, into which
//! the harness moves the veth peer netbridge names in Join, as dockerd does (moby
//! v20.10.24 libnetwork `sandbox.go`, `osl/`). Needs root (CAP_NET_ADMIN, namespaces).

use std::ffi::CStr;
use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use docker_plugin_sdk::harness::{Engine, NetworkOptions, NetworkUse};
use docker_plugin_sdk::state::Store;
use docker_plugin_sdk::transport::UnixSocket;
use docker_plugin_sdk::{CancellationToken, Plugin};
use netbridge::driver::Bridges;
use netbridge::links::Links;
use netbridge::state::{bridge_name, peer_name, veth_name};

/// netbridge served as plugin `name` on `socket_dir/NAME.sock` until `stop`, its
/// state in `root/networks.json`.
async fn serve(root: &Path, socket_dir: &Path, name: &str, stop: CancellationToken) {
    fs::create_dir_all(socket_dir).unwrap();
    let store = Store::open(root.join("networks.json")).await.unwrap();
    let driver = Bridges::start(Links::connect().unwrap(), store)
        .await
        .unwrap();
    let listener = UnixSocket::new(name).dir(socket_dir).bind().unwrap();
    let server = Plugin::new().network(driver).server(listener);
    tokio::spawn(server.shutdown_on(stop).run());
}

/// Whether a link named `name` exists in this thread's network namespace.
fn link_exists(name: &str) -> bool {
    let name = std::ffi::CString::new(name).unwrap();
    // SAFETY: a NUL-terminated name; if_nametoindex only reads it.
    unsafe { libc::if_nametoindex(name.as_ptr()) != 0 }
}

/// The IPv4 addresses in the network namespace at `key`, by interface,
/// `lo` left out.
fn ipv4_addresses_in(key: &Path) -> Vec<(String, Ipv4Addr)> {
    in_netns(key, || {
        let mut list = Vec::new();
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        // SAFETY: getifaddrs fills `head` with a list freed below; each entry's
        // address is read as a sockaddr_in only when its family says AF_INET.
        unsafe {
            assert_eq!(libc::getifaddrs(&mut head), 0);
            let mut cur = head;
            while let Some(ifa) = cur.as_ref() {
                let addr = ifa.ifa_addr;
                if !addr.is_null() && i32::from((*addr).sa_family) == libc::AF_INET {
                    let sin = &*addr.cast::<libc::sockaddr_in>();
                    let name = CStr::from_ptr(ifa.ifa_name).to_string_lossy().into_owned();
                    list.push((name, Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))));
                }
                cur = ifa.ifa_next;
            }
            libc::freeifaddrs(head);
        }
        list.retain(|(name, _)| name != "lo");
        list
    })
    .join()
    .unwrap()
}

/// Runs `f` on a thread of its own that entered the network namespace at `key`.
fn in_netns<T: Send + 'static>(
    key: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let ns = fs::File::open(key).unwrap();
    std::thread::spawn(move || {
        // SAFETY: a namespace file this thread holds open.
        let entered = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(entered, 0, "{}", std::io::Error::last_os_error());
        f()
    })
}

/// A Join of netbridge: two containers on its bridge each get the veth peer in their
/// own namespace as `eth0` with the IPAM's address, and one reaches the other over
/// TCP; removing them and `network rm` leave no link behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_on_a_plugin_bridge_reach_each_other() {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::for_tests(root.path());
    let stop = CancellationToken::new();
    serve(
        root.path(),
        &engine.discovery().socket_dir,
        "tbr",
        stop.clone(),
    )
    .await;
    let subnet = "10.231.0.0/24".parse().unwrap();
    let opts = NetworkOptions::driver("tbr").subnet(subnet);
    let net = engine.networks().create("tn", opts).await.unwrap();
    let bridge = bridge_name(&net.id);
    assert!(link_exists(&bridge), "no bridge {bridge}");

    let containers = engine.containers();
    let c2_ip: IpAddr = "10.231.0.77".parse().unwrap();
    let mut c1 = containers
        .create_on(&[], &[NetworkUse::new("tn")])
        .await
        .unwrap();
    let mut c2 = containers
        .create_on(&[], &[NetworkUse::new("tn").ip(c2_ip)])
        .await
        .unwrap();
    containers.start(&mut c1).await.unwrap();
    containers.start(&mut c2).await.unwrap();
    let mut links = vec![bridge.clone()];
    for (c, address) in [(&c1, "10.231.0.2"), (&c2, "10.231.0.77")] {
        let endpoint = c.endpoint("tn").unwrap();
        assert_eq!(
            endpoint.address.map(|a| a.to_string()),
            Some(format!("{address}/24"))
        );
        assert_eq!(endpoint.interface.as_deref(), Some("eth0"));
        let key = c.sandbox_key().unwrap();
        assert_eq!(
            ipv4_addresses_in(&key),
            [("eth0".to_owned(), address.parse().unwrap())]
        );
        let eid = &endpoint.endpoint_id;
        let (veth, peer) = (veth_name(eid), peer_name(eid));
        assert!(link_exists(&veth), "no {veth} on the host");
        assert!(!link_exists(&peer), "{peer} still on the host");
        links.extend([veth, peer]);
    }

    let (ready, listening) = std::sync::mpsc::channel();
    let server = in_netns(&c2.sandbox_key().unwrap(), move || {
        let listener = TcpListener::bind((c2_ip, 7777)).unwrap();
        ready.send(()).unwrap();
        let (mut stream, peer) = listener.accept().unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        (peer.ip(), text)
    });
    listening.recv_timeout(Duration::from_secs(5)).unwrap();
    let client = in_netns(&c1.sandbox_key().unwrap(), move || {
        let to = SocketAddr::new(c2_ip, 7777);
        let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(5)).unwrap();
        stream.write_all(b"hello from c1").unwrap();
    });
    client.join().unwrap();
    let (peer, text) = server.join().unwrap();
    assert_eq!(
        (peer.to_string(), text.as_str()),
        ("10.231.0.2".to_owned(), "hello from c1")
    );

    containers.rm(c1).await.unwrap();
    containers.rm(c2).await.unwrap();
    engine.networks().rm("tn").await.unwrap();
    let left: Vec<_> = links.iter().filter(|l| link_exists(l)).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let netns = fs::read_dir(engine.networks().sandbox_dir()).unwrap();
    assert_eq!(netns.count(), 0, "a namespace is left behind");
    stop.cancel();
}
