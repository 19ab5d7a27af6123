//! `cargo docker-plugin doctor TARGET` (features `packager` and `harness`): why a
//! plugin will not start or answer, each finding with its fix.
//!
//! dockerd reports most failures of a managed plugin as `dial unix
//! /run/docker/plugins/<id>/x.sock: connect: no such file or directory`, which hides
//! the cause: a binary for another architecture, a missing library, a crash at
//! start, a device the plugin was not given. `doctor` looks where dockerd does not:
//!
//! - a **bundle** (directory, or the `.tar.gz` of `package --tar`): its config, the
//!   entrypoint's architecture against the host's, every ELF file's libraries as the
//!   loader in the rootfs will look for them, `/run/docker/plugins` and the
//!   propagated mount in the rootfs, what its programs need from the config (FUSE
//!   needs `/dev/fuse` and `CAP_SYS_ADMIN`, network clients a network), and finally
//!   the entrypoint started as the harness runs it, to see it listen or crash
//!   ([`check_bundle`]);
//! - a **socket** or URL: present, accepting, and what `/Plugin.Activate` answers;
//! - a **plugin name**: the managed plugin the engine (`DOCKER_HOST`) has under it
//!   (enabled? its socket `/run/docker/plugins/<ID>/<socket>` answering?), its last
//!   lines in dockerd's log, and a legacy plugin of the same name that shadows it:
//!   once dockerd has used a legacy volume driver it keeps it for its life, so `-d
//!   NAME` never reaches the managed `NAME:latest` (moby v20.10.24
//!   `volume/drivers/extpoint.go`).
//!
//! ```no_run
//! use docker_plugin_sdk::package::doctor::{Options, doctor};
//!
//! # async fn run() {
//! let report = doctor("target/docker-plugin/localvol", &Options::default()).await;
//! print!("{report}");
//! assert_eq!(report.problems(), 0);
//! # }
//! ```

mod bundle;
mod plugin;
mod start;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use bundle::check_bundle;
pub use plugin::{check_plugin, check_socket, plugin_log_lines};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Checked and fine.
    Ok,
    /// Not fatal, but worth a look.
    Warning,
    /// Why the plugin will not start or not be reached.
    Problem,
}

/// One thing checked: what was found and, when it is not fine, the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How bad it is.
    pub severity: Severity,
    /// What was checked, e.g. `architecture`.
    pub check: &'static str,
    /// What was found.
    pub detail: String,
    /// What to do about it.
    pub fix: Option<String>,
}

impl Finding {
    pub(crate) fn ok(check: &'static str, detail: impl Into<String>) -> Self {
        Self {
            severity: Severity::Ok,
            check,
            detail: detail.into(),
            fix: None,
        }
    }

    pub(crate) fn problem(
        check: &'static str,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Problem,
            check,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub(crate) fn warning(
        check: &'static str,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Warning,
            check,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

impl fmt::Display for Finding {
    /// `problem  architecture: …` then `         fix: …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = match self.severity {
            Severity::Ok => "ok",
            Severity::Warning => "warning",
            Severity::Problem => "problem",
        };
        write!(f, "{mark:<8} {}: {}", self.check, self.detail)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n         fix: {fix}")?;
        }
        Ok(())
    }
}

/// Everything `doctor` found about one target.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// What was examined, as given.
    pub target: String,
    /// The findings, in the order checked.
    pub findings: Vec<Finding>,
}

impl Report {
    /// How many findings are problems.
    pub fn problems(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Problem)
            .count()
    }

    /// The finding of `check`, if any.
    pub fn finding(&self, check: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.check == check)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "doctor   {}", self.target)?;
        for finding in &self.findings {
            writeln!(f, "{finding}")?;
        }
        match self.problems() {
            0 => writeln!(f, "no problem found"),
            1 => writeln!(f, "1 problem"),
            n => writeln!(f, "{n} problems"),
        }
    }
}

/// How `doctor` looks.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long a bundle's entrypoint gets to listen (default 12.5 s, dockerd's
    /// window: 500 ms, then 4 dials 3 s apart).
    pub start_timeout: Duration,
    /// Whether to start a bundle's entrypoint at all (needs root, like the
    /// harness).
    pub start: bool,
    /// dockerd's log file, for an installed plugin's last lines (default: `journalctl
    /// -u docker.service`).
    pub dockerd_log: Option<PathBuf>,
    /// How many of those lines.
    pub log_lines: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            start_timeout: Duration::from_millis(12_500),
            start: true,
            dockerd_log: None,
            log_lines: 10,
        }
    }
}

/// Examines `target`: a bundle directory or tarball, a socket path or URL, or a
/// plugin name.
pub async fn doctor(target: &str, options: &Options) -> Report {
    let path = std::path::Path::new(target);
    let findings = if target.contains("://") {
        check_socket(target).await
    } else if path.is_dir() || path.is_file() {
        match super::archive::OpenedBundle::open(path) {
            Ok(opened) => check_bundle(&opened, options).await,
            Err(e) => vec![Finding::problem(
                "bundle",
                e.to_string(),
                "give a bundle directory (config.json + rootfs/), its .tar.gz, a socket or a plugin name",
            )],
        }
    } else if target.contains('/') || std::fs::symlink_metadata(path).is_ok() {
        check_socket(target).await
    } else {
        check_plugin(target, options).await
    };
    Report {
        target: target.to_owned(),
        findings,
    }
}
