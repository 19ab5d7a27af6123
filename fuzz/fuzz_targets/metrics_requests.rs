//! Every metrics request body, decoded as the server decodes it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    docker_plugin_sdk_fuzz::requests(data, docker_plugin_sdk::metrics::visit_methods);
});
