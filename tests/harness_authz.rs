//! The harness's authorization middleware (`engine.authz()`) against SDK authz plugins
//! served in this process: what it sends for one API call (which bodies and headers,
//! the 1 MiB and 64 KiB rules, the TLS user), the order across a chain (first deny
//! wins), and dockerd's words for a deny and a failure (moby v20.10.24
//! `pkg/authorization/middleware.go`, `authz.go`, `response.go`).
#![cfg(feature = "harness")]

use std::sync::atomic::{AtomicBool, Ordering};

use docker_plugin_sdk::authz::{self, Decision, Request, Response};
use docker_plugin_sdk::harness::{ApiRequest, ApiResponse, CallRecord, Engine, HarnessError};
use docker_plugin_sdk::transport::UnixSocket;
use docker_plugin_sdk::{CancellationToken, Error, Plugin, Result, async_trait};
use serde_json::{Value, json};

/// A policy that denies the endpoints in `deny` (AuthZReq), `/deny-reply` (AuthZRes)
/// and fails `/fail`.
struct Policy {
    deny: &'static [&'static str],
}

#[async_trait]
impl authz::Plugin for Policy {
    async fn authorize_request(&self, req: &Request) -> Result<Decision> {
        match req.endpoint() {
            "/fail" => Err(Error::new("the policy store is unreachable")),
            e if self.deny.contains(&e) => Ok(Decision::deny(format!("{e} is not allowed"))),
            _ => Ok(Decision::allow()),
        }
    }

    async fn authorize_response(&self, req: &Request, _: &Response) -> Result<Decision> {
        Ok(if req.endpoint() == "/deny-reply" {
            Decision::deny("this reply is secret")
        } else {
            Decision::allow()
        })
    }
}

struct Setup {
    _root: tempfile::TempDir,
    engine: Engine,
    stop: CancellationToken,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// An engine with the authz plugins `plugins` (name, denied endpoints) listening on its
/// socket dir, chained in that order.
fn setup(plugins: &[(&str, &'static [&'static str])]) -> Setup {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::for_tests(root.path());
    let stop = CancellationToken::new();
    for &(name, deny) in plugins {
        let listener = UnixSocket::new(name)
            .dir(&engine.discovery().socket_dir)
            .bind()
            .unwrap();
        let server = Plugin::new()
            .authz(Policy { deny })
            .server(listener)
            .shutdown_on(stop.clone());
        tokio::spawn(server.run());
    }
    engine.authz().set_plugins(plugins.iter().map(|(n, _)| *n));
    Setup {
        _root: root,
        engine,
        stop,
    }
}

fn volumes_reply() -> ApiResponse {
    ApiResponse::json(200, &json!({"Volumes": [], "Warnings": null})).header("Api-Version", "1.41")
}

/// dockerd's error for `GET uri`, which the chain refuses.
async fn refused(s: &Setup, uri: &str) -> String {
    let request = ApiRequest::new("GET", uri);
    let err = s.engine.authz().replay(request, volumes_reply()).await;
    err.unwrap_err().to_string()
}

/// The authz calls made, as `plugin method`.
fn calls(engine: &Engine) -> Vec<String> {
    engine
        .calls()
        .take()
        .iter()
        .filter(|r| r.method != "Plugin.Activate")
        .map(|r| format!("{} {}", r.plugin, r.method))
        .collect()
}

fn authz_bodies(engine: &Engine) -> Vec<CallRecord> {
    engine
        .calls()
        .take()
        .into_iter()
        .filter(|r| r.method.starts_with("AuthZPlugin."))
        .collect()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn without_a_chain_the_call_runs_without_plugins() {
    let s = setup(&[]);
    let reply = s
        .engine
        .authz()
        .replay(ApiRequest::new("GET", "/v1.41/volumes"), volumes_reply())
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert!(s.engine.calls().records().is_empty());
}

#[tokio::test]
async fn an_allowed_call_sends_authzreq_then_authzres_with_what_dockerd_includes() {
    let s = setup(&[("p1", &[])]);
    let request = ApiRequest::new("POST", "/v1.41/volumes/create")
        .header("Host", "docker")
        .header("User-Agent", "Docker-Client/20.10.24+dfsg1 (linux)")
        .header("authorization", "Bearer secret")
        .header("X-Registry-Auth", "e30=")
        .json(&json!({"Name": "v1"}));
    let reply = ApiResponse::json(201, &json!({"Name": "v1"})).header("Api-Version", "1.41");
    s.engine.authz().replay(request, reply).await.unwrap();
    let records = authz_bodies(&s.engine);
    let methods: Vec<&str> = records.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["AuthZPlugin.AuthZReq", "AuthZPlugin.AuthZRes"]);
    // No Host (Go's server keeps it out of the headers), no credentials; the
    // Content-Length the client sent (recorded: authz_calls.json).
    let expected = json!({
        "RequestMethod": "POST",
        "RequestUri": "/v1.41/volumes/create",
        "RequestBody": b64(b"{\"Name\":\"v1\"}\n"),
        "RequestHeaders": {
            "Content-Length": "14",
            "Content-Type": "application/json",
            "User-Agent": "Docker-Client/20.10.24+dfsg1 (linux)",
        },
    });
    assert_eq!(records[0].request, expected);
    let mut res = expected.clone();
    res["ResponseStatusCode"] = json!(201);
    res["ResponseBody"] = json!(b64(b"{\"Name\":\"v1\"}\n"));
    res["ResponseHeaders"] = json!({"Api-Version": "1.41", "Content-Type": "application/json"});
    assert_eq!(records[1].request, res);
}

/// The `RequestBody` the plugins got for `request`, if any.
async fn request_body_sent(s: &Setup, request: ApiRequest) -> Option<Value> {
    s.engine
        .authz()
        .replay(request, volumes_reply())
        .await
        .unwrap();
    authz_bodies(&s.engine)[0]
        .request
        .get("RequestBody")
        .cloned()
}

#[tokio::test]
async fn bodies_go_only_if_json_not_auth_and_under_1_mib_declared_or_chunked() {
    let s = setup(&[("p1", &[])]);
    let json_body = |len: usize| {
        let value = json!({"Env": ["A=".to_owned() + &"x".repeat(len - 15)]});
        let req = ApiRequest::new("POST", "/v1.41/containers/create").json(&value);
        assert_eq!(req.body.len(), len);
        req
    };
    assert!(
        request_body_sent(&s, json_body((1 << 20) - 1))
            .await
            .is_some()
    );
    assert!(request_body_sent(&s, json_body(1 << 20)).await.is_none());
    // Debian's 20.10.24+dfsg1 (CVE-2024-41110 fix) reads a chunked body up to 1 MiB
    // (recorded: authz_calls.json), without Transfer-Encoding in the headers.
    let chunked = json_body(100)
        .header("Transfer-Encoding", "chunked")
        .chunked();
    assert_eq!(
        request_body_sent(&s, chunked.clone()).await,
        Some(json!(b64(&chunked.body)))
    );
    let headers = chunked.to_authz().request_headers;
    assert_eq!(headers.keys().collect::<Vec<_>>(), ["Content-Type"]);
    assert!(
        request_body_sent(&s, json_body((1 << 20) - 1).chunked())
            .await
            .is_some()
    );
    assert!(
        request_body_sent(&s, json_body(1 << 20).chunked())
            .await
            .is_none()
    );
    let text = ApiRequest::new("POST", "/v1.41/build")
        .header("Content-Type", "application/x-tar")
        .body(b"tar".to_vec());
    assert!(request_body_sent(&s, text).await.is_none());
    let with_charset = ApiRequest::new("POST", "/v1.41/volumes/create")
        .header("Content-Type", "application/json; charset=utf-8")
        .body(b"{}".to_vec());
    assert_eq!(
        request_body_sent(&s, with_charset).await,
        Some(json!("e30="))
    );
    let auth = ApiRequest::new("POST", "/v1.41/auth").json(&json!({"username": "u"}));
    assert!(request_body_sent(&s, auth).await.is_none());
}

#[tokio::test]
async fn a_reply_flushed_past_64_kib_reaches_authzres_without_status_headers_or_body() {
    let s = setup(&[("p1", &[])]);
    let mut reply = volumes_reply();
    reply.writes = vec![vec![b' '; 40_000], vec![b' '; 40_000]];
    s.engine
        .authz()
        .replay(ApiRequest::new("GET", "/v1.41/events"), reply)
        .await
        .unwrap();
    let res = &authz_bodies(&s.engine)[1].request;
    for key in ["ResponseStatusCode", "ResponseHeaders", "ResponseBody"] {
        assert!(res.get(key).is_none(), "{key} in {res}");
    }
}

#[tokio::test]
async fn the_first_deny_of_the_chain_wins_and_the_call_does_not_run() {
    let s = setup(&[
        ("p1", &["/containers/create"]),
        ("p2", &["/containers/create", "/info"]),
    ]);
    let ran = AtomicBool::new(false);
    let err = s
        .engine
        .authz()
        .call(
            ApiRequest::new("POST", "/v1.41/containers/create"),
            || async {
                ran.store(true, Ordering::SeqCst);
                volumes_reply()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "authorization denied by plugin p1: /containers/create is not allowed"
    );
    assert!(!ran.load(Ordering::SeqCst));
    assert_eq!(calls(&s.engine), ["p1 AuthZPlugin.AuthZReq"]);
    assert_eq!(
        refused(&s, "/v1.41/info").await,
        "authorization denied by plugin p2: /info is not allowed"
    );
    assert_eq!(
        calls(&s.engine),
        ["p1 AuthZPlugin.AuthZReq", "p2 AuthZPlugin.AuthZReq"]
    );
    s.engine
        .authz()
        .replay(ApiRequest::new("GET", "/v1.41/volumes"), volumes_reply())
        .await
        .unwrap();
    assert_eq!(
        calls(&s.engine),
        [
            "p1 AuthZPlugin.AuthZReq",
            "p2 AuthZPlugin.AuthZReq",
            "p1 AuthZPlugin.AuthZRes",
            "p2 AuthZPlugin.AuthZRes"
        ]
    );
}

#[tokio::test]
async fn a_denied_reply_refuses_the_call_after_it_ran_unless_the_call_failed() {
    let s = setup(&[("p1", &[])]);
    let ran = AtomicBool::new(false);
    let err = s
        .engine
        .authz()
        .call(ApiRequest::new("GET", "/v1.41/deny-reply"), || async {
            ran.store(true, Ordering::SeqCst);
            volumes_reply()
        })
        .await
        .unwrap_err();
    assert!(ran.load(Ordering::SeqCst));
    assert_eq!(
        err.to_string(),
        "authorization denied by plugin p1: this reply is secret"
    );
    // The handler's own error wins; AuthZRes is still asked.
    let err = s
        .engine
        .authz()
        .replay(
            ApiRequest::new("GET", "/v1.41/deny-reply"),
            ApiResponse::error(404, "no such thing"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, HarnessError::Api { status: 404, .. }),
        "{err}"
    );
    assert_eq!(err.to_string(), "no such thing");
    assert_eq!(
        calls(&s.engine)[2..],
        ["p1 AuthZPlugin.AuthZReq", "p1 AuthZPlugin.AuthZRes"]
    );
}

#[tokio::test]
async fn a_failing_or_missing_plugin_refuses_the_call_in_dockerds_words() {
    let s = setup(&[("p1", &[])]);
    assert_eq!(
        refused(&s, "/v1.41/fail").await,
        "plugin p1 failed with error: AuthZPlugin.AuthZReq: the policy store is unreachable"
    );
    s.engine.authz().set_plugins(["ghost", "p1"]);
    assert_eq!(
        refused(&s, "/v1.41/info").await,
        "plugin ghost failed with error: plugin \"ghost\" not found"
    );
}

#[tokio::test]
async fn a_plugin_removed_during_the_call_gets_no_authzres() {
    let s = setup(&[("p1", &[]), ("p2", &[])]);
    assert_eq!(s.engine.authz().plugins(), ["p1", "p2"]);
    let authz = s.engine.authz().clone();
    s.engine
        .authz()
        .call(
            ApiRequest::new("POST", "/v1.41/plugins/p2/disable"),
            || async move {
                authz.remove_plugin("p2");
                ApiResponse::status(200)
            },
        )
        .await
        .unwrap();
    assert_eq!(
        calls(&s.engine),
        [
            "p1 AuthZPlugin.AuthZReq",
            "p2 AuthZPlugin.AuthZReq",
            "p1 AuthZPlugin.AuthZRes"
        ]
    );
}

#[tokio::test]
async fn a_tls_client_is_the_user_and_its_certificates_reach_the_policy() {
    let s = setup(&[("p1", &[])]);
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "alice");
    let cert = params
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let request = ApiRequest::new("GET", "/v1.41/info").tls(vec![cert.der().to_vec()]);
    let wire = request.to_authz();
    assert_eq!(
        (wire.user.as_str(), wire.user_authn_method.as_str()),
        ("alice", "TLS")
    );
    assert_eq!(wire.request_peer_certificates, [cert.pem().into_bytes()]);
    // The SDK parses what the harness sends.
    let (decoded, _) = wire.decode().unwrap();
    assert_eq!(
        decoded.peer_certificates[0].common_name.as_deref(),
        Some("alice")
    );
    s.engine
        .authz()
        .replay(request, volumes_reply())
        .await
        .unwrap();
    assert_eq!(authz_bodies(&s.engine)[0].request["User"], "alice");
}

#[tokio::test]
async fn set_plugins_keeps_the_first_of_a_repeated_name() {
    let s = setup(&[]);
    s.engine.authz().set_plugins(["a", "b", "a"]);
    assert_eq!(s.engine.authz().plugins(), ["a", "b"]);
}
