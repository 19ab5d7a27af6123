//! Plugin discovery as dockerd's `pkg/plugins` does it for legacy ("v1") plugins:
//! `SOCKETS/NAME.sock`, `SOCKETS/NAME/NAME.sock` (must be a socket), then in each spec
//! dir `NAME.spec`, `NAME/NAME.spec`, `NAME.json`, `NAME/NAME.json`; first hit wins.
//! A `.spec` holds a URL (no scheme is "Unknown protocol"); a `.json` holds
//! `{Addr, TLSConfig}` and its name comes from the file name. Listing (moby's `Scan`)
//! looks one level deep and only at `.sock` sockets (`NAME.sock`, `NAME/NAME.sock`) and
//! `.spec` / `.json` files (`NAME.spec`, `NAME/NAME.json`, …). Checked against moby
//! v20.10.24 `pkg/plugins/discovery.go`.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::harness::error::HarnessError;
use crate::spec::{DEFAULT_SPEC_DIR, LIB_SPEC_DIR, PluginSpec};
use crate::transport::DEFAULT_SOCKET_DIR;

/// Where plugins are looked up: stand-ins for dockerd's directories
/// ([`rooted`](Self::rooted)), or, asked for by name, the machine's own
/// ([`system`](Self::system)). There is no default.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// Stands for `/run/docker/plugins`.
    pub socket_dir: PathBuf,
    /// Stand for `/etc/docker/plugins` and `/usr/lib/docker/plugins`, in that order.
    pub spec_dirs: Vec<PathBuf>,
}

/// Where a discovered plugin listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The plugin name.
    pub name: String,
    /// Its address: `unix:///…`, `tcp://…` or `https://…`.
    pub addr: String,
    /// The file it was found through.
    pub path: PathBuf,
    /// The `.json` spec's TLS settings, if any.
    pub tls: Option<crate::spec::TlsClientConfig>,
}

impl Discovery {
    /// dockerd's own directories on this machine: `/run/docker/plugins`,
    /// `/etc/docker/plugins`, `/usr/lib/docker/plugins`. Shared by every dockerd and
    /// test on the machine: a test should use [`rooted`](Self::rooted).
    pub fn system() -> Self {
        Self {
            socket_dir: PathBuf::from(DEFAULT_SOCKET_DIR),
            spec_dirs: vec![PathBuf::from(DEFAULT_SPEC_DIR), PathBuf::from(LIB_SPEC_DIR)],
        }
    }

    /// Discovery rooted in `root`: `root/run/docker/plugins`, `root/etc/docker/plugins`
    /// and `root/usr/lib/docker/plugins`, so a test never touches the real ones.
    pub fn rooted(root: impl AsRef<Path>) -> Self {
        let root = root.as_ref();
        Self {
            socket_dir: root.join("run/docker/plugins"),
            spec_dirs: vec![
                root.join("etc/docker/plugins"),
                root.join("usr/lib/docker/plugins"),
            ],
        }
    }

    /// Finds plugin `name` (one look, no retry; the engine retries like dockerd).
    pub fn find(&self, name: &str) -> Result<Found, HarnessError> {
        for path in candidates(&self.socket_dir, name, "sock") {
            if fs::metadata(&path).is_ok_and(|m| m.file_type().is_socket()) {
                return Ok(Found {
                    name: name.to_owned(),
                    addr: format!("unix://{}", path.display()),
                    path,
                    tls: None,
                });
            }
        }
        for dir in &self.spec_dirs {
            let specs = candidates(dir, name, "spec");
            let jsons = candidates(dir, name, "json");
            for path in specs.into_iter().chain(jsons) {
                if fs::metadata(&path).is_err() {
                    continue;
                }
                return if path.extension().is_some_and(|e| e == "json") {
                    read_json_spec(name, path)
                } else {
                    read_url_spec(name, path)
                };
            }
        }
        Err(HarnessError::PluginNotFound {
            name: name.to_owned(),
        })
    }

    /// Every plugin name found, as dockerd's `Scan`: in the socket dir, each socket
    /// (its name without its extension) and each dir `NAME` holding a socket
    /// `NAME.sock`; in each spec dir, each `.spec` or `.json` file and each dir `NAME`
    /// whose file `NAME.<ext>` (the first, by name) is one. Nothing deeper. Sorted,
    /// duplicates removed.
    pub fn scan(&self) -> Vec<String> {
        let mut names = Vec::new();
        for (path, file_type) in entries(&self.socket_dir) {
            let file_type = if file_type.is_dir() {
                match fs::metadata(path.join(format!("{}.sock", file_name(&path)))) {
                    Ok(meta) => meta.file_type(),
                    Err(_) => continue,
                }
            } else {
                file_type
            };
            if file_type.is_socket() {
                names.push(stem(&path));
            }
        }
        for dir in &self.spec_dirs {
            for (mut path, file_type) in entries(dir) {
                if file_type.is_dir() {
                    let name = file_name(&path);
                    if let Some((inner, _)) = entries(&path)
                        .into_iter()
                        .find(|(inner, _)| stem(inner) == name)
                    {
                        path = inner;
                    }
                }
                if path.extension().is_some_and(|e| e == "spec" || e == "json") {
                    names.push(stem(&path));
                }
            }
        }
        names.sort();
        names.dedup();
        names
    }
}

/// The entries of `dir`, sorted by name (Go's `os.ReadDir`), with their own type
/// (symlinks not followed).
fn entries(dir: &Path) -> Vec<(PathBuf, fs::FileType)> {
    let Ok(read) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, fs::FileType)> = read
        .flatten()
        .filter_map(|e| Some((e.path(), e.file_type().ok()?)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn candidates(base: &Path, name: &str, ext: &str) -> [PathBuf; 2] {
    [
        base.join(format!("{name}.{ext}")),
        base.join(name).join(format!("{name}.{ext}")),
    ]
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn read_url_spec(name: &str, path: PathBuf) -> Result<Found, HarnessError> {
    let text = fs::read_to_string(&path)
        .map_err(|e| HarnessError::io(format!("reading {}", path.display()), e))?;
    let addr = text.trim().to_owned();
    match addr.split_once("://") {
        Some((scheme, _)) if !scheme.is_empty() => Ok(Found {
            name: name.to_owned(),
            addr,
            path,
            tls: None,
        }),
        _ => Err(HarnessError::BadSpec {
            path,
            problem: "Unknown protocol".into(),
        }),
    }
}

fn read_json_spec(name: &str, path: PathBuf) -> Result<Found, HarnessError> {
    let bytes =
        fs::read(&path).map_err(|e| HarnessError::io(format!("reading {}", path.display()), e))?;
    let spec: PluginSpec = serde_json::from_slice(&bytes).map_err(|e| HarnessError::BadSpec {
        path: path.clone(),
        problem: e.to_string(),
    })?;
    // dockerd: without a CAFile, the server certificate is not verified.
    let tls = spec.tls_config.map(|mut tls| {
        if tls.ca_file.is_empty() {
            tls.insecure_skip_verify = true;
        }
        tls
    });
    Ok(Found {
        name: name.to_owned(),
        addr: spec.addr,
        path,
        tls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn follows_dockerds_order() {
        let root = tempfile::tempdir().unwrap();
        let d = Discovery::rooted(root.path());
        fs::create_dir_all(&d.spec_dirs[0]).unwrap();
        fs::create_dir_all(&d.spec_dirs[1]).unwrap();
        fs::create_dir_all(d.socket_dir.join("p")).unwrap();
        assert!(matches!(
            d.find("p"),
            Err(HarnessError::PluginNotFound { .. })
        ));

        fs::write(d.spec_dirs[1].join("p.spec"), "tcp://127.0.0.1:9\n").unwrap();
        assert_eq!(d.find("p").unwrap().addr, "tcp://127.0.0.1:9");
        fs::write(
            d.spec_dirs[0].join("p.json"),
            r#"{"Addr":"tcp://127.0.0.1:8"}"#,
        )
        .unwrap();
        assert_eq!(d.find("p").unwrap().addr, "tcp://127.0.0.1:8");
        fs::write(d.spec_dirs[0].join("p.spec"), "tcp://127.0.0.1:7").unwrap();
        assert_eq!(d.find("p").unwrap().addr, "tcp://127.0.0.1:7");
        // A regular file named like a socket is not a socket.
        fs::write(d.socket_dir.join("p.sock"), "").unwrap();
        assert_eq!(d.find("p").unwrap().addr, "tcp://127.0.0.1:7");
        let _l = UnixListener::bind(d.socket_dir.join("p/p.sock")).unwrap();
        assert!(d.find("p").unwrap().addr.ends_with("/p/p.sock"));
        assert_eq!(d.scan(), ["p"]);
    }

    #[test]
    fn listing_looks_one_level_deep_at_sockets_specs_and_jsons_only() {
        let root = tempfile::tempdir().unwrap();
        let d = Discovery::rooted(root.path());
        let spec = &d.spec_dirs[0];
        for dir in [&d.socket_dir, spec] {
            fs::create_dir_all(dir.join("deep/deeper")).unwrap();
        }
        let _a = UnixListener::bind(d.socket_dir.join("a.sock")).unwrap();
        let _b = UnixListener::bind(d.socket_dir.join("deep/deeper/b.sock")).unwrap();
        fs::create_dir_all(d.socket_dir.join("c")).unwrap();
        let _c = UnixListener::bind(d.socket_dir.join("c/c.sock")).unwrap();
        fs::write(d.socket_dir.join("notasocket.sock"), "").unwrap();
        fs::write(spec.join("e.spec"), "tcp://127.0.0.1:1").unwrap();
        fs::write(spec.join("f.json"), "{}").unwrap();
        fs::write(spec.join("g.txt"), "tcp://127.0.0.1:1").unwrap();
        fs::write(spec.join("deep/deeper/h.spec"), "tcp://127.0.0.1:1").unwrap();
        fs::create_dir_all(spec.join("i")).unwrap();
        fs::write(spec.join("i/i.json"), "{}").unwrap();
        assert_eq!(d.scan(), ["a", "c", "e", "f", "i"]);
    }

    #[test]
    fn spec_without_scheme_is_unknown_protocol() {
        let root = tempfile::tempdir().unwrap();
        let d = Discovery::rooted(root.path());
        fs::create_dir_all(&d.spec_dirs[0]).unwrap();
        fs::write(d.spec_dirs[0].join("x.spec"), "/run/x.sock").unwrap();
        let err = d.find("x").unwrap_err();
        assert!(err.to_string().contains("Unknown protocol"), "{err}");
    }

    #[test]
    fn json_spec_without_ca_skips_verification() {
        let root = tempfile::tempdir().unwrap();
        let d = Discovery::rooted(root.path());
        fs::create_dir_all(&d.spec_dirs[0]).unwrap();
        fs::write(
            d.spec_dirs[0].join("t.json"),
            r#"{"Name":"ignored","Addr":"https://h:1","TLSConfig":{"CertFile":"c"}}"#,
        )
        .unwrap();
        let found = d.find("t").unwrap();
        assert_eq!(found.name, "t");
        assert!(found.tls.unwrap().insecure_skip_verify);
    }
}
