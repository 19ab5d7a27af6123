//! `{{project-name}}` end to end: the real binary, asked by the SDK's harness (a dockerd
//! test double) exactly as dockerd's authorization middleware asks it around each API
//! call: as a plain process, and as a managed plugin packaged from this crate's own
//! `[package.metadata.docker-plugin]`. Denials read as dockerd words them.

use std::path::{Path, PathBuf};
use std::process::Command;

use docker_plugin_sdk::harness::{ApiRequest, ApiResponse, Engine, HarnessError, PluginProcess};
use docker_plugin_sdk::package::metadata::Metadata;
use serde_json::{Value, json};

/// The plugin's name: its socket is `NAME.sock`.
const PLUGIN: &str = "{{project-name}}";

/// The plugin binary listening where `engine` looks, letting containers bind
/// `/srv/data`; its log in `root/plugin.log`. Returns once the plugin answers; fails
/// with the plugin's log. Stopped with SIGTERM when dropped.
fn start(root: &Path, engine: &Engine) -> PluginProcess {
    let socket_dir = &engine.discovery().socket_dir;
    let mut command = Command::new(env!("CARGO_BIN_EXE_{{project-name}}"));
    command
        .args(["--allow-bind", "/srv/data", "--socket-dir"])
        .arg(socket_dir);
    let socket = socket_dir.join(format!("{PLUGIN}.sock"));
    PluginProcess::start_answering(command, &socket, root.join("plugin.log")).unwrap()
}

/// `docker create` with `body` through the middleware; dockerd's reply if allowed.
async fn create(engine: &Engine, body: Value) -> Result<ApiResponse, HarnessError> {
    let request = ApiRequest::new("POST", "/v1.41/containers/create").json(&body);
    let created = json!({"Id": "0123456789ab", "Warnings": []});
    engine
        .authz()
        .replay(request, ApiResponse::json(201, &created))
        .await
}

#[tokio::test]
async fn calls_are_allowed_and_privileged_containers_refused_in_dockerds_words() {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::for_tests(root.path());
    let _plugin = start(root.path(), &engine);
    // dockerd --authorization-plugin={{project-name}}
    engine.authz().set_plugins([PLUGIN]);

    let volumes = json!({"Volumes": [], "Warnings": null});
    let listed = engine
        .authz()
        .replay(
            ApiRequest::new("GET", "/v1.41/volumes"),
            ApiResponse::json(200, &volumes),
        )
        .await
        .unwrap();
    assert_eq!(listed.status, 200);
    let plain = json!({"Image": "busybox", "HostConfig": {"Binds": ["/srv/data/a:/a"]}});
    assert_eq!(create(&engine, plain).await.unwrap().status, 201);

    let privileged = json!({"Image": "busybox", "HostConfig": {"Privileged": true}});
    let err = create(&engine, privileged).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("authorization denied by plugin {PLUGIN}: privileged containers are not allowed")
    );
    let etc = json!({"Image": "busybox", "HostConfig": {"Binds": ["/etc:/etc"]}});
    let err = create(&engine, etc).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "authorization denied by plugin {PLUGIN}: binding host path /etc is not allowed (allowed: /srv/data)"
        )
    );
}

#[tokio::test]
async fn a_create_over_1_mib_arrives_without_its_body_and_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::for_tests(root.path());
    let _plugin = start(root.path(), &engine);
    engine.authz().set_plugins([PLUGIN]);
    // dockerd 20.10 passes no body of 1 MiB or more to authorization plugins.
    let big = json!({"Image": "busybox", "Labels": {"big": "x".repeat(1 << 20)}});
    let err = create(&engine, big).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "authorization denied by plugin {PLUGIN}: a container create whose body cannot be read (1 MiB or more?) is refused"
        )
    );
}

/// The bundle `cargo docker-plugin package` would write, from this crate's metadata
/// and the binary cargo built for the tests.
fn package(into: &Path) -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = crate_dir.join("Cargo.toml");
    let (package, metadata) = Metadata::from_manifest(&manifest, None).unwrap();
    let config = metadata.to_config(&package, PLUGIN, &manifest).unwrap();
    let bundle = into.join("bundle");
    let binary = env!("CARGO_BIN_EXE_{{project-name}}");
    metadata
        .bundle_writer(&bundle, config, PLUGIN, binary, crate_dir)
        .write()
        .unwrap();
    bundle
}

#[tokio::test]
async fn as_a_managed_plugin_packaged_from_its_metadata() {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::for_tests(root.path());
    let plugins = engine.plugins();
    plugins.create(PLUGIN, package(root.path())).await.unwrap();
    // What `docker plugin install` asks the user to grant: nothing.
    let privileges = plugins.privileges(PLUGIN).unwrap();
    assert!(privileges.is_empty(), "{privileges:?}");
    plugins.enable(PLUGIN).await.unwrap();
    // dockerd --authorization-plugin={{project-name}}:latest
    let reference = format!("{PLUGIN}:latest");
    engine.authz().set_plugins([reference.as_str()]);
    let privileged = json!({"Image": "busybox", "HostConfig": {"Privileged": true}});
    let err = create(&engine, privileged).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "authorization denied by plugin {reference}: privileged containers are not allowed"
        )
    );
    let plain = json!({"Image": "busybox"});
    assert_eq!(create(&engine, plain).await.unwrap().status, 201);
    plugins.disable(PLUGIN, false).await.unwrap();
    plugins.rm(PLUGIN, false).await.unwrap();
}
