//! Reproducible `.tar.gz` archives of a directory: the bundle tarball
//! (`cargo docker-plugin package --tar`) and the registry layer `push` uploads.
//!
//! Entries are relative (`.`, `bin`, `bin/p`, …), sorted by name, with a fixed mtime,
//! uid/gid 0 and no user or group names; the gzip header has no name and mtime 0.
//! The same directory content therefore always gives the same bytes, whatever the
//! files' timestamps and owners on disk.
//!
//! ```
//! use docker_plugin_sdk::package::archive::{Archive, ArchiveOptions};
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("hello"), "hi\n")?;
//! let a = Archive::of_dir(dir.path(), &ArchiveOptions::default())?;
//! std::fs::write(dir.path().join("hello"), "hi\n")?; // new mtime, same content
//! let b = Archive::of_dir(dir.path(), &ArchiveOptions::default())?;
//! assert_eq!(a.gz, b.gz);
//! assert_eq!(a.files, 1);
//! assert!(a.diff_id.starts_with("sha256:"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::GzBuilder;
use sha2::{Digest, Sha256};

use super::error::{IoContext, PackageError};
use crate::managed::bundle::Bundle;

/// How to archive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveOptions {
    /// The mtime of every entry, in seconds since the epoch (see
    /// [`source_date_epoch`]).
    pub mtime: u64,
}

/// `SOURCE_DATE_EPOCH` when set to a number, else 0: the mtime of reproducible
/// output (<https://reproducible-builds.org/specs/source-date-epoch/>).
pub fn source_date_epoch() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A gzip-compressed tar, in memory, with its digests.
#[derive(Debug, Clone)]
pub struct Archive {
    /// The `.tar.gz` bytes.
    pub gz: Vec<u8>,
    /// `sha256:<hex>` of the uncompressed tar (an image layer's `diff_id`).
    pub diff_id: String,
    /// `sha256:<hex>` of [`gz`](Self::gz) (a registry blob digest).
    pub digest: String,
    /// The uncompressed tar's size in bytes.
    pub tar_size: u64,
    /// The number of regular files.
    pub files: usize,
}

/// A gzip-compressed tar written to a file as it is made (never held in memory), with
/// its digests: the layer `push` uploads, the tarball of `package --tar`.
#[derive(Debug, Clone)]
pub struct ArchiveFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// `sha256:<hex>` of the uncompressed tar (an image layer's `diff_id`).
    pub diff_id: String,
    /// `sha256:<hex>` of the file (a registry blob digest).
    pub digest: String,
    /// The uncompressed tar's size in bytes.
    pub tar_size: u64,
    /// The number of regular files.
    pub files: usize,
}

/// What [`archive`] measured.
struct Made<W> {
    out: W,
    diff_id: String,
    digest: String,
    size: u64,
    tar_size: u64,
    files: usize,
}

impl Archive {
    /// Archives the content of `dir` (not `dir` itself: entries start at `.`).
    pub fn of_dir(dir: &Path, options: &ArchiveOptions) -> Result<Self, PackageError> {
        Self::of_dir_with_progress(dir, options, &mut |_| {})
    }

    /// [`of_dir`](Self::of_dir), calling `progress` with the bytes of file content
    /// archived so far after each file.
    pub fn of_dir_with_progress(
        dir: &Path,
        options: &ArchiveOptions,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Self, PackageError> {
        let made = archive(dir, options, Vec::new(), progress)?;
        Ok(Self {
            gz: made.out,
            diff_id: made.diff_id,
            digest: made.digest,
            tar_size: made.tar_size,
            files: made.files,
        })
    }

    /// Writes [`gz`](Self::gz) to `path`.
    pub fn write_to(&self, path: &Path) -> Result<(), PackageError> {
        fs::write(path, &self.gz).at(path)
    }
}

impl ArchiveFile {
    /// Archives the content of `dir` into the file `path` (replaced), as
    /// [`Archive::of_dir_with_progress`] does in memory: the same bytes.
    pub fn write_dir(
        dir: &Path,
        options: &ArchiveOptions,
        path: &Path,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Self, PackageError> {
        let file = io::BufWriter::new(fs::File::create(path).at(path)?);
        let made = archive(dir, options, file, progress)?;
        made.out
            .into_inner()
            .map_err(|e| PackageError::io(path, e.into_error()))?
            .sync_all()
            .at(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            size: made.size,
            diff_id: made.diff_id,
            digest: made.digest,
            tar_size: made.tar_size,
            files: made.files,
        })
    }
}

/// Tars `dir` into gzip on `out`: the tar is compressed and hashed as it is written,
/// so the progress is the real one and the uncompressed tar is never held in memory.
fn archive<W: Write>(
    dir: &Path,
    options: &ArchiveOptions,
    out: W,
    progress: &mut dyn FnMut(u64),
) -> Result<Made<W>, PackageError> {
    let sink = TarSink {
        hasher: Sha256::new(),
        size: 0,
        gz: GzBuilder::new().mtime(0).write(
            Hashed {
                inner: out,
                hasher: Sha256::new(),
                size: 0,
            },
            Compression::default(),
        ),
    };
    let mut tar = tar::Builder::new(sink);
    tar.mode(tar::HeaderMode::Deterministic);
    tar.follow_symlinks(false);
    let mut count = Count {
        files: 0,
        bytes: 0,
        progress,
    };
    let mut header = dir_header(options.mtime, 0o755);
    tar.append_data(&mut header, ".", io::empty()).at(dir)?;
    append_dir(&mut tar, dir, Path::new(""), options, &mut count)?;
    let files = count.files;
    let sink = tar.into_inner().at(dir)?;
    let gz = sink.gz.finish().at(dir)?;
    Ok(Made {
        diff_id: hex_digest(sink.hasher.finalize().as_slice()),
        digest: hex_digest(gz.hasher.finalize().as_slice()),
        size: gz.size,
        tar_size: sink.size,
        files,
        out: gz.inner,
    })
}

/// A writer that hashes and counts what goes through it.
struct Hashed<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Write for Hashed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A bundle opened from a directory, or from the `.tar.gz` `package --tar` writes
/// (unpacked into a temporary directory that goes with it): what `inspect`, `push`
/// and `doctor` take.
#[derive(Debug)]
pub struct OpenedBundle {
    /// The bundle.
    pub bundle: Bundle,
    /// The tarball it came from, if it did.
    pub tarball: Option<PathBuf>,
    unpacked: Option<PathBuf>,
}

impl std::ops::Deref for OpenedBundle {
    type Target = Bundle;

    fn deref(&self) -> &Bundle {
        &self.bundle
    }
}

impl Drop for OpenedBundle {
    fn drop(&mut self) {
        if let Some(dir) = &self.unpacked {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

impl OpenedBundle {
    /// `path` is a bundle directory, or a file holding a (gzipped) tar of one.
    pub fn open(path: &Path) -> Result<Self, PackageError> {
        if !path.is_file() {
            return Ok(Self {
                bundle: Bundle::open(path)?,
                tarball: None,
                unpacked: None,
            });
        }
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dps-bundle-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        let opened = |dir: &Path| -> Result<Bundle, PackageError> {
            fs::create_dir_all(dir).at(dir)?;
            let file = io::BufReader::new(fs::File::open(path).at(path)?);
            unpack(file, dir).at(path)?;
            Ok(Bundle::open(dir)?)
        };
        match opened(&dir) {
            Ok(bundle) => Ok(Self {
                bundle,
                tarball: Some(path.to_path_buf()),
                unpacked: Some(dir),
            }),
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                Err(PackageError::io(
                    path,
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "not a bundle archive ({e}): give a directory or the .tar.gz `package --tar` writes"
                        ),
                    ),
                ))
            }
        }
    }
}

/// Unpacks a tar, gzipped or not, into `dir`, keeping modes.
pub fn unpack(mut reader: impl io::BufRead, dir: &Path) -> io::Result<()> {
    let gzipped = reader.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn io::Read> = if gzipped {
        Box::new(flate2::read::GzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    archive.unpack(dir)
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    hex_digest(Sha256::digest(bytes).as_slice())
}

fn hex_digest(digest: &[u8]) -> String {
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn dir_header(mtime: u64, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_size(0);
    header.set_mode(mode);
    header.set_mtime(mtime);
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, PackageError> {
    let mut entries = fs::read_dir(dir)
        .at(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<Vec<_>>>()
        .at(dir)?;
    entries.sort();
    Ok(entries)
}

/// Where the tar goes: hashed (the `diff_id`), counted and gzipped.
struct TarSink<W: Write> {
    hasher: Sha256,
    size: u64,
    gz: flate2::write::GzEncoder<Hashed<W>>,
}

impl<W: Write> Write for TarSink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.gz.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.gz.flush()
    }
}

struct Count<'a> {
    files: usize,
    bytes: u64,
    progress: &'a mut dyn FnMut(u64),
}

fn append_dir<W: Write>(
    tar: &mut tar::Builder<TarSink<W>>,
    dir: &Path,
    rel: &Path,
    options: &ArchiveOptions,
    count: &mut Count<'_>,
) -> Result<(), PackageError> {
    for path in sorted_entries(dir)? {
        let Some(name) = path.file_name() else {
            continue;
        };
        let rel = rel.join(name);
        let meta = fs::symlink_metadata(&path).at(&path)?;
        let mode = meta.permissions().mode() & 0o7777;
        let file_type = meta.file_type();
        if file_type.is_dir() {
            let mut header = dir_header(options.mtime, mode);
            tar.append_data(&mut header, &rel, io::empty()).at(&path)?;
            append_dir(tar, &path, &rel, options, count)?;
        } else if file_type.is_symlink() {
            let target = fs::read_link(&path).at(&path)?;
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            header.set_mode(0o777);
            header.set_mtime(options.mtime);
            header.set_uid(0);
            header.set_gid(0);
            tar.append_link(&mut header, &rel, &target).at(&path)?;
        } else if file_type.is_file() {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(meta.size());
            header.set_mode(mode);
            header.set_mtime(options.mtime);
            header.set_uid(0);
            header.set_gid(0);
            let file = fs::File::open(&path).at(&path)?;
            tar.append_data(&mut header, &rel, file).at(&path)?;
            count.files += 1;
            count.bytes += meta.size();
            (count.progress)(count.bytes);
        } else {
            return Err(PackageError::io(
                &path,
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a file, directory or symlink: a plugin rootfs cannot hold devices, sockets or fifos",
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(gz: &[u8]) -> Vec<(String, u32, u64, u64)> {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gz));
        archive
            .entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                let h = e.header();
                (
                    e.path().expect("path").to_string_lossy().into_owned(),
                    h.mode().expect("mode"),
                    h.mtime().expect("mtime"),
                    h.uid().expect("uid"),
                )
            })
            .collect()
    }

    #[test]
    fn entries_are_relative_sorted_and_normalized() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("run/docker/plugins")).expect("mkdir");
        fs::write(dir.path().join("b"), "b").expect("write");
        fs::write(dir.path().join("a"), "a").expect("write");
        fs::set_permissions(dir.path().join("a"), fs::Permissions::from_mode(0o755))
            .expect("chmod");
        std::os::unix::fs::symlink("a", dir.path().join("c")).expect("symlink");
        let archive = Archive::of_dir(dir.path(), &ArchiveOptions { mtime: 42 }).expect("tar");
        let list = entries(&archive.gz);
        let names: Vec<&str> = list.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                ".",
                "a",
                "b",
                "c",
                "run",
                "run/docker",
                "run/docker/plugins"
            ]
        );
        assert!(list.iter().all(|e| e.2 == 42 && e.3 == 0), "{list:?}");
        assert_eq!(list[1].1, 0o755);
        assert_eq!(archive.files, 2);
        let mut seen = Vec::new();
        Archive::of_dir_with_progress(dir.path(), &ArchiveOptions::default(), &mut |done| {
            seen.push(done)
        })
        .expect("tar");
        assert_eq!(seen, [1, 2]);
        assert_ne!(archive.diff_id, archive.digest);
        let mut tar = Vec::new();
        io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&archive.gz[..]), &mut tar)
            .expect("gunzip");
        assert_eq!(archive.diff_id, sha256(&tar));
        assert_eq!(archive.tar_size, tar.len() as u64);
        // Written to a file: the same bytes and digests.
        let out = tempfile::tempdir().expect("tempdir");
        let path = out.path().join("layer.tar.gz");
        let file = ArchiveFile::write_dir(
            dir.path(),
            &ArchiveOptions { mtime: 42 },
            &path,
            &mut |_| {},
        )
        .expect("file");
        assert_eq!(fs::read(&path).expect("read"), archive.gz);
        assert_eq!(
            (file.digest.as_str(), file.diff_id.as_str(), file.size),
            (
                archive.digest.as_str(),
                archive.diff_id.as_str(),
                archive.gz.len() as u64
            )
        );
    }

    #[test]
    fn the_same_content_gives_the_same_bytes() {
        let make = |touch: bool| {
            let dir = tempfile::tempdir().expect("tempdir");
            fs::create_dir(dir.path().join("d")).expect("mkdir");
            fs::write(dir.path().join("d/f"), "content").expect("write");
            if touch {
                let file = fs::File::options()
                    .write(true)
                    .open(dir.path().join("d/f"))
                    .expect("open");
                file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(7))
                    .expect("touch");
            }
            Archive::of_dir(dir.path(), &ArchiveOptions::default()).expect("tar")
        };
        let (a, b) = (make(false), make(true));
        assert_eq!(a.gz, b.gz);
        assert_eq!(a.digest, sha256(&a.gz));
    }

    #[test]
    fn a_bundle_opens_from_its_tarball() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bundle = dir.path().join("b");
        fs::create_dir_all(bundle.join("rootfs/run/docker/plugins")).expect("mkdir");
        fs::write(
            bundle.join("config.json"),
            r#"{"entrypoint":["/p"],"interface":{"socket":"p.sock","types":["docker.volumedriver/1.0"]}}"#,
        )
        .expect("write");
        let tarball = dir.path().join("b.tar.gz");
        Archive::of_dir(&bundle, &ArchiveOptions::default())
            .expect("tar")
            .write_to(&tarball)
            .expect("write");
        let opened = OpenedBundle::open(&tarball).expect("tarball");
        assert_eq!(opened.config().interface.socket, "p.sock");
        assert!(opened.rootfs().join("run/docker/plugins").is_dir());
        let unpacked = opened.dir().to_path_buf();
        drop(opened);
        assert!(!unpacked.exists());
        let err = OpenedBundle::open(&bundle.join("config.json"))
            .expect_err("not an archive")
            .to_string();
        assert!(err.contains("give a directory or the .tar.gz"), "{err}");
        assert!(OpenedBundle::open(&bundle).expect("dir").tarball.is_none());
    }

    #[test]
    fn sha256_is_prefixed_hex() {
        assert_eq!(
            sha256(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
