//! The packager's one error type.

use std::io;
use std::path::PathBuf;

use crate::managed::bundle::BundleError;
use crate::managed::config::ConfigError;

/// Why packaging, archiving or pushing a plugin failed. Every message names what was
/// wrong (a file, a field, a registry answer) and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// `[package.metadata.docker-plugin]` (or a `--metadata` file) does not parse; the
    /// message names the field (e.g. "unknown field `entrypont`").
    #[error("{}: {message}", .path.display())]
    Metadata {
        /// The manifest or metadata file.
        path: PathBuf,
        /// What is wrong, as the TOML decoder says it (line, column, field).
        message: String,
    },
    /// The metadata decoded but describes an impossible config.
    #[error("{}: {message}", .path.display())]
    MetadataValue {
        /// The manifest or metadata file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The generated `config.json` breaks a rule, or does not encode.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A bundle directory that cannot be used.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// `cargo build` or `cargo metadata` failed or did not produce what was asked.
    #[error("cargo: {0}")]
    Cargo(String),
    /// A binary or library cannot be resolved or is not a usable ELF file.
    #[error("{}: {message}", .path.display())]
    Elf {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A packaged program does not start inside its rootfs (`package --verify`).
    #[error("verify: {0}")]
    Verify(String),
    /// A registry refused a request, or answered something unexpected (feature
    /// `registry`).
    #[error("registry: {0}")]
    Registry(String),
    /// An image reference (`host[:port]/repo[:tag]`) that cannot be pushed to
    /// (feature `registry`).
    #[error("reference {reference:?}: {reason}")]
    Reference {
        /// The reference given.
        reference: String,
        /// What is wrong.
        reason: String,
    },
}

impl PackageError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Adds the path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T, PackageError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T, PackageError> {
        self.map_err(|source| PackageError::io(path, source))
    }
}
