//! The Prometheus text reader (what dockerd serves on its metrics socket): never a
//! panic, and what it reads it writes back to a text it reads the same way.
#![no_main]

use docker_plugin_sdk::metrics::Scrape;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(scrape) = Scrape::parse(text) else {
        return;
    };
    let rendered = scrape.render();
    match Scrape::parse(&rendered) {
        // Compared as text: a NaN sample is not equal to itself.
        Ok(again) => assert_eq!(again.render(), rendered, "read back from {text:?}"),
        Err(e) => panic!("the rendered scrape does not read back: {e}\n{rendered}"),
    }
});
