//! The container a managed plugin runs in, planned before the fork the way dockerd
//! writes its OCI spec and runc carries it out (moby v20.10.24
//! `plugin/v2/plugin_linux.go` `InitSpec`, `oci/defaults.go` `DefaultLinuxSpec`; runc
//! 1.1 `libcontainer/rootfs_linux.go`): which namespaces, which capabilities, and the
//! mount steps in runc's order: `/proc`, a tmpfs `/dev` with runc's default nodes
//! (`null`, `zero`, `full`, `random`, `urandom`, `tty`, `ptmx`, `pts`, `shm`, `mqueue`)
//! plus the settings' devices (the host's whole `/dev` with `allowAllDevices`), `/sys`
//! read-only, the propagated mount (`rbind,rw,rshared`), the config's mounts, the
//! socket dir (`rbind,rshared`), the host's `/etc/hosts` and `/etc/resolv.conf`
//! read-only when `network.type` is set, runc's masked and read-only paths, and
//! `pivot_root`.
//!
//! Everything is resolved here, in the parent (paths as C strings, device numbers,
//! capability masks); the child only makes system calls.

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sched::CloneFlags;

use super::caps::CapSets;
use super::steps::{Fallback, Step};
use super::{LaunchMode, LaunchSpec};
use crate::harness::error::HarnessError;
use crate::managed::bundle::resolve_in_rootfs;
use crate::managed::config::Mount;

/// runc's masked paths (moby v20.10.24 `oci/defaults.go` `MaskedPaths`).
const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

/// runc's read-only paths (`ReadonlyPaths`).
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The container, ready for the child.
#[derive(Debug)]
pub(crate) struct ContainerPlan {
    pub(crate) namespaces: CloneFlags,
    pub(crate) user_maps: Option<UserMaps>,
    /// `pidHost`: the plugin shares the harness's PID namespace.
    pub(crate) host_pid: bool,
    /// A private network namespace, whose `lo` is brought up.
    pub(crate) private_net: bool,
    pub(crate) steps: Vec<Step>,
    pub(crate) workdir: CString,
    pub(crate) caps: CapSets,
}

/// `/proc/self/{uid_map,gid_map}` contents for an unprivileged harness.
#[derive(Debug)]
pub(crate) struct UserMaps {
    pub(crate) uid_map: Vec<u8>,
    pub(crate) gid_map: Vec<u8>,
}

pub(crate) fn c_path(path: impl AsRef<OsStr>) -> Result<CString, HarnessError> {
    CString::new(path.as_ref().as_bytes()).map_err(|_| HarnessError::Io {
        action: format!("path {:?}", path.as_ref()),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "contains a NUL byte"),
    })
}

/// Creates `path` (a dir, or an empty file when `file`) in the harness's copy of the
/// rootfs if missing, so a mount has a target.
fn ensure_target(path: &Path, file: bool) -> Result<(), HarnessError> {
    if std::fs::symlink_metadata(path).is_ok() {
        return Ok(());
    }
    let created = if file {
        path.parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::File::create(path).map(drop))
    } else {
        std::fs::create_dir_all(path)
    };
    created.map_err(|e| HarnessError::io(format!("creating {}", path.display()), e))
}

/// runc's `parseMountOptions`: flags, propagation flags, and the rest as data.
struct MountOptions {
    flags: MsFlags,
    propagation: Option<MsFlags>,
    data: Vec<String>,
    bind: bool,
    recursive: bool,
}

fn parse_options(options: &[String]) -> MountOptions {
    let mut parsed = MountOptions {
        flags: MsFlags::empty(),
        propagation: None,
        data: Vec::new(),
        bind: false,
        recursive: false,
    };
    for option in options {
        let (set, clear) = match option.as_str() {
            "bind" => {
                parsed.bind = true;
                continue;
            }
            "rbind" => {
                parsed.bind = true;
                parsed.recursive = true;
                continue;
            }
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "defaults" => continue,
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                let base = match option.trim_start_matches('r') {
                    "private" => MsFlags::MS_PRIVATE,
                    "shared" => MsFlags::MS_SHARED,
                    "slave" => MsFlags::MS_SLAVE,
                    _ => MsFlags::MS_UNBINDABLE,
                };
                let rec = if option.starts_with('r') {
                    MsFlags::MS_REC
                } else {
                    MsFlags::empty()
                };
                parsed.propagation = Some(base | rec);
                continue;
            }
            other => {
                parsed.data.push(other.to_owned());
                continue;
            }
        };
        parsed.flags = (parsed.flags | set) - clear;
    }
    parsed
}

/// Builds the steps of one plan; `inside` maps a path of the plugin to where it is
/// before `pivot_root`.
pub(super) struct Builder<'a> {
    pub(super) spec: &'a LaunchSpec,
    root: Option<&'a Path>,
    pub(super) steps: Vec<Step>,
    pub(super) root_user: bool,
}

impl Builder<'_> {
    pub(super) fn inside(&self, path: &str) -> Result<PathBuf, HarnessError> {
        match self.root {
            Some(root) => resolve_in_rootfs(root, path).map_err(|e| {
                HarnessError::io(format!("resolving {path} in the plugin's rootfs"), e)
            }),
            None => Ok(PathBuf::from(path)),
        }
    }

    /// A target for a mount, made in the rootfs when it is missing (host mode creates
    /// nothing on the host).
    fn target(&self, path: &str, file: bool) -> Result<CString, HarnessError> {
        let target = self.inside(path)?;
        if self.root.is_some() {
            ensure_target(&target, file)?;
        }
        c_path(&target)
    }

    pub(super) fn bind(
        &mut self,
        source: &Path,
        dest: &str,
        recursive: bool,
        remount: Option<MsFlags>,
        propagation: Option<MsFlags>,
    ) -> Result<(), HarnessError> {
        // runc makes the target a file for any source that is not a directory (a
        // socket: the engine's metrics socket), as runc's `createIfNotExists` does.
        let file = source.exists() && !source.is_dir();
        let target = self.target(dest, file)?;
        self.steps.push(Step::Bind {
            source: c_path(source)?,
            target,
            recursive,
            remount,
            propagation,
        });
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn mount(
        &mut self,
        source: &str,
        dest: &str,
        fstype: &str,
        flags: MsFlags,
        data: &str,
        propagation: Option<MsFlags>,
        fallback: Fallback,
    ) -> Result<(), HarnessError> {
        let target = self.target(dest, false)?;
        self.steps.push(Step::Mount {
            source: c_path(source)?,
            target,
            fstype: c_path(fstype)?,
            flags,
            data: (!data.is_empty()).then(|| c_path(data)).transpose()?,
            propagation,
            fallback,
        });
        Ok(())
    }

    /// The host path bound when a fresh `proc` or `sysfs` may not be mounted.
    fn host_fallback(path: &str, read_only: bool) -> Result<Fallback, HarnessError> {
        Ok(Fallback::BindHost {
            source: c_path(path)?,
            read_only,
        })
    }

    /// A config mount (`Config.Mounts`), as runc mounts it.
    fn config_mount(&mut self, m: &Mount) -> Result<(), HarnessError> {
        let Some(source) = m.source.as_deref() else {
            return Err(HarnessError::Runtime {
                message: "mount source is not specified".into(),
            });
        };
        let options = parse_options(&m.options);
        if options.bind || m.r#type == "bind" {
            let remount = options.flags - MsFlags::MS_BIND;
            // runc takes a relative bind source (even "") from the bundle dir
            // containerd made for the plugin: here, the plugin's own dir.
            let source = if source.starts_with('/') {
                PathBuf::from(source)
            } else {
                let plugin_dir = self.spec.rootfs.parent().unwrap_or(Path::new("/"));
                plugin_dir.join(source)
            };
            self.bind(
                &source,
                &m.destination,
                options.recursive,
                (!remount.is_empty()).then_some(remount),
                options.propagation,
            )
        } else {
            self.mount(
                source,
                &m.destination,
                &m.r#type,
                options.flags,
                &options.data.join(","),
                options.propagation,
                Fallback::Fail,
            )
        }
    }
}

/// An I/O error as Go words it (`no such file or directory`).
pub(crate) fn go_io_error(err: &std::io::Error) -> String {
    let text = err.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

impl ContainerPlan {
    /// The plan for `spec`; `rootfs_parent` is the mount point the rootfs is on (made
    /// private in the plugin's namespace, as runc's `rootfsParentMountPrivate`).
    pub(crate) fn new(spec: &LaunchSpec, rootfs_parent: &Path) -> Result<Self, HarnessError> {
        let config = &spec.config;
        let root_user = nix::unistd::geteuid().is_root();
        let mut namespaces =
            CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWPID;
        if !config.ipc_host {
            namespaces |= CloneFlags::CLONE_NEWIPC;
        }
        let private_net = config.network.r#type != "host";
        if private_net {
            namespaces |= CloneFlags::CLONE_NEWNET;
        }
        if config.pid_host {
            namespaces -= CloneFlags::CLONE_NEWPID;
        }
        let user_maps = (!root_user).then(|| {
            namespaces |= CloneFlags::CLONE_NEWUSER;
            UserMaps {
                uid_map: format!("0 {} 1", nix::unistd::geteuid()).into_bytes(),
                gid_map: format!("0 {} 1", nix::unistd::getegid()).into_bytes(),
            }
        });
        let root = (spec.mode == LaunchMode::Rootfs).then_some(spec.rootfs.as_path());
        let mut b = Builder {
            spec,
            root,
            steps: Vec::new(),
            root_user,
        };
        let proc_flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
        let private = |path: &Path| {
            Ok::<_, HarnessError>(Step::Propagation {
                target: c_path(path)?,
                flags: MsFlags::MS_PRIVATE,
            })
        };
        match root {
            Some(rootfs) => {
                // runc's prepareRoot with rootfs propagation rshared: host mounts stay
                // shared, the rootfs's parent mount (and /, for pivot_root) private, the
                // rootfs bound onto itself.
                b.steps.push(private(rootfs_parent)?);
                if rootfs_parent != Path::new("/") {
                    b.steps.push(private(Path::new("/"))?);
                }
                b.steps.push(Step::Bind {
                    source: c_path(rootfs)?,
                    target: c_path(rootfs)?,
                    recursive: true,
                    remount: None,
                    propagation: Some(MsFlags::MS_PRIVATE),
                });
            }
            None => {
                // Host mode: nothing mounted here reaches the host.
                b.steps.push(Step::Propagation {
                    target: c"/".into(),
                    flags: MsFlags::MS_REC | MsFlags::MS_SLAVE,
                });
            }
        }
        let proc_fallback = Builder::host_fallback("/proc", false)?;
        b.mount("proc", "/proc", "proc", proc_flags, "", None, proc_fallback)?;
        b.dev()?;
        let sys_fallback = Builder::host_fallback("/sys", true)?;
        b.mount(
            "sysfs",
            "/sys",
            "sysfs",
            proc_flags | MsFlags::MS_RDONLY,
            "",
            None,
            sys_fallback,
        )?;
        let socket_dir = crate::transport::DEFAULT_SOCKET_DIR;
        if root.is_some() {
            if !config.propagated_mount.is_empty() {
                b.bind(
                    &spec.propagated_source,
                    &config.propagated_mount,
                    true,
                    None,
                    Some(MsFlags::MS_SHARED | MsFlags::MS_REC),
                )?;
            }
            let settings_dests: Vec<&str> = spec
                .settings
                .mounts
                .iter()
                .map(|m| m.destination.as_str())
                .collect();
            for m in &config.mounts {
                // InitSpec drops the mounts under /dev/ that the settings name.
                if m.destination.starts_with("/dev/")
                    && settings_dests.contains(&m.destination.as_str())
                {
                    continue;
                }
                b.config_mount(m)?;
            }
            for m in &spec.runtime_mounts {
                b.config_mount(m)?;
            }
            b.bind(
                &spec.socket_dir,
                socket_dir,
                true,
                None,
                Some(MsFlags::MS_SHARED | MsFlags::MS_REC),
            )?;
            if !config.network.r#type.is_empty() {
                for file in ["/etc/hosts", "/etc/resolv.conf"] {
                    b.bind(Path::new(file), file, true, Some(MsFlags::MS_RDONLY), None)?;
                }
            }
        } else {
            // Nothing is created on the host: without /run/docker/plugins there, the
            // plugin gets a private tmpfs on /run holding it.
            if !Path::new(socket_dir).is_dir() {
                b.mount(
                    "tmpfs",
                    "/run",
                    "tmpfs",
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                    "mode=755",
                    None,
                    Fallback::Fail,
                )?;
                b.steps.push(Step::Mkdir {
                    path: c_path(socket_dir)?,
                });
            }
            b.bind(&spec.socket_dir, socket_dir, false, None, None)?;
        }
        for path in MASKED_PATHS {
            b.steps.push(Step::Mask {
                path: c_path(b.inside(path)?)?,
            });
        }
        for path in READONLY_PATHS {
            b.steps.push(Step::ReadOnly {
                path: c_path(b.inside(path)?)?,
            });
        }
        if let Some(rootfs) = root {
            b.steps.push(Step::PivotRoot {
                root: c_path(rootfs)?,
            });
        }
        let workdir = if config.work_dir.is_empty() {
            "/"
        } else {
            &config.work_dir
        };
        Ok(Self {
            namespaces,
            user_maps,
            host_pid: config.pid_host,
            private_net,
            steps: b.steps,
            workdir: c_path(workdir)?,
            caps: CapSets::new(&config.linux.capabilities),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_options_are_parsed_as_runc_parses_them() {
        let o = parse_options(&[
            "rbind".into(),
            "ro".into(),
            "nosuid".into(),
            "rshared".into(),
            "size=1m".into(),
        ]);
        assert!(o.bind && o.recursive);
        assert_eq!(o.flags, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(o.propagation, Some(MsFlags::MS_SHARED | MsFlags::MS_REC));
        assert_eq!(o.data, ["size=1m"]);
    }
}
