//! The IPAM SDK over a real unix socket, spoken to as dockerd 20.10 speaks (moby
//! v20.10.24 libnetwork's `ipams/remote`): requests with plain IPs, the gateway's
//! `RequestAddressType`, the MAC as text, Go's `null` options; replies in CIDR form;
//! errors in `Error` with a non-200 status, read back as dockerd's IPAM proxy reads
//! them.

mod support;

use docker_plugin_sdk::client::{Client, ClientError};
use docker_plugin_sdk::ipam::{self, GATEWAY};
use serde_json::{Value, json};
use support::netplug::{NID, post, server};
use support::scripted::{Answer, Scripted};

#[tokio::test]
async fn ipam_errors_travel_in_error_with_a_non_200_status() {
    let (s, _) = server().await;
    let any_pool =
        json!({"AddressSpace": "local", "Pool": "", "SubPool": "", "Options": null, "V6": false});
    let reply = post(&s.client, "IpamDriver.RequestPool", any_pool.clone()).await;
    assert_eq!(reply.status.as_u16(), 500);
    assert_eq!(
        reply.text(),
        r#"{"Err":"no pool left: give --subnet","Error":"no pool left: give --subnet"}"#
    );
    let err = s
        .client
        .call::<ipam::RequestPool>(&serde_json::from_value(any_pool).unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "IpamDriver.RequestPool: no pool left: give --subnet (HTTP 500)"
    );
    // A network driver's error keeps Docker's `{"Err"}` alone.
    let reply = post(
        &s.client,
        "NetworkDriver.CreateNetwork",
        json!({"NetworkID": NID, "Options": {"com.docker.network.enable_ipv6": "yes"}}),
    )
    .await;
    assert_eq!(reply.status.as_u16(), 500);
    assert_eq!(
        reply.text(),
        r#"{"Err":"option com.docker.network.enable_ipv6: expected a bool, got \"yes\""}"#
    );
}

#[tokio::test]
async fn the_client_reads_ipam_replies_as_dockerds_ipam_proxy_does() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = Scripted::start(&dir.path().join("p.sock"), |_, seen| {
        match seen.body.as_str() {
            // A 200 whose `Err` is set is a success for IPAM…
            b if b.contains("10.1.0.0") => Answer::Reply(
                200,
                r#"{"Err":"ignored","PoolID":"p","Pool":"10.1.0.0/16"}"#.into(),
            ),
            // …and a 200 whose `Error` is set a failure.
            _ => Answer::Reply(
                200,
                r#"{"Error":"pool overlaps","PoolID":"","Pool":""}"#.into(),
            ),
        }
    });
    let client = Client::unix(&plugin.socket);
    let ask = |pool: &str| ipam::RequestPoolRequest {
        address_space: "local".into(),
        pool: Some(pool.parse().unwrap()),
        sub_pool: None,
        options: Default::default(),
        v6: false,
    };
    let reply = client
        .call::<ipam::RequestPool>(&ask("10.1.0.0/16"))
        .await
        .unwrap();
    assert_eq!(reply.pool.to_string(), "10.1.0.0/16");
    let err = client
        .call::<ipam::RequestPool>(&ask("10.2.0.0/16"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Plugin { status: 200, message, .. } if message == "pool overlaps"),
        "{err}"
    );
    // What dockerd sends for a pool without a sub-pool or options: `""` and an empty
    // map, `{}` (recorded from dockerd 20.10.24: tests/golden/ipam/*.dockerd.json).
    let seen = plugin.seen();
    assert_eq!(
        seen[0].body,
        "{\"AddressSpace\":\"local\",\"Pool\":\"10.1.0.0/16\",\"SubPool\":\"\",\"Options\":{},\"V6\":false}\n"
    );
}

#[tokio::test]
async fn ipam_requests_decode_the_gateway_type_the_mac_and_plain_addresses() {
    let (s, _) = server().await;
    let pool = s
        .client
        .call::<ipam::RequestPool>(&serde_json::from_value(json!({"AddressSpace": "local", "Pool": "10.99.0.0/24", "SubPool": "", "Options": null, "V6": false})).unwrap())
        .await
        .unwrap();
    assert_eq!(pool.pool_id, "local/10.99.0.0/24");
    assert_eq!(pool.data[GATEWAY], "10.99.0.1/24");
    let ask = |body: Value| {
        let client = s.client.clone();
        async move {
            let reply = post(&client, "IpamDriver.RequestAddress", body).await;
            (reply.status.as_u16(), reply.text())
        }
    };
    assert_eq!(
        ask(json!({"PoolID": pool.pool_id, "Address": "", "Options": {"RequestAddressType": "com.docker.network.gateway"}})).await,
        (200, r#"{"Address":"10.99.0.1/24"}"#.into())
    );
    assert_eq!(
        ask(json!({"PoolID": pool.pool_id, "Address": "10.99.0.7", "Options": null})).await,
        (200, r#"{"Address":"10.99.0.7/24"}"#.into())
    );
    // With RequiresMACAddress dockerd sends the MAC as text here, not base64.
    assert_eq!(
        ask(json!({"PoolID": pool.pool_id, "Address": "", "Options": {"com.docker.network.endpoint.macaddress": "02:42:0a:63:00:09"}})).await,
        (200, r#"{"Address":"10.99.0.9/24"}"#.into())
    );
    let reply = post(
        &s.client,
        "IpamDriver.ReleaseAddress",
        json!({"PoolID": pool.pool_id, "Address": "10.99.0.7"}),
    )
    .await;
    assert_eq!((reply.status.as_u16(), reply.text()), (200, "{}".into()));
}
