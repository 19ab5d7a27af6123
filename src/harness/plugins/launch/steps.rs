//! The filesystem steps of a plugin's container, prepared before the fork and run in
//! the child with system calls only (no allocation, no locks): mounts, binds,
//! propagation changes, the device nodes of `/dev`, masked and read-only paths, and
//! `pivot_root`. Each step can say what it does, so the parent words a failure the
//! way runc does (`error mounting "SRC" to rootfs at "DST": …`).

use std::ffi::{CStr, CString};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag};

/// What to do when a mount fails.
#[derive(Debug)]
pub(crate) enum Fallback {
    /// The failure fails the start.
    Fail,
    /// The mount is skipped (it needs privileges the harness has not got, e.g. an
    /// `mqueue` without its own IPC namespace inside a user namespace).
    Skip,
    /// The host's path is bound instead (a `proc` or `sysfs` the user namespace may
    /// not mount), read-only when `read_only`.
    BindHost { source: CString, read_only: bool },
}

/// One step; paths are absolute, as seen before `pivot_root`.
#[derive(Debug)]
pub(crate) enum Step {
    /// A propagation change of one mount (`MS_PRIVATE`, `MS_SLAVE | MS_REC`, …).
    Propagation { target: CString, flags: MsFlags },
    /// A bind, then a read-only (or other flags) remount, then a propagation change.
    Bind {
        source: CString,
        target: CString,
        recursive: bool,
        /// Flags of a remount after the bind (`MS_RDONLY`, `MS_NOSUID`, …), with the
        /// source mount's locked flags kept.
        remount: Option<MsFlags>,
        propagation: Option<MsFlags>,
    },
    /// A filesystem mount (`proc`, `tmpfs`, `sysfs`, a config mount's type).
    Mount {
        source: CString,
        target: CString,
        fstype: CString,
        flags: MsFlags,
        data: Option<CString>,
        propagation: Option<MsFlags>,
        fallback: Fallback,
    },
    /// A directory (and its missing parents), in a fresh tmpfs.
    Mkdir { path: CString },
    /// A symlink.
    Symlink { target: CString, link: CString },
    /// A device node, made with `mknod` or, when that is refused (user namespace),
    /// bound from the host.
    Device {
        path: CString,
        kind: SFlag,
        mode: Mode,
        rdev: u64,
        host: CString,
    },
    /// A path hidden as runc hides `/proc/kcore` & co: a file under `/dev/null`, a
    /// dir under a read-only tmpfs; skipped when missing.
    Mask { path: CString },
    /// A path made read-only (bound onto itself, remounted); skipped when missing.
    ReadOnly { path: CString },
    /// `pivot_root` into the rootfs, the old root made a slave and detached.
    PivotRoot { root: CString },
}

fn none() -> Option<&'static CStr> {
    None
}

impl Step {
    /// Runs the step. System calls only.
    pub(crate) fn run(&self) -> Result<(), Errno> {
        match self {
            Step::Propagation { target, flags } => {
                mount(none(), target.as_c_str(), none(), *flags, none())
            }
            Step::Bind {
                source,
                target,
                recursive,
                remount,
                propagation,
            } => bind(source, target, *recursive, *remount, *propagation),
            Step::Mount {
                source,
                target,
                fstype,
                flags,
                data,
                propagation,
                fallback,
            } => {
                match mount(
                    Some(source.as_c_str()),
                    target.as_c_str(),
                    Some(fstype.as_c_str()),
                    *flags,
                    data.as_deref(),
                ) {
                    Ok(()) => {}
                    Err(err) => match fallback {
                        Fallback::Fail => return Err(err),
                        Fallback::Skip => return Ok(()),
                        Fallback::BindHost { source, read_only } => {
                            let remount = read_only.then_some(MsFlags::MS_RDONLY);
                            return bind(source, target, true, remount, None);
                        }
                    },
                }
                if let Some(flags) = propagation {
                    mount(none(), target.as_c_str(), none(), *flags, none())?;
                }
                Ok(())
            }
            Step::Mkdir { path } => mkdir_all(path),
            Step::Symlink { target, link } => {
                nix::unistd::symlinkat(target.as_c_str(), nix::fcntl::AT_FDCWD, link.as_c_str())
            }
            Step::Device {
                path,
                kind,
                mode,
                rdev,
                host,
            } => match nix::sys::stat::mknod(path.as_c_str(), *kind, *mode, *rdev) {
                Ok(()) => Ok(()),
                Err(Errno::EPERM) => {
                    touch(path)?;
                    bind(host, path, false, None, None)
                }
                Err(err) => Err(err),
            },
            Step::Mask { path } => {
                let stat = match nix::sys::stat::stat(path.as_c_str()) {
                    Ok(stat) => stat,
                    Err(Errno::ENOENT) => return Ok(()),
                    Err(err) => return Err(err),
                };
                if stat.st_mode & libc::S_IFMT == libc::S_IFDIR {
                    mount(
                        Some(c"tmpfs"),
                        path.as_c_str(),
                        Some(c"tmpfs"),
                        MsFlags::MS_RDONLY,
                        none(),
                    )
                } else {
                    bind(c"/dev/null", path, false, None, None)
                }
            }
            Step::ReadOnly { path } => match nix::sys::stat::stat(path.as_c_str()) {
                Ok(_) => bind(path, path, true, Some(MsFlags::MS_RDONLY), None),
                Err(Errno::ENOENT) => Ok(()),
                Err(err) => Err(err),
            },
            Step::PivotRoot { root } => pivot_root(root),
        }
    }

    /// What the step does, to word its failure (runc's words for a mount).
    pub(crate) fn describe(&self) -> String {
        let text = |c: &CString| c.to_string_lossy().into_owned();
        match self {
            Step::Propagation { target, .. } => {
                format!("changing the propagation of {:?}", text(target))
            }
            Step::Bind { source, target, .. }
            | Step::Mount { source, target, .. }
            | Step::Device {
                host: source,
                path: target,
                ..
            } => format!(
                "error mounting {:?} to rootfs at {:?}",
                text(source),
                text(target)
            ),
            Step::Mkdir { path } => format!("creating {:?}", text(path)),
            Step::Symlink { link, .. } => format!("creating the symlink {:?}", text(link)),
            Step::Mask { path } => format!("masking {:?}", text(path)),
            Step::ReadOnly { path } => format!("making {:?} read-only", text(path)),
            Step::PivotRoot { root } => format!("pivot_root into {:?}", text(root)),
        }
    }
}

/// A bind, then a remount with `remount` and the source's locked flags, then a
/// propagation change.
fn bind(
    source: &CStr,
    target: &CStr,
    recursive: bool,
    remount: Option<MsFlags>,
    propagation: Option<MsFlags>,
) -> Result<(), Errno> {
    let mut flags = MsFlags::MS_BIND;
    if recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(Some(source), target, none(), flags, none())?;
    if let Some(extra) = remount {
        mount(
            none(),
            target,
            none(),
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra | locked_flags(target),
            none(),
        )?;
    }
    if let Some(flags) = propagation {
        mount(none(), target, none(), flags, none())?;
    }
    Ok(())
}

/// The nosuid/nodev/noexec/atime flags of the mount at `path`: a bind remount must
/// repeat them (they are locked in a user namespace).
fn locked_flags(path: &CStr) -> MsFlags {
    use nix::sys::statvfs::{FsFlags, statvfs};
    let Ok(stat) = statvfs(path) else {
        return MsFlags::empty();
    };
    let flags = stat.flags();
    let mut kept = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if flags.contains(fs) {
            kept |= ms;
        }
    }
    kept
}

/// An empty file at `path`, as a bind target.
fn touch(path: &CStr) -> Result<(), Errno> {
    use nix::fcntl::{OFlag, open};
    open(
        path,
        OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .map(drop)
}

/// `mkdir -p`, on a copy of the path in a stack buffer.
fn mkdir_all(path: &CStr) -> Result<(), Errno> {
    let bytes = path.to_bytes();
    let mut buf = [0u8; 4096];
    if bytes.len() >= buf.len() {
        return Err(Errno::ENAMETOOLONG);
    }
    buf[..bytes.len()].copy_from_slice(bytes);
    let mode = Mode::from_bits_truncate(0o755);
    for end in (1..=bytes.len()).filter(|&i| i == bytes.len() || bytes[i] == b'/') {
        let saved = buf[end];
        buf[end] = 0;
        let part = CStr::from_bytes_until_nul(&buf).map_err(|_| Errno::EINVAL)?;
        match nix::unistd::mkdir(part, mode) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(err) => return Err(err),
        }
        buf[end] = saved;
    }
    Ok(())
}

/// runc's `pivotRoot`: `pivot_root(".", ".")` in the new root, then the old root,
/// stacked on top, made a slave (so that unmounting it does not reach the host) and
/// detached.
fn pivot_root(root: &CStr) -> Result<(), Errno> {
    use nix::fcntl::{OFlag, open};
    let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let old = open(c"/", flags, Mode::empty())?;
    let new = open(root, flags, Mode::empty())?;
    nix::unistd::fchdir(&new)?;
    nix::unistd::pivot_root(c".", c".")?;
    nix::unistd::fchdir(&old)?;
    mount(
        none(),
        c".",
        none(),
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        none(),
    )?;
    umount2(c".", MntFlags::MNT_DETACH)?;
    nix::unistd::chdir(c"/")
}
