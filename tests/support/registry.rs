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
//! - [`TokenServer`]: an axum token service on `127.0.0.1` that checks the login
//!   (basic, OAuth2 `password` and `refresh_token` grants) and grants only scopes of
//!   the `repository(plugin)` class, signing ES256 tokens the registry checks
//!   against its certificate; it records every scope asked for.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use libtest_mimic::Failed;

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

/// A token service as distribution's token auth expects one.
pub struct TokenServer {
    port: u16,
    /// The signing certificate (the registry's `rootcertbundle`).
    pub cert_pem: String,
    /// Every `scope` asked for, in order, with the grant used (`basic`,
    /// `password`, `refresh_token`).
    pub asked: Arc<Mutex<Vec<(String, String)>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

struct TokenState {
    user: String,
    password: String,
    refresh_token: String,
    key: ring::signature::EcdsaKeyPair,
    cert_der: Vec<u8>,
    asked: Arc<Mutex<Vec<(String, String)>>>,
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl TokenServer {
    pub const SERVICE: &'static str = "dps-registry";
    pub const ISSUER: &'static str = "dps-token-issuer";

    /// Serves on a free loopback port; logs in `user`/`password`, or the OAuth2
    /// `refresh_token`.
    pub fn start(user: &str, password: &str, refresh_token: &str) -> Result<Self, Failed> {
        use axum::routing::get;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "dps token signer");
        let cert = params.self_signed(&key)?;
        let ring_key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &ring::rand::SystemRandom::new(),
        )
        .map_err(|e| format!("signing key: {e}"))?;
        let asked = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(TokenState {
            user: user.into(),
            password: password.into(),
            refresh_token: refresh_token.into(),
            key: ring_key,
            cert_der: cert.der().to_vec(),
            asked: Arc::clone(&asked),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let port = listener.local_addr()?.port();
        let app = axum::Router::new()
            .route("/token", get(token_get).post(token_post))
            .with_state(state);
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            port,
            cert_pem: cert.pem(),
            asked,
            runtime: Some(runtime),
        })
    }

    /// Its URL, the registry's `realm`.
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// The scopes asked for so far.
    pub fn asked(&self) -> Vec<(String, String)> {
        self.asked.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// `TYPE:NAME:ACTIONS` granted when TYPE is `repository(plugin)`: the registry
/// itself checks `repository` access, so the class is the token server's rule.
fn grants(scopes: &[String]) -> Vec<serde_json::Value> {
    let mut access = Vec::new();
    for scope in scopes.iter().flat_map(|s| s.split(' ')) {
        let (Some((kind, rest)), true) = (scope.split_once(':'), scope.matches(':').count() >= 2)
        else {
            continue;
        };
        let Some((name, actions)) = rest.rsplit_once(':') else {
            continue;
        };
        if kind == "repository(plugin)" {
            access.push(serde_json::json!({
                "type": "repository",
                "class": "plugin",
                "name": name,
                "actions": actions.split(',').collect::<Vec<_>>(),
            }));
        }
    }
    access
}

fn issue(state: &TokenState, subject: &str, scopes: &[String]) -> axum::response::Response {
    use axum::response::IntoResponse;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let header = serde_json::json!({
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(&state.cert_der)],
    });
    let claims = serde_json::json!({
        "iss": TokenServer::ISSUER,
        "sub": subject,
        "aud": TokenServer::SERVICE,
        "exp": now + 600,
        "nbf": now - 60,
        "iat": now,
        "jti": format!("{now}-{}", scopes.len()),
        "access": grants(scopes),
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let Ok(signature) = state
        .key
        .sign(&ring::rand::SystemRandom::new(), signing_input.as_bytes())
    else {
        return (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "signing failed",
        )
            .into_response();
    };
    let token = format!("{signing_input}.{}", b64url(signature.as_ref()));
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        serde_json::json!({
            "token": token,
            "access_token": token,
            "expires_in": 600,
        })
        .to_string(),
    )
        .into_response()
}

fn record(state: &TokenState, grant: &str, scopes: &[String]) {
    let mut asked = state.asked.lock().unwrap_or_else(|p| p.into_inner());
    for scope in scopes {
        asked.push((grant.to_owned(), scope.clone()));
    }
}

/// `GET /token?scope=…&service=…` with HTTP basic authentication.
async fn token_get(
    axum::extract::State(state): axum::extract::State<Arc<TokenState>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let scopes: Vec<String> = form_pairs(query.as_deref().unwrap_or_default())
        .into_iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v)
        .collect();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", state.user, state.password))
    );
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth != expected {
        return (axum::http::StatusCode::UNAUTHORIZED, "bad login").into_response();
    }
    record(&state, "basic", &scopes);
    issue(&state, &state.user, &scopes)
}

/// `POST /token`, OAuth2 form: the `password` and `refresh_token` grants.
async fn token_post(
    axum::extract::State(state): axum::extract::State<Arc<TokenState>>,
    body: String,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let form = form_pairs(&body);
    let field = |key: &str| {
        form.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let scopes: Vec<String> = field("scope").split(' ').map(str::to_owned).collect();
    let grant = field("grant_type");
    let ok = match grant.as_str() {
        "password" => field("username") == state.user && field("password") == state.password,
        "refresh_token" => field("refresh_token") == state.refresh_token,
        _ => false,
    };
    if !ok {
        return (axum::http::StatusCode::UNAUTHORIZED, "bad login").into_response();
    }
    record(&state, &grant, &scopes);
    issue(&state, &state.user, &scopes)
}

/// `a=b&c=d`, percent- and `+`-decoded.
fn form_pairs(text: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%'
                && i + 2 < bytes.len()
                && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
            {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}
