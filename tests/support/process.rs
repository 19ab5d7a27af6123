//! Binaries the tests run as real processes, built on demand with cargo (once per test
//! binary) so they are never stale: the examples (with all features, like the test
//! suite), the example plugins that are workspace members of their own (`netbridge`,
//! `poolipam`) and the developer tools of the `xtask` package (the `recorder` plugin).
//! They are started and stopped with the harness's `PluginProcess`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

static BUILT: Mutex<Option<HashMap<String, Result<(), String>>>> = Mutex::new(None);

/// The path of example `name`, built first (with all features). Panics with cargo's
/// output when the build fails.
pub fn example_binary(name: &str) -> PathBuf {
    build(
        &["--all-features", "--example", name],
        &profile_dir().join("examples").join(name),
    )
}

/// The path of binary `name` of the `xtask` package (e.g. `recorder`), built first.
/// Panics with cargo's output when the build fails.
pub fn xtask_binary(name: &str) -> PathBuf {
    package_binary("xtask", name)
}

/// The path of binary `name` of workspace member `package` (e.g. `netbridge`), built
/// first. Panics with cargo's output when the build fails.
pub fn package_binary(package: &str, name: &str) -> PathBuf {
    build(
        &["--package", package, "--bin", name],
        &profile_dir().join(name),
    )
}

/// target/debug/deps/<test binary> -> target/debug
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// `cargo build --quiet ARGS` once per test binary, then `binary`.
fn build(args: &[&str], binary: &Path) -> PathBuf {
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    let result = built.entry(args.join(" ")).or_insert_with(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .arg("build")
            .arg("--quiet")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .map_err(|e| format!("running cargo build: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "cargo build {} failed:\n{}",
                args.join(" "),
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
