//! What runs between `fork` and `exec` (the `pre_exec` closure): a small shim, as
//! containerd's shim stands between dockerd and runc's container, and the plugin's
//! container set up below it. System calls only, on data the parent prepared.
//!
//! The shim (the process the harness spawned, leader of its process group):
//! - dies with the harness (`PR_SET_PDEATHSIG`), ignores the stop signals the harness
//!   sends the group (the plugin gets them), enters the plugin's namespaces
//!   (`unshare`, the user namespace's maps), and forks the plugin, which is PID 1 of
//!   its own PID namespace unless `pidHost`; with `pidHost` the shim is a subreaper;
//! - closes every file descriptor (so the plugin's output pipes end with the plugin),
//!   waits for the plugin, then kills whatever the plugin left behind (helpers that
//!   daemonized, like `sshfs` without `-f`: the kernel kills a PID namespace with its
//!   PID 1; with `pidHost` the subreaper kills its children) and exits with the
//!   plugin's status.
//!
//! Limits: the parent-death signal follows the *thread* that spawned the shim (a
//! tokio runtime thread, alive as long as the runtime); with `pidHost`, helpers that
//! left the plugin's process group survive a SIGKILL of the whole test process (the
//! shim dies before it can kill them; without `pidHost` the kernel does it).
//!
//! The plugin (the shim's child) dies with the shim, runs the mount steps, brings up
//! `lo` in a private network namespace, changes to its working dir, drops to its
//! capabilities, and returns to `exec`. When a step fails it writes the step's number
//! to the report pipe first, so the parent can say which.

use std::os::fd::RawFd;

use nix::errno::Errno;
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::unistd::{ForkResult, Pid};

use super::plan::ContainerPlan;

/// Step numbers of the parts that are not mount steps.
pub(crate) const STEP_UNSHARE: u32 = u32::MAX;
pub(crate) const STEP_USER_MAPS: u32 = u32::MAX - 1;
pub(crate) const STEP_FORK: u32 = u32::MAX - 2;
pub(crate) const STEP_LOOPBACK: u32 = u32::MAX - 3;
pub(crate) const STEP_WORKDIR: u32 = u32::MAX - 4;
pub(crate) const STEP_CAPABILITIES: u32 = u32::MAX - 5;

/// The signals the harness sends the process group to stop a plugin.
const STOP_SIGNALS: [Signal; 4] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

impl ContainerPlan {
    /// The `pre_exec` body: returns (to `exec`) only in the plugin; the shim never
    /// returns.
    pub(crate) fn enter(&self, report: RawFd) -> std::io::Result<()> {
        let fail = |step: u32, err: Errno| {
            report_step(report, step);
            std::io::Error::from(err)
        };
        // SAFETY: dispositions only; the plugin restores them before exec.
        for sig in STOP_SIGNALS {
            unsafe { signal(sig, SigHandler::SigIgn) }.map_err(|e| fail(STEP_FORK, e))?;
        }
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| fail(STEP_FORK, e))?;
        nix::sched::unshare(self.namespaces).map_err(|e| fail(STEP_UNSHARE, e))?;
        if let Some(maps) = &self.user_maps {
            write_proc(c"/proc/self/setgroups", b"deny")
                .and_then(|()| write_proc(c"/proc/self/uid_map", &maps.uid_map))
                .and_then(|()| write_proc(c"/proc/self/gid_map", &maps.gid_map))
                .map_err(|e| fail(STEP_USER_MAPS, e))?;
        }
        if self.host_pid {
            nix::sys::prctl::set_child_subreaper(true).map_err(|e| fail(STEP_FORK, e))?;
        }
        let shim = nix::unistd::getpid();
        // SAFETY: the child only makes system calls until exec.
        match unsafe { nix::unistd::fork() }.map_err(|e| fail(STEP_FORK, e))? {
            ForkResult::Child => self.plugin(shim, report),
            ForkResult::Parent { child } => shim_wait(child, self.host_pid),
        }
    }

    /// In the plugin, before exec.
    fn plugin(&self, shim: Pid, report: RawFd) -> std::io::Result<()> {
        let fail = |step: u32, err: Errno| {
            report_step(report, step);
            std::io::Error::from(err)
        };
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| fail(STEP_FORK, e))?;
        // The shim is gone already? (Its PID is not visible from a new PID
        // namespace, where the parent is always 0.)
        if self.host_pid && nix::unistd::getppid() != shim {
            return Err(fail(STEP_FORK, Errno::ESRCH));
        }
        for sig in STOP_SIGNALS {
            // SAFETY: back to the default disposition.
            unsafe { signal(sig, SigHandler::SigDfl) }.map_err(|e| fail(STEP_FORK, e))?;
        }
        nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        for (i, step) in self.steps.iter().enumerate() {
            step.run().map_err(|e| fail(i as u32, e))?;
        }
        if self.private_net {
            loopback_up().map_err(|e| fail(STEP_LOOPBACK, e))?;
        }
        nix::unistd::chdir(self.workdir.as_c_str()).map_err(|e| fail(STEP_WORKDIR, e))?;
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
        self.caps.apply().map_err(|e| {
            fail(
                STEP_CAPABILITIES,
                Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            )
        })
    }
}

/// Writes `step` to the report pipe (best effort).
fn report_step(fd: RawFd, step: u32) {
    // SAFETY: the fd is the report pipe's write end, open until exec.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let _ = nix::unistd::write(fd, &step.to_ne_bytes());
}

fn write_proc(path: &std::ffi::CStr, contents: &[u8]) -> Result<(), Errno> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    let fd = open(path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    nix::unistd::write(&fd, contents).map(drop)
}

/// `ip link set lo up`, with the old ioctls.
fn loopback_up() -> Result<(), Errno> {
    // SAFETY: plain system calls on a zeroed `ifreq` naming "lo".
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(Errno::last());
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        ifr.ifr_name[0] = b'l' as libc::c_char;
        ifr.ifr_name[1] = b'o' as libc::c_char;
        let result = if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr) < 0 {
            Err(Errno::last())
        } else {
            ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            if libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr) < 0 {
                Err(Errno::last())
            } else {
                Ok(())
            }
        };
        libc::close(fd);
        result
    }
}

/// The shim after the fork: no file descriptors, wait for the plugin, kill what it
/// left, exit as it exited.
fn shim_wait(plugin: Pid, subreaper: bool) -> ! {
    // SAFETY: close_range on every descriptor; the shim needs none.
    let closed = unsafe { libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32) };
    if closed != 0 {
        for fd in 0..4096 {
            // SAFETY: closing descriptors the shim does not use.
            unsafe { libc::close(fd) };
        }
    }
    let status = loop {
        match nix::sys::wait::waitpid(plugin, None) {
            Err(Errno::EINTR) => continue,
            other => break other,
        }
    };
    if subreaper {
        kill_leftovers();
    }
    use nix::sys::wait::WaitStatus;
    match status {
        Ok(WaitStatus::Exited(_, code)) => exit(code),
        Ok(WaitStatus::Signaled(_, sig, _)) => {
            // SAFETY: back to the default disposition, then the same death.
            unsafe {
                let _ = signal(sig, SigHandler::SigDfl);
            }
            let _ = nix::sys::signal::raise(sig);
            exit(128 + sig as i32)
        }
        _ => exit(1),
    }
}

/// As a subreaper: kills every child (orphans of the plugin come here) until none is
/// left.
fn kill_leftovers() {
    loop {
        let mut buf = [0u8; 4096];
        let read = (|| {
            use nix::fcntl::{OFlag, open};
            let fd = open(
                c"/proc/thread-self/children",
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )?;
            nix::unistd::read(&fd, &mut buf)
        })()
        .unwrap_or(0);
        let mut pid: i32 = 0;
        for &b in buf[..read].iter().chain(b" ") {
            if b.is_ascii_digit() {
                pid = pid * 10 + i32::from(b - b'0');
            } else if pid > 0 {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                pid = 0;
            }
        }
        match nix::sys::wait::waitpid(Pid::from_raw(-1), None) {
            Err(Errno::ECHILD) => return,
            _ => continue,
        }
    }
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit without running the parent's atexit handlers or destructors.
    unsafe { libc::_exit(code) }
}
