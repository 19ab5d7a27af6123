//! The links, made and removed by iproute2's `ip` run as a child process: the
//! simplest way, with no netlink dependency. Each function is idempotent: dockerd
//! calls again after a failure, so creating what exists, or deleting what is gone,
//! succeeds.
//!
//! TODO: a plugin for production speaks netlink itself (a crate such as `rtnetlink`;
//! docker-plugin-sdk's `examples/netbridge` does), without needing `ip` on the host or
//! in the managed plugin's rootfs (`binaries` in Cargo.toml).

use docker_plugin_sdk::network::Cidr;
use docker_plugin_sdk::{Error, Result};
use tokio::process::Command;

/// Runs `ip ARGS`; its error says what failed and why.
async fn ip(args: &[&str]) -> Result<()> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .await
        .map_err(|err| Error::new(format!("cannot run `ip` (install iproute2): {err}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Error::new(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// Whether link `name` exists.
pub async fn exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", "dev", name])
        .output()
        .await
        .is_ok_and(|output| output.status.success())
}

/// Bridge `name` with `gateway` on it, up.
pub async fn bridge(name: &str, gateway: Option<Cidr>, mtu: u16) -> Result<()> {
    let mtu = mtu.to_string();
    if !exists(name).await {
        ip(&["link", "add", name, "mtu", &mtu, "type", "bridge"]).await?;
    }
    if let Some(gateway) = gateway {
        ip(&["address", "replace", &gateway.to_string(), "dev", name]).await?;
    }
    ip(&["link", "set", name, "up"]).await
}

/// The veth pair `host`/`container` (replacing a stale one), `host` up as a port of
/// `bridge`; dockerd brings `container` up in the container.
pub async fn veth(host: &str, container: &str, bridge: &str, mtu: u16) -> Result<()> {
    delete(host).await?;
    delete(container).await?;
    let mtu = mtu.to_string();
    ip(&[
        "link", "add", host, "mtu", &mtu, "type", "veth", "peer", "name", container, "mtu", &mtu,
    ])
    .await?;
    ip(&["link", "set", host, "master", bridge, "up"]).await
}

/// Deletes link `name` (and a veth's peer with it), if it exists.
pub async fn delete(name: &str) -> Result<()> {
    if exists(name).await {
        ip(&["link", "delete", name]).await?;
    }
    Ok(())
}
