//! Registries for the packager's end-to-end tests: Debian's `docker-registry`
//! (distribution 2.8) on loopback, or on a host of its own behind TLS, with an
//! htpasswd login or a token server.
//!
//! - [`Registry::start`]: plain HTTP on `127.0.0.1`, optionally with basic auth.
//! - [`Registry::start_tls`]: in a network namespace of its own (a veth pair,
//!   `10.213.N.2`), so neither dockerd nor `push` treats it as dockerd's insecure
//!   `127.0.0.0/8`: HTTPS verified with a test CA placed in
//!   `/etc/docker/certs.d/HOST:PORT/ca.crt` (removed on drop), optionally requiring a
//!   client certificate (`client.cert`/`client.key` there), with basic auth or a
//!   [`TokenServer`].
//!
//! The token service is [`super::token_server`].

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libtest_mimic::Failed;

pub use super::token_server::TokenServer;

/// Where dockerd and `push` look for a registry's certificates.
pub const CERTS_D: &str = "/etc/docker/certs.d";

fn check(condition: bool, message: impl FnOnce() -> String) -> Result<(), Failed> {
    if condition {
        Ok(())
    } else {
        Err(message().into())
    }
}

fn run(command: &mut Command) -> Result<(), Failed> {
    let out = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    check(out.status.success(), || {
        format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })
}

/// A network namespace with a veth pair: the registry's own host.
pub struct Netns {
    name: String,
    /// The address of the registry's host, in the namespace.
    pub addr: String,
}

impl Netns {
    /// `dpsreg<pid>`, with `10.213.N.1/30` on the host side and `10.213.N.2/30` in it.
    pub fn create() -> Result<Self, Failed> {
        let pid = std::process::id();
        let name = format!("dpsreg{pid}");
        let n = pid % 250;
        let (host_if, ns_if) = (format!("dpr{pid}h"), format!("dpr{pid}n"));
        let ns = Self {
            name: name.clone(),
            addr: format!("10.213.{n}.2"),
        };
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run(Command::new("ip").args(["netns", "add", &name]))?;
        run(Command::new("ip").args([
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
        ]))?;
        run(Command::new("ip").args(["link", "set", &ns_if, "netns", &name]))?;
        run(Command::new("ip").args([
            "addr",
            "add",
            &format!("10.213.{n}.1/30"),
            "dev",
            &host_if,
        ]))?;
        run(Command::new("ip").args(["link", "set", &host_if, "up"]))?;
        let exec = |args: &[&str]| {
            let mut command = Command::new("ip");
            command.args(["netns", "exec", &name]).args(args);
            run(&mut command)
        };
        exec(&[
            "ip",
            "addr",
            "add",
            &format!("10.213.{n}.2/30"),
            "dev",
            &ns_if,
        ])?;
        exec(&["ip", "link", "set", &ns_if, "up"])?;
        exec(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes the veth pair.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A test CA and a server certificate for an IP address, signed by it.
pub struct TestCa {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    ca: rcgen::CertifiedKey,
}

impl TestCa {
    pub fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "dps test CA");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("CA");
        Self {
            ca_pem: cert.pem(),
            ca: rcgen::CertifiedKey {
                cert,
                key_pair: key,
            },
        }
    }

    /// A certificate for `ip` (server) or `name` (client): cert PEM, key PEM.
    pub fn issue(&self, ip: Option<&str>, name: &str) -> (String, String) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        if let Some(ip) = ip {
            params
                .subject_alt_names
                .push(rcgen::SanType::IpAddress(ip.parse().expect("ip")));
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        } else {
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        }
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &self.ca.cert, &self.ca.key_pair)
            .expect("sign");
        (cert.pem(), key.serialize_pem())
    }
}

/// How a registry wants its clients to log in.
pub enum Login<'a> {
    /// Anonymous.
    None,
    /// HTTP basic, htpasswd.
    Basic(&'a str, &'a str),
    /// Bearer tokens from this server.
    Token(&'a TokenServer),
}

/// Debian's `docker-registry`.
pub struct Registry {
    child: Child,
    /// `HOST:PORT`.
    pub host: String,
    /// Where its certificates are for clients (removed on drop).
    certs_d: Option<PathBuf>,
    dir: tempfile::TempDir,
    _netns: Option<Arc<Netns>>,
}

fn program() -> Result<&'static str, Failed> {
    ["/usr/bin/docker-registry", "/usr/sbin/docker-registry"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| "docker-registry is not installed (run scripts/install-test-deps)".into())
}

fn htpasswd(dir: &Path, user: &str, password: &str) -> Result<PathBuf, Failed> {
    let out = Command::new("htpasswd")
        .args(["-Bbn", user, password])
        .output()
        .map_err(|e| {
            format!("htpasswd: {e} (install apache2-utils, e.g. with scripts/install-test-deps)")
        })?;
    check(out.status.success(), || "htpasswd failed".into())?;
    let path = dir.join("htpasswd");
    fs::write(&path, &out.stdout)?;
    Ok(path)
}

impl Registry {
    /// Plain HTTP on a free loopback port.
    pub fn start() -> Result<Self, Failed> {
        Self::start_with_login(None)
    }

    /// With `login`, the registry wants it (htpasswd, HTTP basic authentication).
    pub fn start_with_login(login: Option<(&str, &str)>) -> Result<Self, Failed> {
        let dir = tempfile::tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut yaml = base_yaml(dir.path(), &format!("127.0.0.1:{port}"));
        if let Some((user, password)) = login {
            let path = htpasswd(dir.path(), user, password)?;
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: dps-test\n    path: {}\n",
                path.display()
            ));
        }
        Self::spawn(dir, yaml, format!("127.0.0.1:{port}"), None, None, false)
    }

    /// HTTPS on `netns`'s address, its CA in `/etc/docker/certs.d/HOST:PORT/ca.crt`
    /// (and a client certificate there when `client_cert`), with `login`.
    pub fn start_tls(
        netns: &Arc<Netns>,
        ca: &TestCa,
        port: u16,
        login: Login<'_>,
        client_cert: bool,
    ) -> Result<Self, Failed> {
        let dir = tempfile::tempdir()?;
        let host = format!("{}:{port}", netns.addr);
        let (cert, key) = ca.issue(Some(&netns.addr), "dps test registry");
        let (cert_path, key_path, ca_path) = (
            dir.path().join("server.crt"),
            dir.path().join("server.key"),
            dir.path().join("ca.crt"),
        );
        fs::write(&cert_path, cert)?;
        fs::write(&key_path, key)?;
        fs::write(&ca_path, &ca.ca_pem)?;
        let mut yaml = base_yaml(dir.path(), &host);
        yaml.push_str(&format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            cert_path.display(),
            key_path.display()
        ));
        if client_cert {
            yaml.push_str(&format!("    clientcas:\n      - {}\n", ca_path.display()));
        }
        match login {
            Login::None => {}
            Login::Basic(user, password) => {
                let path = htpasswd(dir.path(), user, password)?;
                yaml.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: dps-test\n    path: {}\n",
                    path.display()
                ));
            }
            Login::Token(server) => {
                let bundle = dir.path().join("token.crt");
                fs::write(&bundle, &server.cert_pem)?;
                yaml.push_str(&format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    server.realm(),
                    TokenServer::SERVICE,
                    TokenServer::ISSUER,
                    bundle.display()
                ));
            }
        }
        // The certificates dockerd and `push` read for this registry.
        let certs_d = Path::new(CERTS_D).join(&host);
        fs::create_dir_all(&certs_d)?;
        fs::write(certs_d.join("ca.crt"), &ca.ca_pem)?;
        if client_cert {
            let (cert, key) = ca.issue(None, "dps test client");
            fs::write(certs_d.join("client.cert"), cert)?;
            fs::write(certs_d.join("client.key"), key)?;
        }
        Self::spawn(
            dir,
            yaml,
            host,
            Some(certs_d),
            Some(Arc::clone(netns)),
            true,
        )
    }

    fn spawn(
        dir: tempfile::TempDir,
        yaml: String,
        host: String,
        certs_d: Option<PathBuf>,
        netns: Option<Arc<Netns>>,
        tls: bool,
    ) -> Result<Self, Failed> {
        let config = dir.path().join("config.yml");
        fs::write(&config, yaml)?;
        let log = fs::File::create(dir.path().join("registry.log"))?;
        let mut command = match &netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &ns.name, program()?]);
                c
            }
            None => Command::new(program()?),
        };
        let child = command
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut registry = Self {
            child,
            host,
            certs_d,
            dir,
            _netns: netns,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let up = if tls {
                TcpStream::connect(&registry.host).is_ok()
            } else {
                // 200, or 401 when it wants a login: either way it serves.
                registry
                    .get("/v2/")
                    .is_ok_and(|r| r.starts_with("HTTP/1.1 200") || r.starts_with("HTTP/1.1 401"))
            };
            if up {
                return Ok(registry);
            }
            if let Ok(Some(status)) = registry.child.try_wait() {
                return Err(
                    format!("docker-registry exited with {status}: {}", registry.log()).into(),
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("docker-registry did not answer: {}", registry.log()).into())
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.host
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_default()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// A raw plain-HTTP `GET path` (status line, headers and body).
    pub fn get(&self, path: &str) -> std::io::Result<String> {
        Ok(String::from_utf8_lossy(&self.get_bytes(path)?).into_owned())
    }

    pub fn get_bytes(&self, path: &str) -> std::io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(&self.host)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/vnd.docker.distribution.manifest.v2+json\r\nConnection: close\r\n\r\n"
        )?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply)?;
        Ok(reply)
    }

    /// A raw plain-HTTP request with a body.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(&self.host)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        stream.write_all(body)?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply)?;
        Ok(String::from_utf8_lossy(&reply).into_owned())
    }

    /// `GET path`, its body parsed as JSON.
    pub fn json(&self, path: &str) -> Result<serde_json::Value, Failed> {
        Ok(serde_json::from_slice(&self.body(path)?)?)
    }

    /// The body of a `200` answer to `GET path`.
    pub fn body(&self, path: &str) -> Result<Vec<u8>, Failed> {
        let reply = self.get_bytes(path)?;
        let split = reply
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| format!("GET {path}: no body"))?;
        let head = String::from_utf8_lossy(&reply[..split]);
        check(head.starts_with("HTTP/1.1 200"), || {
            format!("GET {path}: {head}")
        })?;
        check(
            !head
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            || format!("GET {path}: chunked answers are not decoded here"),
        )?;
        Ok(reply[split + 4..].to_vec())
    }
}

fn base_yaml(dir: &Path, addr: &str) -> String {
    format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
        dir.join("data").display()
    )
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.certs_d {
            let _ = fs::remove_dir_all(dir);
            // certs.d itself too, when no other registry's certificates are left.
            let _ = fs::remove_dir(CERTS_D);
        }
    }
}
