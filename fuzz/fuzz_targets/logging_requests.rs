//! Every log-driver request body, decoded as the server decodes it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    docker_plugin_sdk_fuzz::requests(data, docker_plugin_sdk::logging::visit_methods);
});
