//! Writing a bundle: `config.json` and a `rootfs/` holding the plugin binary, the
//! shared libraries it needs, extra host programs and files, and the directories
//! dockerd expects.
//!
//! ```no_run
//! use docker_plugin_sdk::managed::config::PluginConfig;
//! use docker_plugin_sdk::package::rootfs::BundleWriter;
//!
//! let config = PluginConfig::from_json(br#"{
//!     "entrypoint": ["/myvol"],
//!     "interface": {"socket": "myvol.sock", "types": ["docker.volumedriver/1.0"]},
//!     "propagatedmount": "/mnt/volumes"
//! }"#)?;
//! let written = BundleWriter::new("target/docker-plugin/myvol", config)
//!     .program("/myvol", "target/release/myvol")
//!     .host_program("/usr/bin/sshfs")
//!     .write()?;
//! assert!(written.bundle.rootfs().join("mnt/volumes").is_dir());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The output is reproducible: files are written in sorted order with a fixed mtime
//! and normalized modes (`0755` for executables and the directories it creates,
//! `0644` otherwise, `1777` for `/tmp`; a base rootfs's directories keep theirs), so [`Archive::of_dir`](super::archive::Archive::of_dir) of two
//! bundles of the same input gives identical bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use super::arch::{self, Arch};
use super::elf::LibraryResolver;
use super::error::{IoContext, PackageError};
use super::runtime;
use crate::managed::bundle::{Bundle, CONFIG_FILE, ROOTFS_DIR, resolve_in_rootfs};
use crate::managed::config::PluginConfig;

/// The directory dockerd binds the plugin's socket directory to.
pub const PLUGIN_SOCKET_DIR: &str = "/run/docker/plugins";

/// Builds a bundle directory from a config and the files of its rootfs.
#[derive(Debug, Clone)]
pub struct BundleWriter {
    dir: PathBuf,
    config: PluginConfig,
    /// Programs whose libraries are added too: destination → host file.
    programs: BTreeMap<String, PathBuf>,
    /// Plain files: destination → host file.
    files: BTreeMap<String, PathBuf>,
    dirs: BTreeSet<String>,
    base: Option<PathBuf>,
    resolver: Option<LibraryResolver>,
    arch: Arch,
    /// Whether host programs were added (they get [`runtime::ETC_FILES`]).
    host_programs: bool,
    mtime: u64,
}

/// What [`BundleWriter::write`] put into the rootfs.
#[derive(Debug, Clone)]
pub struct Written {
    /// The bundle.
    pub bundle: Bundle,
    /// Every file added to the rootfs (not counting a base tarball's), by its path
    /// in the rootfs.
    pub files: Vec<String>,
    /// The architecture every ELF file of the rootfs is built for.
    pub arch: Arch,
    /// What the packager could not check and the author should (e.g. a program that
    /// loads libraries with `dlopen`).
    pub warnings: Vec<String>,
}

impl BundleWriter {
    /// A bundle in `dir` with `config`; [`write`](Self::write) validates the config.
    pub fn new(dir: impl Into<PathBuf>, config: PluginConfig) -> Self {
        Self {
            dir: dir.into(),
            config,
            programs: BTreeMap::new(),
            files: BTreeMap::new(),
            dirs: BTreeSet::new(),
            base: None,
            resolver: None,
            arch: Arch::host(),
            host_programs: false,
            mtime: super::archive::source_date_epoch(),
        }
    }

    /// Adds the program at `host` as `dest` in the rootfs, with its libraries.
    pub fn program(mut self, dest: impl Into<String>, host: impl Into<PathBuf>) -> Self {
        self.programs.insert(dest.into(), host.into());
        self
    }

    /// Adds the host program at `path` at the same path, with its libraries, the
    /// libraries glibc loads at run time and, unless the rootfs has them, a minimal
    /// `/etc/passwd`, `/etc/group` and `/etc/nsswitch.conf` (see [`runtime`]).
    pub fn host_program(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        let host = PathBuf::from(&path);
        self.host_programs = true;
        self.program(path, host)
    }

    /// Adds the file at `host` as `dest` (no libraries).
    pub fn file(mut self, dest: impl Into<String>, host: impl Into<PathBuf>) -> Self {
        self.files.insert(dest.into(), host.into());
        self
    }

    /// Adds an empty directory.
    pub fn dir(mut self, dest: impl Into<String>) -> Self {
        self.dirs.insert(dest.into());
        self
    }

    /// Unpacks the tarball at `path` (`.tar`, or gzip-compressed) into the rootfs
    /// before anything else is added.
    pub fn base_rootfs(mut self, path: impl Into<PathBuf>) -> Self {
        self.base = Some(path.into());
        self
    }

    /// Resolves libraries with `resolver` instead of the search path of the
    /// architecture ([`LibraryResolver::for_arch`]).
    pub fn resolver(mut self, resolver: LibraryResolver) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// The architecture the plugin is built for (default: the host's): every ELF
    /// file of the rootfs must be built for it ([`arch::check_rootfs`]), and
    /// libraries are looked up for it.
    pub fn arch(mut self, arch: Arch) -> Self {
        self.arch = arch;
        self
    }

    /// The mtime of every written file (default: [`source_date_epoch`](super::archive::source_date_epoch)).
    pub fn mtime(mut self, secs: u64) -> Self {
        self.mtime = secs;
        self
    }

    /// Validates the config ([`PluginConfig::validate`]), checks that the entrypoint
    /// is in the rootfs, replaces `DIR/config.json` and `DIR/rootfs/`, and writes them.
    /// Every ELF file of the rootfs must be built for the [`arch`](Self::arch): the
    /// error names the odd ones, and no `config.json` is left behind then.
    pub fn write(self) -> Result<Written, PackageError> {
        self.config.validate()?;
        let resolver = self
            .resolver
            .clone()
            .unwrap_or_else(|| LibraryResolver::for_arch(self.arch));
        let mut warnings = Vec::new();
        let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
        for (dest, host) in &self.programs {
            files.insert(checked_dest(dest)?, host.clone());
        }
        // glibc's run-time libraries (NSS modules, libgcc_s) join the programs'.
        let closure = resolver.closure(self.programs.values())?;
        let (runtime_libs, not_found) = runtime::libraries(&closure, &resolver);
        for name in not_found {
            warnings.push(format!(
                "{name}, which glibc loads at run time, is not on this host: programs that need it will fail in the plugin"
            ));
        }
        for lib in &runtime_libs {
            let dest = super::elf::rootfs_path(lib).to_string_lossy().into_owned();
            files.entry(dest).or_insert_with(|| lib.clone());
        }
        // Where the rootfs's loader (which has no ld.so.cache) finds them.
        for (lib, dest) in resolver.placed(self.programs.values().chain(&runtime_libs))? {
            let dest = dest.to_string_lossy().into_owned();
            files.entry(dest).or_insert(lib);
        }
        warnings.extend(runtime::dlopen_warnings(
            self.programs
                .iter()
                .map(|(dest, host)| (dest.as_str(), host.as_path())),
        ));
        for (dest, host) in &self.files {
            files.insert(checked_dest(dest)?, host.clone());
        }
        let mut dirs: BTreeSet<String> = self
            .dirs
            .iter()
            .map(|d| checked_dest(d))
            .collect::<Result<_, _>>()?;
        dirs.insert(PLUGIN_SOCKET_DIR.to_owned());
        dirs.insert("/tmp".to_owned());
        if !self.config.propagated_mount.is_empty() {
            dirs.insert(checked_dest(&self.config.propagated_mount)?);
        }
        if let Some(entry) = self.config.entrypoint.first()
            && entry.starts_with('/')
            && !files.contains_key(entry)
            && self.base.is_none()
        {
            return Err(PackageError::MetadataValue {
                path: self.dir.join(CONFIG_FILE),
                message: format!(
                    "entrypoint {entry} is not in the rootfs (it holds {}): point the entrypoint at the plugin binary, or add the file",
                    files.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            });
        }

        fs::create_dir_all(&self.dir).at(&self.dir)?;
        // A bundle that fails below must not keep an older config.json: with it, the
        // half-written rootfs would pass for a bundle.
        let config_path = self.dir.join(CONFIG_FILE);
        match fs::remove_file(&config_path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(PackageError::io(&config_path, e)),
        }
        let rootfs = self.dir.join(ROOTFS_DIR);
        match fs::remove_dir_all(&rootfs) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(PackageError::io(&rootfs, e)),
        }
        fs::create_dir(&rootfs).at(&rootfs)?;
        if let Some(base) = &self.base {
            unpack(base, &rootfs)?;
        }
        let mtime = UNIX_EPOCH + Duration::from_secs(self.mtime);
        // Every path is resolved inside the rootfs: a base rootfs's symlinks (e.g.
        // `/var/run -> /run`) must not lead a write onto the host.
        for dir in &dirs {
            let path = in_rootfs(&rootfs, dir)?;
            create_dirs(&rootfs, &path)?;
        }
        for (dest, host) in &files {
            // The parent resolved, the file name not: a symlink there is replaced.
            let (parent, name) = match dest.rsplit_once('/') {
                Some((parent, name)) => (parent, name),
                None => ("", dest.as_str()),
            };
            let parent = in_rootfs(&rootfs, parent)?;
            create_dirs(&rootfs, &parent)?;
            let path = parent.join(name);
            // Copy the content (following symlinks) into a fresh regular file.
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(PackageError::io(&path, e)),
            }
            fs::copy(host, &path).map_err(|e| {
                PackageError::io(
                    host,
                    io::Error::new(e.kind(), format!("copying to {}: {e}", path.display())),
                )
            })?;
            let executable = fs::metadata(host).at(host)?.permissions().mode() & 0o111 != 0;
            let mode = if executable { 0o755 } else { 0o644 };
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).at(&path)?;
            let file = fs::File::options().write(true).open(&path).at(&path)?;
            file.set_modified(mtime).at(&path)?;
        }
        if self.host_programs {
            for (dest, content) in runtime::ETC_FILES {
                if files.contains_key(*dest) {
                    continue;
                }
                let path = in_rootfs(&rootfs, dest)?;
                if fs::symlink_metadata(&path).is_ok() {
                    continue; // the base rootfs's own
                }
                if let Some(parent) = path.parent() {
                    create_dirs(&rootfs, parent)?;
                }
                fs::write(&path, content).at(&path)?;
                fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).at(&path)?;
                let file = fs::File::options().write(true).open(&path).at(&path)?;
                file.set_modified(mtime).at(&path)?;
                files.insert((*dest).to_owned(), PathBuf::new());
            }
        }
        let tmp = in_rootfs(&rootfs, "/tmp")?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777)).at(&tmp)?;
        arch::check_rootfs(&rootfs, self.arch)?;

        let mut json = self.config.to_json_pretty()?;
        json.push('\n');
        fs::write(&config_path, json).at(&config_path)?;
        let bundle = Bundle::open(&self.dir)?;
        Ok(Written {
            bundle,
            files: files.into_keys().collect(),
            arch: self.arch,
            warnings,
        })
    }
}

/// `fs::create_dir_all`, then `0755` for each directory it created (whatever the
/// umask); directories that exist, e.g. a base rootfs's, keep their modes.
/// `path` is resolved ([`in_rootfs`]): none of its existing parts is a symlink.
fn create_dirs(rootfs: &Path, path: &Path) -> Result<(), PackageError> {
    let mut missing = Vec::new();
    let mut dir = path;
    while dir != rootfs && dir.starts_with(rootfs) && fs::symlink_metadata(dir).is_err() {
        missing.push(dir.to_path_buf());
        match dir.parent() {
            Some(parent) => dir = parent,
            None => break,
        }
    }
    fs::create_dir_all(path).at(path)?;
    for dir in missing.iter().rev() {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).at(dir)?;
    }
    Ok(())
}

/// [`resolve_in_rootfs`] with the error naming the path.
fn in_rootfs(rootfs: &Path, path: &str) -> Result<PathBuf, PackageError> {
    resolve_in_rootfs(rootfs, path)
        .map_err(|e| PackageError::io(rootfs.join(path.trim_start_matches('/')), e))
}

/// An absolute, normalized destination without `..`.
fn checked_dest(dest: &str) -> Result<String, PackageError> {
    let path = Path::new(dest);
    let ok = path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if !ok {
        return Err(PackageError::MetadataValue {
            path: PathBuf::from(dest),
            message:
                "paths in the rootfs must be absolute and without `.` or `..`, e.g. /usr/bin/tool"
                    .into(),
        });
    }
    Ok(path.to_string_lossy().trim_end_matches('/').to_owned())
}

fn unpack(tarball: &Path, rootfs: &Path) -> Result<(), PackageError> {
    let file = io::BufReader::new(fs::File::open(tarball).at(tarball)?);
    super::archive::unpack(file, rootfs).at(tarball)
}

#[cfg(test)]
mod tests {
    use super::super::archive::{Archive, ArchiveOptions};
    use super::*;

    fn config(entry: &str) -> PluginConfig {
        PluginConfig::from_json(
            format!(
                r#"{{"entrypoint":["{entry}"],"interface":{{"socket":"p.sock","types":["docker.volumedriver/1.0"]}},"propagatedmount":"/mnt/volumes"}}"#
            )
            .as_bytes(),
        )
        .expect("config")
    }

    fn ls() -> &'static str {
        if Path::new("/bin/ls").exists() {
            "/bin/ls"
        } else {
            "/usr/bin/ls"
        }
    }

    #[test]
    fn a_dynamic_program_brings_libc_and_the_loader() {
        let dir = tempfile::tempdir().expect("tempdir");
        let written = BundleWriter::new(dir.path().join("b"), config("/p"))
            .program("/p", ls())
            .dir("/var/lib/p")
            .write()
            .expect("write");
        let rootfs = written.bundle.rootfs();
        assert!(rootfs.join("p").is_file());
        let interp = super::super::elf::ElfInfo::read(Path::new(ls()))
            .expect("elf")
            .interpreter
            .expect("dynamic");
        assert!(
            rootfs
                .join(interp.strip_prefix("/").expect("abs"))
                .is_file()
        );
        assert!(
            written.files.iter().any(|f| f.ends_with("/libc.so.6")),
            "{:?}",
            written.files
        );
        for d in ["run/docker/plugins", "tmp", "mnt/volumes", "var/lib/p"] {
            assert!(rootfs.join(d).is_dir(), "{d}");
        }
        let mode = fs::metadata(rootfs.join("tmp"))
            .expect("tmp")
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o1777);
        let config = fs::read_to_string(dir.path().join("b/config.json")).expect("config");
        assert!(
            config.contains("\"PropagatedMount\": \"/mnt/volumes\""),
            "{config}"
        );
    }

    #[test]
    fn two_writes_give_identical_archives() {
        let dir = tempfile::tempdir().expect("tempdir");
        let extra = dir.path().join("extra.txt");
        fs::write(&extra, "x").expect("write");
        let build = |name: &str| {
            let written = BundleWriter::new(dir.path().join(name), config("/p"))
                .program("/p", ls())
                .file("/etc/p/extra.txt", &extra)
                .mtime(0)
                .write()
                .expect("write");
            Archive::of_dir(written.bundle.dir(), &ArchiveOptions::default()).expect("archive")
        };
        let a = build("a");
        // Touch the source in between: the output must not change.
        fs::write(&extra, "x").expect("rewrite");
        let b = build("b");
        assert_eq!(a.gz, b.gz);
        assert_eq!(a.digest, b.digest);
    }

    #[test]
    fn an_entrypoint_outside_the_rootfs_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = BundleWriter::new(dir.path(), config("/missing"))
            .program("/p", ls())
            .write()
            .expect_err("entrypoint missing")
            .to_string();
        assert!(
            err.contains("entrypoint /missing is not in the rootfs"),
            "{err}"
        );
    }

    #[test]
    fn an_invalid_config_lists_its_problems() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = config("/p");
        config.interface.socket = "a/b.sock".into();
        let err = BundleWriter::new(dir.path(), config)
            .program("/p", ls())
            .write()
            .expect_err("invalid")
            .to_string();
        assert!(err.contains("config.json has a problem"), "{err}");
        assert!(!dir.path().join("config.json").exists());
    }

    #[test]
    fn a_foreign_elf_is_refused_and_leaves_no_bundle() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bundle = dir.path().join("b");
        // A valid bundle first: the failed write must not leave its config.json.
        BundleWriter::new(&bundle, config("/p"))
            .program("/p", ls())
            .write()
            .expect("first write");
        let foreign = if Arch::host() == Arch::Arm64 {
            Arch::Amd64
        } else {
            Arch::Arm64
        };
        let tool = dir.path().join("tool");
        fs::write(&tool, super::super::arch::minimal_elf(foreign)).expect("write");
        let err = BundleWriter::new(&bundle, config("/p"))
            .program("/p", ls())
            .file("/usr/bin/tool", &tool)
            .write()
            .expect_err("foreign ELF")
            .to_string();
        assert!(
            err.contains(&format!(
                "the plugin is built for {} but /usr/bin/tool is built for {foreign}",
                Arch::host()
            )),
            "{err}"
        );
        assert!(!bundle.join("config.json").exists());
        assert!(Bundle::open(&bundle).is_err());
        // Packaged for that architecture, the host's ls is the odd one.
        let err = BundleWriter::new(&bundle, config("/p"))
            .arch(foreign)
            .file("/p", &tool)
            .file("/bin/ls", ls())
            .write()
            .expect_err("host ELF in a foreign rootfs")
            .to_string();
        assert!(
            err.contains(&format!(
                "the plugin is built for {foreign} but /bin/ls is built for {}",
                Arch::host()
            )),
            "{err}"
        );
    }

    #[test]
    fn host_programs_get_what_glibc_loads_at_run_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let written = BundleWriter::new(dir.path().join("b"), config("/p"))
            .program("/p", ls())
            .host_program("/usr/bin/ssh")
            .write()
            .expect("write");
        let rootfs = written.bundle.rootfs();
        for lib in runtime::RUNTIME_LIBRARIES {
            assert!(
                written
                    .files
                    .iter()
                    .any(|f| f.ends_with(&format!("/{lib}"))),
                "{lib}: {:?}",
                written.files
            );
        }
        for (path, content) in runtime::ETC_FILES {
            let inside = rootfs.join(path.trim_start_matches('/'));
            assert_eq!(fs::read_to_string(&inside).expect(path), *content);
        }
        assert_eq!(written.arch, Arch::host());
        assert!(
            written
                .warnings
                .iter()
                .any(|w| w.starts_with("/usr/bin/ssh loads libraries")),
            "{:?}",
            written.warnings
        );
        // A plugin binary alone gets the libraries but no /etc files.
        let written = BundleWriter::new(dir.path().join("c"), config("/p"))
            .program("/p", ls())
            .write()
            .expect("write");
        assert!(!written.bundle.rootfs().join("etc/passwd").exists());
        // A file of the author's wins over the generated one.
        let passwd = dir.path().join("passwd");
        fs::write(&passwd, "root:x:0:0::/:/bin/false\n").expect("write");
        let written = BundleWriter::new(dir.path().join("d"), config("/p"))
            .program("/p", ls())
            .host_program("/usr/bin/ssh")
            .file("/etc/passwd", &passwd)
            .write()
            .expect("write");
        assert_eq!(
            fs::read_to_string(written.bundle.rootfs().join("etc/passwd")).expect("read"),
            "root:x:0:0::/:/bin/false\n"
        );
    }

    #[test]
    fn relative_destinations_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = BundleWriter::new(dir.path(), config("/p"))
            .program("/p", ls())
            .file("../etc/x", ls())
            .write()
            .expect_err("relative")
            .to_string();
        assert!(err.contains("must be absolute"), "{err}");
    }

    #[test]
    fn a_base_rootfs_is_unpacked_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base_dir = dir.path().join("base");
        fs::create_dir_all(base_dir.join("etc")).expect("mkdir");
        fs::write(base_dir.join("etc/os-release"), "ID=test\n").expect("write");
        let base = dir.path().join("base.tar.gz");
        Archive::of_dir(&base_dir, &ArchiveOptions::default())
            .expect("archive")
            .write_to(&base)
            .expect("write");
        let written = BundleWriter::new(dir.path().join("b"), config("/p"))
            .program("/p", ls())
            .base_rootfs(&base)
            .write()
            .expect("write");
        assert_eq!(
            fs::read_to_string(written.bundle.rootfs().join("etc/os-release")).expect("read"),
            "ID=test\n"
        );
    }

    /// A base rootfs tarball made of `entries` (path, mode, symlink target).
    fn base_tar(path: &Path, entries: &[(&str, u32, Option<&str>)]) {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, mode, link) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_mode(*mode);
            header.set_size(0);
            match link {
                Some(target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    tar.append_link(&mut header, name, target).expect("link");
                }
                None => {
                    header.set_entry_type(tar::EntryType::Directory);
                    tar.append_data(&mut header, name, &[][..]).expect("dir");
                }
            }
        }
        fs::write(path, tar.into_inner().expect("tar")).expect("write tar");
    }

    #[test]
    fn symlinks_of_a_base_rootfs_do_not_lead_onto_the_host() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = dir.path().join("host");
        fs::create_dir(&host).expect("mkdir");
        fs::write(host.join("victim"), "host file").expect("write");
        let host_str = host.to_str().expect("utf-8");
        let base = dir.path().join("base.tar");
        base_tar(
            &base,
            &[
                ("run/", 0o755, None),
                ("var/", 0o755, None),
                ("var/run", 0o777, Some("/run")),
                ("escape", 0o777, Some(host_str)),
                ("up", 0o777, Some("../../../../../..")),
            ],
        );
        let extra = dir.path().join("extra.txt");
        fs::write(&extra, "plugin file").expect("write");
        let written = BundleWriter::new(dir.path().join("b"), config("/p"))
            .program("/p", ls())
            .base_rootfs(&base)
            .dir("/var/run/p")
            .dir("/escape/made")
            .file("/escape/victim", &extra)
            .file("/up/tmp/x", &extra)
            .write()
            .expect("write");
        let rootfs = written.bundle.rootfs();
        assert_eq!(
            fs::read_to_string(host.join("victim")).expect("read"),
            "host file"
        );
        assert!(!host.join("made").exists());
        assert!(rootfs.join("run/p").is_dir());
        assert!(rootfs.join("run/docker/plugins").is_dir());
        let escaped = rootfs.join(host.strip_prefix("/").expect("absolute"));
        assert!(escaped.join("made").is_dir());
        assert_eq!(
            fs::read_to_string(escaped.join("victim")).expect("read"),
            "plugin file"
        );
        assert_eq!(
            fs::read_to_string(rootfs.join("tmp/x")).expect("read"),
            "plugin file"
        );
        assert!(
            fs::symlink_metadata(rootfs.join("var/run"))
                .expect("link")
                .is_symlink()
        );
    }

    #[test]
    fn a_base_rootfs_keeps_its_directory_modes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().join("base.tar");
        base_tar(
            &base,
            &[
                ("root/", 0o700, None),
                ("var/", 0o755, None),
                ("var/mail/", 0o2775, None),
                ("var/tmp/", 0o1777, None),
            ],
        );
        let extra = dir.path().join("extra.txt");
        fs::write(&extra, "x").expect("write");
        let written = BundleWriter::new(dir.path().join("b"), config("/p"))
            .program("/p", ls())
            .base_rootfs(&base)
            .file("/root/.config/p/extra.txt", &extra)
            .dir("/var/lib/p")
            .write()
            .expect("write");
        let rootfs = written.bundle.rootfs();
        let mode = |p: &str| {
            fs::symlink_metadata(rootfs.join(p))
                .expect(p)
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("root"), 0o700);
        assert_eq!(mode("var/mail"), 0o2775);
        assert_eq!(mode("var/tmp"), 0o1777);
        for created in [
            "root/.config",
            "root/.config/p",
            "var/lib",
            "var/lib/p",
            "run",
        ] {
            assert_eq!(mode(created), 0o755, "{created}");
        }
        assert_eq!(mode("tmp"), 0o1777);
    }

    #[test]
    fn libraries_outside_the_loaders_default_dirs_land_in_usr_lib() {
        let dir = tempfile::tempdir().expect("tempdir");
        // libc found in a non-default directory, as via ld.so.conf or RUNPATH.
        let libs = dir.path().join("opt-lib");
        fs::create_dir(&libs).expect("mkdir");
        let host_libc = super::super::elf::LibraryResolver::system()
            .closure([ls()])
            .expect("closure")
            .into_iter()
            .find(|p| p.ends_with("libc.so.6"))
            .expect("libc");
        fs::copy(&host_libc, libs.join("libc.so.6")).expect("copy");
        let mut dirs = vec![libs.clone()];
        dirs.extend(super::super::elf::STANDARD_DIRS.iter().map(PathBuf::from));
        let written = BundleWriter::new(dir.path().join("b"), config("/p"))
            .program("/p", ls())
            .resolver(super::super::elf::LibraryResolver::with_dirs(dirs))
            .write()
            .expect("write");
        let rootfs = written.bundle.rootfs();
        assert!(rootfs.join("usr/lib/libc.so.6").is_file());
        assert!(written.files.contains(&"/usr/lib/libc.so.6".to_owned()));
        let copied = rootfs.join(libs.strip_prefix("/").expect("absolute"));
        assert!(!copied.exists(), "{}", copied.display());
    }
}
