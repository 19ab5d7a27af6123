//! How the packager drives cargo: the flags passed on to it ([`CargoFlags`]), `cargo
//! build` and the binary it built ([`Artifact`], read from its JSON messages), and
//! `cargo locate-project` / `cargo metadata` for the manifest and target directory.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{Packager, Target};
use crate::package::arch::Arch;
use crate::package::error::PackageError;

/// The flags `cargo docker-plugin package` passes on to cargo, as cargo subcommands
/// do: `-p`, `--target`, `--target-dir`, `--locked`, `--frozen`, `--offline`, `-v`,
/// `-q`, `--color`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CargoFlags {
    /// `-p/--package`: the workspace member to package.
    pub package: Option<String>,
    /// `--target TRIPLE`: build for this target; the plugin's architecture.
    pub target: Option<String>,
    /// `--target-dir DIR`.
    pub target_dir: Option<PathBuf>,
    /// `--locked`.
    pub locked: bool,
    /// `--frozen`.
    pub frozen: bool,
    /// `--offline`.
    pub offline: bool,
    /// `-v` (repeatable).
    pub verbose: u8,
    /// `-q`.
    pub quiet: bool,
    /// `--color auto|always|never`.
    pub color: Option<String>,
}

impl CargoFlags {
    /// The flags every cargo command takes (`--locked`, `--frozen`, `--offline`,
    /// `--color`).
    fn common(&self, command: &mut Command) {
        for (set, flag) in [
            (self.locked, "--locked"),
            (self.frozen, "--frozen"),
            (self.offline, "--offline"),
        ] {
            if set {
                command.arg(flag);
            }
        }
        if let Some(color) = &self.color {
            command.arg("--color").arg(color);
        }
    }

    /// Every flag, for `cargo build`.
    fn build(&self, command: &mut Command) {
        self.common(command);
        if let Some(package) = &self.package {
            command.arg("--package").arg(package);
        }
        if let Some(target) = &self.target {
            command.arg("--target").arg(target);
        }
        if let Some(dir) = &self.target_dir {
            command.arg("--target-dir").arg(dir);
        }
        for _ in 0..self.verbose {
            command.arg("--verbose");
        }
        if self.quiet {
            command.arg("--quiet");
        }
    }

    /// The architecture the plugin is built for: `--target`'s, else the host's.
    pub fn arch(&self) -> Result<Arch, PackageError> {
        match &self.target {
            Some(triple) => Arch::from_target_triple(triple),
            None => Ok(Arch::host()),
        }
    }
}

/// A binary cargo built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The target's name.
    pub name: String,
    /// The executable.
    pub executable: PathBuf,
    /// The `Cargo.toml` of its package.
    pub manifest_path: PathBuf,
    /// Whether it is an example.
    pub example: bool,
}

/// The cargo commands of [`Packager`].
impl Packager {
    fn cargo(&self) -> Command {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command.stdin(Stdio::null());
        command
    }

    /// Runs `cargo build --profile P --message-format=json-render-diagnostics` and
    /// returns the plugin binary it built. Cargo's diagnostics go to stderr.
    pub fn build(&self) -> Result<Artifact, PackageError> {
        let mut command = self.cargo();
        command
            .args([
                "build",
                "--message-format=json-render-diagnostics",
                "--profile",
            ])
            .arg(&self.profile);
        if let Some(path) = &self.manifest_path {
            command.arg("--manifest-path").arg(path);
        }
        self.cargo_flags.build(&mut command);
        match &self.target {
            Target::Default => {
                command.arg("--bins");
            }
            Target::Bin(name) => {
                command.args(["--bin", name]);
            }
            Target::Example(name) => {
                command.args(["--example", name]);
            }
        }
        if !self.features.is_empty() {
            command.arg("--features").arg(self.features.join(","));
        }
        if self.all_features {
            command.arg("--all-features");
        }
        if self.no_default_features {
            command.arg("--no-default-features");
        }
        command.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let output = command
            .output()
            .map_err(|e| PackageError::Cargo(format!("cannot run cargo: {e}")))?;
        if !output.status.success() {
            let hint = match &self.cargo_flags.target {
                Some(triple) if Arch::from_target_triple(triple).ok() != Some(Arch::host()) => {
                    format!(
                        " (building for {triple} needs its standard library, `rustup target add {triple}`, \
                         and a linker for it, e.g. CARGO_TARGET_{}_LINKER)",
                        triple.to_ascii_uppercase().replace('-', "_")
                    )
                }
                _ => String::new(),
            };
            return Err(PackageError::Cargo(format!(
                "cargo build failed ({}); see its messages above{hint}",
                output.status
            )));
        }
        let artifacts = parse_artifacts(&output.stdout)?;
        pick_artifact(artifacts, &self.target)
    }

    /// The package's `Cargo.toml`: `--manifest-path`, or the one cargo finds from the
    /// current directory (`cargo locate-project`).
    pub fn locate_manifest(&self) -> Result<PathBuf, PackageError> {
        if let Some(package) = &self.cargo_flags.package {
            return self.member_manifest(package);
        }
        if let Some(path) = &self.manifest_path {
            return Ok(path.clone());
        }
        let output = self
            .cargo()
            .args(["locate-project", "--message-format", "plain"])
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| PackageError::Cargo(format!("cannot run cargo locate-project: {e}")))?;
        if !output.status.success() {
            return Err(PackageError::Cargo(format!(
                "no Cargo.toml here or above: run in a package or pass --manifest-path ({})",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(PathBuf::from(
            String::from_utf8_lossy(&output.stdout).trim_end(),
        ))
    }

    /// `cargo metadata --no-deps` of the workspace.
    fn metadata(&self) -> Result<serde_json::Value, PackageError> {
        let mut command = self.cargo();
        command.args(["metadata", "--format-version", "1", "--no-deps"]);
        if let Some(path) = &self.manifest_path {
            command.arg("--manifest-path").arg(path);
        }
        self.cargo_flags.common(&mut command);
        let output = command
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| PackageError::Cargo(format!("cannot run cargo metadata: {e}")))?;
        if !output.status.success() {
            return Err(PackageError::Cargo(format!(
                "cargo metadata failed ({})",
                output.status
            )));
        }
        serde_json::from_slice(&output.stdout)
            .map_err(|e| PackageError::Cargo(format!("cargo metadata printed bad JSON: {e}")))
    }

    /// The `Cargo.toml` of workspace member `package` (`-p`).
    fn member_manifest(&self, package: &str) -> Result<PathBuf, PackageError> {
        let metadata = self.metadata()?;
        let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
        packages
            .iter()
            .find(|p| p["name"] == package)
            .and_then(|p| p["manifest_path"].as_str())
            .map(PathBuf::from)
            .ok_or_else(|| {
                PackageError::Cargo(format!(
                    "-p {package}: no such package in the workspace (its members: {})",
                    packages
                        .iter()
                        .filter_map(|p| p["name"].as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }

    /// The target directory of the package: `--target-dir`, else `cargo metadata`'s.
    pub fn target_directory(&self) -> Result<PathBuf, PackageError> {
        if let Some(dir) = &self.cargo_flags.target_dir {
            return Ok(dir.clone());
        }
        let value = self.metadata()?;
        value
            .get("target_directory")
            .and_then(|v| v.as_str())
            .map(PathBuf::from)
            .ok_or_else(|| PackageError::Cargo("cargo metadata has no target_directory".into()))
    }
}

/// The executables in cargo's `--message-format=json` output.
fn parse_artifacts(stdout: &[u8]) -> Result<Vec<Artifact>, PackageError> {
    let mut artifacts = Vec::new();
    for line in stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(message) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        if message.get("reason").and_then(|r| r.as_str()) != Some("compiler-artifact") {
            continue;
        }
        let Some(executable) = message.get("executable").and_then(|e| e.as_str()) else {
            continue;
        };
        let target = &message["target"];
        let kinds: Vec<&str> = target["kind"]
            .as_array()
            .map(|k| k.iter().filter_map(|k| k.as_str()).collect())
            .unwrap_or_default();
        let example = kinds.contains(&"example");
        if !example && !kinds.contains(&"bin") {
            continue;
        }
        artifacts.push(Artifact {
            name: target["name"].as_str().unwrap_or_default().to_owned(),
            executable: PathBuf::from(executable),
            manifest_path: PathBuf::from(message["manifest_path"].as_str().unwrap_or_default()),
            example,
        });
    }
    Ok(artifacts)
}

fn pick_artifact(artifacts: Vec<Artifact>, target: &Target) -> Result<Artifact, PackageError> {
    let wanted = |a: &Artifact| match target {
        Target::Default => !a.example,
        Target::Bin(name) => !a.example && &a.name == name,
        Target::Example(name) => a.example && &a.name == name,
    };
    let mut matching: Vec<Artifact> = artifacts.into_iter().filter(wanted).collect();
    match matching.len() {
        1 => Ok(matching.remove(0)),
        0 => Err(PackageError::Cargo(
            "cargo built no matching executable: name it with --bin or --example".into(),
        )),
        _ => Err(PackageError::Cargo(format!(
            "the package has several binaries ({}): choose one with --bin",
            matching
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests;
