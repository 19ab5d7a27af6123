//! The shared libraries an ELF program needs, so a rootfs can run it.
//!
//! [`LibraryResolver::closure`] reads each program's dynamic section (`DT_NEEDED`,
//! `DT_RUNPATH`, `DT_RPATH`) and its `PT_INTERP` (the dynamic loader), finds each
//! library the way `ld.so` does (the object's own `RUNPATH`, or `RPATH` when it has
//! no `RUNPATH`, then the directories of `/etc/ld.so.conf`, then the standard
//! ones), skipping files of another ELF class or machine, and repeats for every
//! library found. A static program needs nothing.
//!
//! In the rootfs there is no `ld.so.cache`, so its loader searches only each
//! object's `RUNPATH`/`RPATH` and its default directories. [`rootfs_path`] keeps a
//! library found in a default directory at its path and puts any other (found via
//! `/etc/ld.so.conf`, `RUNPATH`, `$ORIGIN`, …) in `/usr/lib`; the dynamic loader
//! keeps its path (programs name it by path, in `PT_INTERP`). [`LibraryResolver::placed`]
//! gives both paths of every file.
//!
//! ```no_run
//! use docker_plugin_sdk::package::elf::LibraryResolver;
//!
//! let needed = LibraryResolver::system().closure(["/bin/ls"])?;
//! assert!(needed.iter().any(|p| p.ends_with("libc.so.6")));
//! # Ok::<(), docker_plugin_sdk::package::PackageError>(())
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader, Sym};
use object::{Endianness, FileKind};

use super::arch::Arch;
use super::error::{IoContext, PackageError};

/// The directories `ld.so` searches last, after `/etc/ld.so.conf`'s, for programs of
/// the host's architecture (see [`LibraryResolver::for_arch`] for another one).
pub const STANDARD_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

/// The directory [`rootfs_path`] puts a library in when its host directory is not
/// one the loader searches by default.
pub const ROOTFS_LIBRARY_DIR: &str = "/usr/lib";

/// Whether the dynamic loader searches `dir` without an `ld.so.cache`: `/lib`,
/// `/usr/lib`, `/lib64`, `/usr/lib64`, and `/lib/TRIPLET`, `/usr/lib/TRIPLET` for a
/// multiarch triplet such as `x86_64-linux-gnu`.
pub fn is_default_dir(dir: &Path) -> bool {
    let parts: Vec<String> = dir
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let triplet = |t: &str| {
        let mut fields = t.splitn(3, '-');
        matches!(
            (fields.next(), fields.next(), fields.next()),
            (Some(arch), Some("linux"), Some(abi)) if !arch.is_empty() && !abi.is_empty()
        )
    };
    match parts.as_slice() {
        ["/", "lib" | "lib64"] | ["/", "usr", "lib" | "lib64"] => true,
        ["/", "lib", t] | ["/", "usr", "lib", t] => triplet(t),
        _ => false,
    }
}

/// Where the library at `host` goes in a rootfs so that the loader there finds it:
/// the same path when its directory is a default one ([`is_default_dir`]), else
/// `/usr/lib/NAME`.
pub fn rootfs_path(host: &Path) -> PathBuf {
    match (host.parent(), host.file_name()) {
        (Some(dir), Some(_)) if is_default_dir(dir) => host.to_path_buf(),
        (_, Some(name)) => Path::new(ROOTFS_LIBRARY_DIR).join(name),
        (_, None) => host.to_path_buf(),
    }
}

/// What the dynamic section and program headers of one ELF file say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElfInfo {
    /// `DT_NEEDED`: library names, e.g. `libc.so.6`.
    pub needed: Vec<String>,
    /// `DT_RUNPATH` entries (`$ORIGIN` expanded).
    pub runpath: Vec<PathBuf>,
    /// `DT_RPATH` entries (`$ORIGIN` expanded).
    pub rpath: Vec<PathBuf>,
    /// `PT_INTERP`: the dynamic loader, e.g. `/lib64/ld-linux-x86-64.so.2`.
    pub interpreter: Option<PathBuf>,
    /// 64-bit.
    pub is_64: bool,
    /// `e_machine`.
    pub machine: u16,
    /// Whether it calls `dlopen` (an undefined dynamic symbol): it may load libraries
    /// at run time that no dynamic section names.
    pub calls_dlopen: bool,
}

impl ElfInfo {
    /// Reads the ELF file at `path`.
    pub fn read(path: &Path) -> Result<Self, PackageError> {
        let data = std::fs::read(path).at(path)?;
        let bad = |message: String| PackageError::Elf {
            path: path.to_path_buf(),
            message,
        };
        let origin = path.parent().unwrap_or(Path::new("/"));
        match FileKind::parse(&*data) {
            Ok(FileKind::Elf32) => parse::<elf::FileHeader32<Endianness>>(&data, origin, false)
                .map_err(|e| bad(e.to_string())),
            Ok(FileKind::Elf64) => parse::<elf::FileHeader64<Endianness>>(&data, origin, true)
                .map_err(|e| bad(e.to_string())),
            _ => Err(bad(
                "not an ELF file: only Linux ELF programs can run in a plugin".into(),
            )),
        }
    }
}

fn parse<H: FileHeader<Endian = Endianness>>(
    data: &[u8],
    origin: &Path,
    is_64: bool,
) -> object::read::Result<ElfInfo> {
    let header = H::parse(data)?;
    let endian = header.endian()?;
    let mut info = ElfInfo {
        is_64,
        machine: header.e_machine(endian),
        ..ElfInfo::default()
    };
    for ph in header.program_headers(endian, data)? {
        if let Some(interp) = ph.interpreter(endian, data)? {
            info.interpreter = Some(PathBuf::from(String::from_utf8_lossy(interp).as_ref()));
        }
    }
    let sections = header.sections(endian, data)?;
    let dynsym = sections.symbols(endian, data, elf::SHT_DYNSYM)?;
    info.calls_dlopen = dynsym.iter().any(|sym| {
        sym.st_shndx(endian) == elf::SHN_UNDEF
            && sym
                .name(endian, dynsym.strings())
                .is_ok_and(|name| name == b"dlopen")
    });
    if let Some((dynamic, link)) = sections.dynamic(endian, data)? {
        let strings = sections.strings(endian, data, link)?;
        for d in dynamic {
            let Some(tag) = d.tag32(endian) else { continue };
            if tag == elf::DT_NULL {
                break;
            }
            let text = || -> object::read::Result<String> {
                Ok(String::from_utf8_lossy(d.string(endian, strings)?).into_owned())
            };
            match tag {
                elf::DT_NEEDED => info.needed.push(text()?),
                elf::DT_RUNPATH => info.runpath.extend(search_path(&text()?, origin)),
                elf::DT_RPATH => info.rpath.extend(search_path(&text()?, origin)),
                _ => {}
            }
        }
    }
    Ok(info)
}

fn search_path(value: &str, origin: &Path) -> Vec<PathBuf> {
    let origin = origin.to_string_lossy();
    value
        .split(':')
        .filter(|s| !s.is_empty())
        .map(|s| PathBuf::from(s.replace("${ORIGIN}", &origin).replace("$ORIGIN", &origin)))
        .collect()
}

/// Finds libraries the way `ld.so` does, in a set of directories.
#[derive(Debug, Clone)]
pub struct LibraryResolver {
    dirs: Vec<PathBuf>,
}

impl LibraryResolver {
    /// The host's search path: `/etc/ld.so.conf` (with its `include`s), then
    /// [`STANDARD_DIRS`].
    pub fn system() -> Self {
        let mut dirs = Vec::new();
        read_ld_so_conf(Path::new("/etc/ld.so.conf"), &mut dirs, 0);
        dirs.extend(STANDARD_DIRS.iter().map(PathBuf::from));
        Self::with_dirs(dirs)
    }

    /// The search path for programs built for `arch`: `/etc/ld.so.conf`, then
    /// `arch`'s multiarch directories (`/lib/aarch64-linux-gnu`, … where Debian's
    /// `libc6:arm64` and other foreign-architecture packages install), then
    /// `/lib64`, `/usr/lib64`, `/lib`, `/usr/lib`. Only libraries of the needing
    /// program's machine are ever taken, so a host library never stands in for a
    /// foreign one.
    pub fn for_arch(arch: Arch) -> Self {
        if arch == Arch::host() {
            return Self::system();
        }
        let mut dirs = Vec::new();
        read_ld_so_conf(Path::new("/etc/ld.so.conf"), &mut dirs, 0);
        let triplet = arch.multiarch();
        dirs.push(PathBuf::from(format!("/lib/{triplet}")));
        dirs.push(PathBuf::from(format!("/usr/lib/{triplet}")));
        dirs.extend(
            ["/lib64", "/usr/lib64", "/lib", "/usr/lib"]
                .iter()
                .map(PathBuf::from),
        );
        Self::with_dirs(dirs)
    }

    /// Searches only `dirs` (after each object's own `RUNPATH`/`RPATH`).
    pub fn with_dirs(dirs: Vec<PathBuf>) -> Self {
        let mut seen = BTreeSet::new();
        let dirs = dirs
            .into_iter()
            .filter(|d| seen.insert(d.clone()))
            .collect();
        Self { dirs }
    }

    /// The search directories, in order.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Every file the programs need to run, besides themselves: their libraries,
    /// recursively, and their dynamic loaders. Sorted and without duplicates; empty
    /// for static programs. A library that cannot be found is an error naming it
    /// and the program that needs it.
    pub fn closure<P: AsRef<Path>>(
        &self,
        programs: impl IntoIterator<Item = P>,
    ) -> Result<Vec<PathBuf>, PackageError> {
        Ok(self.walk(programs)?.0.into_iter().collect())
    }

    /// [`closure`](Self::closure), each file with its path in the rootfs: the
    /// dynamic loaders and the libraries in default directories at their host
    /// path, the other libraries in `/usr/lib` ([`rootfs_path`]). Sorted by host
    /// path.
    pub fn placed<P: AsRef<Path>>(
        &self,
        programs: impl IntoIterator<Item = P>,
    ) -> Result<Vec<(PathBuf, PathBuf)>, PackageError> {
        let (found, interpreters) = self.walk(programs)?;
        Ok(found
            .into_iter()
            .map(|host| {
                let dest = if interpreters.contains(&host) {
                    host.clone()
                } else {
                    rootfs_path(&host)
                };
                (host, dest)
            })
            .collect())
    }

    /// Every needed file, and which of them are dynamic loaders.
    fn walk<P: AsRef<Path>>(
        &self,
        programs: impl IntoIterator<Item = P>,
    ) -> Result<(BTreeSet<PathBuf>, BTreeSet<PathBuf>), PackageError> {
        let mut found = BTreeSet::new();
        let mut interpreters = BTreeSet::new();
        // Library file name → the first file of that name and who needed it.
        let mut named: BTreeMap<OsString, (PathBuf, PathBuf)> = BTreeMap::new();
        let mut queue: VecDeque<(PathBuf, ElfInfo)> = VecDeque::new();
        for program in programs {
            let program = program.as_ref().to_path_buf();
            let info = ElfInfo::read(&program)?;
            queue.push_back((program, info));
        }
        while let Some((path, info)) = queue.pop_front() {
            if let Some(interp) = &info.interpreter
                && interpreters.insert(interp.clone())
                && found.insert(interp.clone())
                && !interp.exists()
            {
                let foreign = match Arch::from_elf(info.machine, info.is_64) {
                    Some(arch) if arch != Arch::host() => format!(
                        " (for {arch} programs: `dpkg --add-architecture {arch}`, then install libc6:{arch})"
                    ),
                    _ => String::new(),
                };
                return Err(PackageError::Elf {
                    path,
                    message: format!(
                        "its dynamic loader {} does not exist on this host{foreign}",
                        interp.display()
                    ),
                });
            }
            for name in &info.needed {
                let lib = self.find(name, &info).ok_or_else(|| PackageError::Elf {
                    path: path.clone(),
                    message: format!(
                        "needs {name}, which is in none of {} (install it, or add its directory to /etc/ld.so.conf.d)",
                        self.candidates(&info)
                            .iter()
                            .map(|d| d.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })?;
                if let Some(name) = lib.file_name() {
                    let first = named
                        .entry(name.to_os_string())
                        .or_insert_with(|| (lib.clone(), path.clone()));
                    if first.0 != lib && !same_file(&first.0, &lib) {
                        return Err(PackageError::Elf {
                            path: lib.clone(),
                            message: format!(
                                "two different libraries are named {}: {} (needed by {}) and {} (needed by {}); \
                                 in the rootfs the loader has one search path and would load the same one for both: \
                                 make both programs use one of them (their RUNPATH, or /etc/ld.so.conf.d)",
                                name.to_string_lossy(),
                                first.0.display(),
                                first.1.display(),
                                lib.display(),
                                path.display()
                            ),
                        });
                    }
                }
                if found.insert(lib.clone()) {
                    let lib_info = ElfInfo::read(&lib)?;
                    queue.push_back((lib, lib_info));
                }
            }
        }
        Ok((found, interpreters))
    }

    fn candidates(&self, needer: &ElfInfo) -> Vec<PathBuf> {
        let own = if needer.runpath.is_empty() {
            &needer.rpath
        } else {
            &needer.runpath
        };
        own.iter().chain(self.dirs.iter()).cloned().collect()
    }

    fn find(&self, name: &str, needer: &ElfInfo) -> Option<PathBuf> {
        if name.contains('/') {
            let path = PathBuf::from(name);
            return path.exists().then_some(path);
        }
        self.candidates(needer).into_iter().find_map(|dir| {
            let path = dir.join(name);
            let info = ElfInfo::read(&path).ok()?;
            (info.is_64 == needer.is_64 && info.machine == needer.machine).then_some(path)
        })
    }
}

/// Whether `a` and `b` are the same library: one file (through symlinks, e.g.
/// `/lib` → `/usr/lib`), or identical bytes.
fn same_file(a: &Path, b: &Path) -> bool {
    if let (Ok(ca), Ok(cb)) = (std::fs::canonicalize(a), std::fs::canonicalize(b))
        && ca == cb
    {
        return true;
    }
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(ma), Ok(mb)) if ma.len() == mb.len() => {
            matches!((std::fs::read(a), std::fs::read(b)), (Ok(x), Ok(y)) if x == y)
        }
        _ => false,
    }
}

fn read_ld_so_conf(path: &Path, dirs: &mut Vec<PathBuf>, depth: usize) {
    // A missing or unreadable file is what ld.so ignores too.
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    if depth > 8 {
        return;
    }
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(pattern) = line.strip_prefix("include") {
            for file in glob(pattern.trim(), path) {
                read_ld_so_conf(&file, dirs, depth + 1);
            }
        } else if line.starts_with('/') {
            dirs.push(PathBuf::from(line));
        }
    }
}

/// `include` patterns of ld.so.conf: a directory and a file name with one `*`.
fn glob(pattern: &str, conf: &Path) -> Vec<PathBuf> {
    let pattern = if pattern.starts_with('/') {
        PathBuf::from(pattern)
    } else {
        conf.parent().unwrap_or(Path::new("/")).join(pattern)
    };
    let (Some(dir), Some(name)) = (pattern.parent(), pattern.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy();
    let (prefix, suffix) = name.split_once('*').unwrap_or((&name, ""));
    let exact = !name.contains('*');
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|f| {
                let f = f.to_string_lossy();
                if exact {
                    f == name
                } else {
                    f.len() >= prefix.len() + suffix.len()
                        && f.starts_with(prefix)
                        && f.ends_with(suffix)
                }
            })
        })
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls() -> PathBuf {
        ["/bin/ls", "/usr/bin/ls"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .expect("ls is installed")
    }

    #[test]
    fn a_dynamic_program_needs_libc_and_the_loader() {
        let info = ElfInfo::read(&ls()).expect("ls is ELF");
        assert!(info.needed.iter().any(|n| n == "libc.so.6"), "{info:?}");
        let interp = info.interpreter.clone().expect("ls is dynamic");
        let closure = LibraryResolver::system().closure([ls()]).expect("closure");
        assert!(
            closure
                .iter()
                .any(|p| p.file_name().is_some_and(|f| f == "libc.so.6")),
            "{closure:?}"
        );
        assert!(closure.contains(&interp), "{closure:?}");
        let mut sorted = closure.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, closure);
        // Recursive: everything libc needs is in too.
        let libc = closure
            .iter()
            .find(|p| p.ends_with("libc.so.6"))
            .expect("libc");
        for name in ElfInfo::read(libc).expect("libc is ELF").needed {
            assert!(closure.iter().any(|p| p.ends_with(&name)), "{name}");
        }
    }

    #[test]
    fn a_static_program_needs_nothing() {
        let busybox = Path::new("/bin/busybox");
        if !busybox.exists() {
            panic!("/bin/busybox (busybox-static) is needed: run scripts/install-test-deps");
        }
        let info = ElfInfo::read(busybox).expect("ELF");
        assert!(
            info.needed.is_empty() && info.interpreter.is_none(),
            "{info:?}"
        );
        assert!(
            LibraryResolver::system()
                .closure([busybox])
                .expect("closure")
                .is_empty()
        );
    }

    #[test]
    fn a_missing_library_names_it_and_the_dirs() {
        let err = LibraryResolver::with_dirs(vec![PathBuf::from("/nonexistent")])
            .closure([ls()])
            .expect_err("nothing to find in /nonexistent")
            .to_string();
        assert!(err.contains("needs lib"), "{err}");
        assert!(err.contains("/nonexistent"), "{err}");
    }

    /// Compiles `lib.c` into `dir/libdps.so.1` and a program needing it with
    /// `RUNPATH` `dir` into `dir/prog`.
    fn program_with_own_library(dir: &Path, body: &str) -> PathBuf {
        std::fs::create_dir_all(dir).expect("mkdir");
        std::fs::write(dir.join("lib.c"), body).expect("write");
        std::fs::write(
            dir.join("main.c"),
            "int f(void);\nint main(void) { return f(); }\n",
        )
        .expect("write");
        let cc = |args: &[&str]| {
            let out = std::process::Command::new("cc")
                .current_dir(dir)
                .args(args)
                .output()
                .expect("cc (gcc) is installed");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        cc(&[
            "-shared",
            "-fPIC",
            "-Wl,-soname,libdps.so.1",
            "-o",
            "libdps.so.1",
            "lib.c",
        ]);
        let rpath = format!("-Wl,--enable-new-dtags,-rpath,{}", dir.display());
        cc(&["-o", "prog", "main.c", "-L.", "-l:libdps.so.1", &rpath]);
        dir.join("prog")
    }

    #[test]
    fn two_different_libraries_of_one_name_are_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = program_with_own_library(&dir.path().join("a"), "int f(void) { return 1; }\n");
        let b = program_with_own_library(&dir.path().join("b"), "int f(void) { return 2; }\n");
        let err = LibraryResolver::system()
            .closure([&a, &b])
            .expect_err("two libdps.so.1")
            .to_string();
        let (la, lb) = (
            dir.path().join("a/libdps.so.1"),
            dir.path().join("b/libdps.so.1"),
        );
        assert_eq!(
            err,
            format!(
                "{}: two different libraries are named libdps.so.1: {} (needed by {}) and {} (needed by {}); \
                 in the rootfs the loader has one search path and would load the same one for both: \
                 make both programs use one of them (their RUNPATH, or /etc/ld.so.conf.d)",
                lb.display(),
                la.display(),
                a.display(),
                lb.display(),
                b.display()
            )
        );
        // The same library in two places is one library.
        let c = program_with_own_library(&dir.path().join("c"), "int f(void) { return 1; }\n");
        let closure = LibraryResolver::system()
            .closure([&a, &c])
            .expect("same bytes");
        assert!(closure.contains(&la), "{closure:?}");
    }

    #[test]
    fn non_elf_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("run.sh");
        std::fs::write(&script, "#!/bin/sh\n").expect("write");
        let err = ElfInfo::read(&script).expect_err("script").to_string();
        assert!(err.contains("not an ELF file"), "{err}");
    }

    #[test]
    fn origin_is_expanded() {
        assert_eq!(
            search_path("$ORIGIN/../lib:/opt/x", Path::new("/app/bin")),
            [PathBuf::from("/app/bin/../lib"), PathBuf::from("/opt/x")]
        );
    }

    #[test]
    fn libraries_outside_the_default_dirs_go_to_usr_lib() {
        for kept in [
            "/lib/libz.so.1",
            "/usr/lib/libz.so.1",
            "/lib64/libz.so.1",
            "/usr/lib64/libz.so.1",
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/lib/aarch64-linux-gnu/libz.so.1",
            "/usr/lib/arm-linux-gnueabihf/libz.so.1",
        ] {
            assert_eq!(rootfs_path(Path::new(kept)), Path::new(kept), "{kept}");
        }
        for (host, dest) in [
            ("/usr/local/lib/libfuse3.so.3", "/usr/lib/libfuse3.so.3"),
            ("/opt/x/lib/libx.so", "/usr/lib/libx.so"),
            ("/app/bin/../lib/liby.so.2", "/usr/lib/liby.so.2"),
            ("/usr/lib/x86_64-linux-gnu/sub/libz.so", "/usr/lib/libz.so"),
            ("/usr/lib/python3/libp.so", "/usr/lib/libp.so"),
        ] {
            assert_eq!(rootfs_path(Path::new(host)), Path::new(dest), "{host}");
        }
    }

    #[test]
    fn a_library_found_via_runpath_is_placed_in_usr_lib() {
        // ls's libraries, found in a copy of their directory under /tmp as if by
        // ld.so.conf or RUNPATH: they must land in /usr/lib; the loader stays put.
        let libc_dir = LibraryResolver::system()
            .closure([ls()])
            .expect("closure")
            .into_iter()
            .find(|p| p.ends_with("libc.so.6"))
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .expect("libc");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::copy(libc_dir.join("libc.so.6"), dir.path().join("libc.so.6")).expect("copy");
        let mut dirs = vec![dir.path().to_path_buf()];
        dirs.extend(STANDARD_DIRS.iter().map(PathBuf::from));
        let placed = LibraryResolver::with_dirs(dirs)
            .placed([ls()])
            .expect("placed");
        let libc = placed
            .iter()
            .find(|(host, _)| host.ends_with("libc.so.6"))
            .expect("libc");
        assert_eq!(libc.0, dir.path().join("libc.so.6"));
        assert_eq!(libc.1, Path::new("/usr/lib/libc.so.6"));
        let interp = ElfInfo::read(&ls())
            .expect("elf")
            .interpreter
            .expect("dynamic");
        assert!(placed.contains(&(interp.clone(), interp)), "{placed:?}");
    }
}
