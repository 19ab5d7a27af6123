//! Spec files: how dockerd finds a plugin that does not listen on a socket in
//! `/run/docker/plugins`.
//!
//! dockerd looks in `/etc/docker/plugins`, then `/usr/lib/docker/plugins`, for
//! `NAME.spec` (one URL: `unix:///path.sock` or `tcp://host:port`) or `NAME.json`
//! (`{"Name", "Addr", "TLSConfig"}`). TLS is used only when `Addr` starts with `https://`.
//! dockerd then verifies the plugin's certificate only if a `.json` spec gives a
//! `CAFile` (checked against it) or no `TLSConfig` at all (the system's CAs): a
//! `TLSConfig` without `CAFile`, and any `.spec` file, make it verify nothing (moby
//! v20.10.24 `pkg/plugins/discovery.go`, `plugins.go` `NewLocalPlugin`). dockerd
//! reaches `tcp://` and `https://` plugins through the proxy of its environment (see
//! [`PluginSpec::addr`]).
//! Files are written atomically (a temporary file renamed into place) and removed on
//! shutdown by the server that wrote them, only if they are still the file it wrote
//! (device and inode, as for sockets, and content): another instance may have
//! replaced it since, or someone edited it.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ServeError;
use crate::transport::validate_name;

/// The first directory dockerd searches for spec files.
pub const DEFAULT_SPEC_DIR: &str = "/etc/docker/plugins";
/// The second one.
pub const LIB_SPEC_DIR: &str = "/usr/lib/docker/plugins";

/// The content of a `.json` spec file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PluginSpec {
    /// The plugin name (dockerd takes the name from the file name instead).
    #[serde(rename = "Name", default)]
    pub name: String,
    /// The address: `unix://…`, `tcp://…` (plain HTTP) or `https://…` (TLS).
    ///
    /// dockerd calls a `tcp://` or `https://` plugin through the `HTTP_PROXY` (or
    /// `HTTPS_PROXY`) of its own environment, often set for image pulls, unless
    /// `NO_PROXY` names the plugin's host; loopback addresses are never proxied (Go's
    /// `http.ProxyFromEnvironment`, which moby v20.10.24 `pkg/plugins/client.go` sets
    /// through go-connections' `sockets.ConfigureTransport`). A plugin on another host
    /// belongs in dockerd's `NO_PROXY`.
    #[serde(rename = "Addr", default)]
    pub addr: String,
    /// How dockerd's client sets up TLS; only used for `https://` addresses.
    #[serde(rename = "TLSConfig", default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsClientConfig>,
}

/// dockerd's TLS client settings in a `.json` spec file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TlsClientConfig {
    /// Skip verifying the plugin's certificate.
    #[serde(rename = "InsecureSkipVerify", default)]
    pub insecure_skip_verify: bool,
    /// The CA that signed the plugin's certificate. Without one, dockerd does **not**
    /// verify the plugin's certificate at all: it forces `InsecureSkipVerify` (moby
    /// v20.10.24 `pkg/plugins/discovery.go`), so anyone on the path can pose as the
    /// plugin. Give a CA to have the certificate checked.
    #[serde(rename = "CAFile", default, skip_serializing_if = "String::is_empty")]
    pub ca_file: String,
    /// dockerd's client certificate.
    #[serde(rename = "CertFile", default, skip_serializing_if = "String::is_empty")]
    pub cert_file: String,
    /// dockerd's client key.
    #[serde(rename = "KeyFile", default, skip_serializing_if = "String::is_empty")]
    pub key_file: String,
}

/// A spec file to write: `NAME.spec` with a URL, or `NAME.json` with a [`PluginSpec`].
///
/// ```
/// use docker_plugin_sdk::spec::SpecFile;
/// let dir = tempfile::tempdir().unwrap();
/// let spec = SpecFile::url("myplugin", "tcp://127.0.0.1:8080").dir(dir.path());
/// let written = spec.write().unwrap();
/// assert_eq!(std::fs::read_to_string(dir.path().join("myplugin.spec")).unwrap(), "tcp://127.0.0.1:8080\n");
/// written.remove();
/// assert!(!dir.path().join("myplugin.spec").exists());
/// ```
#[derive(Debug, Clone)]
pub struct SpecFile {
    name: String,
    dir: PathBuf,
    content: Content,
}

#[derive(Debug, Clone)]
enum Content {
    Url(String),
    Json(PluginSpec),
}

impl SpecFile {
    /// `NAME.spec` holding `url` (`unix:///path.sock` or `tcp://host:port`), in
    /// `/etc/docker/plugins` unless [`dir`](Self::dir) says otherwise.
    pub fn url(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            dir: PathBuf::from(DEFAULT_SPEC_DIR),
            content: Content::Url(url.into()),
        }
    }

    /// `NAME.json` holding `spec` (its `Name` is set to `name`).
    pub fn json(name: impl Into<String>, mut spec: PluginSpec) -> Self {
        let name = name.into();
        spec.name.clone_from(&name);
        Self {
            name,
            dir: PathBuf::from(DEFAULT_SPEC_DIR),
            content: Content::Json(spec),
        }
    }

    /// Writes into `dir` instead (e.g. `/usr/lib/docker/plugins`).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = dir.into();
        self
    }

    /// The file's path.
    pub fn path(&self) -> PathBuf {
        let extension = match self.content {
            Content::Url(_) => "spec",
            Content::Json(_) => "json",
        };
        self.dir.join(format!("{}.{extension}", self.name))
    }

    fn render(&self) -> Result<Vec<u8>, ServeError> {
        match &self.content {
            Content::Url(url) => {
                if !url.contains("://") {
                    return Err(ServeError::io(
                        format!("spec file for {}", self.name),
                        io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!("{url:?} has no scheme: use unix://, tcp:// or https://"),
                        ),
                    ));
                }
                Ok(format!("{url}\n").into_bytes())
            }
            Content::Json(spec) => {
                let mut bytes = serde_json::to_vec_pretty(spec).map_err(|e| {
                    ServeError::io(format!("encoding spec for {}", self.name), e.into())
                })?;
                bytes.push(b'\n');
                Ok(bytes)
            }
        }
    }

    /// Writes the file atomically (creating the directory if missing).
    pub fn write(&self) -> Result<WrittenSpec, ServeError> {
        validate_name(&self.name)?;
        let bytes = self.render()?;
        let path = self.path();
        let (dev, ino) = write_atomically(&path, &bytes)
            .map_err(|e| ServeError::io(format!("writing spec file {}", path.display()), e))?;
        tracing::info!(path = %path.display(), "wrote spec file");
        Ok(WrittenSpec {
            path,
            dev,
            ino,
            bytes,
        })
    }
}

/// A spec file this process wrote.
#[derive(Debug)]
pub struct WrittenSpec {
    path: PathBuf,
    /// The file's identity and content, to recognise it at removal.
    dev: u64,
    ino: u64,
    bytes: Vec<u8>,
}

impl WrittenSpec {
    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file, unless another process has replaced it since (even with the
    /// same content) or changed it.
    pub fn remove(self) {
        let ours = fs::symlink_metadata(&self.path)
            .is_ok_and(|now| now.dev() == self.dev && now.ino() == self.ino)
            && fs::read(&self.path).is_ok_and(|now| now == self.bytes);
        if ours && let Err(err) = fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), %err, "could not remove spec file");
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory, so that a
/// reader sees the old content or the new one, never half of it. Returns the device and
/// inode of the file written (taken before the rename, so that they are this file's
/// even if another process replaces it at once).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<(u64, u64)> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        let written = file.metadata()?;
        fs::rename(&temp, path)?;
        // Make the rename itself durable.
        fs::File::open(dir)?.sync_all()?;
        Ok((written.dev(), written.ino()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_spec_uses_docker_field_names() {
        let dir = tempfile::tempdir().unwrap();
        let spec = SpecFile::json(
            "secure",
            PluginSpec {
                addr: "https://127.0.0.1:8443".into(),
                tls_config: Some(TlsClientConfig {
                    ca_file: "/etc/ca.pem".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .dir(dir.path());
        let written = spec.write().unwrap();
        let value: serde_json::Value =
            serde_json::from_slice(&fs::read(written.path()).unwrap()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "Name": "secure",
                "Addr": "https://127.0.0.1:8443",
                "TLSConfig": {"InsecureSkipVerify": false, "CAFile": "/etc/ca.pem"}
            })
        );
    }

    #[test]
    fn url_without_scheme_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = SpecFile::url("p", "127.0.0.1:80")
            .dir(dir.path())
            .write()
            .unwrap_err();
        assert!(err.to_string().contains("has no scheme"), "{err}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_spec_rewritten_with_the_same_content_by_another_instance_is_not_removed() {
        let dir = tempfile::tempdir().unwrap();
        let spec = SpecFile::url("p", "tcp://127.0.0.1:1").dir(dir.path());
        let first = spec.write().unwrap();
        let second = spec.write().unwrap();
        let path = first.path().to_path_buf();
        first.remove();
        assert!(path.exists(), "the second instance's file was removed");
        second.remove();
        assert!(!path.exists());
    }

    #[test]
    fn a_replaced_spec_is_not_removed() {
        let dir = tempfile::tempdir().unwrap();
        let written = SpecFile::url("p", "tcp://127.0.0.1:1")
            .dir(dir.path())
            .write()
            .unwrap();
        fs::write(written.path(), "tcp://127.0.0.1:2\n").unwrap();
        let path = written.path().to_path_buf();
        written.remove();
        assert!(path.exists());
    }
}
