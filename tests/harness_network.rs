//! The harness's network service against a scripted network + IPAM plugin: the calls
//! each action makes when a step fails, the rollbacks and dockerd's words for the
//! errors (moby v20.10.24 `vendor/github.com/docker/libnetwork/controller.go`
//! `NewNetwork`, `network.go` `createEndpoint`/`addEndpoint`, `endpoint.go` `sbJoin`,
//! `daemon/container_operations.go` `connectToNetwork`, `daemon/network.go`).
//! Containers on a network get a real network namespace: these tests run as root. A
//! real driver's containers reaching each other is netbridge's test
//! (`examples/netbridge/tests/harness.rs`).
#![cfg(feature = "harness")]

mod support;

use std::fs;

use docker_plugin_sdk::harness::{
    CallRecord, Container, Engine, HarnessError, NetworkOptions, NetworkUse,
};
use serde_json::json;
use support::scripted::{Answer, Scripted, Seen};

/// The methods dockerd calls when it activates a plugin implementing both.
const ACTIVATION: [&str; 4] = [
    "Plugin.Activate",
    "NetworkDriver.GetCapabilities",
    "IpamDriver.GetCapabilities",
    "IpamDriver.GetDefaultAddressSpaces",
];

/// What the scripted plugin answers: a network driver and an IPAM driver (pool
/// `10.77.0.0/24`, gateway `.1`, containers `.2`) where `fail` answers 500.
fn answer(request: &Seen, fail: &str) -> Answer {
    let method = request.path().trim_start_matches('/');
    if method == fail {
        return Answer::Reply(500, r#"{"Err":"the plugin says no"}"#.into());
    }
    let body = match method {
        "Plugin.Activate" => r#"{"Implements":["NetworkDriver","IpamDriver"]}"#,
        "NetworkDriver.GetCapabilities" => r#"{"Scope":"local"}"#,
        "IpamDriver.GetDefaultAddressSpaces" => {
            r#"{"LocalDefaultAddressSpace":"l","GlobalDefaultAddressSpace":"g"}"#
        }
        "IpamDriver.RequestPool" => r#"{"PoolID":"l/10.77.0.0/24","Pool":"10.77.0.0/24"}"#,
        "IpamDriver.RequestAddress" if request.body.contains("com.docker.network.gateway") => {
            r#"{"Address":"10.77.0.1/24"}"#
        }
        "IpamDriver.RequestAddress" => r#"{"Address":"10.77.0.2/24"}"#,
        "NetworkDriver.EndpointOperInfo" => r#"{"Value":{}}"#,
        _ => "{}",
    };
    Answer::Reply(200, body.into())
}

struct Setup {
    _root: tempfile::TempDir,
    engine: Engine,
    _plugin: Scripted,
}

/// An engine and the scripted plugin `scr`, failing `fail`.
fn setup(fail: &'static str) -> Setup {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::for_tests(root.path());
    let socket_dir = &engine.discovery().socket_dir;
    fs::create_dir_all(socket_dir).unwrap();
    let plugin = Scripted::start(&socket_dir.join("scr.sock"), move |_, request| {
        answer(request, fail)
    });
    Setup {
        _root: root,
        engine,
        _plugin: plugin,
    }
}

fn opts() -> NetworkOptions {
    NetworkOptions::driver("scr").ipam_driver("scr")
}

/// `docker network create n1`, its calls taken, then `docker run --network n1`, which
/// fails: the container and the error.
async fn run_on_n1(s: &Setup) -> (Container, HarnessError) {
    s.engine.networks().create("n1", opts()).await.unwrap();
    s.engine.calls().take();
    let containers = s.engine.containers();
    let mut c = containers
        .create_on(&[], &[NetworkUse::new("n1")])
        .await
        .unwrap();
    let err = containers.start(&mut c).await.unwrap_err();
    (c, err)
}

/// Takes the calls so far, asserting their methods are `expected`.
fn take_calls(engine: &Engine, expected: &[&str]) -> Vec<CallRecord> {
    let calls = engine.calls().take();
    let names: Vec<_> = calls.iter().map(|c| c.method.as_str()).collect();
    assert_eq!(names, expected);
    calls
}

/// How many containers network n1 has.
fn connected(engine: &Engine) -> usize {
    engine.networks().inspect("n1").unwrap().containers.len()
}

fn methods(engine: &Engine) -> Vec<String> {
    engine.calls().take_methods()
}

/// `controller.go` `NewNetwork`: `ipamAllocate` is undone by `ipamRelease` (gateway,
/// then pool) when the driver's CreateNetwork fails; the error is the plugin
/// client's `METHOD: message`.
#[tokio::test]
async fn create_network_failing_releases_the_gateway_and_the_pool() {
    let s = setup("NetworkDriver.CreateNetwork");
    let err = s.engine.networks().create("n1", opts()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "NetworkDriver.CreateNetwork: the plugin says no"
    );
    let mut expected = ACTIVATION.to_vec();
    expected.extend([
        "IpamDriver.RequestPool",
        "IpamDriver.RequestAddress",
        "NetworkDriver.CreateNetwork",
        "IpamDriver.ReleaseAddress",
        "IpamDriver.ReleasePool",
    ]);
    let calls = take_calls(&s.engine, &expected);
    assert_eq!(
        calls[7].request,
        json!({"PoolID": "l/10.77.0.0/24", "Address": "10.77.0.1"})
    );
    assert_eq!(calls[8].request, json!({"PoolID": "l/10.77.0.0/24"}));
    assert!(s.engine.networks().ls().is_empty());
}

/// `network.go` `addEndpoint`: the driver's error wrapped as `failed to create
/// endpoint NAME on network NET: …`; `createEndpoint`'s deferred `releaseAddress`
/// gives the address back. The driver refused the endpoint: no DeleteEndpoint.
#[tokio::test]
async fn create_endpoint_failing_releases_the_address() {
    let s = setup("NetworkDriver.CreateEndpoint");
    let (c, err) = run_on_n1(&s).await;
    assert_eq!(
        err.to_string(),
        format!(
            "failed to create endpoint {} on network n1: NetworkDriver.CreateEndpoint: the plugin says no",
            c.name()
        )
    );
    let calls = take_calls(
        &s.engine,
        &[
            "IpamDriver.RequestAddress",
            "NetworkDriver.CreateEndpoint",
            "IpamDriver.ReleaseAddress",
        ],
    );
    assert_eq!(
        calls[2].request,
        json!({"PoolID": "l/10.77.0.0/24", "Address": "10.77.0.2"})
    );
    assert!(!c.running);
    assert_eq!(connected(&s.engine), 0);
    s.engine.networks().rm("n1").await.unwrap();
}

/// `endpoint.go` `sbJoin` returns the driver's error as is (no Leave: the Join
/// failed); `connectToNetwork`'s deferred `ep.Delete` deletes the endpoint and
/// releases its address; the namespace made for it is removed.
#[tokio::test]
async fn join_failing_deletes_the_endpoint_and_releases_the_address() {
    let s = setup("NetworkDriver.Join");
    let (c, err) = run_on_n1(&s).await;
    assert_eq!(err.to_string(), "NetworkDriver.Join: the plugin says no");
    let calls = take_calls(
        &s.engine,
        &[
            "IpamDriver.RequestAddress",
            "NetworkDriver.CreateEndpoint",
            "NetworkDriver.Join",
            "NetworkDriver.DeleteEndpoint",
            "IpamDriver.ReleaseAddress",
        ],
    );
    let endpoint = &calls[1].request["EndpointID"];
    assert_eq!(calls[3].request["EndpointID"], *endpoint);
    assert_eq!(
        calls[4].request,
        json!({"PoolID": "l/10.77.0.0/24", "Address": "10.77.0.2"})
    );
    assert_eq!(c.sandbox_key(), None);
    let netns = fs::read_dir(s.engine.networks().sandbox_dir()).unwrap();
    assert_eq!(netns.count(), 0, "a namespace is left behind");
    assert_eq!(connected(&s.engine), 0);
}

/// `daemon/network.go` `deleteNetwork` wraps libnetwork's `ActiveEndpointsError`;
/// nothing reaches the plugins. Once the container stopped, `rm` goes through.
#[tokio::test]
async fn network_rm_with_a_container_attached_is_refused() {
    let s = setup("");
    let net = s.engine.networks().create("n1", opts()).await.unwrap();
    let containers = s.engine.containers();
    let mut c = containers
        .create_on(&[], &[NetworkUse::new("n1")])
        .await
        .unwrap();
    containers.start(&mut c).await.unwrap();
    s.engine.calls().take();
    let err = s.engine.networks().rm("n1").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "error while removing network: network n1 id {} has active endpoints",
            net.id
        )
    );
    assert_eq!(methods(&s.engine), Vec::<String>::new());
    assert_eq!(s.engine.networks().ls().len(), 1);
    containers.stop(&mut c).await.unwrap();
    s.engine.calls().take();
    s.engine.networks().rm("n1").await.unwrap();
    assert_eq!(
        methods(&s.engine),
        [
            "IpamDriver.ReleaseAddress",
            "IpamDriver.ReleasePool",
            "NetworkDriver.DeleteNetwork"
        ]
    );
}

/// `daemon/network.go` `createNetwork`: a name taken is refused with libnetwork's
/// `NetworkNameError` before any plugin is asked.
#[tokio::test]
async fn a_duplicate_network_name_is_refused() {
    let s = setup("");
    s.engine.networks().create("n1", opts()).await.unwrap();
    s.engine.calls().take();
    let err = s.engine.networks().create("n1", opts()).await.unwrap_err();
    assert_eq!(err.to_string(), "network with name n1 already exists");
    assert_eq!(methods(&s.engine), Vec::<String>::new());
    assert_eq!(s.engine.networks().ls().len(), 1);
}
