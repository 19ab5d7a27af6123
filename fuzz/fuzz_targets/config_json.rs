//! A managed plugin's `config.json`, decoded as dockerd decodes it
//! (`PluginConfig::from_json`), then checked by the packaging rules.
#![no_main]

use docker_plugin_sdk::managed::config::PluginConfig;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(config) = PluginConfig::from_json(data) {
        let _ = config.validate();
        let encoded = serde_json::to_vec(&config).expect("a decoded config.json encodes");
        if let Err(e) = PluginConfig::from_json(&encoded) {
            panic!(
                "the encoded config.json does not decode: {e}\n{}",
                String::from_utf8_lossy(&encoded)
            );
        }
    }
});
