//! What the fuzz targets share: every target feeds the fuzzer's bytes to one decoder of
//! input that reaches a plugin from outside (dockerd's request bodies, the metrics
//! text, options, config.json, spec files) and checks that it never panics, and that
//! what it accepts survives being encoded and decoded again.
//!
//! A subsystem's request decoders are all reached through its `visit_methods`, so a
//! new subsystem's target is one line: `fuzz_target!(|data: &[u8]|
//! docker_plugin_sdk_fuzz::requests(data, docker_plugin_sdk::logging::visit_methods));`
//! and a `[[bin]]` in Cargo.toml (its name is then listed by `cargo fuzz list`, and
//! `scripts/test` runs it).

use docker_plugin_sdk::protocol::{Method, MethodVisitor, WireRequest, decode_body};

/// Decodes `data` as the request of each method `visit` hands over, as the server does
/// (`protocol::decode_body`, then the call's subject for its log span); what decodes
/// must encode, and decode again (what the client sends, the server reads).
pub fn requests<'a>(data: &'a [u8], visit: fn(&mut Requests<'a>)) {
    visit(&mut Requests { data });
}

/// The [`MethodVisitor`] of [`requests`].
pub struct Requests<'a> {
    data: &'a [u8],
}

impl MethodVisitor for Requests<'_> {
    fn visit<M: Method>(&mut self) {
        let Ok(request) = decode_body::<M::Request>(self.data) else {
            return;
        };
        let _ = request.subject();
        round_trip::<M::Request>(&request, M::NAME);
    }
}

/// `value` encoded as JSON decodes again.
pub fn round_trip<T: WireRequest>(value: &T, what: &str) {
    let encoded = match serde_json::to_vec(value) {
        Ok(encoded) => encoded,
        Err(e) => panic!("{what}: a decoded request does not encode: {e}"),
    };
    if let Err(e) = decode_body::<T>(&encoded) {
        panic!(
            "{what}: the encoded request does not decode: {e}\n{}",
            String::from_utf8_lossy(&encoded)
        );
    }
}
