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
//!
//! That build runs in the environment the tests were started from, without the
//! variables cargo sets for a test process about its package (`CARGO_MANIFEST_DIR`,
//! `CARGO_PKG_NAME`, …): ring's build script declares that it depends on them
//! (`cargo:rerun-if-env-changed`), so with them cargo would run it again and compile
//! ring, rustls, the SDK and every binary once more, and the next plain build back.
//! Under `scripts/test` (`DOCKER_PLUGIN_SDK_PREBUILT=1`) anything compiled here fails
//! the test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The result of this test binary's one build.
static BUILT: Mutex<Option<Result<(), String>>> = Mutex::new(None);

/// What is built: every binary and example of the workspace, with all features.
const BUILD_ARGS: [&str; 4] = ["--workspace", "--all-features", "--bins", "--examples"];

/// Set by `scripts/test`, which builds [`BUILD_ARGS`] before the tests run: then
/// nothing may be compiled here.
const PREBUILT: &str = "DOCKER_PLUGIN_SDK_PREBUILT";

/// Whether `name` is one of the variables cargo sets for a test (or any program it
/// runs) about its package, as opposed to the user's environment.
fn set_by_cargo_for_the_test(name: &str) -> bool {
    matches!(
        name,
        "CARGO_MANIFEST_DIR"
            | "CARGO_MANIFEST_PATH"
            | "CARGO_MANIFEST_LINKS"
            | "CARGO_CRATE_NAME"
            | "CARGO_BIN_NAME"
            | "CARGO_PRIMARY_PACKAGE"
            | "CARGO_TARGET_TMPDIR"
            | "CARGO_RUSTC_CURRENT_DIR"
            | "OUT_DIR"
    ) || name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_BIN_EXE_")
}

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
        let mut command = Command::new(cargo);
        command
            .arg("build")
            .args(BUILD_ARGS)
            .arg("--message-format=json-render-diagnostics")
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(set_by_cargo_for_the_test) {
                command.env_remove(name);
            }
        }
        let out = command
            .output()
            .map_err(|e| format!("running cargo build: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cargo build {} failed:\n{}",
                BUILD_ARGS.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let compiled = compiled(&out.stdout);
        if std::env::var_os(PREBUILT).is_some() && !compiled.is_empty() {
            return Err(format!(
                "cargo build {} compiled {} though {PREBUILT} says scripts/test \
                 built it before the tests: a file changed since, or the tests' \
                 environment changes what cargo fingerprints (run the build with \
                 CARGO_LOG=cargo::core::compiler::fingerprint=info to see which)",
                BUILD_ARGS.join(" "),
                compiled.join(", ")
            ));
        }
        Ok(())
    });
    if let Err(message) = result {
        panic!("{message}");
    }
    assert!(binary.exists(), "{} was not built", binary.display());
    binary.to_path_buf()
}

/// The targets cargo's JSON messages `stdout` say were compiled rather than found
/// fresh, as `PACKAGE TARGET`.
fn compiled(stdout: &[u8]) -> Vec<String> {
    stdout
        .split(|b| *b == b'\n')
        .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact" && message["fresh"] == false)
        .map(|message| {
            let package = message["package_id"].as_str().unwrap_or("?");
            let target = message["target"]["name"].as_str().unwrap_or("?");
            format!("{package} {target}")
        })
        .collect()
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
