//! What a glibc program needs at run time that no ELF dynamic section names, so host
//! programs copied into a rootfs (`binaries = ["/usr/bin/sshfs", "/usr/bin/ssh"]`)
//! start and behave there as on the host.
//!
//! - **Libraries glibc opens itself** ([`RUNTIME_LIBRARIES`]): `libgcc_s.so.1`, which
//!   `pthread_cancel`, `pthread_exit` and C++ unwinding `dlopen` (a program without it
//!   aborts with "libgcc_s.so.1 must be installed for pthread_cancel to work"), and
//!   the NSS modules the rootfs's `nsswitch.conf` names (`files`, `dns`).
//! - **The files NSS reads** ([`ETC_FILES`]): a minimal `/etc/passwd` and
//!   `/etc/group` with `root` and `nobody`, and an `/etc/nsswitch.conf` using only the
//!   modules shipped. Without them `ssh` stops with "No user exists for uid 0".
//!   dockerd recreates `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname` at every
//!   enable (moby v20.10.24 `daemon/initlayer/setup_unix.go`), so those are not
//!   shipped.
//!
//! Programs that `dlopen` other libraries themselves (plugins, PKCS#11 providers)
//! cannot be followed: [`dlopen_warnings`] names them, and `cargo docker-plugin package
//! --verify` runs each program in the rootfs to prove it starts.

use std::path::{Path, PathBuf};

use super::elf::{ElfInfo, LibraryResolver};

/// Libraries glibc loads with `dlopen`, taken from the directory of the program's
/// `libc.so.6` when it has one.
pub const RUNTIME_LIBRARIES: &[&str] = &["libgcc_s.so.1", "libnss_files.so.2", "libnss_dns.so.2"];

/// `/etc/nsswitch.conf` for a rootfs holding only the `files` and `dns` modules.
pub const NSSWITCH_CONF: &str = "# Written by cargo docker-plugin: the NSS modules shipped in this rootfs.\n\
passwd:         files\n\
group:          files\n\
shadow:         files\n\
hosts:          files dns\n\
networks:       files\n\
protocols:      files\n\
services:       files\n";

/// A minimal `/etc/passwd`: the plugin runs as root (dockerd does not apply `user`).
pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";

/// A minimal `/etc/group`.
pub const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

/// The files written into a rootfs that gets host programs, unless it already has
/// them (from `files` or a base rootfs): path in the rootfs and content.
pub const ETC_FILES: &[(&str, &str)] = &[
    ("/etc/nsswitch.conf", NSSWITCH_CONF),
    ("/etc/passwd", PASSWD),
    ("/etc/group", GROUP),
];

/// The run-time libraries ([`RUNTIME_LIBRARIES`]) for programs whose library
/// closure is `closure` (host paths): none unless it holds glibc's `libc.so.6`; each
/// is looked for beside that `libc.so.6` (so it has its architecture), then in
/// `resolver`'s directories. Returns the files found and the names not found.
pub fn libraries(closure: &[PathBuf], resolver: &LibraryResolver) -> (Vec<PathBuf>, Vec<String>) {
    let Some(libc) = closure.iter().find(|p| p.ends_with("libc.so.6")) else {
        return (Vec::new(), Vec::new());
    };
    let Ok(libc_info) = ElfInfo::read(libc) else {
        return (Vec::new(), Vec::new());
    };
    let libc_dir = libc.parent().unwrap_or(Path::new("/"));
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in RUNTIME_LIBRARIES {
        let candidate = std::iter::once(libc_dir.to_path_buf())
            .chain(resolver.dirs().iter().cloned())
            .map(|dir| dir.join(name))
            .find(|path| {
                ElfInfo::read(path).is_ok_and(|info| {
                    info.machine == libc_info.machine && info.is_64 == libc_info.is_64
                })
            });
        match candidate {
            Some(path) => found.push(path),
            None => missing.push((*name).to_owned()),
        }
    }
    (found, missing)
}

/// One warning per program (destination in the rootfs, host file) that calls
/// `dlopen`: what it loads at run time is not in the closure.
pub fn dlopen_warnings<'a>(programs: impl IntoIterator<Item = (&'a str, &'a Path)>) -> Vec<String> {
    programs
        .into_iter()
        .filter(|(_, host)| ElfInfo::read(host).is_ok_and(|info| info.calls_dlopen))
        .map(|(dest, _)| {
            format!(
                "{dest} loads libraries at run time (it calls dlopen), which its ELF dynamic section does not name: \
                 if it needs one, add it with `files`; `cargo docker-plugin package --verify` runs it in the rootfs"
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_glibc_program_gets_libgcc_s_and_the_nss_modules() {
        let ssh = Path::new("/usr/bin/ssh");
        let resolver = LibraryResolver::system();
        let closure = resolver.closure([ssh]).expect("closure");
        let (found, missing) = libraries(&closure, &resolver);
        assert!(missing.is_empty(), "{missing:?}");
        let names: Vec<&str> = found
            .iter()
            .filter_map(|p| p.file_name()?.to_str())
            .collect();
        assert_eq!(names, RUNTIME_LIBRARIES);
        // The NSS modules are beside libc, of its machine.
        let libc_dir = closure
            .iter()
            .find(|p| p.ends_with("libc.so.6"))
            .and_then(|p| p.parent())
            .expect("libc");
        assert!(
            found.iter().all(|p| p.parent() == Some(libc_dir)),
            "{found:?}"
        );
    }

    #[test]
    fn a_static_program_needs_none() {
        let (found, missing) = libraries(&[], &LibraryResolver::system());
        assert!(found.is_empty() && missing.is_empty());
    }

    #[test]
    fn programs_calling_dlopen_are_named() {
        let warnings = dlopen_warnings([
            ("/usr/bin/ssh", Path::new("/usr/bin/ssh")),
            ("/usr/bin/fusermount3", Path::new("/usr/bin/fusermount3")),
        ]);
        assert_eq!(
            warnings,
            [
                "/usr/bin/ssh loads libraries at run time (it calls dlopen), which its ELF dynamic section does not name: \
              if it needs one, add it with `files`; `cargo docker-plugin package --verify` runs it in the rootfs"
            ]
        );
    }
}
