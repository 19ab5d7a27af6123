//! The blob and manifest calls of a [`Session`]: a blob uploaded unless the
//! registry has it (`HEAD`, `POST`, a monolithic `PUT`), streamed from disk and
//! started over from its first byte when the `PUT` fails on the way; manifests put
//! and got; blobs downloaded into any writer, checked against their digest.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::session::{Failure, Payload, Session, Transfer};
use crate::package::PackageError;

impl Session<'_> {
    /// Whether the registry has the blob.
    pub(crate) fn blob_exists(&mut self, digest: &str) -> Result<bool, PackageError> {
        let url = self.url(&format!("blobs/{digest}"));
        let response = self.send("HEAD", &url, &[], Payload::Empty)?;
        match response.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.fail(&format!("checking blob {digest}"), response)),
        }
    }

    /// Uploads a blob unless the registry has it: `HEAD`, then `POST` and a
    /// monolithic `PUT …?digest=` whose body is `bytes` or the file, streamed. A
    /// `PUT` that fails with a `5xx` or a broken connection ends its upload: the
    /// whole upload starts over.
    pub(crate) fn upload_blob(
        &mut self,
        digest: &str,
        source: BlobSource<'_>,
    ) -> Result<(), PackageError> {
        let (payload, size) = match source {
            BlobSource::Bytes(bytes) => (Payload::Bytes(bytes), bytes.len() as u64),
            BlobSource::File(path, size) => (Payload::File { path, size, digest }, size),
        };
        if self.blob_exists(digest)? {
            (self.notify.borrow_mut())(Transfer::Exists {
                digest: digest.to_owned(),
                size,
            });
            return Ok(());
        }
        let mut attempt = 1;
        let mut delay = self.retry_delay;
        loop {
            match self.upload_once(digest, payload) {
                Ok(()) => break,
                Err(Failure::Retry(error)) if attempt < self.attempts => {
                    attempt += 1;
                    self.retrying(
                        format!("uploading blob {digest}"),
                        attempt,
                        error,
                        &mut delay,
                    );
                }
                Err(failure) => return Err(failure.into_error(attempt)),
            }
        }
        (self.notify.borrow_mut())(Transfer::Done {
            digest: digest.to_owned(),
        });
        Ok(())
    }

    fn upload_once(&mut self, digest: &str, payload: Payload<'_>) -> Result<(), Failure> {
        let url = self.url("blobs/uploads/");
        let attempts = self.attempts;
        let response = self.send_with("POST", &url, &[], Payload::Empty, attempts)?;
        if response.status() != 202 {
            return Err(self.fail("starting a blob upload", response).into());
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| PackageError::Registry("blob upload without Location".into()))?;
        let mut location = if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location.to_owned()
        };
        location.push(if location.contains('?') { '&' } else { '?' });
        location.push_str("digest=");
        location.push_str(digest);
        let headers = [("Content-Type", "application/octet-stream")];
        let response = self.send_with("PUT", &location, &headers, payload, 1)?;
        if response.status() != 201 {
            return Err(self
                .fail(&format!("uploading blob {digest}"), response)
                .into());
        }
        Ok(())
    }

    /// `PUT /v2/REPO/manifests/TAG`.
    pub(crate) fn put_manifest(
        &mut self,
        tag: &str,
        media_type: &str,
        manifest: &[u8],
    ) -> Result<(), PackageError> {
        let url = self.url(&format!("manifests/{tag}"));
        let response = self.send(
            "PUT",
            &url,
            &[("Content-Type", media_type)],
            Payload::Bytes(manifest),
        )?;
        if response.status() != 201 {
            return Err(self.fail("putting the manifest", response));
        }
        Ok(())
    }

    /// `GET /v2/REPO/manifests/TAG` accepting `accept`: the media type and bytes.
    pub(crate) fn get_manifest(
        &mut self,
        tag: &str,
        accept: &str,
    ) -> Result<(String, Vec<u8>), PackageError> {
        let url = self.url(&format!("manifests/{tag}"));
        let mut response = self.send("GET", &url, &[("Accept", accept)], Payload::Empty)?;
        if response.status() == 404 {
            return Err(PackageError::Registry(format!(
                "{}: manifest unknown (no tag {tag} in {})",
                self.reference, self.reference.repository
            )));
        }
        if response.status() != 200 {
            return Err(self.fail(&format!("getting manifest {tag}"), response));
        }
        let media_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let body = response
            .body_mut()
            .with_config()
            .limit(4 * 1024 * 1024)
            .read_to_vec()
            .map_err(|e| PackageError::Registry(format!("GET {url}: {e}")))?;
        Ok((media_type, body))
    }

    /// Streams blob `digest` into `sink`, checking its digest: its size.
    pub(crate) fn download_blob(
        &mut self,
        digest: &str,
        sink: impl std::io::Write,
    ) -> Result<u64, PackageError> {
        let url = self.url(&format!("blobs/{digest}"));
        let response = self.send("GET", &url, &[], Payload::Empty)?;
        if response.status() != 200 {
            return Err(self.fail(&format!("getting blob {digest}"), response));
        }
        let total = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let reader = response
            .into_body()
            .into_with_config()
            .limit(u64::MAX)
            .reader();
        let notify = &self.notify;
        let (got, size) = copy_hashed(reader, sink, &mut |done| {
            (notify.borrow_mut())(Transfer::Bytes {
                digest: digest.to_owned(),
                done,
                total,
            })
        })
        .map_err(|e| PackageError::Registry(format!("GET {url}: {e}")))?;
        if got != digest {
            return Err(PackageError::Registry(format!(
                "blob {digest} of {} arrived with digest {got}: corrupted on the way, try again",
                self.reference
            )));
        }
        (self.notify.borrow_mut())(Transfer::Done {
            digest: digest.to_owned(),
        });
        Ok(size)
    }
}

/// The content of a blob to upload.
pub(crate) enum BlobSource<'a> {
    /// In memory (the config blob).
    Bytes(&'a [u8]),
    /// A file of this size, streamed (the layer).
    File(&'a Path, u64),
}

/// A reader that reports how much was read.
pub(super) struct Counting<'a, R> {
    pub(super) inner: R,
    pub(super) done: u64,
    pub(super) progress: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        (self.progress)(self.done);
        Ok(n)
    }
}

/// `sha256:<hex>` of what `reader` gives, copied into `sink`.
fn copy_hashed(
    mut reader: impl Read,
    mut sink: impl std::io::Write,
    progress: &mut dyn FnMut(u64),
) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut done = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        sink.write_all(&buf[..n])?;
        done += n as u64;
        progress(done);
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((format!("sha256:{hex}"), done))
}
