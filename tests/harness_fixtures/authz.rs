//! Replaying a recorded authorization action (`authz_*` fixtures) through the harness's
//! middleware, API call by API call: each AuthZReq dockerd sent starts one
//! `engine.authz().replay`, with the request as the client sent it (its method, URI and
//! headers, `Host` among them; its body, or one of the recorded `Content-Length` when
//! dockerd left it out; chunked when the command sent it chunked; the client
//! certificate the recorder made, for a TLS call) and the reply dockerd's handler wrote
//! (the status, headers and body of the AuthZRes, or nothing when the call was
//! denied). The recorder (`--authz`) must then receive, byte for byte, the AuthZReq
//! and AuthZRes bodies dockerd sent, with dockerd's headers; a denied call must fail
//! with the words the CLI printed. The recorder's volume-driver calls (dockerd asks
//! it `List` and `Get` as it asks every volume plugin) are the volume fixtures'
//! business, not replayed here.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use docker_plugin_sdk::harness::{ApiRequest, ApiResponse};
use serde_json::Value;

use super::replay::Replay;
use super::{header_problem, tls};

/// Whether the fixture's daemon ran with an authorization plugin.
pub fn is_authz(fixture: &Value) -> bool {
    fixture["plugins"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|p| p["authz"] == true)
}

fn base64_field(wire: &Value, key: &str) -> Option<Vec<u8>> {
    wire[key]
        .as_str()
        .map(|text| STANDARD.decode(text).unwrap())
}

fn headers(wire: &Value, key: &str) -> Vec<(String, String)> {
    wire[key]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

/// The API request the client sent, for the AuthZReq `wire` dockerd made of it.
fn api_request(wire: &Value, command: &str, certificate: &[u8]) -> ApiRequest {
    let mut request = ApiRequest::new(
        wire["RequestMethod"].as_str().unwrap(),
        wire["RequestUri"].as_str().unwrap(),
    )
    // Every HTTP/1.1 client sends one; Go's server keeps it out of the headers.
    .header("Host", "localhost");
    let mut length = None;
    for (name, value) in headers(wire, "RequestHeaders") {
        if name == "Content-Length" {
            length = Some(value.parse::<usize>().unwrap());
        } else {
            request = request.header(&name, &value);
        }
    }
    let body = base64_field(wire, "RequestBody");
    if let Some(length) = length {
        // dockerd leaves out a body of 1 MiB or more: any bytes of its length.
        request = request.body(body.clone().unwrap_or_else(|| vec![b' '; length]));
    }
    if command.contains("Transfer-Encoding: chunked") {
        request = request
            .header("Transfer-Encoding", "chunked")
            .body(body.unwrap())
            .chunked();
    }
    if wire["UserAuthNMethod"] == "TLS" {
        request = request.tls(vec![certificate.to_vec()]);
    }
    request
}

/// The reply dockerd's handler wrote, from the AuthZRes `wire`.
fn api_response(wire: &Value) -> ApiResponse {
    let mut reply = ApiResponse::status(wire["ResponseStatusCode"].as_u64().unwrap_or(0) as u16);
    for (name, value) in headers(wire, "ResponseHeaders") {
        reply = reply.header(&name, &value);
    }
    reply.writes = base64_field(wire, "ResponseBody").into_iter().collect();
    reply
}

/// The client certificate of the TLS action, made again as the recorder made it.
fn client_certificate(dir: &Path) -> Vec<u8> {
    tls::write(dir).unwrap();
    let pem = std::fs::read_to_string(dir.join("client.pem")).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

/// The differences between the harness and dockerd for `fixture`, one per line.
pub async fn replay_authz_fixture(fixture: &Value) -> Vec<String> {
    let mut replay = Replay::new(fixture.clone());
    let certificate = client_certificate(&replay.root.path().join("tls"));
    let mut problems = Vec::new();
    let calls: Vec<&Value> = fixture["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["method"].as_str().unwrap().starts_with("AuthZPlugin."))
        .collect();
    for (i, command) in fixture["commands"].as_array().unwrap().iter().enumerate() {
        let command = command.as_str().unwrap();
        let result = &fixture["results"][i];
        let ours: Vec<&Value> = calls
            .iter()
            .copied()
            .filter(|c| c["command"].as_u64() == Some(i as u64))
            .collect();
        for (k, req) in ours.iter().enumerate() {
            if req["method"] != "AuthZPlugin.AuthZReq" {
                continue;
            }
            let wire = &req["request"];
            let same_call = |c: &&&Value| {
                c["method"] == "AuthZPlugin.AuthZRes"
                    && c["request"]["RequestMethod"] == wire["RequestMethod"]
                    && c["request"]["RequestUri"] == wire["RequestUri"]
            };
            let res = ours[k + 1..].iter().find(same_call);
            let call = format!(
                "`{command}` {} {}",
                wire["RequestMethod"].as_str().unwrap(),
                wire["RequestUri"].as_str().unwrap()
            );
            let request = api_request(wire, command, &certificate);
            let reply = res.map(|c| api_response(&c["request"])).unwrap_or_default();
            let outcome = replay.engine.authz().replay(request, reply).await;

            let expected: Vec<&str> = std::iter::once(*req)
                .chain(res.copied())
                .map(|c| c["request_body"].as_str().unwrap())
                .collect();
            let received: Vec<Value> = replay
                .received()
                .into_iter()
                .map(|(_, c)| c)
                .filter(|c| c["method"].as_str().unwrap().starts_with("AuthZPlugin."))
                .collect();
            let sent: Vec<&str> = received
                .iter()
                .map(|c| c["request_body"].as_str().unwrap())
                .collect();
            if sent != expected {
                problems.push(format!(
                    "{call}:\n  dockerd: {expected:#?}\n  harness: {sent:#?}"
                ));
            }
            for c in &received {
                if let Some(p) = header_problem(c, &fixture["request_headers"]) {
                    problems.push(format!("{call}: {p}"));
                }
            }
            match (&outcome, res) {
                (Ok(_), Some(_)) => {}
                (Err(err), None) => {
                    let stderr = result["stderr"].as_str().unwrap();
                    let want = stderr.strip_prefix("Error response from daemon: ");
                    if want != Some(err.to_string().as_str()) {
                        problems.push(format!("{call}: the CLI printed {stderr:?}, harness {err}"));
                    }
                }
                _ => problems.push(format!(
                    "{call}: harness {outcome:?}, dockerd {}",
                    if res.is_some() { "allowed" } else { "denied" }
                )),
            }
        }
    }
    problems
}
