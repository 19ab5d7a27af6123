//! A container's network sandbox, as libnetwork's (moby v20.10.24
//! `vendor/github.com/docker/libnetwork/sandbox.go`, `osl/namespace_linux.go`,
//! `osl/interface_linux.go`): a network namespace bind-mounted at
//! `<exec-root>/netns/<12 hex>` (the `SandboxKey` a driver's Join gets), with `lo` up.
//!
//! After a Join, the interface the driver named (`InterfaceName.SrcName`, in the
//! host's namespace) is moved in, renamed `DstPrefix` + the next index of that prefix
//! in this sandbox (`eth0`, `eth1`), given the endpoint's MAC address and addresses,
//! brought up; then the gateway becomes the default route and the driver's static
//! routes are added (next hop, or connected). On Leave it is brought down, renamed
//! back to its source name and moved back to the host, as libnetwork's `Remove` does;
//! removing the sandbox unmounts and deletes the namespace.
//!
//! Every step runs on a thread of its own that entered the namespace, so no thread of
//! the runtime ever changes namespace. It needs root (`CAP_SYS_ADMIN`, `CAP_NET_ADMIN`).

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

use super::netlink::{Netlink, link_index};
use crate::network::{Cidr, MacAddress, RouteType, StaticRoute};

/// What a sandbox is asked to set up for one endpoint.
#[derive(Debug, Clone)]
pub(crate) struct InterfacePlan {
    /// The link the driver made on the host (`SrcName`).
    pub(crate) src_name: String,
    /// The endpoint's addresses and MAC.
    pub(crate) address: Option<Cidr>,
    pub(crate) address_ipv6: Option<Cidr>,
    pub(crate) mac: Option<MacAddress>,
    /// The gateway(s) Join gave: the default routes.
    pub(crate) gateway: Option<IpAddr>,
    pub(crate) gateway_ipv6: Option<IpAddr>,
    /// The driver's static routes.
    pub(crate) routes: Vec<StaticRoute>,
}

/// A network namespace for one container.
#[derive(Debug)]
pub(crate) struct Sandbox {
    key: PathBuf,
    next_index: HashMap<String, u32>,
}

fn io_err(action: &str, err: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{action}: {err}"))
}

/// Runs `work` on a new thread (so that a namespace it enters dies with it).
fn on_own_thread<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    std::thread::spawn(work)
        .join()
        .map_err(|_| io::Error::other("sandbox thread panicked"))?
}

/// Runs `work` on a new thread inside the namespace at `key`.
fn in_netns<T: Send + 'static>(
    key: &Path,
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let netns = File::open(key).map_err(|e| io_err(&format!("opening {}", key.display()), e))?;
    on_own_thread(move || {
        setns(&netns, CloneFlags::CLONE_NEWNET).map_err(|e| io_err("entering the sandbox", e))?;
        work()
    })
}

impl Sandbox {
    /// A new namespace at `dir/<12 hex of id>`, with `lo` up.
    pub(crate) fn create(dir: &Path, id: &str) -> io::Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| io_err(&format!("creating {}", dir.display()), e))?;
        let key = dir.join(&id[..id.len().min(12)]);
        File::create(&key).map_err(|e| io_err(&format!("creating {}", key.display()), e))?;
        let target = key.clone();
        let made = on_own_thread(move || {
            unshare(CloneFlags::CLONE_NEWNET)
                .map_err(|e| io_err("creating a network namespace", e))?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| io_err(&format!("binding the namespace at {}", target.display()), e))?;
            let lo = link_index("lo")?;
            Netlink::open()?.set_up(lo, true)
        });
        if let Err(err) = made {
            let _ = umount2(&key, MntFlags::MNT_DETACH);
            let _ = std::fs::remove_file(&key);
            return Err(err);
        }
        Ok(Self {
            key,
            next_index: HashMap::new(),
        })
    }

    /// The `SandboxKey`: where the namespace is mounted.
    pub(crate) fn key(&self) -> &Path {
        &self.key
    }

    /// The name the next interface with `prefix` gets (`eth0`, then `eth1`).
    pub(crate) fn next_name(&self, prefix: &str) -> String {
        format!(
            "{prefix}{}",
            self.next_index.get(prefix).copied().unwrap_or(0)
        )
    }

    /// Counts an interface added with `prefix`.
    pub(crate) fn added(&mut self, prefix: &str) {
        *self.next_index.entry(prefix.to_owned()).or_insert(0) += 1;
    }

    /// Unmounts and deletes the namespace (what is still in it goes with it).
    pub(crate) fn destroy(self) -> io::Result<()> {
        umount2(&self.key, MntFlags::MNT_DETACH)
            .map_err(|e| io_err(&format!("unmounting {}", self.key.display()), e))?;
        std::fs::remove_file(&self.key)
    }
}

/// Moves the driver's interface into the namespace at `key` and sets it up as `plan`
/// says, named `dst_name`. On failure it is moved back out. Blocking.
pub(crate) fn add_interface(key: &Path, plan: InterfacePlan, dst_name: &str) -> io::Result<()> {
    let host_index = link_index(&plan.src_name)
        .map_err(|e| io_err(&format!("finding interface {}", plan.src_name), e))?;
    let netns = File::open(key)?;
    Netlink::open()?
        .move_to_netns(host_index, netns.as_raw_fd())
        .map_err(|e| io_err(&format!("moving {} into the sandbox", plan.src_name), e))?;
    let name = dst_name.to_owned();
    let src = plan.src_name.clone();
    let set_up = in_netns(key, move || configure(&plan, &name));
    if let Err(err) = set_up {
        let _ = remove_interface(key, &src, &src);
        let _ = remove_interface(key, dst_name, &src);
        return Err(err);
    }
    Ok(())
}

/// Takes interface `dst_name` out of the namespace at `key`: down, renamed
/// `src_name`, back to the host. Blocking.
pub(crate) fn remove_interface(key: &Path, dst_name: &str, src_name: &str) -> io::Result<()> {
    let host = File::open("/proc/self/ns/net")?;
    let (dst, src) = (dst_name.to_owned(), src_name.to_owned());
    in_netns(key, move || {
        let nl = Netlink::open()?;
        let index = link_index(&dst)?;
        nl.set_up(index, false)?;
        if dst != src {
            nl.rename(index, &src)?;
        }
        nl.move_to_netns(index, host.as_raw_fd())
    })
}

/// Inside the sandbox: the moved link renamed, its MAC, addresses, up, then routes.
fn configure(plan: &InterfacePlan, dst_name: &str) -> io::Result<()> {
    let nl = Netlink::open()?;
    let index = link_index(&plan.src_name)?;
    let step = |what: &str, r: io::Result<()>| r.map_err(|e| io_err(what, e));
    step(
        &format!("renaming {} to {dst_name}", plan.src_name),
        nl.rename(index, dst_name),
    )?;
    if let Some(mac) = plan.mac {
        step(
            &format!("setting {dst_name}'s MAC address"),
            nl.set_mac(index, mac.octets()),
        )?;
    }
    for address in plan.address.iter().chain(&plan.address_ipv6) {
        step(
            &format!("adding {address} to {dst_name}"),
            nl.add_address(index, *address),
        )?;
    }
    step(&format!("bringing {dst_name} up"), nl.set_up(index, true))?;
    for gateway in plan.gateway.iter().chain(&plan.gateway_ipv6) {
        let default = Cidr::new(*gateway, 0).map_err(|e| io_err("default route", e))?;
        step(
            &format!("adding the default route via {gateway}"),
            nl.add_route(index, default, Some(*gateway)),
        )?;
    }
    for route in &plan.routes {
        let hop = match route.route_type {
            RouteType::NextHop => route.next_hop,
            RouteType::Connected => None,
        };
        step(
            &format!("adding the route to {}", route.destination),
            nl.add_route(index, route.destination, hop),
        )?;
    }
    Ok(())
}
