//! The cargo-generate templates, generated with the real `cargo generate` (0.23.5,
//! installed by `scripts/install-test-deps`) and built against this checkout: each
//! generated crate must pass its own `.ci/run` (fmt, clippy -D warnings, its tests,
//! which drive the real plugin binary through the harness).
//!
//! The volume template's `mount` kind mounts tmpfs and the network template makes
//! bridges, veth pairs and network namespaces: their tests need root. Under CI=true
//! they fail loudly when not root; otherwise they are reported as not run. Both volume
//! kinds run themselves as a managed plugin (a private mount namespace and chroot):
//! root, or unprivileged user namespaces.

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

/// `cargo generate` of `templates/TEMPLATE` as crate `name` in `into`, with
/// `defines` besides `sdk_path`.
fn generate(into: &Path, template: &str, name: &str, defines: &[String]) -> PathBuf {
    let mut command = Command::new("cargo");
    command
        .args(["generate", "--path"])
        .arg(workspace().join("templates").join(template))
        .args(["--name", name, "--vcs", "none", "--silent"]);
    for define in defines {
        command.args(["--define", define]);
    }
    run(
        command
            .arg("--define")
            .arg(format!("sdk_path={}", workspace().display()))
            .current_dir(into),
        &format!("cargo generate ({name})"),
    );
    into.join(name)
}

/// The volume template with `backing` (`directory` or `mount`).
fn generate_volume(into: &Path, name: &str, backing: &str) -> PathBuf {
    let defines = [
        format!("description=A {backing}-backed test plugin"),
        format!("backing={backing}"),
    ];
    generate(into, "volume", name, &defines)
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
    run(
        Command::new(crate_dir.join(".ci/run"))
            .current_dir(crate_dir)
            .env("CARGO_TARGET_DIR", workspace().join("target/templates"))
            .env_remove("RUSTFLAGS"),
        &format!("the generated {what} plugin's .ci/run"),
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
    if !cargo_generate_available() {
        assert!(
            !ci_required(),
            "cargo generate is missing: run scripts/install-test-deps \
             (cargo install cargo-generate --version 0.23.5 --locked)"
        );
        eprintln!("NOT RUN: cargo generate is not installed (scripts/install-test-deps)");
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
fn network_template_generates_a_crate_that_passes_its_own_ci() {
    if !cargo_generate_available() {
        assert!(
            !ci_required(),
            "cargo generate is missing: run scripts/install-test-deps \
             (cargo install cargo-generate --version 0.23.5 --locked)"
        );
        eprintln!("NOT RUN: cargo generate is not installed (scripts/install-test-deps)");
        return;
    }
    if !root_or_not_run("the network template's tests") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let defines = ["description=A test network and IPAM plugin".to_owned()];
    let crate_dir = generate(dir.path(), "network", "tpl-net", &defines);
    check_generated(&crate_dir, "network");
}
