//! `cargo docker-plugin package` as a library: build the crate (or take an executable
//! already built, `--binary`), turn its metadata into `config.json`, assemble the
//! rootfs, and optionally archive the bundle. How cargo
//! is run and read (its flags, `build`, `metadata`) is the `cargo` submodule's.
//!
//! ```no_run
//! use docker_plugin_sdk::package::packager::{Packager, Target};
//!
//! let packaged = Packager::new()
//!     .target(Target::Example("localvol".into()))
//!     .tarball(true)
//!     .run(&mut |step| eprintln!("{step}"))?;
//! println!("{}: {} files, {} bytes", packaged.bundle.dir().display(), packaged.files, packaged.size);
//! # Ok::<(), docker_plugin_sdk::package::PackageError>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use super::arch::Arch;
use super::archive::{Archive, ArchiveOptions, source_date_epoch};
use super::error::{IoContext, PackageError};
use super::metadata::{Metadata, PackageInfo, binary_path};
use crate::managed::bundle::Bundle;

mod cargo;
pub use cargo::{Artifact, CargoFlags};

/// Which binary of the package is the plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Target {
    /// The package's only binary.
    #[default]
    Default,
    /// `--bin NAME`.
    Bin(String),
    /// `--example NAME` (its metadata is `[package.metadata.docker-plugin.examples.NAME]`).
    Example(String),
}

/// A step of [`Packager::run`], for progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `cargo build` is running.
    Building,
    /// The rootfs is being assembled into this directory.
    Assembling(PathBuf),
    /// The bundle is being archived into this file; `total` bytes of files.
    Archiving(PathBuf, u64),
    /// Bytes of the bundle's files archived so far.
    Archived(u64),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Building => f.write_str("building with cargo"),
            Step::Assembling(dir) => write!(f, "assembling {}", dir.display()),
            Step::Archiving(file, _) => write!(f, "archiving into {}", file.display()),
            Step::Archived(bytes) => write!(f, "{bytes} bytes archived"),
        }
    }
}

/// Options of `cargo docker-plugin package`.
#[derive(Debug, Clone)]
pub struct Packager {
    manifest_path: Option<PathBuf>,
    cargo_flags: CargoFlags,
    target: Target,
    profile: String,
    features: Vec<String>,
    all_features: bool,
    no_default_features: bool,
    metadata_file: Option<PathBuf>,
    out_dir: Option<PathBuf>,
    tarball: bool,
    mtime: u64,
    prebuilt: Option<PathBuf>,
}

impl Default for Packager {
    fn default() -> Self {
        Self::new()
    }
}

/// What [`Packager::run`] produced.
#[derive(Debug, Clone)]
pub struct Packaged {
    /// The bundle directory.
    pub bundle: Bundle,
    /// The plugin binary: the one cargo built, or [`Packager::binary`]'s.
    pub binary: PathBuf,
    /// Regular files in the rootfs.
    pub files: usize,
    /// Their total size in bytes.
    pub size: u64,
    /// The `.tar.gz` of the bundle and its path, with `--tar`.
    pub tarball: Option<(PathBuf, Archive)>,
    /// The architecture the plugin is built for (every ELF file of the rootfs is).
    pub arch: Arch,
    /// The programs of the rootfs (the plugin binary and `binaries`), as the plugin
    /// sees them: what `--verify` runs.
    pub programs: Vec<String>,
    /// What the packager could not check (see [`Written::warnings`](super::rootfs::Written::warnings)).
    pub warnings: Vec<String>,
    /// The metadata's `verify = true`: the programs must be run in the rootfs, as
    /// with `--verify`.
    pub verify: bool,
}

impl Packager {
    /// Release build of the package in the current directory, bundle in
    /// `target/docker-plugin/<binary>`.
    pub fn new() -> Self {
        Self {
            manifest_path: None,
            cargo_flags: CargoFlags::default(),
            target: Target::Default,
            profile: "release".into(),
            features: Vec::new(),
            all_features: false,
            no_default_features: false,
            metadata_file: None,
            out_dir: None,
            tarball: false,
            mtime: source_date_epoch(),
            prebuilt: None,
        }
    }

    /// `--manifest-path`.
    pub fn manifest_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.manifest_path = Some(path.into());
        self
    }

    /// The flags passed on to cargo (`-p`, `--target`, `--locked`, …).
    pub fn cargo_flags(mut self, flags: CargoFlags) -> Self {
        self.cargo_flags = flags;
        self
    }

    /// `--bin` / `--example`.
    pub fn target(mut self, target: Target) -> Self {
        self.target = target;
        self
    }

    /// `--profile` (default `release`).
    pub fn profile(mut self, profile: impl Into<String>) -> Self {
        self.profile = profile.into();
        self
    }

    /// `--features`, `--all-features`, `--no-default-features`.
    pub fn features(mut self, features: Vec<String>, all: bool, no_default: bool) -> Self {
        self.features = features;
        self.all_features = all;
        self.no_default_features = no_default;
        self
    }

    /// `--metadata FILE.toml`: the plugin metadata from this file instead of
    /// `Cargo.toml`.
    pub fn metadata_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.metadata_file = Some(path.into());
        self
    }

    /// `--out DIR`: the bundle directory.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// `--tar`: also write `DIR.tar.gz`.
    pub fn tarball(mut self, yes: bool) -> Self {
        self.tarball = yes;
        self
    }

    /// `--binary PATH`: package this executable, already built (by another cargo
    /// invocation, a CI step, a cross build), instead of running `cargo build`. The
    /// metadata is still the package's (`-p`, `--manifest-path`, `--example`); the
    /// binary's name in the rootfs is `--bin`'s or `--example`'s, else the file's name.
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.prebuilt = Some(path.into());
        self
    }

    /// The mtime of the output (default: `SOURCE_DATE_EPOCH` or 0).
    pub fn mtime(mut self, secs: u64) -> Self {
        self.mtime = secs;
        self
    }

    /// Builds, assembles the bundle (and the tarball with `--tar`); `progress` hears
    /// of each step.
    pub fn run(&self, progress: &mut dyn FnMut(Step)) -> Result<Packaged, PackageError> {
        // Read the metadata first: a typo should not cost a release build.
        let manifest = self.locate_manifest()?;
        let example = match &self.target {
            Target::Example(name) => Some(name.as_str()),
            _ => None,
        };
        let (info, metadata, base_dir) = match &self.metadata_file {
            Some(file) => (
                PackageInfo::from_manifest(&manifest)?,
                Metadata::from_file(file)?,
                file.parent().map(Path::to_path_buf).unwrap_or_default(),
            ),
            None => {
                let (info, metadata) = Metadata::from_manifest(&manifest, example)?;
                let dir = manifest.parent().map(Path::to_path_buf).unwrap_or_default();
                (info, metadata, dir)
            }
        };
        let arch = self.cargo_flags.arch()?;
        let artifact = match &self.prebuilt {
            Some(path) => prebuilt_artifact(path, &self.target, &manifest)?,
            None => {
                progress(Step::Building);
                self.build()?
            }
        };
        let config = metadata.to_config(&info, &artifact.name, &manifest)?;
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => self
                .target_directory()?
                .join("docker-plugin")
                .join(&artifact.name),
        };
        progress(Step::Assembling(out_dir.clone()));
        let writer = metadata
            .bundle_writer(
                &out_dir,
                config,
                &artifact.name,
                &artifact.executable,
                &base_dir,
            )
            .mtime(self.mtime)
            .arch(arch);
        let programs: Vec<String> = std::iter::once(binary_path(&artifact.name))
            .chain(metadata.binaries.iter().cloned())
            .collect();
        let written = writer.write()?;
        let (files, size) = count(&written.bundle.rootfs())?;
        let tarball = if self.tarball {
            let path = tarball_path(&out_dir)?;
            let (_, total) = count(&out_dir)?;
            progress(Step::Archiving(path.clone(), total));
            let archive = Archive::of_dir_with_progress(
                &out_dir,
                &ArchiveOptions { mtime: self.mtime },
                &mut |done| progress(Step::Archived(done)),
            )?;
            archive.write_to(&path)?;
            Some((path, archive))
        } else {
            None
        };
        Ok(Packaged {
            bundle: written.bundle,
            binary: artifact.executable,
            files,
            size,
            tarball,
            arch: written.arch,
            programs,
            warnings: written.warnings,
            verify: metadata.verify,
        })
    }
}

/// `DIR.tar.gz` next to the bundle directory `dir`, never inside it: `dist/lv/`
/// (trailing separators) gives `dist/lv.tar.gz`; `.` or `..` are made absolute
/// first (the bundle exists by then) to have a name.
pub fn tarball_path(dir: &Path) -> Result<PathBuf, PackageError> {
    // `Path::file_name` and `Path::parent` ignore trailing separators and `.`.
    let named = match dir.file_name() {
        Some(_) => dir.to_path_buf(),
        None => std::fs::canonicalize(dir).at(dir)?,
    };
    match (named.parent(), named.file_name()) {
        (Some(parent), Some(name)) => {
            let mut file = name.to_os_string();
            file.push(".tar.gz");
            Ok(parent.join(file))
        }
        _ => Err(PackageError::io(
            dir,
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the bundle directory has no name to give its tarball: choose another --out",
            ),
        )),
    }
}

/// Regular files under `dir` and their total size.
pub fn count(dir: &Path) -> Result<(usize, u64), PackageError> {
    let mut files = 0;
    let mut size = 0;
    for entry in std::fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        let meta = std::fs::symlink_metadata(&path).at(&path)?;
        if meta.is_dir() {
            let (f, s) = count(&path)?;
            files += f;
            size += s;
        } else if meta.is_file() {
            files += 1;
            size += meta.len();
        }
    }
    Ok((files, size))
}

/// The executable `--binary PATH` names, as if cargo had built it: named after
/// `--bin`/`--example`, else after the file.
fn prebuilt_artifact(
    path: &Path,
    target: &Target,
    manifest: &Path,
) -> Result<Artifact, PackageError> {
    let not_a_file = |why: String| PackageError::Elf {
        path: path.to_path_buf(),
        message: format!(
            "--binary: {why}: build the plugin first (cargo build), or give the path of its executable"
        ),
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Err(not_a_file("not a file".into())),
        Err(e) => return Err(not_a_file(e.to_string())),
    }
    let file_name = path.file_name().and_then(|n| n.to_str());
    let (name, example) = match (target, file_name) {
        (Target::Bin(name), _) => (name.clone(), false),
        (Target::Example(name), _) => (name.clone(), true),
        (Target::Default, Some(name)) => (name.to_owned(), false),
        (Target::Default, None) => {
            return Err(not_a_file(
                "its file name is not UTF-8: name the plugin's binary with --bin".into(),
            ));
        }
    };
    Ok(Artifact {
        name,
        executable: path.to_path_buf(),
        manifest_path: manifest.to_path_buf(),
        example,
    })
}

#[cfg(test)]
mod tests;
