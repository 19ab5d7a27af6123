//! What a Docker Engine (`DOCKER_HOST`) says about its plugins, for `cargo
//! docker-plugin call NAME` and `doctor NAME` (feature `client`): the managed plugin
//! of a name, its ID, whether it is enabled, its socket; and the legacy driver names
//! dockerd has cached.
//!
//! A managed plugin's socket is on the host at `/run/docker/plugins/<plugin ID>/<its
//! config's socket>`: dockerd's plugin exec root is that fixed directory whatever its
//! `--exec-root` (moby v20.10.24 `daemon/daemon_linux.go`, `getPluginExecRoot`), and
//! the plugin's own `/run/docker/plugins` is bound from `<exec root>/<ID>`.
//!
//! ```no_run
//! use docker_plugin_sdk::package::engine::DockerApi;
//!
//! # async fn run() -> Result<(), docker_plugin_sdk::package::PackageError> {
//! let api = DockerApi::from_env()?;
//! if let Some(plugin) = api.plugin("localvol").await? {
//!     println!("{} ({}) listens on {}", plugin.name, plugin.id, plugin.socket_path().display());
//! }
//! # Ok(()) }
//! ```

use std::path::PathBuf;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use super::PackageError;
use crate::client::Client;

/// dockerd's exec root for managed plugins on Linux.
pub const PLUGIN_EXEC_ROOT: &str = "/run/docker/plugins";

/// The engine API version asked for (Docker 20.10's).
pub const API_VERSION: &str = "v1.41";

/// The engine's API, reached as the docker CLI reaches it.
#[derive(Debug)]
pub struct DockerApi {
    host: String,
    client: Client,
}

/// A managed plugin as `docker plugin inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPlugin {
    /// The 64-hex plugin ID.
    pub id: String,
    /// Its name, e.g. `localvol:latest`.
    pub name: String,
    /// Whether it is enabled.
    pub enabled: bool,
    /// Its config's `Interface.Socket`, e.g. `localvol.sock`.
    pub socket: String,
    /// `Config.PropagatedMount`.
    pub propagated_mount: String,
}

impl InstalledPlugin {
    /// Where the plugin's socket is on the host:
    /// `/run/docker/plugins/<ID>/<socket>`.
    pub fn socket_path(&self) -> PathBuf {
        PathBuf::from(PLUGIN_EXEC_ROOT)
            .join(&self.id)
            .join(&self.socket)
    }
}

impl DockerApi {
    /// The engine of `DOCKER_HOST`, else `unix:///var/run/docker.sock`.
    pub fn from_env() -> Result<Self, PackageError> {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned());
        Self::at(&host)
    }

    /// The engine at `host` (`unix:///path` or `tcp://host:port`; TLS is not
    /// supported).
    pub fn at(host: &str) -> Result<Self, PackageError> {
        let client = Client::from_url(host).map_err(|_| {
            PackageError::Registry(format!(
                "DOCKER_HOST={host}: only unix:///path and tcp://host:port (without TLS) are supported"
            ))
        })?;
        Ok(Self {
            host: host.to_owned(),
            client,
        })
    }

    /// The `DOCKER_HOST` value used.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `GET path`: the JSON of a `200`, `None` for a `404`.
    pub async fn get(&self, path: &str) -> Result<Option<serde_json::Value>, PackageError> {
        let request = Request::get(format!("/{API_VERSION}{path}"))
            .body(Full::new(Bytes::new()))
            .map_err(|e| PackageError::Registry(format!("GET {path}: {e}")))?;
        let reply = self.client.send(request).await.map_err(|e| {
            PackageError::Registry(format!("the Docker engine at {}: {e}", self.host))
        })?;
        match reply.status.as_u16() {
            404 => Ok(None),
            200 => reply
                .json()
                .map(Some)
                .map_err(|e| PackageError::Registry(format!("GET {path} on {}: {e}", self.host))),
            _ => Err(PackageError::Registry(format!(
                "GET {path} on {}: {} {}",
                self.host,
                reply.status,
                reply.text().trim()
            ))),
        }
    }

    /// The managed plugin `name` (`NAME`, `NAME:TAG` or an ID), if installed.
    pub async fn plugin(&self, name: &str) -> Result<Option<InstalledPlugin>, PackageError> {
        let Some(value) = self.get(&format!("/plugins/{name}/json")).await? else {
            return Ok(None);
        };
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        Ok(Some(InstalledPlugin {
            id: text(&value["Id"]),
            name: text(&value["Name"]),
            enabled: value["Enabled"].as_bool().unwrap_or(false),
            socket: text(&value["Config"]["Interface"]["Socket"]),
            propagated_mount: text(&value["Config"]["PropagatedMount"]),
        }))
    }

    /// The plugin names `docker info` lists for volume and network drivers:
    /// `Plugins.Volume` holds the legacy volume drivers dockerd has used (and
    /// caches for its life, moby v20.10.24 `volume/drivers/extpoint.go`) besides
    /// `local`; `Plugins.Network` the network drivers registered.
    pub async fn driver_names(&self) -> Result<Vec<String>, PackageError> {
        let info = self.get("/info").await?.unwrap_or_default();
        let mut names = Vec::new();
        for kind in ["Volume", "Network"] {
            if let Some(list) = info["Plugins"][kind].as_array() {
                names.extend(list.iter().filter_map(|v| v.as_str()).map(str::to_owned));
            }
        }
        Ok(names)
    }
}
