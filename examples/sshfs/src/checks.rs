//! What the plugin's own container must give before sshfs can mount: `/dev/fuse`
//! that may be opened, and `CAP_SYS_ADMIN`. dockerd gives a managed plugin neither
//! unless its config.json asks (moby v20.10.24 `plugin/v2/plugin_linux.go`
//! `InitSpec`, `oci/defaults.go`: the device cgroup even denies `/dev/fuse` by name).
//! Checked before sshfs runs, so the user reads the cause and the fix instead of
//! libfuse's "fuse: device not found, try 'modprobe fuse' first".

use std::path::Path;

use crate::error::MountError;

/// `CAP_SYS_ADMIN`'s bit in the capability sets (linux/capability.h).
const CAP_SYS_ADMIN: u32 = 21;

/// Opens (and closes) `device` (`/dev/fuse`): missing, or denied by the device cgroup.
pub fn fuse_device(device: &Path) -> Result<(), MountError> {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
    {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(MountError::NoFuseDevice),
        Err(err) => Err(MountError::FuseDenied {
            reason: err.to_string(),
        }),
    }
}

/// Whether `status` (the text of `/proc/self/status`) has CAP_SYS_ADMIN effective.
pub fn has_sys_admin(status: &str) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_ADMIN) != 0)
}

/// [`fuse_device`] and CAP_SYS_ADMIN for this process.
pub fn can_mount(device: &Path) -> Result<(), MountError> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if !has_sys_admin(&status) {
        return Err(MountError::NoCapability);
    }
    fuse_device(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_sys_admin_is_bit_21_of_cap_eff() {
        assert!(has_sys_admin("Name:\tx\nCapEff:\t000001ffffffffff\n"));
        // Docker's 14 default capabilities: no CAP_SYS_ADMIN.
        assert!(!has_sys_admin("CapEff:\t00000000a80425fb\n"));
        assert!(!has_sys_admin("Name:\tx\n"));
    }

    #[test]
    fn a_missing_device_is_named_with_the_fix() {
        assert_eq!(
            fuse_device(Path::new("/nonexistent/fuse"))
                .unwrap_err()
                .to_string(),
            "/dev/fuse is missing in the plugin's container: the plugin's config.json must list \
             it in linux.devices (and the host needs the fuse module: modprobe fuse)"
        );
    }
}
