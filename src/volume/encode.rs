//! The replies dockerd asks a volume driver for most (Get before every Create and on
//! every `docker volume inspect`, List, Mount, Path), encoded by hand: the constant
//! pieces written whole, the strings copied as they are when they need no escape.
//! serde_json writes each key, quote, colon and string through its serializer, one
//! write at a time, which is most of a trivial call's encoding work.
//!
//! The bytes are exactly serde_json's (the golden files are checked through serde, and
//! the tests below check these encoders against it, with every character below U+0100
//! and a few above it at every offset of the eight-byte scan): whatever is not a plain string
//! (`CreatedAt`, `Status`, a string with a character JSON escapes) is written by
//! serde_json itself, and what serde_json refuses (a mount point that is not UTF-8)
//! is left to it, for its error.

use std::path::Path;

use super::wire::{GetResponse, ListResponse, MountResponse, PathResponse, Volume};
use crate::protocol::plain_prefix_len;

/// `{"Volume":{…}}`.
pub(crate) fn get(reply: &GetResponse, buf: &mut Vec<u8>) -> serde_json::Result<()> {
    buf.extend_from_slice(br#"{"Volume":"#);
    volume(&reply.volume, buf)?;
    buf.push(b'}');
    Ok(())
}

/// `{"Volumes":[{…},…]}`.
pub(crate) fn list(reply: &ListResponse, buf: &mut Vec<u8>) -> serde_json::Result<()> {
    buf.extend_from_slice(br#"{"Volumes":["#);
    for (i, item) in reply.volumes.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        volume(item, buf)?;
    }
    buf.extend_from_slice(b"]}");
    Ok(())
}

/// `{"Mountpoint":"…"}`, even when empty.
pub(crate) fn mount(reply: &MountResponse, buf: &mut Vec<u8>) -> serde_json::Result<()> {
    mountpoint(&reply.mountpoint, buf)
}

/// `{"Mountpoint":"…"}`, or `{}` when the volume is not mounted.
pub(crate) fn path_reply(reply: &PathResponse, buf: &mut Vec<u8>) -> serde_json::Result<()> {
    if reply.mountpoint.as_os_str().is_empty() {
        buf.extend_from_slice(b"{}");
        return Ok(());
    }
    mountpoint(&reply.mountpoint, buf)
}

/// `{"Mountpoint":"…"}`: the whole of a Mount reply, and of a Path reply for a mounted
/// volume.
fn mountpoint(path: &Path, buf: &mut Vec<u8>) -> serde_json::Result<()> {
    buf.extend_from_slice(br#"{"Mountpoint":"#);
    self::path(path, buf)?;
    buf.push(b'}');
    Ok(())
}

/// One volume, its empty fields left out as `Volume`'s `Serialize` leaves them out.
fn volume(volume: &Volume, buf: &mut Vec<u8>) -> serde_json::Result<()> {
    buf.extend_from_slice(br#"{"Name":"#);
    string(&volume.name, buf)?;
    if !volume.mountpoint.as_os_str().is_empty() {
        buf.extend_from_slice(br#","Mountpoint":"#);
        path(&volume.mountpoint, buf)?;
    }
    if let Some(created_at) = &volume.created_at {
        buf.extend_from_slice(br#","CreatedAt":"#);
        serde_json::to_writer(&mut *buf, created_at)?;
    }
    if !volume.status.is_empty() {
        buf.extend_from_slice(br#","Status":"#);
        serde_json::to_writer(&mut *buf, &volume.status)?;
    }
    buf.push(b'}');
    Ok(())
}

/// A path as serde writes one: its text, or serde's error when it is not UTF-8.
fn path(path: &Path, buf: &mut Vec<u8>) -> serde_json::Result<()> {
    let bytes = path.as_os_str().as_encoded_bytes();
    // ASCII is UTF-8, and checked at a fraction of the cost of `to_str`.
    if bytes.is_ascii() {
        return plain(bytes, buf);
    }
    match path.to_str() {
        Some(text) => string(text, buf),
        None => serde_json::to_writer(&mut *buf, path),
    }
}

/// A JSON string: copied between its quotes when no character in it is one JSON
/// escapes (a control character, `"` or `\`), else written by serde_json.
fn string(text: &str, buf: &mut Vec<u8>) -> serde_json::Result<()> {
    plain(text.as_bytes(), buf)
}

/// [`string`], for UTF-8 bytes.
fn plain(utf8: &[u8], buf: &mut Vec<u8>) -> serde_json::Result<()> {
    if plain_prefix_len(utf8) < utf8.len() {
        // Escapes come rarely; serde_json writes them (from the text, as the caller's
        // `str` or ASCII bytes: valid UTF-8 either way).
        let text = std::str::from_utf8(utf8).map_err(serde::ser::Error::custom)?;
        return serde_json::to_writer(&mut *buf, text);
    }
    buf.reserve(utf8.len() + 2);
    buf.push(b'"');
    buf.extend_from_slice(utf8);
    buf.push(b'"');
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::protocol::Timestamp;

    fn by_hand<T>(encode: fn(&T, &mut Vec<u8>) -> serde_json::Result<()>, value: &T) -> String {
        let mut buf = Vec::new();
        encode(value, &mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    fn volumes() -> Vec<Volume> {
        let mut status = serde_json::Map::new();
        status.insert("size".into(), 3.into());
        status.insert("opts".into(), serde_json::json!({"b": [1, null], "a": "x"}));
        let created: Timestamp = "2024-05-01T10:00:00.5+02:00".parse().unwrap();
        vec![
            Volume::new("v1"),
            Volume::new("v1").mountpoint("/srv/vols/v1"),
            Volume::new("").mountpoint(""),
            Volume::new("é").mountpoint("/srv/é😀"),
            Volume::new("\u{7f}").mountpoint("/srv/\u{7f}/é\"x\""),
            Volume::new("q\"uote\\back\nline\u{1}\u{7f}é😀").mountpoint("/a \"b\"\t/c"),
            Volume {
                name: "full".into(),
                mountpoint: PathBuf::from("/m"),
                created_at: Some(created),
                status,
            },
        ]
    }

    #[test]
    fn every_reply_is_serdes_bytes() {
        for volume in volumes() {
            let get = GetResponse {
                volume: volume.clone(),
            };
            assert_eq!(
                by_hand(super::get, &get),
                serde_json::to_string(&get).unwrap()
            );
            let mount = MountResponse {
                mountpoint: volume.mountpoint.clone(),
            };
            assert_eq!(
                by_hand(super::mount, &mount),
                serde_json::to_string(&mount).unwrap()
            );
            let path = PathResponse {
                mountpoint: volume.mountpoint.clone(),
            };
            assert_eq!(
                by_hand(path_reply, &path),
                serde_json::to_string(&path).unwrap()
            );
        }
        for count in 0..=volumes().len() {
            let reply = ListResponse {
                volumes: volumes().into_iter().take(count).collect(),
            };
            assert_eq!(
                by_hand(list, &reply),
                serde_json::to_string(&reply).unwrap()
            );
        }
    }

    #[test]
    fn every_character_at_every_offset_of_the_scan_is_written_as_serde_writes_it() {
        // `plain_prefix_len` reads eight bytes at a time: a character that needs an
        // escape must be found in the first word, the second, and the tail.
        let others = ['\u{2028}', '\u{fffd}', '\u{ffff}', '😀', 'é'];
        let characters = (0..=0xff_u32).filter_map(char::from_u32).chain(others);
        for c in characters {
            for at in 0..=17 {
                let mut text: String = "abcdefghijklmnopq".chars().take(at).collect();
                text.push(c);
                text.push_str("/tail");
                let volume = Volume::new(text.clone()).mountpoint(text.as_str());
                let get = GetResponse { volume };
                assert_eq!(
                    by_hand(super::get, &get),
                    serde_json::to_string(&get).unwrap(),
                    "{c:?} at {at}"
                );
                let mount = MountResponse {
                    mountpoint: PathBuf::from(&text),
                };
                assert_eq!(
                    by_hand(super::mount, &mount),
                    serde_json::to_string(&mount).unwrap(),
                    "{c:?} at {at}"
                );
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_mount_point_that_is_not_utf8_is_serdes_error() {
        use std::os::unix::ffi::OsStrExt;
        let bad = PathBuf::from(std::ffi::OsStr::from_bytes(b"/srv/\xff"));
        let mount = MountResponse { mountpoint: bad };
        let mut buf = Vec::new();
        let ours = super::mount(&mount, &mut buf).unwrap_err().to_string();
        let serdes = serde_json::to_string(&mount).unwrap_err().to_string();
        assert_eq!(ours, serdes);
    }
}
