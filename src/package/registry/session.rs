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
//! doubling delay. The blob and manifest calls are in `blobs`.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ureq::http::Response;
use ureq::{Body, SendBody};

use super::blobs::Counting;

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
pub(super) enum Payload<'a> {
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
pub(super) enum Failure {
    /// Worth another try (a `5xx`, a broken connection).
    Retry(String),
    /// Final.
    Fatal(PackageError),
}

impl Failure {
    pub(super) fn into_error(self, attempts: u32) -> PackageError {
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
    pub(super) agent: ureq::Agent,
    pub(super) base: String,
    pub(super) reference: &'a Reference,
    credentials: Option<Credentials>,
    scope: String,
    authorization: Option<String>,
    pub(super) attempts: u32,
    pub(super) retry_delay: Duration,
    pub(super) notify: RefCell<&'a mut dyn FnMut(Transfer)>,
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
    pub(super) fn send_with(
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
    pub(super) fn send(
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
    pub(super) fn retrying(&self, what: String, attempt: u32, error: String, delay: &mut Duration) {
        (self.notify.borrow_mut())(Transfer::Retry {
            what,
            attempt,
            error,
        });
        std::thread::sleep(*delay);
        *delay *= 2;
    }

    pub(super) fn fail(&self, what: &str, mut response: Response<Body>) -> PackageError {
        let status = response.status();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        PackageError::Registry(format!(
            "{what} on {}: {status} {}",
            self.reference.registry,
            body.trim()
        ))
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
