//! CPU architectures: what a plugin is built for, and the check that everything in
//! its rootfs runs there.
//!
//! Docker has no multi-architecture plugins: `docker plugin install` of a manifest
//! list fails with "did not find plugin config for specified reference" (moby v20.10.24
//! `plugin/backend_linux.go`, `Privileges`), so a plugin is built, packaged and pushed
//! once per architecture ([`Arch::tag_suffix`] names the tags). The names are Go's
//! `GOARCH`, the ones Docker prints and image platforms use (`amd64`, `arm64`, …).
//!
//! [`check_rootfs`] reads the ELF header of every regular file in a rootfs and
//! refuses one built for another machine: dockerd would only say `exec format error`
//! or, for a library, the plugin would not start.
//!
//! ```
//! use docker_plugin_sdk::package::arch::Arch;
//!
//! let arm = Arch::from_target_triple("aarch64-unknown-linux-gnu")?;
//! assert_eq!(arm.to_string(), "arm64");
//! assert_eq!(arm.multiarch(), "aarch64-linux-gnu");
//! assert_eq!(arm.tag_suffix(), "-arm64");
//! # Ok::<(), docker_plugin_sdk::package::PackageError>(())
//! ```

use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::error::{IoContext, PackageError};

/// A CPU architecture a Linux plugin can be built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Arch {
    /// x86-64 (`x86_64-unknown-linux-gnu`).
    Amd64,
    /// 64-bit ARM (`aarch64-unknown-linux-gnu`).
    Arm64,
    /// 32-bit ARM, hard float (`armv7-unknown-linux-gnueabihf`).
    Arm,
    /// 32-bit x86 (`i686-unknown-linux-gnu`).
    I386,
    /// 64-bit POWER, little endian (`powerpc64le-unknown-linux-gnu`).
    Ppc64le,
    /// IBM Z (`s390x-unknown-linux-gnu`).
    S390x,
    /// 64-bit RISC-V (`riscv64gc-unknown-linux-gnu`).
    Riscv64,
}

/// `e_machine` values (the ELF specification's `EM_*`).
mod machine {
    pub const I386: u16 = 3;
    pub const ARM: u16 = 40;
    pub const PPC64: u16 = 21;
    pub const S390: u16 = 22;
    pub const X86_64: u16 = 62;
    pub const AARCH64: u16 = 183;
    pub const RISCV: u16 = 243;
}

impl Arch {
    /// Every architecture, in Docker's usual order.
    pub const ALL: [Arch; 7] = [
        Arch::Amd64,
        Arch::Arm64,
        Arch::Arm,
        Arch::I386,
        Arch::Ppc64le,
        Arch::S390x,
        Arch::Riscv64,
    ];

    /// The architecture this program was compiled for.
    pub fn host() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Arm64
        } else if cfg!(target_arch = "arm") {
            Arch::Arm
        } else if cfg!(target_arch = "x86") {
            Arch::I386
        } else if cfg!(target_arch = "powerpc64") {
            Arch::Ppc64le
        } else if cfg!(target_arch = "s390x") {
            Arch::S390x
        } else if cfg!(target_arch = "riscv64") {
            Arch::Riscv64
        } else {
            Arch::Amd64
        }
    }

    /// Go's `GOARCH` name, as Docker prints it: `amd64`, `arm64`, `arm`, `386`,
    /// `ppc64le`, `s390x`, `riscv64`.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
            Arch::Arm => "arm",
            Arch::I386 => "386",
            Arch::Ppc64le => "ppc64le",
            Arch::S390x => "s390x",
            Arch::Riscv64 => "riscv64",
        }
    }

    /// The Debian multiarch triplet: the library directories are `/lib/TRIPLET` and
    /// `/usr/lib/TRIPLET` (e.g. `aarch64-linux-gnu`).
    pub fn multiarch(self) -> &'static str {
        match self {
            Arch::Amd64 => "x86_64-linux-gnu",
            Arch::Arm64 => "aarch64-linux-gnu",
            Arch::Arm => "arm-linux-gnueabihf",
            Arch::I386 => "i386-linux-gnu",
            Arch::Ppc64le => "powerpc64le-linux-gnu",
            Arch::S390x => "s390x-linux-gnu",
            Arch::Riscv64 => "riscv64-linux-gnu",
        }
    }

    /// The usual Rust target triple (glibc).
    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::Amd64 => "x86_64-unknown-linux-gnu",
            Arch::Arm64 => "aarch64-unknown-linux-gnu",
            Arch::Arm => "armv7-unknown-linux-gnueabihf",
            Arch::I386 => "i686-unknown-linux-gnu",
            Arch::Ppc64le => "powerpc64le-unknown-linux-gnu",
            Arch::S390x => "s390x-unknown-linux-gnu",
            Arch::Riscv64 => "riscv64gc-unknown-linux-gnu",
        }
    }

    /// The suffix of the per-architecture tag `push --arch-tags` writes:
    /// `REF:1` → `REF:1-arm64`.
    pub fn tag_suffix(self) -> String {
        format!("-{}", self.name())
    }

    /// The ELF `e_machine` and class (64-bit or not) of this architecture's programs.
    pub fn elf_machine(self) -> (u16, bool) {
        match self {
            Arch::Amd64 => (machine::X86_64, true),
            Arch::Arm64 => (machine::AARCH64, true),
            Arch::Arm => (machine::ARM, false),
            Arch::I386 => (machine::I386, false),
            Arch::Ppc64le => (machine::PPC64, true),
            Arch::S390x => (machine::S390, true),
            Arch::Riscv64 => (machine::RISCV, true),
        }
    }

    /// The architecture of ELF programs with this `e_machine` and class, if it is
    /// one a plugin can be built for.
    pub fn from_elf(machine: u16, is_64: bool) -> Option<Arch> {
        Arch::ALL
            .into_iter()
            .find(|a| a.elf_machine() == (machine, is_64))
    }

    /// The architecture of a Rust target triple (`aarch64-unknown-linux-musl`, …):
    /// only Linux targets are plugins.
    pub fn from_target_triple(triple: &str) -> Result<Arch, PackageError> {
        let bad = |reason: String| PackageError::Cargo(format!("--target {triple}: {reason}"));
        if !triple.contains("-linux-") {
            return Err(bad(
                "a Docker plugin runs on Linux: choose a *-linux-gnu or *-linux-musl target".into(),
            ));
        }
        let cpu = triple.split('-').next().unwrap_or_default();
        let arch = match cpu {
            "x86_64" => Arch::Amd64,
            "aarch64" => Arch::Arm64,
            "i586" | "i686" => Arch::I386,
            "powerpc64le" => Arch::Ppc64le,
            "s390x" => Arch::S390x,
            "riscv64gc" | "riscv64" => Arch::Riscv64,
            cpu if cpu.starts_with("arm") || cpu.starts_with("thumbv7") => Arch::Arm,
            _ => {
                return Err(bad(format!(
                    "no Docker architecture for CPU {cpu:?} (known: {})",
                    Arch::ALL.map(Arch::rust_target).join(", ")
                )));
            }
        };
        Ok(arch)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arch {
    type Err = PackageError;

    /// A Docker name (`arm64`), also spelt as the kernel does (`aarch64`, `x86_64`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let arch = match s {
            "amd64" | "x86_64" => Arch::Amd64,
            "arm64" | "aarch64" => Arch::Arm64,
            "arm" | "armhf" | "armv7" => Arch::Arm,
            "386" | "i386" | "i686" => Arch::I386,
            "ppc64le" => Arch::Ppc64le,
            "s390x" => Arch::S390x,
            "riscv64" => Arch::Riscv64,
            _ => {
                return Err(PackageError::Cargo(format!(
                    "unknown architecture {s:?}: one of {}",
                    Arch::ALL.map(Arch::name).join(", ")
                )));
            }
        };
        Ok(arch)
    }
}

/// The ELF identification of a file: machine and class, or `None` when it is not an
/// ELF file at all (a script, data).
pub fn elf_header(path: &Path) -> Result<Option<(u16, bool)>, PackageError> {
    let mut head = [0u8; 20];
    let mut file = fs::File::open(path).at(path)?;
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..]).at(path)? {
            0 => break,
            n => read += n,
        }
    }
    if read < head.len() || &head[..4] != b"\x7fELF" {
        return Ok(None);
    }
    let is_64 = head[4] == 2;
    let machine = match head[5] {
        2 => u16::from_be_bytes([head[18], head[19]]),
        _ => u16::from_le_bytes([head[18], head[19]]),
    };
    Ok(Some((machine, is_64)))
}

/// A human name for an ELF machine: the architecture, or the raw `e_machine`.
fn describe(machine: u16, is_64: bool) -> String {
    match Arch::from_elf(machine, is_64) {
        Some(arch) => arch.to_string(),
        None => format!("e_machine {machine} ({}-bit)", if is_64 { 64 } else { 32 }),
    }
}

/// Every regular file under `rootfs` that is an ELF file for another machine than
/// `arch`, with what it is built for; sorted by path.
pub fn foreign_files(rootfs: &Path, arch: Arch) -> Result<Vec<(PathBuf, String)>, PackageError> {
    let mut odd = Vec::new();
    walk(rootfs, &mut |path| {
        if let Some((machine, is_64)) = elf_header(path)?
            && (machine, is_64) != arch.elf_machine()
        {
            odd.push((path.to_path_buf(), describe(machine, is_64)));
        }
        Ok(())
    })?;
    odd.sort();
    Ok(odd)
}

/// The architecture of the first ELF file under `rootfs` (sorted by path), if any
/// is one Docker runs plugins on.
pub fn rootfs_arch(rootfs: &Path) -> Result<Option<Arch>, PackageError> {
    let mut found = None;
    walk(rootfs, &mut |path| {
        if found.is_none()
            && let Some((machine, is_64)) = elf_header(path)?
        {
            found = Some(Arch::from_elf(machine, is_64));
        }
        Ok(())
    })?;
    Ok(found.flatten())
}

/// Refuses a rootfs holding an ELF file for another machine than `arch`; the error
/// names each such file (as the plugin sees it, e.g. `/usr/bin/tool`).
pub fn check_rootfs(rootfs: &Path, arch: Arch) -> Result<(), PackageError> {
    let odd = foreign_files(rootfs, arch)?;
    let Some((first, _)) = odd.first() else {
        return Ok(());
    };
    let list = odd
        .iter()
        .map(|(path, what)| {
            let inside = Path::new("/").join(path.strip_prefix(rootfs).unwrap_or(path));
            format!("{} is built for {what}", inside.display())
        })
        .collect::<Vec<_>>()
        .join("; ");
    Err(PackageError::Elf {
        path: first.clone(),
        message: format!(
            "the plugin is built for {arch} but {list}: it would not start there (exec format error); \
             use {arch} builds of them (Debian: `dpkg --add-architecture {arch}`, then install PACKAGE:{arch}), \
             or package the plugin for their architecture with --target"
        ),
    })
}

/// Calls `visit` on every regular file under `dir`, in sorted order.
pub(crate) fn walk(
    dir: &Path,
    visit: &mut dyn FnMut(&Path) -> Result<(), PackageError>,
) -> Result<(), PackageError> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .at(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .at(dir)?;
    entries.sort();
    for path in entries {
        let meta = fs::symlink_metadata(&path).at(&path)?;
        if meta.is_dir() {
            walk(&path, visit)?;
        } else if meta.is_file() {
            visit(&path)?;
        }
    }
    Ok(())
}

/// A minimal ELF executable header for `arch` (no sections, no program headers),
/// enough for [`elf_header`] and for `file(1)`; tests use it to stand for a foreign
/// binary.
pub fn minimal_elf(arch: Arch) -> Vec<u8> {
    let (machine, is_64) = arch.elf_machine();
    let big_endian = matches!(arch, Arch::S390x);
    let u16b = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut elf = vec![0x7f, b'E', b'L', b'F'];
    elf.push(if is_64 { 2 } else { 1 });
    elf.push(if big_endian { 2 } else { 1 });
    elf.push(1); // EV_CURRENT
    elf.resize(16, 0);
    elf.extend(u16b(2)); // ET_EXEC
    elf.extend(u16b(machine));
    elf.extend(if big_endian {
        1u32.to_be_bytes()
    } else {
        1u32.to_le_bytes()
    });
    elf.resize(if is_64 { 64 } else { 52 }, 0);
    elf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triples_map_to_docker_names() {
        for (triple, name) in [
            ("x86_64-unknown-linux-gnu", "amd64"),
            ("x86_64-unknown-linux-musl", "amd64"),
            ("aarch64-unknown-linux-gnu", "arm64"),
            ("armv7-unknown-linux-gnueabihf", "arm"),
            ("i686-unknown-linux-gnu", "386"),
            ("powerpc64le-unknown-linux-gnu", "ppc64le"),
            ("s390x-unknown-linux-gnu", "s390x"),
            ("riscv64gc-unknown-linux-gnu", "riscv64"),
        ] {
            let arch = Arch::from_target_triple(triple).expect(triple);
            assert_eq!(arch.name(), name);
            assert_eq!(name.parse::<Arch>().expect(name), arch);
            assert_eq!(
                Arch::from_target_triple(arch.rust_target()).expect("own"),
                arch
            );
        }
        let err = Arch::from_target_triple("x86_64-apple-darwin")
            .expect_err("not linux")
            .to_string();
        assert_eq!(
            err,
            "cargo: --target x86_64-apple-darwin: a Docker plugin runs on Linux: choose a *-linux-gnu or *-linux-musl target"
        );
    }

    #[test]
    fn the_host_is_what_this_test_binary_is_built_for() {
        let exe = std::env::current_exe().expect("current exe");
        let (machine, is_64) = elf_header(&exe).expect("read").expect("ELF");
        assert_eq!(Arch::from_elf(machine, is_64), Some(Arch::host()));
    }

    #[test]
    fn a_foreign_elf_in_the_rootfs_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rootfs = dir.path();
        fs::create_dir_all(rootfs.join("usr/bin")).expect("mkdir");
        fs::write(rootfs.join("usr/bin/script"), "#!/bin/sh\n").expect("write");
        fs::copy(std::env::current_exe().expect("exe"), rootfs.join("p")).expect("copy");
        check_rootfs(rootfs, Arch::host()).expect("all native");
        let foreign = if Arch::host() == Arch::Arm64 {
            Arch::Amd64
        } else {
            Arch::Arm64
        };
        fs::write(rootfs.join("usr/bin/tool"), minimal_elf(foreign)).expect("write");
        let err = check_rootfs(rootfs, Arch::host())
            .expect_err("foreign")
            .to_string();
        let host = Arch::host();
        assert_eq!(
            err,
            format!(
                "{}: the plugin is built for {host} but /usr/bin/tool is built for {foreign}: it would not start there (exec format error); \
                 use {host} builds of them (Debian: `dpkg --add-architecture {host}`, then install PACKAGE:{host}), \
                 or package the plugin for their architecture with --target",
                rootfs.join("usr/bin/tool").display()
            )
        );
        for arch in Arch::ALL {
            let path = rootfs.join("x");
            fs::write(&path, minimal_elf(arch)).expect("write");
            let (machine, is_64) = elf_header(&path).expect("read").expect("ELF");
            assert_eq!(Arch::from_elf(machine, is_64), Some(arch), "{arch}");
        }
    }
}
