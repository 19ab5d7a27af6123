//! The authz SDK over a real unix socket, spoken to as dockerd 20.10 speaks (moby
//! v20.10.24 `pkg/authorization`): every field of AuthZReq and AuthZRes decodes into
//! the policy's types (peer certificates parsed), and the SDK fails closed: a malformed
//! call, a malformed certificate, a policy's error, panic or timeout, or a body over
//! the limit each refuses the API call with a message saying why, and never as an
//! `Err` in a 200 (which dockerd ignores).

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use docker_plugin_sdk::authz::{self, Body, Decision, Request, Response};
use docker_plugin_sdk::client::RawResponse;
use docker_plugin_sdk::transport::UnixSocket;
use docker_plugin_sdk::{Error, Plugin, Result, async_trait};
use rcgen::{CertificateParams, DnType, KeyPair, SanType};
use serde_json::{Value, json};
use support::server::TestServer;

/// What the policy was asked: the request, and dockerd's reply for AuthZRes.
type Seen = Arc<Mutex<Vec<(Request, Option<Response>)>>>;

/// A policy whose answer the API call's endpoint chooses: `/deny`, `/fail`, `/panic`,
/// `/hang`; anything else is allowed. AuthZRes denies a reply whose status is 500.
struct ByPath(Seen);

impl ByPath {
    async fn decide(&self, req: &Request) -> Result<Decision> {
        match req.endpoint() {
            "/hang" => std::future::pending().await,
            "/deny" => Ok(Decision::deny("no /deny for you")),
            "/fail" => Err(Error::new("the policy store is unreachable")),
            "/panic" => panic!("policy bug"),
            _ => Ok(Decision::allow()),
        }
    }
}

#[async_trait]
impl authz::Plugin for ByPath {
    async fn authorize_request(&self, req: &Request) -> Result<Decision> {
        self.0.lock().unwrap().push((req.clone(), None));
        self.decide(req).await
    }

    async fn authorize_response(&self, req: &Request, res: &Response) -> Result<Decision> {
        self.0
            .lock()
            .unwrap()
            .push((req.clone(), Some(res.clone())));
        if res.status == 500 {
            return Ok(Decision::deny("500s are hidden"));
        }
        self.decide(req).await
    }
}

async fn serve(configure: impl FnOnce(Plugin) -> Plugin) -> (TestServer, Seen) {
    let seen = Seen::default();
    let dir = tempfile::tempdir().unwrap();
    let listener = UnixSocket::new("test").dir(dir.path()).bind().unwrap();
    let plugin = configure(Plugin::new().authz(ByPath(Arc::clone(&seen))));
    (
        TestServer::serve(dir, listener, plugin, Arc::default()),
        seen,
    )
}

/// Posts `body` as dockerd does (Go's JSON and `\n`).
async fn post(s: &TestServer, method: &str, body: &Value) -> RawResponse {
    s.client
        .call_raw(method, format!("{body}\n"))
        .await
        .unwrap()
}

/// The reply's status and JSON; a 200 never carries `Err`.
fn answer(reply: &RawResponse) -> (u16, Value) {
    let status = reply.status.as_u16();
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    if status == 200 {
        assert!(body.get("Err").is_none(), "an Err in a 200: {body}");
    }
    (status, body)
}

fn call(method: &str, uri: &str) -> Value {
    json!({"RequestMethod": method, "RequestUri": uri, "RequestHeaders": {"User-Agent": "Docker-Client/20.10.24 (linux)"}})
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    STANDARD.encode(bytes)
}

/// A client certificate for `alice`, with one SAN of each kind.
fn client_certificate() -> rcgen::Certificate {
    let mut params = CertificateParams::new(vec!["alice.example".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "alice");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Example");
    params.subject_alt_names.extend([
        SanType::IpAddress("10.1.2.3".parse().unwrap()),
        SanType::Rfc822Name("alice@example.com".try_into().unwrap()),
        SanType::URI("spiffe://example/alice".try_into().unwrap()),
    ]);
    params.self_signed(&KeyPair::generate().unwrap()).unwrap()
}

#[tokio::test]
async fn activate_announces_authz() {
    let (s, _) = serve(|p| p).await;
    assert_eq!(s.client.activate().await.unwrap().implements, ["authz"]);
    assert_eq!(
        Plugin::new().authz(ByPath(Seen::default())).implements(),
        ["authz"]
    );
}

#[tokio::test]
async fn every_field_of_authzres_decodes_into_the_policys_types() {
    let (s, seen) = serve(|p| p).await;
    let cert = client_certificate();
    let body = br#"{"Image":"busybox","HostConfig":{"Privileged":false}}"#;
    // What dockerd 20.10 sends after `docker create` over TLS (moby v20.10.24
    // pkg/authorization/authz.go): the certificate is the base64 of its PEM text.
    let wire = json!({
        "User": "alice",
        "UserAuthNMethod": "TLS",
        "RequestMethod": "POST",
        "RequestUri": "/v1.41/containers/create?name=web%201&label=a+b&flag",
        "RequestBody": b64(body),
        "RequestHeaders": {"Content-Type": "application/json", "User-Agent": "Docker-Client/20.10.24 (linux)"},
        "RequestPeerCertificates": [b64(cert.pem())],
        "ResponseStatusCode": 201,
        "ResponseBody": b64("{\"Id\":\"abc\",\"Warnings\":[]}\n"),
        "ResponseHeaders": {"Api-Version": "1.41", "Content-Type": "application/json"},
    });
    let (status, reply) = answer(&post(&s, "AuthZPlugin.AuthZRes", &wire).await);
    assert_eq!((status, reply), (200, json!({"Allow": true})));
    let (req, res) = seen.lock().unwrap().pop().unwrap();
    let res = res.unwrap();
    assert_eq!(req.user, "alice");
    assert_eq!(req.authn_method, "TLS");
    assert_eq!(req.method, http::Method::POST);
    assert_eq!(
        req.uri,
        "/v1.41/containers/create?name=web%201&label=a+b&flag"
    );
    assert_eq!(req.path, "/v1.41/containers/create");
    assert_eq!(req.endpoint(), "/containers/create");
    assert_eq!(req.api_version.as_deref(), Some("1.41"));
    assert_eq!(
        req.query,
        [
            ("name".to_owned(), "web 1".to_owned()),
            ("label".to_owned(), "a b".to_owned()),
            ("flag".to_owned(), String::new()),
        ]
    );
    assert_eq!(req.headers.get("content-type"), Some("application/json"));
    assert_eq!(req.headers.len(), 2);
    assert_eq!(req.body.raw(), body);
    assert_eq!(req.body.json().unwrap()["Image"], "busybox");
    let peer = &req.peer_certificates[..];
    assert_eq!(peer.len(), 1);
    assert_eq!(peer[0].common_name.as_deref(), Some("alice"));
    assert_eq!(peer[0].subject, "O=Example,CN=alice"); // RFC 4514: the last RDN first
    assert_eq!(peer[0].issuer, peer[0].subject); // self-signed
    assert_eq!(peer[0].dns_names, ["alice.example"]);
    assert_eq!(
        peer[0].ip_addresses,
        ["10.1.2.3".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(peer[0].email_addresses, ["alice@example.com"]);
    assert_eq!(peer[0].uris, ["spiffe://example/alice"]);
    assert_eq!(peer[0].der, cert.der().to_vec());
    assert!(peer[0].is_valid_at(SystemTime::now()));
    assert!(!peer[0].serial.is_empty());
    assert_eq!(res.status, 201);
    assert_eq!(res.headers.get("Api-Version"), Some("1.41"));
    assert_eq!(res.body.json().unwrap()["Id"], "abc");
}

#[tokio::test]
async fn authzreq_without_optional_keys_decodes_as_empty() {
    let (s, seen) = serve(|p| p).await;
    // `HEAD /_ping` without TLS: no User, no body, no version prefix.
    let (status, _) = answer(&post(&s, "AuthZPlugin.AuthZReq", &call("HEAD", "/_ping")).await);
    assert_eq!(status, 200);
    let (req, res) = seen.lock().unwrap().pop().unwrap();
    assert!(res.is_none());
    assert_eq!((req.user.as_str(), req.authn_method.as_str()), ("", ""));
    assert_eq!(req.method, http::Method::HEAD);
    assert_eq!((req.path.as_str(), req.endpoint()), ("/_ping", "/_ping"));
    assert_eq!(req.api_version, None);
    assert!(req.query.is_empty() && req.peer_certificates.is_empty());
    assert_eq!(req.body, Body::Absent);
}

#[tokio::test]
async fn a_body_that_is_not_json_reaches_the_policy_as_bytes() {
    let (s, seen) = serve(|p| p).await;
    let mut wire = call("POST", "/v1.41/volumes/create");
    wire["RequestBody"] = json!(b64("{not json"));
    let (status, _) = answer(&post(&s, "AuthZPlugin.AuthZReq", &wire).await);
    assert_eq!(status, 200);
    let (req, _) = seen.lock().unwrap().pop().unwrap();
    assert_eq!(req.body, Body::Bytes(b"{not json".to_vec()));
    assert_eq!(req.body.json(), None);
}

#[tokio::test]
async fn a_deny_is_allow_false_with_its_message() {
    let (s, _) = serve(|p| p).await;
    let reply = post(&s, "AuthZPlugin.AuthZReq", &call("GET", "/v1.41/deny")).await;
    assert_eq!(
        answer(&reply),
        (200, json!({"Allow": false, "Msg": "no /deny for you"}))
    );
    // AuthZRes: the reply is judged too.
    let mut wire = call("GET", "/v1.41/info");
    wire["ResponseStatusCode"] = json!(500);
    let reply = post(&s, "AuthZPlugin.AuthZRes", &wire).await;
    assert_eq!(
        answer(&reply),
        (200, json!({"Allow": false, "Msg": "500s are hidden"}))
    );
}

#[tokio::test]
async fn malformed_json_is_refused_with_a_non_200_err_and_the_policy_is_not_asked() {
    let (s, seen) = serve(|p| p).await;
    let reply = s
        .client
        .call_raw("AuthZPlugin.AuthZReq", "{\"RequestMethod\":")
        .await
        .unwrap();
    let (status, body) = answer(&reply);
    assert_eq!(status, 400);
    assert_eq!(
        body["Err"],
        "malformed JSON in AuthZPlugin.AuthZReq request: EOF while parsing a value at line 1 column 17"
    );
    // Bad base64 in a Go []byte, and a retried call's empty body.
    let mut wire = call("POST", "/v1.41/volumes/create");
    wire["RequestBody"] = json!("not base64!");
    let (status, body) = answer(&post(&s, "AuthZPlugin.AuthZReq", &wire).await);
    assert_eq!(status, 400);
    let err = body["Err"].as_str().unwrap();
    assert!(
        err.starts_with(
            "malformed JSON in AuthZPlugin.AuthZReq request: not base64 (Go's []byte): "
        ),
        "{err}"
    );
    let reply = s.client.call_raw("AuthZPlugin.AuthZRes", "").await.unwrap();
    assert_eq!(
        answer(&reply),
        (
            400,
            json!({"Err": "empty body in AuthZPlugin.AuthZRes request: this call needs a JSON body with `RequestMethod`"})
        )
    );
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_malformed_peer_certificate_is_a_worded_deny_never_a_panic() {
    let (s, seen) = serve(|p| p).await;
    let good = client_certificate().pem();
    let not_pem = b64("MIIB not a pem block");
    let bad_der = b64("-----BEGIN CERTIFICATE-----\nAAECAw==\n-----END CERTIFICATE-----\n");
    let bad_base64 = b64("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n");
    let cases = [
        (
            vec![not_pem],
            "peer certificate 0 is malformed: not a PEM CERTIFICATE block (dockerd sends the base64 of the PEM text) (denied without asking the policy)",
        ),
        (
            vec![b64(&good), bad_base64],
            "peer certificate 1 is malformed: the PEM block is not base64: Invalid symbol 33, offset 0. (denied without asking the policy)",
        ),
    ];
    for (certificates, msg) in cases {
        let mut wire = call("GET", "/v1.41/info");
        wire["RequestPeerCertificates"] = json!(certificates);
        let reply = post(&s, "AuthZPlugin.AuthZReq", &wire).await;
        assert_eq!(answer(&reply), (200, json!({"Allow": false, "Msg": msg})));
    }
    let mut wire = call("GET", "/v1.41/info");
    wire["RequestPeerCertificates"] = json!([bad_der]);
    let (status, body) = answer(&post(&s, "AuthZPlugin.AuthZRes", &wire).await);
    assert_eq!((status, &body["Allow"]), (200, &json!(false)));
    let msg = body["Msg"].as_str().unwrap();
    assert!(
        msg.starts_with("peer certificate 0 is malformed: not an X.509 certificate: "),
        "{msg}"
    );
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_malformed_method_or_uri_is_a_worded_deny() {
    let (s, seen) = serve(|p| p).await;
    let reply = post(&s, "AuthZPlugin.AuthZReq", &call("GE T", "/_ping")).await;
    assert_eq!(
        answer(&reply),
        (
            200,
            json!({"Allow": false, "Msg": "RequestMethod \"GE T\" is not an HTTP method (denied without asking the policy)"})
        )
    );
    let reply = post(
        &s,
        "AuthZPlugin.AuthZReq",
        &call("GET", "/v1.41/containers/%zz/json"),
    )
    .await;
    assert_eq!(
        answer(&reply),
        (
            200,
            json!({"Allow": false, "Msg": "RequestUri \"/v1.41/containers/%zz/json\" is malformed: a % not followed by two hexadecimal digits (denied without asking the policy)"})
        )
    );
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_policy_error_is_a_non_200_err() {
    let (s, _) = serve(|p| p).await;
    let reply = post(&s, "AuthZPlugin.AuthZReq", &call("GET", "/v1.41/fail")).await;
    assert_eq!(
        answer(&reply),
        (500, json!({"Err": "the policy store is unreachable"}))
    );
}

#[tokio::test]
async fn a_policy_panic_is_a_non_200_err_and_the_plugin_keeps_serving() {
    let (s, _) = serve(|p| p).await;
    for method in ["AuthZPlugin.AuthZReq", "AuthZPlugin.AuthZRes"] {
        let reply = post(&s, method, &call("GET", "/v1.41/panic")).await;
        assert_eq!(
            answer(&reply),
            (
                500,
                json!({"Err": format!("internal error: the plugin panicked in {method}: policy bug")})
            )
        );
    }
    let reply = post(&s, "AuthZPlugin.AuthZReq", &call("GET", "/v1.41/info")).await;
    assert_eq!(answer(&reply), (200, json!({"Allow": true})));
}

#[tokio::test]
async fn a_hung_policy_is_cut_off_by_the_default_deadline() {
    assert_eq!(authz::DEFAULT_TIMEOUT, Duration::from_secs(5));
    assert_eq!(authz::SUBSYSTEM.call_timeout, Some(authz::DEFAULT_TIMEOUT));
    let (s, _) = serve(|p| p).await;
    let started = std::time::Instant::now();
    let reply = post(&s, "AuthZPlugin.AuthZReq", &call("GET", "/v1.41/hang")).await;
    assert_eq!(
        answer(&reply),
        (
            500,
            json!({"Err": "AuthZPlugin.AuthZReq did not finish within 5000 ms"})
        )
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn the_deadline_is_set_on_the_builder() {
    let (s, _) = serve(|p| p.call_timeout(Duration::from_millis(200))).await;
    let reply = post(&s, "AuthZPlugin.AuthZRes", &call("GET", "/v1.41/hang")).await;
    assert_eq!(
        answer(&reply),
        (
            500,
            json!({"Err": "AuthZPlugin.AuthZRes did not finish within 200 ms"})
        )
    );
}

#[tokio::test]
async fn the_body_limit_fits_authzres_and_refuses_more() {
    assert_eq!(authz::BODY_LIMIT, 11 << 20);
    let (s, seen) = serve(|p| p).await;
    // 4 MiB of request body (dockerd's newer cap) and 3.5 MiB of reply body, base64:
    // about 10 MiB on the wire.
    let request_body = format!("{{\"Env\":[\"A={}\"]}}", "x".repeat((4 << 20) - 20));
    let response_body = format!("[\"{}\"]", "y".repeat((7 << 19) - 10));
    let mut wire = call("POST", "/v1.41/containers/create");
    wire["RequestBody"] = json!(b64(&request_body));
    wire["ResponseBody"] = json!(b64(&response_body));
    wire["ResponseStatusCode"] = json!(201);
    let reply = post(&s, "AuthZPlugin.AuthZRes", &wire).await;
    assert_eq!(answer(&reply), (200, json!({"Allow": true})));
    let (req, res) = seen.lock().unwrap().pop().unwrap();
    assert_eq!(req.body.raw().len(), request_body.len());
    assert_eq!(res.unwrap().body.raw().len(), response_body.len());
    // Over 11 MiB: refused before it is decoded.
    wire["ResponseBody"] = json!(b64("z".repeat(6 << 20)));
    let reply = post(&s, "AuthZPlugin.AuthZRes", &wire).await;
    assert_eq!(
        answer(&reply),
        (
            413,
            json!({"Err": "AuthZPlugin.AuthZRes request body is larger than the 11534336-byte limit"})
        )
    );
}

#[test]
fn the_wire_types_encode_as_moby_does() {
    let wire = authz::AuthZRequest {
        request_method: "GET".into(),
        request_uri: "/_ping".into(),
        ..Default::default()
    };
    // omitempty everywhere but the two keys dockerd always fills.
    assert_eq!(
        serde_json::to_string(&wire).unwrap(),
        r#"{"RequestMethod":"GET","RequestUri":"/_ping"}"#
    );
    let allow: authz::AuthZResponse = Decision::allow().into();
    assert_eq!(serde_json::to_string(&allow).unwrap(), r#"{"Allow":true}"#);
    // Go's nil maps and slices arrive as null.
    let wire: authz::AuthZRequest = serde_json::from_str(
        r#"{"RequestMethod":"GET","RequestUri":"/","RequestHeaders":null,"RequestPeerCertificates":null,"RequestBody":null}"#,
    )
    .unwrap();
    assert!(wire.request_headers.is_empty() && wire.request_peer_certificates.is_empty());
}

#[test]
fn the_golden_authzreq_decodes_with_its_openssl_certificate() {
    let text = include_str!("golden/authz/authzreq.request.json");
    let wire: authz::AuthZRequest = serde_json::from_str(text).unwrap();
    let (req, res) = wire.decode().unwrap();
    assert_eq!(req.endpoint(), "/containers/create");
    assert_eq!(req.query_value("name"), Some("web"));
    assert_eq!(req.body.json().unwrap()["HostConfig"]["Privileged"], true);
    let cert = &req.peer_certificates[0];
    assert_eq!(cert.subject, "CN=alice");
    assert_eq!(cert.common_name.as_deref(), Some(req.user.as_str()));
    assert_eq!(cert.dns_names, ["alice.example"]);
    assert_eq!(res, Response::default());
}

/// What dockerd 20.10 sent for `docker volume ls` over TLS with a client certificate
/// whose subject has two common names (`xtask` recorder, `authz_tls` fixture): Go keeps
/// the last one as the `User`, and so must the SDK's `common_name`.
#[test]
fn the_recorded_tls_authzreq_decodes_with_the_last_common_name_as_user() {
    let text = include_str!("golden/authz/authzreq.request.tls.dockerd.json");
    let wire: authz::AuthZRequest = serde_json::from_str(text).unwrap();
    let (req, _) = wire.decode().unwrap();
    assert_eq!(
        (req.user.as_str(), req.authn_method.as_str()),
        ("alice", "TLS")
    );
    let cert = &req.peer_certificates[0];
    assert_eq!(cert.common_name.as_deref(), Some("alice"));
    // RFC 4514: the last RDN first; both common names kept.
    assert_eq!(cert.subject, "CN=alice,O=example,CN=team");
    assert_eq!(
        cert.issuer_common_name.as_deref(),
        Some("rec-authz test CA")
    );
}
