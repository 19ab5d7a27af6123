//! `cargo docker-plugin push` against real registries, and what installs from them.
//!
//! - Debian's `docker-registry` on loopback (plain HTTP, as dockerd's insecure
//!   `127.0.0.0/8`): push, push again (nothing uploaded), both `diff_ids` forms and
//!   dockerd's own push compared, `docker plugin install` by a real dockerd, a login
//!   asked for, one tag per architecture, and the harness's install (no daemon).
//! - The same registry on a host of its own (a network namespace) behind TLS with a
//!   test CA in `/etc/docker/certs.d/HOST:PORT/`: with a client certificate and basic
//!   auth (the login from a credential helper), and with a token server (an identity
//!   token; `--username`/`--password-stdin`) that grants only the
//!   `repository(plugin)` scope; after each push a real dockerd installs the plugin
//!   over TLS.
//! - A manifest list, refused by dockerd and by the harness with dockerd's words.

mod support;

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::sync::Arc;

use docker_plugin_sdk::harness::dockerd::Dockerd;
use docker_plugin_sdk::harness::{Engine, HarnessError, InstallOptions};
use docker_plugin_sdk::managed::bundle::Bundle;
use docker_plugin_sdk::managed::config::Privilege;
use docker_plugin_sdk::package::arch::Arch;
use docker_plugin_sdk::package::archive::sha256;
use docker_plugin_sdk::package::push::Pusher;
use docker_plugin_sdk::package::registry::{Connect, Credentials, Reference};
use libtest_mimic::Failed;
use support::cli::{
    bundle, cargo_docker_plugin, cargo_docker_plugin_with_input, check, expect_ok, ok, run_cli,
    unique,
};
use support::registry::{Login, Netns, Registry, TestCa, TokenServer};
use support::shared_dockerd::{DockerdTest, ImageOnce, PlainTest, run_trials};

const IMAGE: &str = "dps-busybox:push";

fn use_managed_localvol(d: &Dockerd, name: &str) -> Result<(), Failed> {
    support::cli::use_managed_localvol(d, IMAGE, name)
}

/// Puts a manifest list under `repository:list_tag` holding the manifest of
/// `repository:tag`: the reference to it.
fn push_manifest_list(
    registry: &Registry,
    repository: &str,
    tag: &str,
    list_tag: &str,
) -> Result<String, Failed> {
    let manifest = registry.body(&format!("/v2/{repository}/manifests/{tag}"))?;
    let list = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [{
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "size": manifest.len(),
            "digest": sha256(&manifest),
            "platform": {"architecture": Arch::host().name(), "os": "linux"},
        }],
    });
    let reply = registry.send(
        "PUT",
        &format!("/v2/{repository}/manifests/{list_tag}"),
        "application/vnd.docker.distribution.manifest.list.v2+json",
        list.to_string().as_bytes(),
    )?;
    check(reply.starts_with("HTTP/1.1 201"), || reply.clone())?;
    Ok(format!("{}/{repository}:{list_tag}", registry.host))
}

fn push_then_install_from_a_registry(d: &Dockerd, image: &ImageOnce) -> Result<(), Failed> {
    image.ensure(d)?;
    let dir = bundle()?;
    let registry = Registry::start()?;
    let reference = format!("127.0.0.1:{}/test/localvol:1", registry.port());
    let out = ok(&["push", dir.to_str().ok_or("path")?, &reference])?;
    check(out.contains("digest   sha256:"), || out.clone())?;
    // The registry serves what dockerd will pull: a schema 2 manifest whose config
    // is a plugin config.
    let manifest = registry.get("/v2/test/localvol/manifests/1")?;
    check(
        manifest.contains("application/vnd.docker.plugin.v1+json")
            && manifest.contains("application/vnd.docker.image.rootfs.diff.tar.gzip"),
        || manifest.clone(),
    )?;
    // Pushing again uploads nothing new and gives the same digest.
    let args = ["push", dir.to_str().ok_or("path")?, &reference];
    let again = cargo_docker_plugin(&args);
    let again_out = support::cli::expect_ok(again.clone(), &args)?;
    check(again_out == out, || format!("{out}\nvs\n{again_out}"))?;
    let stderr = String::from_utf8_lossy(&again.stderr);
    check(
        stderr.matches("  exists (").count() == 2 && !stderr.contains("pushed"),
        || stderr.to_string(),
    )?;

    let name = unique("dps-pulled");
    d.docker_ok(&[
        "plugin",
        "install",
        "--grant-all-permissions",
        "--alias",
        &name,
        &reference,
    ])?;
    let enabled = d.docker_ok(&["plugin", "inspect", "--format", "{{.Enabled}}", &name])?;
    check(enabled == "true", || {
        format!("installed plugin enabled={enabled}")
    })?;
    use_managed_localvol(d, &name)?;

    // The diff_ids quirk: dockerd's own push writes the digest of the *compressed*
    // layer into rootfs.diff_ids. Which forms does `docker plugin install` take?
    let gz_reference = format!("127.0.0.1:{}/test/localvol:gz", registry.port());
    ok(&[
        "push",
        dir.to_str().ok_or("path")?,
        &gz_reference,
        "--diff-ids",
        "compressed",
    ])?;
    let gz_name = unique("dps-pulled-gz");
    let out = d.docker(&[
        "plugin",
        "install",
        "--grant-all-permissions",
        "--alias",
        &gz_name,
        &gz_reference,
    ]);
    check(out.status.success(), || {
        format!(
            "install with diff_ids = the compressed digest failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    use_managed_localvol(d, &gz_name)?;

    // And what dockerd itself pushes for the same bundle.
    let by_dockerd = format!("127.0.0.1:{}/test/by-dockerd:1", registry.port());
    d.docker_ok(&["plugin", "create", &by_dockerd, dir.to_str().ok_or("path")?])?;
    d.docker_ok(&["plugin", "push", &by_dockerd])?;
    d.docker_ok(&["plugin", "rm", &by_dockerd])?;
    let manifest = registry.json("/v2/test/by-dockerd/manifests/1")?;
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let config_digest = manifest["config"]["digest"].as_str().unwrap_or_default();
    let config = registry.json(&format!("/v2/test/by-dockerd/blobs/{config_digest}"))?;
    let diff_id = config["rootfs"]["diff_ids"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // The quirk is still there: dockerd's diff_id is the compressed layer's digest...
    check(!layer.is_empty() && diff_id == layer, || {
        format!("dockerd pushed diff_id {diff_id} for layer {layer}")
    })?;
    // ...while ours is the image spec's, the uncompressed tar's; dockerd took both.
    let ours = registry.json("/v2/test/localvol/manifests/1")?;
    let ours_layer = ours["layers"][0]["digest"].as_str().unwrap_or_default();
    let ours_config_digest = ours["config"]["digest"].as_str().unwrap_or_default();
    let ours_config = registry.json(&format!("/v2/test/localvol/blobs/{ours_config_digest}"))?;
    let gz = registry.body(&format!("/v2/test/localvol/blobs/{ours_layer}"))?;
    check(sha256(&gz) == ours_layer, || "layer digest mismatch".into())?;
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut tar)?;
    check(
        ours_config["rootfs"]["diff_ids"][0] == sha256(&tar).as_str(),
        || format!("our diff_ids: {}", ours_config["rootfs"]),
    )?;
    check(ours_config["rootfs"]["type"] == "layers", || {
        format!("our rootfs: {}", ours_config["rootfs"])
    })?;

    // A manifest list (one tag for several architectures) is what dockerd cannot
    // install: the reason push never writes one.
    let list = push_manifest_list(&registry, "test/localvol", "1", "list")?;
    let err = d.docker_err(&[
        "plugin",
        "install",
        "--grant-all-permissions",
        "--alias",
        &unique("dps-list"),
        &list,
    ])?;
    check(
        err.contains(&format!(
            "did not find plugin config for specified reference {list}"
        )),
        || err.clone(),
    )?;
    Ok(())
}

fn push_logs_in_when_the_registry_asks() -> Result<(), Failed> {
    let dir = bundle()?;
    let dir = dir.to_str().ok_or("path")?;
    let registry = Registry::start_with_login(Some(("pusher", "s3cret pass")))?;
    let reference = format!("127.0.0.1:{}/test/private:1", registry.port());
    let anonymous = cargo_docker_plugin(&["push", dir, &reference]);
    let stderr = String::from_utf8_lossy(&anonymous.stderr);
    check(!anonymous.status.success(), || {
        "anonymous push accepted".into()
    })?;
    check(
        stderr.contains(&format!(
            "127.0.0.1:{0} needs a login: run `docker login 127.0.0.1:{0}`, or pass --username and --password-stdin",
            registry.port()
        )),
        || stderr.to_string(),
    )?;
    let wrong = cargo_docker_plugin_with_input(
        &[
            "push",
            dir,
            &reference,
            "--username",
            "pusher",
            "--password-stdin",
        ],
        Some("wrong\n"),
    );
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    check(!wrong.status.success(), || {
        "a wrong password was accepted".into()
    })?;
    check(
        stderr.contains(&format!(
            "127.0.0.1:{} refused the login for HEAD",
            registry.port()
        )) && stderr.contains("pass --username and --password-stdin"),
        || stderr.to_string(),
    )?;
    let out = cargo_docker_plugin_with_input(
        &[
            "push",
            dir,
            &reference,
            "--username",
            "pusher",
            "--password-stdin",
        ],
        Some("s3cret pass\n"),
    );
    check(out.status.success(), || {
        String::from_utf8_lossy(&out.stderr).into_owned()
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    check(
        stdout.contains(&format!("pushed   {reference} ({})", Arch::host())),
        || stdout.to_string(),
    )?;
    // Without the login, the registry shows nothing.
    let manifest = registry.get("/v2/test/private/manifests/1")?;
    check(manifest.starts_with("HTTP/1.1 401"), || manifest.clone())
}

fn push_goes_to_one_tag_per_architecture() -> Result<(), Failed> {
    let dir = bundle()?;
    let dir = dir.to_str().ok_or("path")?;
    let registry = Registry::start()?;
    let reference = format!("127.0.0.1:{}/test/arch:1.0", registry.port());
    let out = ok(&["push", "--arch-tags", dir, &reference])?;
    let host = Arch::host();
    check(
        out.contains(&format!("pushed   {reference}-{host} ({host})")),
        || out.clone(),
    )?;
    let manifest = registry.get(&format!("/v2/test/arch/manifests/1.0-{host}"))?;
    check(manifest.starts_with("HTTP/1.1 200"), || manifest.clone())?;
    let untagged = registry.get("/v2/test/arch/manifests/1.0")?;
    check(untagged.starts_with("HTTP/1.1 404"), || untagged.clone())?;
    // Two bundles under one tag would be a manifest list: refused before any upload.
    let args = [
        "push",
        dir,
        dir,
        &format!("127.0.0.1:{}/test/two:1", registry.port()),
    ];
    let two = cargo_docker_plugin(&args);
    let stderr = String::from_utf8_lossy(&two.stderr);
    check(
        !two.status.success()
            && stderr.contains("2 bundles under one tag would need a manifest list, which `docker plugin install` cannot install")
            && stderr.contains("pass --arch-tags"),
        || stderr.to_string(),
    )?;
    let catalog = registry.get("/v2/_catalog")?;
    check(!catalog.contains("test/two"), || catalog.clone())?;
    // Two bundles of one architecture are refused with --arch-tags too.
    let args = [
        "push",
        "--arch-tags",
        dir,
        dir,
        &format!("127.0.0.1:{}/test/two:1", registry.port()),
    ];
    let same = cargo_docker_plugin(&args);
    let stderr = String::from_utf8_lossy(&same.stderr);
    check(
        !same.status.success()
            && stderr.contains(&format!(
                "are both built for {host}: one bundle per architecture"
            )),
        || stderr.to_string(),
    )
}

fn the_harness_installs_what_push_uploaded() -> Result<(), Failed> {
    let dir = bundle()?;
    let registry = Registry::start()?;
    let reference = format!("127.0.0.1:{}/test/harness:1", registry.port());
    ok(&["push", dir.to_str().ok_or("path")?, &reference])?;
    let list = push_manifest_list(&registry, "test/harness", "1", "list")?;
    let root = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let engine = Engine::for_tests(root.path());
        // Privileges that are not the plugin's: dockerd's "incorrect privileges".
        let wrong = InstallOptions {
            alias: Some("lv".into()),
            granted: vec![Privilege {
                name: "network".into(),
                description: "permissions to access a network".into(),
                value: vec!["host".into()],
            }],
            ..InstallOptions::default()
        };
        let err = engine
            .plugins()
            .install(&reference, wrong)
            .await
            .expect_err("privileges differ");
        check(
            matches!(err, HarnessError::IncorrectPrivileges { .. }),
            || err.to_string(),
        )?;
        check(err.to_string() == "incorrect privileges", || {
            err.to_string()
        })?;
        let id = engine
            .plugins()
            .install(
                &reference,
                InstallOptions {
                    alias: Some("lv".into()),
                    ..InstallOptions::grant_all_permissions()
                },
            )
            .await?;
        let info = engine.plugins().inspect("lv")?;
        check(info.enabled && info.id == id, || format!("{info:?}"))?;
        check(info.config.interface.socket == "localvol.sock", || {
            format!("{:?}", info.config.interface)
        })?;
        engine
            .volumes()
            .create("lv", "v1", Vec::<(String, String)>::new())
            .await?;
        engine.volumes().rm("v1").await?;
        engine.plugins().disable("lv", false).await?;
        engine.plugins().rm("lv", false).await?;
        let err = engine
            .plugins()
            .install(&list, InstallOptions::grant_all_permissions())
            .await
            .expect_err("a manifest list");
        check(
            err.to_string().contains(&format!(
                "did not find plugin config for specified reference {list}: it is a manifest list"
            )),
            || err.to_string(),
        )?;
        Ok::<(), Failed>(())
    })
}

/// A `docker-credential-NAME` program answering `get` for `server` with `user`
/// and `secret`, in `dir`.
fn credential_helper(
    dir: &std::path::Path,
    name: &str,
    server: &str,
    user: &str,
    secret: &str,
) -> Result<(), Failed> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(format!("docker-credential-{name}"));
    fs::write(
        &path,
        format!(
            "#!/bin/sh\nread server\nif [ \"$1\" = get ] && [ \"$server\" = \"{server}\" ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{secret}\"}}' \"$server\"\nelse\n  echo 'credentials not found in native keychain'\n  exit 1\nfi\n"
        ),
    )?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

fn push_to_tls_registries_then_dockerd_installs(
    d: &Dockerd,
    image: &ImageOnce,
) -> Result<(), Failed> {
    image.ensure(d)?;
    let dir = bundle()?;
    let dir = dir.to_str().ok_or("path")?;
    let netns = Arc::new(Netns::create()?);
    let ca = TestCa::new();
    let host_arch = Arch::host();

    // 1. TLS with a client certificate and basic auth; the login comes from a
    // credential helper named in config.json's credHelpers.
    let basic = Registry::start_tls(
        &netns,
        &ca,
        5000,
        Login::Basic("pusher", "s3cret pass"),
        true,
    )?;
    let reference = format!("{}/test/localvol:1", basic.host);
    let config = tempfile::tempdir()?;
    fs::write(
        config.path().join("config.json"),
        serde_json::json!({"credHelpers": {basic.host.clone(): "dpstest"}}).to_string(),
    )?;
    credential_helper(
        config.path(),
        "dpstest",
        &basic.host,
        "pusher",
        "s3cret pass",
    )?;
    let path = OsString::from(format!(
        "{}:{}",
        config.path().display(),
        std::env::var("PATH").unwrap_or_default()
    ));
    let env = [
        ("DOCKER_CONFIG", config.path().as_os_str().to_owned()),
        ("PATH", path),
    ];
    let args = ["push", dir, &reference];
    let out = expect_ok(run_cli(&args, None, &env), &args)?;
    check(
        out.contains(&format!("pushed   {reference} ({host_arch})")),
        || out.clone(),
    )?;
    // --plain-http is plain HTTP, refused by a TLS registry; HTTPS without
    // verification skips certs.d, so no client certificate: refused too.
    for flag in ["--plain-http", "--insecure-skip-tls-verify"] {
        let args = ["push", flag, dir, &reference];
        let refused = run_cli(&args, None, &env);
        check(!refused.status.success(), || format!("{flag} was accepted"))?;
    }
    // dockerd logs in and installs over TLS, with the CA and client certificate of
    // certs.d.
    d.docker_ok(&["login", "-u", "pusher", "-p", "s3cret pass", &basic.host])?;
    let name = unique("dps-tls");
    d.docker_ok(&[
        "plugin",
        "install",
        "--grant-all-permissions",
        "--alias",
        &name,
        &reference,
    ])?;
    use_managed_localvol(d, &name)?;

    // 2. TLS with a token server granting only the repository(plugin) class.
    let tokens = TokenServer::start("tokenuser", "t0ken pass", "refresh-xyz")?;
    let tokened = Registry::start_tls(&netns, &ca, 5001, Login::Token(&tokens), false)?;
    let reference = format!("{}/test/localvol:1", tokened.host);
    // Without the CA, the error says where it goes; --insecure-skip-tls-verify
    // passes (this registry wants no client certificate).
    let parsed: Reference = reference.parse()?;
    let bundle_dir = Bundle::open(dir)?;
    let no_ca = tempfile::tempdir()?;
    let login = Credentials::password("tokenuser", "t0ken pass");
    let err = Pusher::new()
        .connect(Connect {
            credentials: Some(login.clone()),
            certs_dir: no_ca.path().to_path_buf(),
            ..Connect::default()
        })
        .push(&bundle_dir, &parsed, &mut |_| {})
        .expect_err("unknown CA")
        .to_string();
    check(
        err.contains(&format!(
            "(a registry with its own CA: put the CA in {}/{}/ca.crt as for dockerd, or pass --insecure-skip-tls-verify",
            no_ca.path().display(),
            tokened.host
        )),
        || err.clone(),
    )?;
    Pusher::new()
        .connect(Connect {
            credentials: Some(login),
            certs_dir: no_ca.path().to_path_buf(),
            insecure_skip_tls_verify: true,
            ..Connect::default()
        })
        .push(&bundle_dir, &parsed, &mut |_| {})?;
    // docker login's identity token: the OAuth2 refresh_token grant.
    let config = tempfile::tempdir()?;
    fs::write(
        config.path().join("config.json"),
        serde_json::json!({"auths": {tokened.host.clone(): {"identitytoken": "refresh-xyz"}}})
            .to_string(),
    )?;
    let args = ["push", dir, &reference];
    expect_ok(
        run_cli(
            &args,
            None,
            &[("DOCKER_CONFIG", config.path().as_os_str().to_owned())],
        ),
        &args,
    )?;
    // --username and --password-stdin: basic authentication at the token service.
    let args = [
        "push",
        dir,
        &reference,
        "--username",
        "tokenuser",
        "--password-stdin",
    ];
    expect_ok(run_cli(&args, Some("t0ken pass\n"), &[]), &args)?;
    let asked = tokens.asked();
    for (grant, scope) in [
        (
            "refresh_token",
            "repository(plugin):test/localvol:pull,push",
        ),
        ("basic", "repository(plugin):test/localvol:pull,push"),
    ] {
        check(asked.iter().any(|(g, s)| g == grant && s == scope), || {
            format!("no {grant} token for {scope}: {asked:?}")
        })?;
    }
    // dockerd asks for the plugin class too, and installs.
    d.docker_ok(&[
        "login",
        "-u",
        "tokenuser",
        "-p",
        "t0ken pass",
        &tokened.host,
    ])?;
    let name = unique("dps-token");
    d.docker_ok(&[
        "plugin",
        "install",
        "--grant-all-permissions",
        "--alias",
        &name,
        &reference,
    ])?;
    let asked = tokens.asked();
    check(
        asked
            .iter()
            .any(|(_, s)| s == "repository(plugin):test/localvol:pull"),
        || format!("dockerd's scope: {asked:?}"),
    )?;
    use_managed_localvol(d, &name)
}

fn main() {
    let plain: Vec<(&str, PlainTest)> = vec![
        (
            "push_logs_in_when_the_registry_asks",
            push_logs_in_when_the_registry_asks,
        ),
        (
            "push_goes_to_one_tag_per_architecture",
            push_goes_to_one_tag_per_architecture,
        ),
        (
            "the_harness_installs_what_push_uploaded",
            the_harness_installs_what_push_uploaded,
        ),
    ];
    // Longest first (about 60 s and 30 s alone): the trials start in this order.
    let with_dockerd: Vec<(&str, DockerdTest)> = vec![
        (
            "push_to_tls_registries_then_dockerd_installs",
            push_to_tls_registries_then_dockerd_installs,
        ),
        (
            "push_then_install_from_a_registry",
            push_then_install_from_a_registry,
        ),
    ];
    run_trials("push e2e", IMAGE, plain, with_dockerd)
}
