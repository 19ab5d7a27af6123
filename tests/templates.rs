//! The cargo-generate templates, generated with the real `cargo generate` (0.23.5,
//! installed by `scripts/install-test-deps`) and built against this checkout: each
//! generated crate must pass its own `.ci/run` (fmt, clippy -D warnings, its tests,
//! which drive the real plugin binary through the harness), and build no registry
//! client (the SDK's `registry` feature) for tests that never push.
//!
//! Templates: `volume` (kinds `directory` and `mount`), `network`, `authz` and `logging`. The
//! `mount` kind mounts tmpfs and the network template makes bridges, veth pairs and
//! network namespaces: their tests need root. Under CI=true they fail loudly when not
//! root; otherwise they are reported as not run. Every generated plugin runs itself as
//! a managed plugin (a private mount namespace and chroot): root, or unprivileged user
//! namespaces.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ci_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn run(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn cargo_generate_available() -> bool {
    Command::new("cargo")
        .args(["generate", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether `cargo generate` is there; under CI its absence fails the test.
fn cargo_generate_or_skip() -> bool {
    if cargo_generate_available() {
        return true;
    }
    assert!(
        !ci_required(),
        "cargo generate is missing: run scripts/install-test-deps \
         (cargo install cargo-generate --version 0.23.5 --locked)"
    );
    eprintln!("NOT RUN: cargo generate is not installed (scripts/install-test-deps)");
    false
}

/// `cargo generate` of `templates/TEMPLATE` as crate `name` in `into`, with the
/// placeholders `defines` (and `sdk_path`, this checkout).
fn generate(into: &Path, template: &str, name: &str, defines: &[(&str, &str)]) -> PathBuf {
    let mut command = Command::new("cargo");
    command
        .args(["generate", "--path"])
        .arg(workspace().join("templates").join(template))
        .args(["--name", name, "--vcs", "none", "--silent"])
        .arg("--define")
        .arg(format!("sdk_path={}", workspace().display()))
        .current_dir(into);
    for (key, value) in defines {
        command.args(["--define", &format!("{key}={value}")]);
    }
    run(&mut command, &format!("cargo generate ({name})"));
    into.join(name)
}

/// The volume template with `backing`.
fn generate_volume(into: &Path, name: &str, backing: &str) -> PathBuf {
    let description = format!("A {backing}-backed test plugin");
    generate(
        into,
        "volume",
        name,
        &[("description", &description), ("backing", backing)],
    )
}

/// Whether the tests that need root may run: when not root, they fail under CI and
/// are reported as not run otherwise.
fn root_or_not_run(what: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(!ci_required(), "{what} need root under CI");
    eprintln!("NOT RUN: {what} need root");
    false
}

/// `what` (the template and its kind) names the crate in failures.
fn check_generated(crate_dir: &Path, what: &str) {
    for file in [
        "Cargo.toml",
        "README.md",
        ".ci/run",
        "src/lib.rs",
        "src/main.rs",
        "tests/plugin.rs",
    ] {
        assert!(crate_dir.join(file).is_file(), "{what}: {file} generated");
    }
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("[package.metadata.docker-plugin]"));
    assert!(
        !manifest.contains("{{") && !manifest.contains("{%"),
        "{manifest}"
    );
    packager_accepts(crate_dir);
    // Start from the workspace's lock file: the same dependency versions, known to
    // build on this toolchain.
    std::fs::copy(workspace().join("Cargo.lock"), crate_dir.join("Cargo.lock")).unwrap();
    builds_no_registry_client(crate_dir, what);
    let started = std::time::Instant::now();
    run(
        Command::new(crate_dir.join(".ci/run"))
            .current_dir(crate_dir)
            .env("CARGO_TARGET_DIR", workspace().join("target/templates"))
            .env_remove("RUSTFLAGS"),
        &format!("the generated {what} plugin's .ci/run"),
    );
    // Where the time goes (shown with --nocapture): the first crate compiles the
    // dependencies, the others find them built in the shared target directory.
    eprintln!(
        "the generated {what} plugin's .ci/run passed in {:.0?}",
        started.elapsed()
    );
}

/// A plugin's tests use the packager (feature `packager`) but never push or pull: the
/// generated crate's dependencies, its dev-dependencies included, hold no registry
/// client (feature `registry`: ureq, rustls and ring, docker_credential), which would
/// add their build to every plugin's first `cargo test`.
fn builds_no_registry_client(crate_dir: &Path, what: &str) {
    let output = Command::new("cargo")
        .args([
            "tree",
            "--offline",
            "--edges",
            "normal,build,dev",
            "--prefix",
            "none",
        ])
        .current_dir(crate_dir)
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run cargo tree: {e}"));
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && tree.contains("docker-plugin-sdk "),
        "{what}: cargo tree failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let registry_client: Vec<&str> = tree
        .lines()
        .filter(|line| {
            let name = line.split(' ').next().unwrap_or_default();
            ["ureq", "rustls", "ring", "docker_credential"].contains(&name)
        })
        .collect();
    assert!(
        registry_client.is_empty(),
        "{what}: the generated crate builds a registry client: {registry_client:?}"
    );
}

/// The generated `[package.metadata.docker-plugin]` gives a config.json that passes
/// every packaging rule (what `cargo docker-plugin package` checks first).
fn packager_accepts(crate_dir: &Path) {
    use docker_plugin_sdk::package::metadata::Metadata;
    let manifest = crate_dir.join("Cargo.toml");
    let (package, metadata) = Metadata::from_manifest(&manifest, None).unwrap();
    let config = metadata
        .to_config(&package, &package.name, &manifest)
        .unwrap();
    config.validate().unwrap();
    assert_eq!(config.interface.socket, format!("{}.sock", package.name));
}

#[test]
fn volume_template_generates_crates_that_pass_their_own_ci() {
    if !cargo_generate_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = generate_volume(dir.path(), "tpl-dir-volumes", "directory");
    check_generated(&crate_dir, "directory");

    if !root_or_not_run("the mount template's tests") {
        return;
    }
    let crate_dir = generate_volume(dir.path(), "tpl-mount-volumes", "mount");
    check_generated(&crate_dir, "mount");
}

#[test]
fn authz_template_generates_a_crate_that_passes_its_own_ci() {
    if !cargo_generate_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = generate(
        dir.path(),
        "authz",
        "tpl-authz-policy",
        &[("description", "A test authorization plugin")],
    );
    check_generated(&crate_dir, "authz");
}

#[test]
fn network_template_generates_a_crate_that_passes_its_own_ci() {
    if !cargo_generate_or_skip() {
        return;
    }
    if !root_or_not_run("the network template's tests") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = generate(
        dir.path(),
        "network",
        "tpl-net",
        &[("description", "A test network and IPAM plugin")],
    );
    check_generated(&crate_dir, "network");
}

#[test]
fn logging_template_generates_a_crate_that_passes_its_own_ci() {
    if !cargo_generate_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = generate(
        dir.path(),
        "logging",
        "tpl-log-driver",
        &[("description", "A test log driver")],
    );
    check_generated(&crate_dir, "logging");
}
