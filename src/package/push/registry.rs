//! The HTTP side of `push`: a registry client for the few calls a push makes.
//!
//! The registry API is the distribution spec's: blobs are uploaded with `POST
//! /v2/REPO/blobs/uploads/` then a monolithic `PUT …?digest=…` (skipped when `HEAD`
//! finds them), then `PUT /v2/REPO/manifests/TAG`. A `401` is answered as the
//! `WWW-Authenticate` header asks: `Basic` with the credentials, or `Bearer` by
//! getting a token from the realm (anonymously or with the credentials), for the
//! scope `repository:REPO:pull,push`. Registries on `localhost`, `127.0.0.1` or
//! `::1` are spoken to over plain HTTP, as dockerd does (moby v20.10.24's
//! `registry/config.go` counts loopback among the insecure registries); others over
//! HTTPS.

use std::time::Duration;

use super::MANIFEST_MEDIA_TYPE;
use super::credentials::Credentials;
use super::reference::Reference;
use crate::package::PackageError;

/// One push: the agent, the base URL and the authorization that worked.
pub(super) struct Session<'a> {
    agent: ureq::Agent,
    base: String,
    reference: &'a Reference,
    credentials: Option<Credentials>,
    authorization: Option<String>,
}

type Response = ureq::http::Response<ureq::Body>;

impl<'a> Session<'a> {
    /// A session with the registry of `reference`, over plain HTTP when `insecure`
    /// or the registry is on loopback, logging in with `credentials` when asked.
    pub(super) fn new(
        reference: &'a Reference,
        insecure: bool,
        credentials: Option<Credentials>,
    ) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .into();
        let scheme = if insecure || reference.is_loopback() {
            "http"
        } else {
            "https"
        };
        Self {
            agent,
            base: format!("{scheme}://{}", reference.registry),
            reference,
            credentials,
            authorization: None,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.base, self.reference.repository)
    }

    /// Sends a request, answering one `401` with what `WWW-Authenticate` asks.
    fn send(
        &mut self,
        method: &str,
        url: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Response, PackageError> {
        let response = self.send_once(method, url, content_type, body)?;
        if response.status() != 401 {
            return Ok(response);
        }
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        self.authorization = Some(self.authorize(&challenge)?);
        let response = self.send_once(method, url, content_type, body)?;
        if response.status() == 401 {
            return Err(PackageError::Registry(format!(
                "{} refused the credentials for {method} {url} (log in with `docker login {}` or pass --username and --password-stdin)",
                self.reference.registry, self.reference.registry
            )));
        }
        Ok(response)
    }

    fn send_once(
        &self,
        method: &str,
        url: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Response, PackageError> {
        let mut request = ureq::http::Request::builder().method(method).uri(url);
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        if let Some(ct) = content_type {
            request = request.header("Content-Type", ct);
        }
        let request = request
            .body(body.to_vec())
            .map_err(|e| PackageError::Registry(format!("{method} {url}: {e}")))?;
        self.agent
            .run(request)
            .map_err(|e| PackageError::Registry(format!("{method} {url}: {e}")))
    }

    fn authorize(&self, challenge: &str) -> Result<String, PackageError> {
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return self
                .credentials
                .as_ref()
                .map(Credentials::basic)
                .ok_or_else(|| {
                    PackageError::Registry(format!(
                        "{} needs a login: run `docker login {}` or pass --username and --password-stdin",
                        self.reference.registry, self.reference.registry
                    ))
                });
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(PackageError::Registry(format!(
                "{} asks for an unsupported authentication: {challenge:?}",
                self.reference.registry
            )));
        }
        let params = challenge_params(params);
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                PackageError::Registry(format!("bearer challenge without realm: {challenge:?}"))
            })?;
        let mut url = format!(
            "{realm}?scope=repository:{}:pull,push",
            self.reference.repository
        );
        if let Some((_, service)) = params.iter().find(|(k, _)| k == "service") {
            url.push_str("&service=");
            url.push_str(service);
        }
        let mut request = ureq::http::Request::builder().method("GET").uri(&url);
        if let Some(credentials) = &self.credentials {
            request = request.header("Authorization", credentials.basic());
        }
        let request = request
            .body(Vec::new())
            .map_err(|e| PackageError::Registry(format!("GET {url}: {e}")))?;
        let mut response = self
            .agent
            .run(request)
            .map_err(|e| PackageError::Registry(format!("GET {url}: {e}")))?;
        let status = response.status();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        if !status.is_success() {
            return Err(PackageError::Registry(format!(
                "token service {realm} answered {status}: {body}"
            )));
        }
        let token: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| PackageError::Registry(format!("token service {realm}: {e}")))?;
        let token = token
            .get("token")
            .or_else(|| token.get("access_token"))
            .and_then(|t| t.as_str())
            .ok_or_else(|| {
                PackageError::Registry(format!("token service {realm} gave no token"))
            })?;
        Ok(format!("Bearer {token}"))
    }

    fn fail(&self, what: &str, mut response: Response) -> PackageError {
        let status = response.status();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        PackageError::Registry(format!(
            "{what} on {}: {status} {}",
            self.reference.registry,
            body.trim()
        ))
    }

    /// Uploads a blob unless the registry has it: `HEAD`, then `POST` and a
    /// monolithic `PUT …?digest=`.
    pub(super) fn upload_blob(&mut self, digest: &str, bytes: &[u8]) -> Result<(), PackageError> {
        let url = self.url(&format!("blobs/{digest}"));
        let response = self.send("HEAD", &url, None, &[])?;
        if response.status().is_success() {
            return Ok(());
        }
        let url = self.url("blobs/uploads/");
        let response = self.send("POST", &url, None, &[])?;
        if response.status() != 202 {
            return Err(self.fail("starting a blob upload", response));
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
        let response = self.send("PUT", &location, Some("application/octet-stream"), bytes)?;
        if response.status() != 201 {
            return Err(self.fail(&format!("uploading blob {digest}"), response));
        }
        Ok(())
    }

    /// `PUT /v2/REPO/manifests/TAG`.
    pub(super) fn put_manifest(&mut self, manifest: &[u8]) -> Result<(), PackageError> {
        let url = self.url(&format!("manifests/{}", self.reference.tag));
        let response = self.send("PUT", &url, Some(MANIFEST_MEDIA_TYPE), manifest)?;
        if response.status() != 201 {
            return Err(self.fail("putting the manifest", response));
        }
        Ok(())
    }
}

/// `realm="…",service="…",scope="…"` as pairs.
fn challenge_params(params: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = params.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.split_once('"') {
                Some((value, next)) => (value, next),
                None => (quoted, ""),
            }
        } else {
            after.split_once(',').unwrap_or((after, ""))
        };
        out.push((key, value.to_owned()));
        rest = next.trim_start_matches(',').trim();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::small_bundle;
    use super::*;
    use crate::package::archive::sha256;
    use crate::package::push::{LAYER_MEDIA_TYPE, PLUGIN_CONFIG_MEDIA_TYPE, Pusher};

    #[test]
    fn bearer_challenges_are_split() {
        assert_eq!(
            challenge_params(
                r#"realm="https://auth.example/token",service="registry.example",scope="repository:a:pull""#
            ),
            [
                ("realm".to_owned(), "https://auth.example/token".to_owned()),
                ("service".to_owned(), "registry.example".to_owned()),
                ("scope".to_owned(), "repository:a:pull".to_owned()),
            ]
        );
    }

    /// A registry that wants a bearer token from its token service, served by one
    /// std-only thread: checks the token flow, the digests of the uploaded blobs, and
    /// the manifest.
    #[test]
    fn bearer_token_flow_against_a_scripted_registry() {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::net::TcpListener;

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            let mut log: Vec<String> = Vec::new();
            let mut manifest = Vec::new();
            for stream in listener.incoming() {
                let mut stream = stream.expect("accept");
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                reader.read_line(&mut line).expect("request line");
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or_default().to_owned();
                let target = parts.next().unwrap_or_default().to_owned();
                let (mut length, mut auth) = (0usize, String::new());
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).expect("header");
                    let header = header.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    let (name, value) = header.split_once(": ").unwrap_or((header, ""));
                    match name.to_ascii_lowercase().as_str() {
                        "content-length" => length = value.parse().expect("length"),
                        "authorization" => auth = value.to_owned(),
                        _ => {}
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).expect("body");
                log.push(format!("{method} {target}"));
                let (status, headers, reply): (&str, String, String) = if target
                    .starts_with("/token")
                {
                    ("200 OK", String::new(), r#"{"token":"tok123"}"#.to_owned())
                } else if auth != "Bearer tok123" {
                    (
                        "401 Unauthorized",
                        format!(
                            "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"test-registry\",scope=\"repository:test/p:pull\"\r\n"
                        ),
                        String::new(),
                    )
                } else if method == "HEAD" {
                    ("404 Not Found", String::new(), String::new())
                } else if method == "POST" {
                    (
                        "202 Accepted",
                        "Location: /v2/test/p/blobs/uploads/u1?state=x\r\n".to_owned(),
                        String::new(),
                    )
                } else if method == "PUT" && target.contains("/blobs/uploads/") {
                    let digest = target.split("digest=").nth(1).unwrap_or_default();
                    if sha256(&body) == digest && target.contains("state=x&") {
                        ("201 Created", String::new(), String::new())
                    } else {
                        (
                            "400 Bad Request",
                            String::new(),
                            "DIGEST_INVALID".to_owned(),
                        )
                    }
                } else if method == "PUT" && target == "/v2/test/p/manifests/1" {
                    manifest = body;
                    ("201 Created", String::new(), String::new())
                } else {
                    ("404 Not Found", String::new(), String::new())
                };
                write!(
                    stream,
                    "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                )
                .expect("reply");
                if !manifest.is_empty() {
                    return (log, manifest);
                }
            }
            (log, manifest)
        });

        let (_dir, bundle) = small_bundle();
        let reference: Reference = format!("127.0.0.1:{port}/test/p:1").parse().expect("ref");
        let pushed = Pusher::new().push(&bundle, &reference).expect("push");
        let (log, manifest) = server.join().expect("server thread");

        // One 401, one token request with the push scope, then everything with it.
        assert_eq!(
            log.iter()
                .filter(|l| l.starts_with("GET /token"))
                .collect::<Vec<_>>(),
            ["GET /token?scope=repository:test/p:pull,push&service=test-registry"]
        );
        assert_eq!(
            log.iter().filter(|l| l.starts_with("POST")).count(),
            2,
            "{log:?}"
        );
        let manifest: serde_json::Value = serde_json::from_slice(&manifest).expect("manifest");
        assert_eq!(manifest["schemaVersion"], 2);
        assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(manifest["config"]["mediaType"], PLUGIN_CONFIG_MEDIA_TYPE);
        assert_eq!(manifest["config"]["digest"], pushed.config_digest.as_str());
        assert_eq!(manifest["layers"][0]["mediaType"], LAYER_MEDIA_TYPE);
        assert_eq!(
            manifest["layers"][0]["digest"],
            pushed.layer_digest.as_str()
        );
        assert_eq!(manifest["layers"][0]["size"], pushed.layer_size);
    }
}
