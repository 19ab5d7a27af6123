//! The main demo: the `localvol` example plugin served on a unix socket and driven end
//! to end by a client that speaks exactly like dockerd (same headers, same bodies, same
//! call order as `docker volume create`, `docker run -v`, `docker volume rm`), printing
//! every request and reply on the wire.
//!
//! ```text
//! cargo run --example demo --features client,macros
//! ```
//!
//! No Docker daemon is needed; `tests/dockerd.rs` runs the same plugin under a real one.

#[path = "localvol/driver.rs"]
mod driver;

use std::error::Error;
use std::fs;

use docker_plugin_sdk::client::Client;
use docker_plugin_sdk::transport::UnixSocket;
use docker_plugin_sdk::{CancellationToken, Plugin};

/// Sends `body` to `method` like dockerd and prints both sides.
async fn call(
    client: &Client,
    what: &str,
    method: &str,
    body: &str,
) -> Result<String, Box<dyn Error>> {
    println!("\n# {what}");
    println!("--> POST /{method}  {}", body.trim_end());
    let reply = client.call_raw(method, body.to_owned()).await?;
    println!(
        "<-- {} {}  {}",
        reply.status.as_u16(),
        reply.content_type.as_deref().unwrap_or("-"),
        reply.text().trim_end()
    );
    Ok(reply.text())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let work = tempfile::tempdir()?;
    let root = work.path().join("volumes");
    let sockets = work.path().join("plugins");

    // What a plugin author writes: a driver, a plugin, a socket.
    let listener = UnixSocket::new("localvol")
        .dir(&sockets)
        .mode(0o660)
        .bind()?;
    let socket = listener
        .unix_path()
        .map(|p| p.to_path_buf())
        .ok_or("no socket path")?;
    let stop = CancellationToken::new();
    let driver = driver::LocalVolumes::new(&root)
        .await
        .map_err(|err| err.to_string())?;
    let server = Plugin::new()
        .volume(driver)
        .server(listener)
        .shutdown_on(stop.clone());
    println!("plugin localvol listening on {}", server.url());
    let serving = tokio::spawn(server.run());

    // What dockerd does with it.
    let client = Client::unix(&socket);
    call(
        &client,
        "dockerd activates the plugin on first use",
        "Plugin.Activate",
        "",
    )
    .await?;
    call(
        &client,
        "docker volume create -d localvol -o mode=0750 demo: scope first",
        "VolumeDriver.Capabilities",
        "{}\n",
    )
    .await?;
    call(
        &client,
        "... then does the volume exist?",
        "VolumeDriver.Get",
        "{\"Name\":\"demo\"}\n",
    )
    .await?;
    call(
        &client,
        "... no: create it with the user's options",
        "VolumeDriver.Create",
        "{\"Name\":\"demo\",\"Opts\":{\"mode\":\"0750\"}}\n",
    )
    .await?;
    call(&client, "docker volume ls", "VolumeDriver.List", "{}\n").await?;
    let id = "4f1c6b1f2a7e9d0c3b5a8e6f1d2c4b7a9e0f3d6c8b1a4e7f2d5c9b0a3e6f8d1c";
    let mount = call(
        &client,
        "docker run -v demo:/data ...: mount before the container starts",
        "VolumeDriver.Mount",
        &format!("{{\"Name\":\"demo\",\"ID\":\"{id}\"}}\n"),
    )
    .await?;
    let mountpoint: serde_json::Value = serde_json::from_str(&mount)?;
    let mountpoint = mountpoint["Mountpoint"]
        .as_str()
        .ok_or("no Mountpoint")?
        .to_owned();
    fs::write(
        format!("{mountpoint}/hello.txt"),
        "written by the container\n",
    )?;
    println!("   (the container writes {mountpoint}/hello.txt)");
    call(
        &client,
        "docker volume rm demo while it is in use",
        "VolumeDriver.Remove",
        "{\"Name\":\"demo\"}\n",
    )
    .await?;
    call(
        &client,
        "... the container exits: unmount with the same ID",
        "VolumeDriver.Unmount",
        &format!("{{\"Name\":\"demo\",\"ID\":\"{id}\"}}\n"),
    )
    .await?;
    call(
        &client,
        "docker volume inspect demo",
        "VolumeDriver.Get",
        "{\"Name\":\"demo\"}\n",
    )
    .await?;
    println!(
        "\n   backing dir {} holds: {:?}",
        root.join("demo/data").display(),
        fs::read_to_string(root.join("demo/data/hello.txt"))?
    );

    // What the server does with bad input: a clear JSON error, and it keeps serving.
    call(
        &client,
        "a typo in an option is refused",
        "VolumeDriver.Create",
        "{\"Name\":\"v2\",\"Opts\":{\"mdoe\":\"0750\"}}\n",
    )
    .await?;
    call(
        &client,
        "malformed JSON",
        "VolumeDriver.Create",
        "{\"Name\":",
    )
    .await?;
    call(
        &client,
        "an endpoint this plugin does not implement",
        "NetworkDriver.CreateNetwork",
        "{}\n",
    )
    .await?;
    call(
        &client,
        "docker volume rm demo",
        "VolumeDriver.Remove",
        "{\"Name\":\"demo\"}\n",
    )
    .await?;

    // Graceful shutdown (SIGTERM/SIGINT in a real plugin): the socket goes away.
    stop.cancel();
    serving.await??;
    println!(
        "\nplugin stopped; socket {} removed: {}",
        socket.display(),
        !socket.exists()
    );
    Ok(())
}
