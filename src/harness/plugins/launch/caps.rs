//! The capabilities a managed plugin runs with, as dockerd asks runc for them: Docker's
//! 14 defaults (moby v20.10.24 `oci/caps/defaults.go`) plus the config's
//! `linux.capabilities`, in the bounding, effective and permitted sets; the config's
//! own in the inheritable set (`oci/defaults.go` leaves it empty, and
//! `plugin/v2/plugin_linux.go` `InitSpec` appends the config's to all four). The
//! ambient set is empty. As runc 1.1 does, a name it does not know is skipped with a
//! warning.
//!
//! Computed before the fork ([`CapSets::new`]); applied in the child by
//! [`CapSets::apply`], system calls only, as the last step before `exec`: every other
//! capability is dropped from the bounding set, then `capset`. The plugin runs as root,
//! so after `exec` its permitted and effective sets are the bounding set.

use crate::managed::config::CAPABILITIES;

/// Docker's default capabilities (moby v20.10.24 `oci/caps/defaults.go`).
pub(crate) const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// The sets, as bit masks, and the highest capability the kernel knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CapSets {
    /// Bounding, effective and permitted.
    pub(crate) allowed: u64,
    /// Inheritable.
    pub(crate) inheritable: u64,
    last: u32,
}

/// The bit of capability `name` (`CAP_SYS_ADMIN`), if runc knows it.
fn bit(name: &str) -> Option<u64> {
    CAPABILITIES
        .iter()
        .position(|c| *c == name)
        .map(|number| 1u64 << number)
}

impl CapSets {
    /// The sets for a plugin whose config adds `extra`.
    pub(crate) fn new(extra: &[String]) -> Self {
        let mut inheritable = 0;
        for name in extra {
            match bit(name) {
                Some(b) => inheritable |= b,
                None => {
                    tracing::warn!(capability = %name, "ignoring unknown or unavailable capabilities (as runc does)")
                }
            }
        }
        let defaults = DEFAULT_CAPABILITIES
            .iter()
            .filter_map(|c| bit(c))
            .fold(0, |all, b| all | b);
        let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(CAPABILITIES.len() as u32 - 1);
        let known = if last >= 63 {
            u64::MAX
        } else {
            (1u64 << (last + 1)) - 1
        };
        Self {
            allowed: (defaults | inheritable) & known,
            inheritable: inheritable & known,
            last,
        }
    }

    /// Runs in the child: drops every other capability from the bounding set, clears
    /// the ambient set, then sets effective, permitted and inheritable. System calls
    /// only.
    pub(crate) fn apply(&self) -> std::io::Result<()> {
        for cap in 0..=self.last.min(63) {
            if self.allowed & (1 << cap) == 0 {
                // SAFETY: prctl with integer arguments only.
                let r = unsafe {
                    libc::prctl(
                        libc::PR_CAPBSET_DROP,
                        libc::c_ulong::from(cap),
                        0 as libc::c_ulong,
                        0 as libc::c_ulong,
                        0 as libc::c_ulong,
                    )
                };
                if r != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
        }
        // SAFETY: as above. EINVAL on kernels without ambient capabilities.
        unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
        let header = CapHeader {
            version: CAPABILITY_VERSION_3,
            pid: 0,
        };
        let word = |mask: u64, high: bool| (if high { mask >> 32 } else { mask }) as u32;
        let data = [false, true].map(|high| CapData {
            effective: word(self.allowed, high),
            permitted: word(self.allowed, high),
            inheritable: word(self.inheritable, high),
        });
        // SAFETY: capset reads one header and two data structs of the kernel's layout.
        let r = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_dockers_and_the_config_adds_to_every_set() {
        let plain = CapSets::new(&[]);
        // What `grep CapBnd /proc/<pid>/status` shows for a default container.
        assert_eq!(plain.allowed, 0xa804_25fb);
        assert_eq!(plain.inheritable, 0);
        let admin = CapSets::new(&["CAP_SYS_ADMIN".into(), "CAP_NOPE".into()]);
        assert_eq!(admin.allowed, 0xa824_25fb);
        assert_eq!(admin.inheritable, 1 << 21);
    }
}
