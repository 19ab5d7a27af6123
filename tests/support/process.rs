//! Binaries the tests run as real processes, built on demand with cargo (once per test
//! binary) so they are never stale: the examples, the example plugins that are
//! workspace members of their own (`netbridge`, `poolipam`) and the developer tools of
//! the `xtask` package (the `recorder` plugin). They are started and stopped with the
//! harness's `PluginProcess`.
//!
//! All of them come from one build, `cargo build --workspace --all-features --bins
//! --examples`: the selection `scripts/test` builds with the test binaries (`cargo test
//! --workspace --all-features`), whose features it shares, so that under CI they are
//! already built and nothing is compiled while the tests run (a narrower selection
//! would unify the dependencies' features differently and compile the SDK again).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The result of this test binary's one build.
static BUILT: Mutex<Option<Result<(), String>>> = Mutex::new(None);

/// What is built: every binary and example of the workspace, with all features.
const BUILD_ARGS: [&str; 5] = [
    "--workspace",
    "--all-features",
    "--bins",
    "--examples",
    "--quiet",
];

/// The path of example `name`, built first. Panics with cargo's
/// output when the build fails.
pub fn example_binary(name: &str) -> PathBuf {
    build(&profile_dir().join("examples").join(name))
}

/// The path of binary `name` of the `xtask` package (e.g. `recorder`), built first.
/// Panics with cargo's output when the build fails.
pub fn xtask_binary(name: &str) -> PathBuf {
    package_binary("xtask", name)
}

/// The path of binary `name` of workspace member `_package` (e.g. `netbridge`; the
/// workspace build makes every member's binaries), built first. Panics with cargo's
/// output when the build fails.
pub fn package_binary(_package: &str, name: &str) -> PathBuf {
    build(&profile_dir().join(name))
}

/// target/debug/deps/<test binary> -> target/debug
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// `cargo build BUILD_ARGS` once per test binary, then `binary`.
fn build(binary: &Path) -> PathBuf {
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let result = built.get_or_insert_with(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .arg("build")
            .args(BUILD_ARGS)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .map_err(|e| format!("running cargo build: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "cargo build {} failed:\n{}",
                BUILD_ARGS.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(message) = result {
        panic!("{message}");
    }
    assert!(binary.exists(), "{} was not built", binary.display());
    binary.to_path_buf()
}

/// How many processes have `marker` as one of their arguments.
pub fn processes_with(marker: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|cmdline| {
            cmdline
                .split(|b| *b == 0)
                .any(|arg| arg == marker.as_bytes())
        })
        .count()
}
