//! One conversation with a registry, as dockerd has it: the endpoint chosen by
//! pinging `/v2/` (HTTPS; after it plain HTTP where dockerd allows it), the
//! authentication a `401` asks for, retries of what failed on the way, and the blob
//! and manifest calls push and pull make.
//!
//! Endpoints (moby v20.10.24 `registry/service_v2.go`, `lookupV2Endpoints`):
//!
//! | registry | tried |
//! |---|---|
//! | any | `https://` verified with the system's roots and `/etc/docker/certs.d/HOST/` |
//! | insecure by default (`127.0.0.0/8`, see [`Reference::is_insecure_by_default`]) | `https://` not verified, then `http://` |
//! | `--insecure-skip-tls-verify` | `https://` not verified |
//! | `--plain-http` | `http://` |
//!
//! A request that fails with a `5xx` status or a broken connection (reset, closed
//! before the answer) is sent again, up to [`Connect::attempts`] times with a
//! doubling delay; a blob upload starts over from its first byte, read again from
//! disk.

use std::cell::RefCell;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use ureq::http::Response;
use ureq::{Body, SendBody};

use super::auth::{Challenge, merged_scopes, plugin_scope, token_from, token_request};
use super::credentials::Credentials;
use super::reference::Reference;
use super::tls::{CERTS_DIR, tls_config};
use crate::package::PackageError;

/// How to reach and log in to a registry.
#[derive(Debug, Clone)]
pub struct Connect {
    /// The login (default: what `docker login` stored, see
    /// [`Credentials::from_docker_config`]).
    pub credentials: Option<Credentials>,
    /// `--plain-http`: speak plain HTTP, whatever the registry.
    pub plain_http: bool,
    /// `--insecure-skip-tls-verify`: HTTPS without checking the certificate.
    pub insecure_skip_tls_verify: bool,
    /// Where the registries' certificates are (default [`CERTS_DIR`]).
    pub certs_dir: PathBuf,
    /// How many times a request is sent before a `5xx` or a broken connection is
    /// an error (default 4).
    pub attempts: u32,
    /// The delay before the first retry, doubled after each (default 500 ms).
    pub retry_delay: Duration,
}

impl Default for Connect {
    fn default() -> Self {
        Self {
            credentials: None,
            plain_http: false,
            insecure_skip_tls_verify: false,
            certs_dir: PathBuf::from(CERTS_DIR),
            attempts: 4,
            retry_delay: Duration::from_millis(500),
        }
    }
}

/// What happens to a blob, for progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transfer {
    /// The registry has it already: nothing to send.
    Exists {
        /// The blob's digest.
        digest: String,
        /// Its size.
        size: u64,
    },
    /// `done` of `total` bytes sent (or received).
    Bytes {
        /// The blob's digest.
        digest: String,
        /// Bytes so far.
        done: u64,
        /// Its size.
        total: u64,
    },
    /// Sent (or received) whole.
    Done {
        /// The blob's digest.
        digest: String,
    },
    /// A request failed and is sent again.
    Retry {
        /// What was being done.
        what: String,
        /// The attempt about to be made (2 for the first retry).
        attempt: u32,
        /// Why the previous one failed.
        error: String,
    },
}

/// What a request sends.
#[derive(Clone, Copy)]
enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// A blob file of `size` bytes, read again for every attempt; its progress is
    /// reported as [`Transfer::Bytes`] of `digest`.
    File {
        path: &'a Path,
        size: u64,
        digest: &'a str,
    },
}

/// Why a request failed.
enum Failure {
    /// Worth another try (a `5xx`, a broken connection).
    Retry(String),
    /// Final.
    Fatal(PackageError),
}

impl Failure {
    fn into_error(self, attempts: u32) -> PackageError {
        match self {
            Failure::Retry(error) => {
                PackageError::Registry(format!("{error} (after {attempts} attempts)"))
            }
            Failure::Fatal(e) => e,
        }
    }
}

impl From<PackageError> for Failure {
    fn from(e: PackageError) -> Self {
        Failure::Fatal(e)
    }
}

/// A conversation with the registry of one repository.
pub(crate) struct Session<'a> {
    agent: ureq::Agent,
    base: String,
    reference: &'a Reference,
    credentials: Option<Credentials>,
    scope: String,
    authorization: Option<String>,
    attempts: u32,
    retry_delay: Duration,
    notify: RefCell<&'a mut dyn FnMut(Transfer)>,
}

fn agent(tls: ureq::tls::TlsConfig) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(3600)))
        .timeout_connect(Some(Duration::from_secs(30)))
        .tls_config(tls)
        .build()
        .into()
}

/// The endpoints to try, in order: base URL and agent.
fn endpoints(
    reference: &Reference,
    connect: &Connect,
) -> Result<Vec<(String, ureq::Agent)>, PackageError> {
    let https = |verify| -> Result<(String, ureq::Agent), PackageError> {
        Ok((
            format!("https://{}", reference.registry),
            agent(tls_config(&reference.registry, &connect.certs_dir, verify)?),
        ))
    };
    let http = || {
        (
            format!("http://{}", reference.registry),
            agent(ureq::tls::TlsConfig::default()),
        )
    };
    Ok(if connect.plain_http {
        vec![http()]
    } else if connect.insecure_skip_tls_verify {
        vec![https(false)?]
    } else if reference.is_insecure_by_default() {
        vec![https(false)?, http()]
    } else {
        vec![https(true)?]
    })
}

fn login_hint(registry: &str) -> String {
    format!("run `docker login {registry}`, or pass --username and --password-stdin")
}

impl<'a> Session<'a> {
    /// Opens a session on `reference`'s repository for `actions` (`pull` or
    /// `pull,push`): the first endpoint that answers `GET /v2/` is kept, and the
    /// login it asks for is made at once.
    pub(crate) fn open(
        reference: &'a Reference,
        connect: &Connect,
        actions: &str,
        notify: &'a mut dyn FnMut(Transfer),
    ) -> Result<Self, PackageError> {
        let credentials = match &connect.credentials {
            Some(c) => Some(c.clone()),
            None => Credentials::from_docker_config(&reference.registry)?,
        };
        let mut tried = Vec::new();
        for (base, agent) in endpoints(reference, connect)? {
            let url = format!("{base}/v2/");
            let ping = ureq::http::Request::get(&url)
                .body(())
                .map_err(|e| PackageError::Registry(format!("GET {url}: {e}")))?;
            match agent.run(ping) {
                Ok(response) => {
                    let mut session = Self {
                        agent,
                        base,
                        reference,
                        credentials,
                        scope: plugin_scope(&reference.repository, actions),
                        authorization: None,
                        attempts: connect.attempts.max(1),
                        retry_delay: connect.retry_delay,
                        notify: RefCell::new(notify),
                    };
                    if response.status() == 401 {
                        session.authorization = session.authorize(&response, false)?;
                    }
                    return Ok(session);
                }
                Err(e) => tried.push(format!("{url}: {e}")),
            }
        }
        let hint = if connect.plain_http {
            String::new()
        } else if reference.is_insecure_by_default() || connect.insecure_skip_tls_verify {
            " (is a registry listening there?)".to_owned()
        } else {
            format!(
                " (a registry with its own CA: put the CA in {}/{}/ca.crt as for dockerd, \
                 or pass --insecure-skip-tls-verify; a plain-HTTP registry: --plain-http)",
                connect.certs_dir.display(),
                reference.registry
            )
        };
        Err(PackageError::Registry(format!(
            "cannot reach {}: {}{hint}",
            reference.registry,
            tried.join("; ")
        )))
    }

    /// The `Authorization` value answering the `401` `response`; `required` when
    /// the request cannot go on without one.
    fn authorize(
        &mut self,
        response: &Response<Body>,
        required: bool,
    ) -> Result<Option<String>, PackageError> {
        let header = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let challenge = Challenge::parse(header);
        let registry = &self.reference.registry;
        match challenge.scheme.as_str() {
            "basic" => match self.credentials.as_ref().and_then(Credentials::basic) {
                Some(basic) => Ok(Some(basic)),
                None if required => Err(PackageError::Registry(format!(
                    "{registry} needs a login: {}",
                    login_hint(registry)
                ))),
                None => Ok(None),
            },
            "bearer" => self.token(&challenge).map(Some),
            _ if !required => Ok(None),
            _ => Err(PackageError::Registry(format!(
                "{registry} asks for an unsupported authentication: {header:?}"
            ))),
        }
    }

    /// A bearer token for our scope and the challenge's.
    fn token(&mut self, challenge: &Challenge) -> Result<String, PackageError> {
        let scopes = merged_scopes(&self.scope, challenge);
        let request = token_request(challenge, &scopes, self.credentials.as_ref())?;
        let realm = challenge.param("realm").unwrap_or_default().to_owned();
        let mut builder = ureq::http::Request::builder()
            .method(request.method)
            .uri(&request.url);
        if let Some(auth) = &request.authorization {
            builder = builder.header("Authorization", auth);
        }
        let sent = match &request.form {
            Some(form) => builder
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(form.clone().into_bytes()),
            None => builder.body(Vec::new()),
        }
        .map_err(|e| PackageError::Registry(format!("{} {}: {e}", request.method, request.url)))?;
        let mut response = self
            .agent
            .run(sent)
            .map_err(|e| PackageError::Registry(format!("token service {realm}: {e}")))?;
        let status = response.status();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        if status == 401 || status == 403 {
            return Err(PackageError::Registry(format!(
                "the token service {realm} of {} refused the login ({status}): {}",
                self.reference.registry,
                login_hint(&self.reference.registry)
            )));
        }
        if !status.is_success() {
            return Err(PackageError::Registry(format!(
                "token service {realm} answered {status}: {}",
                body.trim()
            )));
        }
        Ok(format!("Bearer {}", token_from(&body, &realm)?))
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.base, self.reference.repository)
    }

    /// One attempt of a request.
    fn attempt(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        payload: Payload<'_>,
    ) -> Result<Response<Body>, Failure> {
        let mut builder = ureq::http::Request::builder().method(method).uri(url);
        if let Some(auth) = &self.authorization {
            builder = builder.header("Authorization", auth);
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let built = |e: ureq::http::Error| {
            Failure::Fatal(PackageError::Registry(format!("{method} {url}: {e}")))
        };
        let result = match payload {
            Payload::Empty => self.agent.run(builder.body(()).map_err(built)?),
            Payload::Bytes(bytes) => self.agent.run(builder.body(bytes).map_err(built)?),
            Payload::File { path, size, digest } => {
                let file = std::fs::File::open(path)
                    .map_err(|e| Failure::Fatal(PackageError::io(path, e)))?;
                let mut progress = |done| {
                    (self.notify.borrow_mut())(Transfer::Bytes {
                        digest: digest.to_owned(),
                        done,
                        total: size,
                    })
                };
                let mut reader = Counting {
                    inner: file,
                    done: 0,
                    progress: &mut progress,
                };
                let request = builder
                    .header("Content-Length", size.to_string())
                    .body(SendBody::from_reader(&mut reader))
                    .map_err(built)?;
                self.agent.run(request)
            }
        };
        match result {
            Ok(response) if response.status().is_server_error() => Err(Failure::Retry(format!(
                "{method} {url}: {}",
                response.status()
            ))),
            Ok(response) => Ok(response),
            Err(e) if retryable(&e) => Err(Failure::Retry(format!("{method} {url}: {e}"))),
            Err(e) => Err(Failure::Fatal(PackageError::Registry(format!(
                "{method} {url}: {e}"
            )))),
        }
    }

    /// Sends a request up to `attempts` times while it fails with a `5xx` or a
    /// broken connection; a `401` is answered once (logging in as it asks).
    fn send_with(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        payload: Payload<'_>,
        attempts: u32,
    ) -> Result<Response<Body>, Failure> {
        let mut delay = self.retry_delay;
        let mut reauthorized = false;
        let mut attempt = 1;
        loop {
            match self.attempt(method, url, headers, payload) {
                Ok(response) if response.status() == 401 && !reauthorized => {
                    reauthorized = true;
                    self.authorization = self.authorize(&response, true)?;
                }
                Ok(response) if response.status() == 401 => {
                    return Err(Failure::Fatal(PackageError::Registry(format!(
                        "{} refused the login for {method} {url}: {}",
                        self.reference.registry,
                        login_hint(&self.reference.registry)
                    ))));
                }
                Ok(response) => return Ok(response),
                Err(Failure::Retry(error)) if attempt < attempts => {
                    attempt += 1;
                    self.retrying(format!("{method} {url}"), attempt, error, &mut delay);
                }
                Err(failure) => return Err(failure),
            }
        }
    }

    /// [`send_with`](Self::send_with) [`Connect::attempts`] times.
    fn send(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        payload: Payload<'_>,
    ) -> Result<Response<Body>, PackageError> {
        let attempts = self.attempts;
        self.send_with(method, url, headers, payload, attempts)
            .map_err(|f| f.into_error(attempts))
    }

    /// Reports a retry and waits before it.
    fn retrying(&self, what: String, attempt: u32, error: String, delay: &mut Duration) {
        (self.notify.borrow_mut())(Transfer::Retry {
            what,
            attempt,
            error,
        });
        std::thread::sleep(*delay);
        *delay *= 2;
    }

    fn fail(&self, what: &str, mut response: Response<Body>) -> PackageError {
        let status = response.status();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        PackageError::Registry(format!(
            "{what} on {}: {status} {}",
            self.reference.registry,
            body.trim()
        ))
    }

    /// Whether the registry has the blob.
    pub(crate) fn blob_exists(&mut self, digest: &str) -> Result<bool, PackageError> {
        let url = self.url(&format!("blobs/{digest}"));
        let response = self.send("HEAD", &url, &[], Payload::Empty)?;
        match response.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.fail(&format!("checking blob {digest}"), response)),
        }
    }

    /// Uploads a blob unless the registry has it: `HEAD`, then `POST` and a
    /// monolithic `PUT …?digest=` whose body is `bytes` or the file, streamed. A
    /// `PUT` that fails with a `5xx` or a broken connection ends its upload: the
    /// whole upload starts over.
    pub(crate) fn upload_blob(
        &mut self,
        digest: &str,
        source: BlobSource<'_>,
    ) -> Result<(), PackageError> {
        let (payload, size) = match source {
            BlobSource::Bytes(bytes) => (Payload::Bytes(bytes), bytes.len() as u64),
            BlobSource::File(path, size) => (Payload::File { path, size, digest }, size),
        };
        if self.blob_exists(digest)? {
            (self.notify.borrow_mut())(Transfer::Exists {
                digest: digest.to_owned(),
                size,
            });
            return Ok(());
        }
        let mut attempt = 1;
        let mut delay = self.retry_delay;
        loop {
            match self.upload_once(digest, payload) {
                Ok(()) => break,
                Err(Failure::Retry(error)) if attempt < self.attempts => {
                    attempt += 1;
                    self.retrying(
                        format!("uploading blob {digest}"),
                        attempt,
                        error,
                        &mut delay,
                    );
                }
                Err(failure) => return Err(failure.into_error(attempt)),
            }
        }
        (self.notify.borrow_mut())(Transfer::Done {
            digest: digest.to_owned(),
        });
        Ok(())
    }

    fn upload_once(&mut self, digest: &str, payload: Payload<'_>) -> Result<(), Failure> {
        let url = self.url("blobs/uploads/");
        let attempts = self.attempts;
        let response = self.send_with("POST", &url, &[], Payload::Empty, attempts)?;
        if response.status() != 202 {
            return Err(self.fail("starting a blob upload", response).into());
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| PackageError::Registry("blob upload without Location".into()))?;
        let mut location = if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location.to_owned()
        };
        location.push(if location.contains('?') { '&' } else { '?' });
        location.push_str("digest=");
        location.push_str(digest);
        let headers = [("Content-Type", "application/octet-stream")];
        let response = self.send_with("PUT", &location, &headers, payload, 1)?;
        if response.status() != 201 {
            return Err(self
                .fail(&format!("uploading blob {digest}"), response)
                .into());
        }
        Ok(())
    }

    /// `PUT /v2/REPO/manifests/TAG`.
    pub(crate) fn put_manifest(
        &mut self,
        tag: &str,
        media_type: &str,
        manifest: &[u8],
    ) -> Result<(), PackageError> {
        let url = self.url(&format!("manifests/{tag}"));
        let response = self.send(
            "PUT",
            &url,
            &[("Content-Type", media_type)],
            Payload::Bytes(manifest),
        )?;
        if response.status() != 201 {
            return Err(self.fail("putting the manifest", response));
        }
        Ok(())
    }

    /// `GET /v2/REPO/manifests/TAG` accepting `accept`: the media type and bytes.
    pub(crate) fn get_manifest(
        &mut self,
        tag: &str,
        accept: &str,
    ) -> Result<(String, Vec<u8>), PackageError> {
        let url = self.url(&format!("manifests/{tag}"));
        let mut response = self.send("GET", &url, &[("Accept", accept)], Payload::Empty)?;
        if response.status() == 404 {
            return Err(PackageError::Registry(format!(
                "{}: manifest unknown (no tag {tag} in {})",
                self.reference, self.reference.repository
            )));
        }
        if response.status() != 200 {
            return Err(self.fail(&format!("getting manifest {tag}"), response));
        }
        let media_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let body = response
            .body_mut()
            .with_config()
            .limit(4 * 1024 * 1024)
            .read_to_vec()
            .map_err(|e| PackageError::Registry(format!("GET {url}: {e}")))?;
        Ok((media_type, body))
    }

    /// Streams blob `digest` into `sink`, checking its digest: its size.
    pub(crate) fn download_blob(
        &mut self,
        digest: &str,
        sink: impl std::io::Write,
    ) -> Result<u64, PackageError> {
        let url = self.url(&format!("blobs/{digest}"));
        let response = self.send("GET", &url, &[], Payload::Empty)?;
        if response.status() != 200 {
            return Err(self.fail(&format!("getting blob {digest}"), response));
        }
        let total = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let reader = response
            .into_body()
            .into_with_config()
            .limit(u64::MAX)
            .reader();
        let notify = &self.notify;
        let (got, size) = copy_hashed(reader, sink, &mut |done| {
            (notify.borrow_mut())(Transfer::Bytes {
                digest: digest.to_owned(),
                done,
                total,
            })
        })
        .map_err(|e| PackageError::Registry(format!("GET {url}: {e}")))?;
        if got != digest {
            return Err(PackageError::Registry(format!(
                "blob {digest} of {} arrived with digest {got}: corrupted on the way, try again",
                self.reference
            )));
        }
        (self.notify.borrow_mut())(Transfer::Done {
            digest: digest.to_owned(),
        });
        Ok(size)
    }
}

/// The content of a blob to upload.
pub(crate) enum BlobSource<'a> {
    /// In memory (the config blob).
    Bytes(&'a [u8]),
    /// A file of this size, streamed (the layer).
    File(&'a Path, u64),
}

/// A reader that reports how much was read.
struct Counting<'a, R> {
    inner: R,
    done: u64,
    progress: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        (self.progress)(self.done);
        Ok(n)
    }
}

/// Whether a transport error is worth another try: the connection broke.
fn retryable(e: &ureq::Error) -> bool {
    use std::io::ErrorKind::*;
    match e {
        ureq::Error::Io(io) => matches!(
            io.kind(),
            ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
        ),
        ureq::Error::Protocol(_) => true,
        _ => false,
    }
}

/// `sha256:<hex>` of what `reader` gives, copied into `sink`.
pub(crate) fn copy_hashed(
    mut reader: impl Read,
    mut sink: impl std::io::Write,
    progress: &mut dyn FnMut(u64),
) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut done = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        sink.write_all(&buf[..n])?;
        done += n as u64;
        progress(done);
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((format!("sha256:{hex}"), done))
}
