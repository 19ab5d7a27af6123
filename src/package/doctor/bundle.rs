//! The checks of a bundle: config, architecture, libraries as the rootfs's loader
//! finds them, the directories dockerd mounts on, what the programs need from the
//! config, and the entrypoint started ([`super::start`]).

use std::path::{Path, PathBuf};

use super::{Finding, Options};
use crate::managed::bundle::{Bundle, resolve_in_rootfs};
use crate::package::arch::{self, Arch};
use crate::package::elf::ElfInfo;
use crate::package::rootfs::PLUGIN_SOCKET_DIR;

/// Programs that reach other hosts: a plugin shipping one needs a network.
pub const NETWORK_CLIENTS: &[&str] = &[
    "ssh",
    "sshfs",
    "curl",
    "wget",
    "rclone",
    "s3fs",
    "mount.nfs",
    "mount.cifs",
    "gcsfuse",
];

/// Every check of `bundle`; the entrypoint is started only with
/// [`Options::start`].
pub async fn check_bundle(bundle: &Bundle, options: &Options) -> Vec<Finding> {
    let mut findings = Vec::new();
    let config = bundle.config();
    match bundle.validate() {
        Ok(()) => findings.push(Finding::ok("config", "config.json is valid")),
        Err(e) => findings.push(Finding::problem(
            "config",
            e.to_string(),
            "fix config.json (or the metadata it is packaged from) as the message says",
        )),
    }
    let rootfs = bundle.rootfs();
    let entry = config.entrypoint.first().cloned().unwrap_or_default();
    let entry_host = resolve_in_rootfs(&rootfs, &entry)
        .ok()
        .filter(|p| p.is_file());
    let Some(entry_host) = entry_host else {
        findings.push(Finding::problem(
            "entrypoint",
            format!("{entry:?} is not a file in the rootfs: dockerd fails with `exec: \"{entry}\": no such file or directory`"),
            "point entrypoint at the plugin binary in the rootfs (cargo docker-plugin package puts it at /<binary>)",
        ));
        return findings;
    };
    findings.extend(architecture(&rootfs, &entry, &entry_host));
    findings.extend(libraries(&rootfs));
    findings.extend(mount_points(&rootfs, &config.propagated_mount));
    findings.extend(needs(&rootfs, config));
    if options.start {
        findings.push(super::start::start(bundle, options.start_timeout).await);
    }
    findings
}

fn architecture(rootfs: &Path, entry: &str, entry_host: &Path) -> Vec<Finding> {
    let host = Arch::host();
    let arch = match arch::elf_header(entry_host) {
        Ok(Some((machine, is_64))) => Arch::from_elf(machine, is_64),
        Ok(None) => {
            return vec![Finding::ok(
                "architecture",
                format!("{entry} is not an ELF file (a script?): its interpreter decides"),
            )];
        }
        Err(e) => {
            return vec![Finding::problem(
                "architecture",
                e.to_string(),
                "check the file",
            )];
        }
    };
    let Some(arch) = arch else {
        return vec![Finding::problem(
            "architecture",
            format!("{entry} is built for a machine Docker runs no plugins on"),
            "build it for the host's architecture",
        )];
    };
    let mut findings = Vec::new();
    if arch == host {
        findings.push(Finding::ok(
            "architecture",
            format!("{entry} is built for {arch}, as this host"),
        ));
    } else {
        findings.push(Finding::problem(
            "architecture",
            format!(
                "{entry} is built for {arch}, this host is {host}: dockerd fails to start it with `exec format error`"
            ),
            format!(
                "install the {host} build of the plugin (cargo docker-plugin package --target {}, pushed with --arch-tags)",
                host.rust_target()
            ),
        ));
    }
    if let Err(e) = arch::check_rootfs(rootfs, arch) {
        let message = match e {
            crate::package::PackageError::Elf { message, .. } => message,
            other => other.to_string(),
        };
        findings.push(Finding::problem(
            "architecture",
            message,
            format!("replace those files by {arch} builds"),
        ));
    }
    findings
}

/// The directories the loader in the rootfs searches for an `arch` program without
/// an `ld.so.cache`, as host paths.
fn loader_dirs(rootfs: &Path, arch: Arch) -> Vec<PathBuf> {
    let triplet = arch.multiarch();
    [
        format!("/lib/{triplet}"),
        format!("/usr/lib/{triplet}"),
        "/lib64".into(),
        "/usr/lib64".into(),
        "/lib".into(),
        "/usr/lib".into(),
    ]
    .iter()
    .filter_map(|d| resolve_in_rootfs(rootfs, d).ok())
    .collect()
}

/// A path an ELF file names (its `RUNPATH`, after `$ORIGIN` was expanded with its
/// host path) as a host path under `rootfs`.
fn in_rootfs(rootfs: &Path, path: &Path) -> Option<PathBuf> {
    if path.starts_with(rootfs) {
        return Some(path.to_path_buf());
    }
    resolve_in_rootfs(rootfs, &path.to_string_lossy()).ok()
}

fn libraries(rootfs: &Path) -> Vec<Finding> {
    let mut missing: Vec<String> = Vec::new();
    let mut checked = 0;
    let _ = arch::walk(rootfs, &mut |file| {
        let Ok(info) = ElfInfo::read(file) else {
            return Ok(());
        };
        checked += 1;
        let inside = Path::new("/").join(file.strip_prefix(rootfs).unwrap_or(file));
        if let Some(interp) = &info.interpreter
            && !resolve_in_rootfs(rootfs, &interp.to_string_lossy()).is_ok_and(|p| p.is_file())
        {
            missing.push(format!(
                "{} needs its loader {}",
                inside.display(),
                interp.display()
            ));
        }
        let Some(arch) = Arch::from_elf(info.machine, info.is_64) else {
            return Ok(());
        };
        let own = if info.runpath.is_empty() {
            &info.rpath
        } else {
            &info.runpath
        };
        let dirs: Vec<PathBuf> = own
            .iter()
            .filter_map(|d| in_rootfs(rootfs, d))
            .chain(loader_dirs(rootfs, arch))
            .collect();
        for name in &info.needed {
            let found = dirs.iter().any(|dir| {
                ElfInfo::read(&dir.join(name))
                    .is_ok_and(|lib| lib.machine == info.machine && lib.is_64 == info.is_64)
            });
            if !found {
                missing.push(format!("{} needs {name}", inside.display()));
            }
        }
        Ok(())
    });
    if missing.is_empty() {
        vec![Finding::ok(
            "libraries",
            format!("every library of the {checked} ELF files is in the rootfs"),
        )]
    } else {
        vec![Finding::problem(
            "libraries",
            format!(
                "{}, not in the rootfs (where its loader looks: /lib, /usr/lib, their multiarch dirs, RUNPATH): \
                 the program fails with `error while loading shared libraries`",
                missing.join("; ")
            ),
            "package again with cargo docker-plugin package (it copies each program's libraries), \
             or add the missing files with `files`",
        )]
    }
}

fn mount_points(rootfs: &Path, propagated_mount: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    let is_dir = |path: &str| resolve_in_rootfs(rootfs, path).is_ok_and(|p| p.is_dir());
    if is_dir(PLUGIN_SOCKET_DIR) {
        findings.push(Finding::ok(
            "socket dir",
            format!("{PLUGIN_SOCKET_DIR} is in the rootfs"),
        ));
    } else {
        findings.push(Finding::warning(
            "socket dir",
            format!(
                "the rootfs has no {PLUGIN_SOCKET_DIR}, where dockerd binds the plugin's socket directory: \
                 runc creates the mount point at enable (dockerd 20.10), but the plugin must listen in it \
                 or dockerd never finds its socket"
            ),
            format!("create {PLUGIN_SOCKET_DIR} in the rootfs (cargo docker-plugin package does) and listen there"),
        ));
    }
    if !propagated_mount.is_empty() {
        if is_dir(propagated_mount) {
            findings.push(Finding::ok(
                "propagated mount",
                format!("{propagated_mount} is in the rootfs"),
            ));
        } else {
            findings.push(Finding::warning(
                "propagated mount",
                format!(
                    "the rootfs has no {propagated_mount} (propagatedMount): runc creates the mount point at enable, \
                     but a plugin that writes its volumes elsewhere hands dockerd mountpoints it cannot see"
                ),
                format!("create {propagated_mount} in the rootfs (cargo docker-plugin package does)"),
            ));
        }
    }
    findings
}

/// Files of the rootfs whose name is one of `names`, as the plugin sees them.
fn files_named(rootfs: &Path, matches: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut found = Vec::new();
    let _ = arch::walk(rootfs, &mut |file| {
        if file
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(matches)
        {
            found.push(
                Path::new("/")
                    .join(file.strip_prefix(rootfs).unwrap_or(file))
                    .display()
                    .to_string(),
            );
        }
        Ok(())
    });
    found
}

fn needs(rootfs: &Path, config: &crate::managed::config::PluginConfig) -> Vec<Finding> {
    let mut findings = Vec::new();
    let fuse = files_named(rootfs, &|n| {
        n.starts_with("fusermount") || n.starts_with("libfuse") || n.starts_with("mount.fuse")
    });
    if !fuse.is_empty() {
        let has_device = config.linux.allow_all_devices
            || config
                .linux
                .devices
                .iter()
                .any(|d| d.path.as_deref() == Some("/dev/fuse"));
        let has_cap = config
            .linux
            .capabilities
            .iter()
            .any(|c| c == "CAP_SYS_ADMIN");
        let mut missing = Vec::new();
        if !has_device {
            missing.push(
                "the device /dev/fuse (dockerd's device rules deny it: `fuse: device not found`)",
            );
        }
        if !has_cap {
            missing.push("CAP_SYS_ADMIN (mounting needs it: `fusermount: mount failed: Operation not permitted`)");
        }
        if missing.is_empty() {
            findings.push(Finding::ok(
                "devices",
                "FUSE is shipped and /dev/fuse and CAP_SYS_ADMIN are asked for",
            ));
        } else {
            findings.push(Finding::problem(
                "devices",
                format!(
                    "the rootfs holds FUSE ({}) but the config does not ask for {}",
                    fuse.join(", "),
                    missing.join(" nor ")
                ),
                "add `linux = { capabilities = [\"CAP_SYS_ADMIN\"], devices = [{ path = \"/dev/fuse\" }] }` to the metadata",
            ));
        }
    }
    let clients = files_named(rootfs, &|n| NETWORK_CLIENTS.contains(&n));
    if !clients.is_empty() && config.network.r#type != "host" {
        findings.push(Finding::warning(
            "network",
            format!(
                "the rootfs holds network clients ({}) but the plugin gets only `lo` (network type {:?})",
                clients.join(", "),
                config.network.r#type
            ),
            "add `network = \"host\"` to the metadata if they reach other hosts",
        ));
    }
    findings
}
