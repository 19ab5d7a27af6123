//! Push against a scripted registry (one std-only thread): the token flow with the
//! plugin scope, retries on a `503` and a dropped connection, the streamed layer,
//! the manifest; and the one-tag-per-architecture rules.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

use super::*;
use crate::package::archive::sha256;

/// A valid bundle with a one-file rootfs (a minimal ELF of `arch` as its
/// entrypoint), in a temporary directory.
pub(crate) fn small_bundle(arch: Arch) -> (tempfile::TempDir, Bundle) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("rootfs/run/docker/plugins")).expect("mkdir");
    std::fs::write(dir.path().join("rootfs/p"), arch::minimal_elf(arch)).expect("write");
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"entrypoint":["/p"],"interface":{"socket":"p.sock","types":["docker.volumedriver/1.0"]}}"#,
    )
    .expect("write");
    let bundle = Bundle::open(dir.path()).expect("bundle");
    (dir, bundle)
}

#[test]
fn the_config_blob_carries_the_layer_diff_id() {
    let (dir, bundle) = small_bundle(Arch::host());
    let layer_path = dir.path().join("layer.tar.gz");
    let (layer, config, blob) = Pusher::new()
        .mtime(0)
        .prepare(&bundle, &layer_path)
        .expect("prepare");
    let rootfs = config.rootfs.expect("rootfs");
    assert_eq!(rootfs.r#type, "layers");
    assert_eq!(rootfs.diff_ids, std::slice::from_ref(&layer.diff_id));
    let json: serde_json::Value = serde_json::from_slice(&blob).expect("json");
    assert_eq!(json["rootfs"]["diff_ids"][0], layer.diff_id.as_str());
    assert_eq!(json["Interface"]["Socket"], "p.sock");
    assert_eq!(
        sha256(&std::fs::read(&layer_path).expect("layer")),
        layer.digest
    );
    let (_, compressed, _) = Pusher::new()
        .mtime(0)
        .diff_ids(DiffIds::Compressed)
        .prepare(&bundle, &layer_path)
        .expect("prepare");
    assert_eq!(compressed.rootfs.expect("rootfs").diff_ids, [layer.digest]);
}

#[test]
fn one_tag_per_architecture() {
    let (_a, amd) = small_bundle(Arch::Amd64);
    let (_b, arm) = small_bundle(Arch::Arm64);
    let (_c, arm2) = small_bundle(Arch::Arm64);
    let reference: Reference = "127.0.0.1:1/test/p:1.0".parse().expect("ref");
    assert_eq!(bundle_arch(&arm).expect("arch"), Arch::Arm64);
    let (to, arch) = Pusher::new()
        .arch_tags(true)
        .destination(&arm, &reference)
        .expect("dest");
    assert_eq!(
        (to.to_string().as_str(), arch),
        ("127.0.0.1:1/test/p:1.0-arm64", Arch::Arm64)
    );
    let err = Pusher::new()
        .push_all(&[amd.clone(), arm.clone()], &reference, &mut |_| {})
        .expect_err("two bundles, one tag")
        .to_string();
    assert_eq!(
        err,
        "reference \"127.0.0.1:1/test/p:1.0\": 2 bundles under one tag would need a manifest list, which \
         `docker plugin install` cannot install (\"did not find plugin config for specified reference\"): \
         pass --arch-tags to push each to TAG-ARCH"
    );
    let err = Pusher::new()
        .arch_tags(true)
        .push_all(&[arm.clone(), arm2.clone()], &reference, &mut |_| {})
        .expect_err("two arm64")
        .to_string();
    assert!(
        err.ends_with("are both built for arm64: one bundle per architecture"),
        "{err}"
    );
}

/// What the scripted registry saw.
struct Seen {
    log: Vec<String>,
    manifest: Vec<u8>,
    layer_put_headers: Vec<String>,
}

/// A registry that wants a bearer token from its token service, fails the first
/// layer `PUT` with a `503` and drops the connection of the first `HEAD` of the
/// config blob; checks the digests of what it receives.
fn scripted_registry(listener: TcpListener, port: u16, layer_digest: String) -> Seen {
    let mut seen = Seen {
        log: Vec::new(),
        manifest: Vec::new(),
        layer_put_headers: Vec::new(),
    };
    let (mut failed_put, mut dropped_head) = (false, false);
    for stream in listener.incoming() {
        let mut stream = stream.expect("accept");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut line = String::new();
        reader.read_line(&mut line).expect("request line");
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let target = parts.next().unwrap_or_default().to_owned();
        let (mut length, mut auth, mut headers) = (0usize, String::new(), Vec::new());
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).expect("header");
            let header = header.trim_end().to_owned();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(": ").unwrap_or((&header, ""));
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().expect("length"),
                "authorization" => auth = value.to_owned(),
                _ => {}
            }
            headers.push(header.to_ascii_lowercase());
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("body");
        seen.log.push(format!("{method} {target}"));
        if method == "HEAD"
            && !target.contains(&layer_digest)
            && target.contains("/blobs/")
            && !dropped_head
        {
            dropped_head = true;
            drop(stream); // no answer at all: a broken connection
            continue;
        }
        let (status, extra, reply): (&str, String, String) = if target.starts_with("/token") {
            ("200 OK", String::new(), r#"{"token":"tok123"}"#.to_owned())
        } else if auth != "Bearer tok123" {
            (
                "401 Unauthorized",
                format!(
                    "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"test-registry\",scope=\"repository:test/p:pull\"\r\n"
                ),
                String::new(),
            )
        } else if method == "HEAD" {
            ("404 Not Found", String::new(), String::new())
        } else if method == "POST" {
            (
                "202 Accepted",
                "Location: /v2/test/p/blobs/uploads/u1?state=x\r\n".to_owned(),
                String::new(),
            )
        } else if method == "PUT" && target.contains("/blobs/uploads/") {
            let digest = target.split("digest=").nth(1).unwrap_or_default();
            if digest == layer_digest && !failed_put {
                failed_put = true;
                (
                    "503 Service Unavailable",
                    String::new(),
                    "try later".to_owned(),
                )
            } else if sha256(&body) == digest && target.contains("state=x&") {
                if digest == layer_digest {
                    seen.layer_put_headers = headers;
                }
                ("201 Created", String::new(), String::new())
            } else {
                (
                    "400 Bad Request",
                    String::new(),
                    "DIGEST_INVALID".to_owned(),
                )
            }
        } else if method == "PUT" && target == "/v2/test/p/manifests/1" {
            seen.manifest = body;
            ("201 Created", String::new(), String::new())
        } else {
            ("200 OK", String::new(), String::new())
        };
        write!(
            stream,
            "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{reply}",
            reply.len()
        )
        .expect("reply");
        if !seen.manifest.is_empty() {
            return seen;
        }
    }
    seen
}

#[test]
fn push_asks_for_the_plugin_scope_and_retries_what_failed_on_the_way() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (dir, bundle) = small_bundle(Arch::host());
    let pusher = Pusher::new().connect(Connect {
        plain_http: true,
        retry_delay: std::time::Duration::from_millis(10),
        ..Connect::default()
    });
    let (layer, _, _) = pusher
        .prepare(&bundle, &dir.path().join("probe.tar.gz"))
        .expect("prepare");
    let layer_digest = layer.digest.clone();
    let server = std::thread::spawn(move || scripted_registry(listener, port, layer_digest));

    let reference: Reference = format!("127.0.0.1:{port}/test/p:1").parse().expect("ref");
    let mut events = Vec::new();
    let pushed = pusher
        .push(&bundle, &reference, &mut |t| events.push(t))
        .expect("push");
    let seen = server.join().expect("server thread");

    // One token request: the plugin scope first, then the challenge's.
    assert_eq!(
        seen.log
            .iter()
            .filter(|l| l.starts_with("GET /token"))
            .collect::<Vec<_>>(),
        [
            "GET /token?scope=repository%28plugin%29%3Atest%2Fp%3Apull%2Cpush&scope=repository%3Atest%2Fp%3Apull&service=test-registry"
        ]
    );
    // The 503 started the layer's upload over (a second POST), the dropped HEAD was
    // sent again: two retries reported.
    assert_eq!(
        seen.log.iter().filter(|l| l.starts_with("POST")).count(),
        3,
        "{:?}",
        seen.log
    );
    let retries: Vec<&Transfer> = events
        .iter()
        .filter(|t| matches!(t, Transfer::Retry { .. }))
        .collect();
    assert_eq!(retries.len(), 2, "{events:?}");
    // The layer went with a Content-Length, streamed from its file, its progress
    // reported up to its size.
    assert!(
        seen.layer_put_headers
            .contains(&format!("content-length: {}", pushed.layer_size)),
        "{:?}",
        seen.layer_put_headers
    );
    assert!(events.contains(&Transfer::Bytes {
        digest: pushed.layer_digest.clone(),
        done: pushed.layer_size,
        total: pushed.layer_size,
    }));
    assert!(events.contains(&Transfer::Done {
        digest: pushed.layer_digest.clone()
    }));

    let manifest: serde_json::Value = serde_json::from_slice(&seen.manifest).expect("manifest");
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);
    assert_eq!(manifest["config"]["mediaType"], PLUGIN_CONFIG_MEDIA_TYPE);
    assert_eq!(manifest["config"]["digest"], pushed.config_digest.as_str());
    assert_eq!(manifest["layers"][0]["mediaType"], LAYER_MEDIA_TYPE);
    assert_eq!(
        manifest["layers"][0]["digest"],
        pushed.layer_digest.as_str()
    );
    assert_eq!(manifest["layers"][0]["size"], pushed.layer_size);
}
