//! Both authz request bodies, decoded as the server decodes them, then into the policy's
//! view of the API call (`AuthZRequest::decode`): the method, the URI's path, query
//! and API version, the base64 request and response bodies and the peer certificates
//! (base64 of PEM, then X.509). The fuzzer's bytes are also read directly as one
//! certificate, in PEM and in DER.
#![no_main]

use std::time::SystemTime;

use docker_plugin_sdk::authz::{self, AuthZRequest, PeerCertificate};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    docker_plugin_sdk_fuzz::requests(data, authz::visit_methods);
    if let Ok(wire) = docker_plugin_sdk::protocol::decode_body::<AuthZRequest>(data)
        && let Ok((request, response)) = wire.decode()
    {
        let _ = (request.endpoint(), request.query_value("name"));
        let _ = (
            request.body.json(),
            response.body.json(),
            response.body.raw(),
        );
        for certificate in &request.peer_certificates {
            let _ = certificate.is_valid_at(SystemTime::now());
        }
    }
    if let Ok(certificate) = PeerCertificate::from_pem(data) {
        let _ = certificate.is_valid_at(SystemTime::now());
    }
    if let Ok(certificate) = PeerCertificate::from_der(data.to_vec()) {
        let _ = certificate.is_valid_at(SystemTime::now());
    }
});
