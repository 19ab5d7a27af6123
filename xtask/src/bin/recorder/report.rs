//! `--report`: what the recorder sees of the container it runs in, one line per fact,
//! printed at start. dockerd logs a managed plugin's stdout, so the recordings hold
//! what dockerd's container (runc) gives a plugin, and the harness's replay compares
//! its own container with it line by line. Every line is the same from machine to
//! machine (no host names, no interface lists of the host, no sizes of host files).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The facts, without the `recorder: ` prefix.
pub(crate) fn lines() -> Vec<String> {
    let mut env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    env.sort();
    let args: Vec<String> = std::env::args().skip(1).collect();
    vec![
        format!("env {}", env.join(" ")),
        format!("args {}", args.join(" ")),
        format!(
            "user uid={} gid={}",
            nix::unistd::getuid(),
            nix::unistd::getgid()
        ),
        format!(
            "pid {}",
            if std::process::id() == 1 {
                "1 (own PID namespace)"
            } else {
                "not 1 (host PID namespace)"
            }
        ),
        format!(
            "cwd {}",
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default()
        ),
        capabilities(),
        network(),
        dev(),
        read_only(),
        files(),
        may_mount(),
        propagation(),
    ]
}

/// The capability sets, as `/proc/self/status` shows them.
fn capabilities() -> String {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
            .unwrap_or("?")
            .to_owned()
    };
    format!(
        "caps bnd={} eff={} prm={} inh={} amb={}",
        get("CapBnd:"),
        get("CapEff:"),
        get("CapPrm:"),
        get("CapInh:"),
        get("CapAmb:")
    )
}

/// `lo` alone (and whether it is up), or the host's interfaces.
fn network() -> String {
    let mut names: Vec<String> = fs::read_dir("/sys/class/net")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    if names != ["lo"] {
        return "net more than lo (the host's network)".into();
    }
    let flags = fs::read_to_string("/sys/class/net/lo/flags").unwrap_or_default();
    let up = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap_or(0) & 1 == 1;
    format!("net lo only, {}", if up { "up" } else { "down" })
}

/// The entries of `/dev` with their kind, unless it is the host's.
fn dev() -> String {
    let mut entries: Vec<String> = fs::read_dir("/dev")
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let kind = match e.file_type() {
                        Ok(t) if t.is_symlink() => {
                            let target = fs::read_link(e.path()).unwrap_or_default();
                            format!("->{}", target.display())
                        }
                        Ok(t) if t.is_dir() => "/".into(),
                        Ok(_) => match fs::metadata(e.path()) {
                            Ok(m) if m.rdev() != 0 => format!(
                                "({},{})",
                                nix::sys::stat::major(m.rdev()),
                                nix::sys::stat::minor(m.rdev())
                            ),
                            _ => String::new(),
                        },
                        Err(_) => "?".into(),
                    };
                    format!("{}{kind}", e.file_name().to_string_lossy())
                })
                .collect()
        })
        .unwrap_or_default();
    if entries.len() > 40 {
        return "dev the host's".into();
    }
    entries.sort();
    format!("dev {}", entries.join(" "))
}

fn is_read_only(path: &str) -> &'static str {
    match nix::sys::statvfs::statvfs(path) {
        Ok(s) if s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) => "ro",
        Ok(_) => "rw",
        Err(_) => "missing",
    }
}

/// Which of the paths runc makes read-only are.
fn read_only() -> String {
    let paths = ["/", "/sys", "/proc/sys", "/proc/sysrq-trigger", "/proc"];
    let states: Vec<String> = paths
        .iter()
        .map(|p| format!("{p}={}", is_read_only(p)))
        .collect();
    format!("mounts {}", states.join(" "))
}

/// The files dockerd's init layer makes.
fn files() -> String {
    let describe = |path: &str| {
        let p = Path::new(path);
        match fs::symlink_metadata(p) {
            Err(_) => "missing".to_owned(),
            Ok(m) if m.file_type().is_symlink() => {
                format!("->{}", fs::read_link(p).unwrap_or_default().display())
            }
            Ok(m) if m.len() == 0 => format!("empty,{}", is_read_only(path)),
            Ok(_) => format!("non-empty,{}", is_read_only(path)),
        }
    };
    let paths = [
        "/.dockerenv",
        "/etc/hosts",
        "/etc/resolv.conf",
        "/etc/hostname",
        "/etc/mtab",
    ];
    let states: Vec<String> = paths
        .iter()
        .map(|p| format!("{p}={}", describe(p)))
        .collect();
    format!("files {}", states.join(" "))
}

/// Whether a tmpfs can be mounted (CAP_SYS_ADMIN).
fn may_mount() -> String {
    let target = Path::new("/tmp/recorder-mount-probe");
    let _ = fs::create_dir_all(target);
    let result = nix::mount::mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    );
    let line = match result {
        Ok(()) => {
            let _ = nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH);
            "mount tmpfs: ok".to_owned()
        }
        Err(err) => format!("mount tmpfs: {err}"),
    };
    let _ = fs::remove_dir(target);
    line
}

/// The propagation of the socket dir and of `/mnt/volumes` (the recordings'
/// propagated mount), from `/proc/self/mountinfo`.
fn propagation() -> String {
    let mounts = docker_plugin_sdk::mountinfo::read().unwrap_or_default();
    let of = |point: &str| {
        let top = mounts
            .iter()
            .rev()
            .find(|m| m.mount_point == Path::new(point));
        match top {
            None => "not a mount".to_owned(),
            Some(m) if m.optional_fields.is_empty() => "private".to_owned(),
            Some(m) => m
                .optional_fields
                .iter()
                .map(|f| f.split(':').next().unwrap_or(f))
                .collect::<Vec<_>>()
                .join("+"),
        }
    };
    format!(
        "propagation /run/docker/plugins={} /mnt/volumes={}",
        of("/run/docker/plugins"),
        of("/mnt/volumes")
    )
}
