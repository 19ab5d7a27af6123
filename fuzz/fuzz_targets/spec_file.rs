//! Spec files as dockerd's discovery reads them (`Discovery::find`): the same bytes as
//! a `NAME.spec` (one URL) and as a `NAME.json` (`{"Name", "Addr", "TLSConfig"}`), in a
//! directory made once per fuzzing process.
#![no_main]

use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;

use docker_plugin_sdk::harness::Discovery;

/// The root of a `/run/docker/plugins` and two spec directories, empty but for the
/// file each run writes.
fn root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("dps-fuzz-spec-{}", std::process::id()));
        let discovery = Discovery::rooted(&root);
        for dir in &discovery.spec_dirs {
            fs::create_dir_all(dir).expect("the spec directories");
        }
        root
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let discovery = Discovery::rooted(root());
    let dir = &discovery.spec_dirs[0];
    for ext in ["spec", "json"] {
        let path = dir.join(format!("p.{ext}"));
        fs::write(&path, data).expect("writing the spec file");
        let _ = discovery.find("p");
        fs::remove_file(&path).expect("removing the spec file");
    }
});
