//! Every volume request body, decoded as the server decodes it, and
//! `/Plugin.Activate`'s (every plugin answers it).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    docker_plugin_sdk_fuzz::requests(data, docker_plugin_sdk::volume::visit_methods);
    docker_plugin_sdk_fuzz::requests(data, docker_plugin_sdk::protocol::visit_methods);
});
