//! What is mounted, from `/proc/self/mountinfo` (proc(5)): each line's mount point,
//! filesystem type, source and propagation, with the kernel's octal escapes decoded.
//!
//! A volume plugin that mounts (sshfs, NFS, a bind mount under its propagated mount)
//! asks the kernel what is really mounted rather than trusting its own state after a
//! crash; the harness asks it to undo a managed plugin's mounts and a private dockerd's;
//! tests ask it for leaks. One reader for all of them, always compiled: it is std only
//! (no dependency, no feature to turn on), and a plugin that does not call it pays
//! nothing for it.
//!
//! The kernel writes a mount point, a source and a type with space, tab, newline and
//! backslash as `\040`, `\011`, `\012` and `\134` (`fs/proc_namespace.c`, `mangle`);
//! they are decoded here. A backslash not followed by three octal digits of one byte
//! (`\0`, `\08`, `\777`) is kept as it is.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// Where the kernel lists this process's mounts (its mount namespace's).
pub const PATH: &str = "/proc/self/mountinfo";

/// One line of mountinfo (fields 5, 7, 9 and 10 of proc(5)), decoded.
///
/// ```
/// use std::path::Path;
///
/// use docker_plugin_sdk::mountinfo;
///
/// let text = "41 40 0:46 / /mnt/volumes/with\\040space rw,nosuid shared:21 \
///             - fuse.sshfs root@10.0.0.2:/srv rw,user_id=0\n";
/// let entry = mountinfo::parse(text).next().unwrap();
/// assert_eq!(entry.mount_point, Path::new("/mnt/volumes/with space"));
/// assert_eq!(entry.fs_type, "fuse.sshfs");
/// assert_eq!(entry.source, "root@10.0.0.2:/srv");
/// assert_eq!(entry.optional_fields, ["shared:21"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MountEntry {
    /// Where it is mounted (field 5), escapes decoded; not necessarily UTF-8.
    pub mount_point: PathBuf,
    /// The filesystem type (field 9), e.g. `ext4`, `tmpfs`, `fuse.sshfs`.
    pub fs_type: String,
    /// What is mounted (field 10): a device, `host:/dir`, `none`…
    pub source: String,
    /// The optional fields (7): propagation tags such as `shared:1`, `master:2`,
    /// `propagate_from:3`, `unbindable`; none for a private mount.
    pub optional_fields: Vec<String>,
}

/// The mounts listed in `text` (mountinfo's format), in order; a line that is not
/// a mountinfo line is skipped. For async code: read [`PATH`] with `tokio::fs` and
/// parse it here.
///
/// ```
/// use docker_plugin_sdk::mountinfo;
///
/// # async fn sshfs_mounts() -> std::io::Result<usize> {
/// let text = tokio::fs::read_to_string(mountinfo::PATH).await?;
/// Ok(mountinfo::parse(&text).filter(|m| m.fs_type == "fuse.sshfs").count())
/// # }
/// ```
pub fn parse(text: &str) -> impl Iterator<Item = MountEntry> + '_ {
    text.lines().filter_map(parse_line)
}

/// This process's mounts, in mount order (the last one at a path is on top). Reads
/// [`PATH`] with blocking I/O: from async code, see [`parse`].
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// for mount in docker_plugin_sdk::mountinfo::read()? {
///     println!("{} ({})", mount.mount_point.display(), mount.fs_type);
/// }
/// # Ok(()) }
/// ```
pub fn read() -> io::Result<Vec<MountEntry>> {
    Ok(parse(&std::fs::read_to_string(PATH)?).collect())
}

/// This process's mount points, in mount order (blocking I/O, as [`read`]).
///
/// ```no_run
/// use std::path::Path;
///
/// # fn main() -> std::io::Result<()> {
/// let points = docker_plugin_sdk::mountinfo::mount_points()?;
/// let mounted = points.iter().any(|p| p == Path::new("/mnt/volumes/v1"));
/// # Ok(()) }
/// ```
pub fn mount_points() -> io::Result<Vec<PathBuf>> {
    Ok(read()?.into_iter().map(|m| m.mount_point).collect())
}

/// `ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL…] - TYPE SOURCE SUPER`: the
/// separator ` - ` cannot occur inside a field (spaces are escaped).
fn parse_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let mut left = left.split(' ');
    let point = left.nth(4)?;
    let optional_fields = left.skip(1).map(str::to_owned).collect();
    let mut right = right.split(' ');
    let fs_type = right.next()?;
    let source = right.next()?;
    Some(MountEntry {
        mount_point: PathBuf::from(OsString::from_vec(unescape(point))),
        fs_type: String::from_utf8_lossy(&unescape(fs_type)).into_owned(),
        source: String::from_utf8_lossy(&unescape(source)).into_owned(),
        optional_fields,
    })
}

/// `field` with each `\ooo` (three octal digits, at most `\377`) made the byte it
/// stands for; any other backslash kept.
fn unescape(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'\\')
            .then(|| octal_byte(bytes.get(i + 1..i + 4)?))
            .flatten();
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

/// The byte three octal digits stand for; `None` for anything else or past `\377`.
fn octal_byte(digits: &[u8]) -> Option<u8> {
    let value = digits.iter().try_fold(0u16, |value, digit| {
        matches!(digit, b'0'..=b'7').then(|| value * 8 + u16::from(digit - b'0'))
    })?;
    u8::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn decoded(field: &str) -> String {
        String::from_utf8(unescape(field)).unwrap()
    }

    #[test]
    fn space_tab_newline_and_backslash_are_decoded() {
        assert_eq!(decoded(r"/a\040b"), "/a b");
        assert_eq!(decoded(r"/a\011b"), "/a\tb");
        assert_eq!(decoded(r"/a\012b"), "/a\nb");
        assert_eq!(decoded(r"/a\134b"), r"/a\b");
        assert_eq!(decoded(r"\040\040"), "  ");
        assert_eq!(decoded("/plain"), "/plain");
    }

    #[test]
    fn an_escape_past_one_byte_is_kept_as_it_is() {
        assert_eq!(decoded(r"/a\777b"), r"/a\777b");
        assert_eq!(decoded(r"/a\400"), r"/a\400");
        assert_eq!(unescape(r"\377"), [0xff]);
    }

    #[test]
    fn truncated_and_invalid_escapes_are_kept_as_they_are() {
        assert_eq!(decoded(r"/x\0"), r"/x\0");
        assert_eq!(decoded(r"/x\04"), r"/x\04");
        assert_eq!(decoded(r"/x\"), r"/x\");
        assert_eq!(decoded(r"/x\089"), r"/x\089");
        assert_eq!(decoded(r"/x\\040"), r"/x\ ");
    }

    #[test]
    fn a_mount_point_need_not_be_utf8() {
        let entry = parse("1 0 0:1 / /a\\377 rw - tmpfs tmpfs rw")
            .next()
            .unwrap();
        assert_eq!(entry.mount_point.as_os_str().as_encoded_bytes(), b"/a\xff");
    }

    const SAMPLE: &str = "\
22 1 0:21 / / rw,relatime shared:1 - overlay overlay rw
40 22 0:45 / /mnt/volumes rw - tmpfs tmpfs rw
41 40 0:46 / /mnt/volumes/v\\0401 rw,nosuid shared:21 master:3 - fuse.sshfs root@h:/srv\\040x rw
not a mountinfo line
";

    #[test]
    fn each_line_gives_its_point_type_source_and_propagation() {
        let mounts: Vec<_> = parse(SAMPLE).collect();
        assert_eq!(mounts.len(), 3);
        assert_eq!(mounts[0].mount_point, Path::new("/"));
        assert_eq!(mounts[0].optional_fields, ["shared:1"]);
        assert_eq!(mounts[1].fs_type, "tmpfs");
        assert!(mounts[1].optional_fields.is_empty());
        assert_eq!(
            mounts[2],
            MountEntry {
                mount_point: "/mnt/volumes/v 1".into(),
                fs_type: "fuse.sshfs".into(),
                source: "root@h:/srv x".into(),
                optional_fields: vec!["shared:21".into(), "master:3".into()],
            }
        );
    }

    #[test]
    fn this_process_sees_its_root_mounted() {
        assert!(mount_points().unwrap().iter().any(|p| p == Path::new("/")));
    }
}
