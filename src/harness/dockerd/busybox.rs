//! The tiny image containers run in a private dockerd: a static busybox (Debian's
//! `busybox-static`) with one symlink per applet, imported with `docker import`, so no
//! registry is needed.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;

use super::{COUNTER, Dockerd, DockerdError, io_error};

impl Dockerd {
    /// Imports a tiny image named `tag` built from a static busybox (`/bin/busybox`,
    /// or `DPS_BUSYBOX`): `/bin/busybox` plus one symlink per applet, `/etc/passwd`,
    /// `/etc/group`, `/tmp`; `CMD ["sh"]`, `PATH=/bin`. Does nothing if `tag` already
    /// exists.
    ///
    /// ```no_run
    /// # use docker_plugin_sdk::harness::dockerd::Dockerd;
    /// # fn run() -> Result<(), docker_plugin_sdk::harness::dockerd::DockerdError> {
    /// let d = Dockerd::start()?;
    /// d.import_busybox("busybox:test")?;
    /// assert_eq!(d.docker_ok(&["run", "--rm", "busybox:test", "echo", "hi"])?, "hi");
    /// # Ok(()) }
    /// ```
    pub fn import_busybox(&self, tag: &str) -> Result<(), DockerdError> {
        if self
            .docker(&["image", "inspect", "--format", "{{.Id}}", tag])
            .status
            .success()
        {
            return Ok(());
        }
        let busybox = match std::env::var("DPS_BUSYBOX") {
            Ok(p) if !p.is_empty() => PathBuf::from(p),
            _ => PathBuf::from("/bin/busybox"),
        };
        let bytes = fs::read(&busybox).map_err(io_error(format!(
            "cannot read {} (install busybox-static, e.g. with scripts/install-test-deps, \
             or set DPS_BUSYBOX)",
            busybox.display()
        )))?;
        if elf_has_interpreter(&bytes) {
            return Err(DockerdError::BusyboxNotStatic(busybox));
        }
        let applets = Command::new(&busybox)
            .arg("--list")
            .output()
            .map_err(io_error(format!("cannot run {} --list", busybox.display())))?;
        if !applets.status.success() {
            return Err(DockerdError::Tool {
                command: format!("{} --list", busybox.display()),
                status: applets.status,
                stderr: String::from_utf8_lossy(&applets.stderr).trim().to_owned(),
            });
        }
        let applets = String::from_utf8_lossy(&applets.stdout).into_owned();

        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let rootfs = self.root.join(format!("busybox-rootfs-{n}"));
        let tarball = self.root.join(format!("busybox-{n}.tar"));
        let result = write_rootfs(&rootfs, &bytes, &applets)
            .and_then(|()| self.import(&rootfs, &tarball, tag));
        let _ = fs::remove_dir_all(&rootfs);
        let _ = fs::remove_file(&tarball);
        result
    }

    /// `tar` of `rootfs`, then `docker import` of it as `tag`.
    fn import(&self, rootfs: &Path, tarball: &Path, tag: &str) -> Result<(), DockerdError> {
        let tar = Command::new("tar")
            .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
            .arg(rootfs)
            .arg("-cf")
            .arg(tarball)
            .arg(".")
            .output()
            .map_err(io_error("cannot run tar"))?;
        if !tar.status.success() {
            return Err(DockerdError::Tool {
                command: format!("tar -C {} -cf {} .", rootfs.display(), tarball.display()),
                status: tar.status,
                stderr: String::from_utf8_lossy(&tar.stderr).trim().to_owned(),
            });
        }
        let tarball = tarball.display().to_string();
        let args = [
            "import",
            "--change",
            r#"CMD ["sh"]"#,
            "--change",
            "ENV PATH=/bin",
            &tarball,
            tag,
        ];
        let out = self.docker(&args);
        if !out.status.success() {
            return Err(self.failure("failed", &["import", "…", &tarball, tag], &out));
        }
        Ok(())
    }
}

/// `rootfs/bin/busybox` (`bytes`) with a symlink per applet, and the few files and
/// dirs a shell expects.
fn write_rootfs(rootfs: &Path, bytes: &[u8], applets: &str) -> Result<(), DockerdError> {
    let what = |what: &str| io_error(format!("building busybox rootfs ({what})"));
    let bin = rootfs.join("bin");
    fs::create_dir_all(&bin).map_err(what("mkdir bin"))?;
    fs::write(bin.join("busybox"), bytes).map_err(what("copy busybox"))?;
    fs::set_permissions(bin.join("busybox"), fs::Permissions::from_mode(0o755))
        .map_err(what("chmod busybox"))?;
    for applet in applets.lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        symlink("busybox", bin.join(applet)).map_err(what(applet))?;
    }
    for dir in ["etc", "root", "tmp", "proc", "sys", "dev"] {
        fs::create_dir_all(rootfs.join(dir)).map_err(what(dir))?;
    }
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))
        .map_err(what("chmod tmp"))?;
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .map_err(what("passwd"))?;
    fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").map_err(what("group"))
}

/// Whether an ELF binary has a `PT_INTERP` segment (i.e. is dynamically linked). Only
/// 64-bit little-endian ELF is inspected; anything else is assumed static. (The
/// packager's `package::elf` reads ELF fully, but needs feature `packager`.)
fn elf_has_interpreter(b: &[u8]) -> bool {
    let u16_at = |o: usize| {
        b.get(o..o + 2)
            .map(|s| u16::from_le_bytes([s[0], s[1]]) as usize)
    };
    let u32_at = |o: usize| {
        b.get(o..o + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    };
    let u64_at = |o: usize| {
        b.get(o..o + 8).map(|s| {
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            u64::from_le_bytes(a) as usize
        })
    };
    if b.len() < 64 || &b[0..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum).any(|i| u32_at(phoff + i * phentsize) == Some(3))
}

#[cfg(test)]
mod tests {
    use super::elf_has_interpreter;

    #[test]
    fn the_test_binary_itself_is_dynamically_linked_and_garbage_is_not_elf() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(elf_has_interpreter(&me));
        assert!(!elf_has_interpreter(b"#!/bin/sh\necho not elf\n"));
    }
}
