//! runc's `/dev` for a managed plugin (runc 1.1 `libcontainer/rootfs_linux.go`,
//! moby v20.10.24 `oci/defaults.go`, `oci/devices_linux.go` `DevicesFromPath`): a
//! tmpfs with runc's default nodes, `pts`, `shm`, `mqueue` and its symlinks, plus the
//! settings' devices at their host path; the host's whole `/dev` with
//! `allowAllDevices`. Planned before the fork as mount steps.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use nix::mount::MsFlags;
use nix::sys::stat::{Mode, SFlag};

use super::plan::{Builder, c_path, go_io_error};
use super::steps::{Fallback, Step};
use crate::harness::error::HarnessError;

/// runc's default device nodes: name, major, minor (all `c`, mode 0666).
const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

impl Builder<'_> {
    /// runc's `/dev`: a tmpfs with the default nodes, `pts`, `shm`, `mqueue`, the
    /// symlinks, and the settings' devices; or the host's `/dev` (allowAllDevices).
    pub(super) fn dev(&mut self) -> Result<(), HarnessError> {
        let config = &self.spec.config;
        let nodev = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
        if config.linux.allow_all_devices {
            self.bind(
                Path::new("/dev"),
                "/dev",
                true,
                None,
                Some(MsFlags::MS_SLAVE | MsFlags::MS_REC),
            )?;
        } else {
            self.mount(
                "tmpfs",
                "/dev",
                "tmpfs",
                MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
                "mode=755,size=65536k",
                None,
                Fallback::Fail,
            )?;
            let dev = c_path(self.inside("/dev")?)?;
            let under =
                |name: &str| c_path(Path::new(OsStr::from_bytes(dev.as_bytes())).join(name));
            self.steps.push(Step::Mkdir {
                path: under("pts")?,
            });
            // gid 5 (tty) exists only where the harness is real root.
            let pts = if self.root_user {
                "newinstance,ptmxmode=0666,mode=0620,gid=5"
            } else {
                "newinstance,ptmxmode=0666,mode=0620"
            };
            self.steps.push(Step::Mount {
                source: c"devpts".into(),
                target: under("pts")?,
                fstype: c"devpts".into(),
                flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
                data: Some(c_path(pts)?),
                propagation: None,
                fallback: Fallback::Fail,
            });
            for (name, fstype, source, data) in [
                ("shm", "tmpfs", "shm", "mode=1777,size=65536k"),
                ("mqueue", "mqueue", "mqueue", ""),
            ] {
                self.steps.push(Step::Mkdir { path: under(name)? });
                self.steps.push(Step::Mount {
                    source: c_path(source)?,
                    target: under(name)?,
                    fstype: c_path(fstype)?,
                    flags: nodev,
                    data: (!data.is_empty()).then(|| c_path(data)).transpose()?,
                    propagation: None,
                    // mqueue needs an IPC namespace of the user namespace's own.
                    fallback: if name == "mqueue" {
                        Fallback::Skip
                    } else {
                        Fallback::Fail
                    },
                });
            }
            for (name, major, minor) in DEFAULT_DEVICES {
                self.steps.push(Step::Device {
                    path: under(name)?,
                    kind: SFlag::S_IFCHR,
                    mode: Mode::from_bits_truncate(0o666),
                    rdev: nix::sys::stat::makedev(*major, *minor),
                    host: c_path(format!("/dev/{name}"))?,
                });
            }
            // runc 1.1 makes no /dev/core and, without a terminal, no /dev/console
            // (recorded: plugin_container).
            let links = [
                ("pts/ptmx", "ptmx"),
                ("/proc/self/fd", "fd"),
                ("/proc/self/fd/0", "stdin"),
                ("/proc/self/fd/1", "stdout"),
                ("/proc/self/fd/2", "stderr"),
            ];
            for (target, link) in links {
                self.steps.push(Step::Symlink {
                    target: c_path(target)?,
                    link: under(link)?,
                });
            }
        }
        // The settings' devices, at their host path (moby `oci.DevicesFromPath`).
        for device in &self.spec.settings.devices {
            let Some(path) = device.path.as_deref() else {
                continue;
            };
            let (kind, mode, rdev) = host_device(path)?;
            let inside = c_path(self.inside(path)?)?;
            if let Some(parent) = Path::new(OsStr::from_bytes(inside.as_bytes())).parent() {
                self.steps.push(Step::Mkdir {
                    path: c_path(parent)?,
                });
            }
            self.steps.push(Step::Device {
                path: inside,
                kind,
                mode,
                rdev,
                host: c_path(path)?,
            });
        }
        Ok(())
    }
}

/// A host device's kind, permissions and number, as moby's `oci.DevicesFromPath`
/// reads them, with its errors.
fn host_device(path: &str) -> Result<(SFlag, Mode, u64), HarnessError> {
    let fail = |why: String| HarnessError::Runtime {
        message: format!(
            "error gathering device information while adding custom device {path:?}: {why}"
        ),
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(go_io_error(&e)))?;
    let kind = if meta.file_type().is_char_device() {
        SFlag::S_IFCHR
    } else if meta.file_type().is_block_device() {
        SFlag::S_IFBLK
    } else {
        return Err(fail("not a device node".into()));
    };
    Ok((
        kind,
        Mode::from_bits_truncate(meta.mode() & 0o7777),
        meta.rdev(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_plain_device_paths_fail_as_moby_words_it() {
        let err = host_device("/dev/no-such-device").unwrap_err().to_string();
        assert_eq!(
            err,
            "error gathering device information while adding custom device \
             \"/dev/no-such-device\": no such file or directory"
        );
        let err = host_device("/etc/hostname").unwrap_err().to_string();
        assert!(
            err.ends_with("\"/etc/hostname\": not a device node"),
            "{err}"
        );
        assert!(host_device("/dev/null").is_ok());
    }
}
