//! The network SDK over a real unix socket, spoken to as dockerd 20.10 speaks (moby
//! v20.10.24 libnetwork's `drivers/remote`): every typed field decodes from the bytes
//! dockerd sends, Go's `null` maps and lists are accepted, the defaults keep dockerd
//! working (EndpointOperInfo answers an empty `Value`, only
//! Program/RevokeExternalConnectivity answer 404), CreateEndpoint never echoes what
//! dockerd supplied, and one process serves volume, network and IPAM at once.

mod support;

use std::sync::Arc;

use docker_plugin_sdk::Plugin;
use docker_plugin_sdk::client::Client;
use docker_plugin_sdk::ipam;
use docker_plugin_sdk::network::*;
use docker_plugin_sdk::protocol::Empty;
use serde_json::{Value, json};
use support::netplug::{Addrs, EID, NID, NetDriver, log, post, server};
use support::scripted::{Answer, Scripted};

#[tokio::test]
async fn one_process_implements_volume_network_and_ipam() {
    let (s, _) = server().await;
    let activated = s.client.activate().await.unwrap();
    assert_eq!(
        activated.implements,
        ["VolumeDriver", "NetworkDriver", "IpamDriver"]
    );
    assert_eq!(
        Plugin::new()
            .network(NetDriver(Arc::default()))
            .ipam(Addrs)
            .implements(),
        ["NetworkDriver", "IpamDriver"]
    );
    // Each subsystem answers on the shared socket.
    s.client
        .call::<docker_plugin_sdk::volume::List>(&Empty {})
        .await
        .unwrap();
    s.client.call::<GetCapabilities>(&Empty {}).await.unwrap();
    s.client
        .call::<ipam::GetDefaultAddressSpaces>(&Empty {})
        .await
        .unwrap();
}

#[tokio::test]
async fn create_network_decodes_pools_in_cidr_form_and_the_well_known_options() {
    let (s, net) = server().await;
    // What dockerd 20.10 sends for `docker network create -d P --internal -o mtu=1400
    // --subnet 10.99.0.0/24 --gateway 10.99.0.1 --aux-address router=10.99.0.254`
    // (libnetwork's IPAMData.MarshalJSON: every address a CIDR).
    let reply = post(
        &s.client,
        "NetworkDriver.CreateNetwork",
        json!({
            "NetworkID": NID,
            "Options": {
                "com.docker.network.enable_ipv6": false,
                "com.docker.network.generic": {"mtu": "1400"},
                "com.docker.network.internal": true
            },
            "IPv4Data": [{
                "AddressSpace": "LocalDefault",
                "AuxAddresses": {"router": "10.99.0.254/24"},
                "Gateway": "10.99.0.1/24",
                "Pool": "10.99.0.0/24"
            }],
            "IPv6Data": []
        }),
    )
    .await;
    assert_eq!((reply.status.as_u16(), reply.text()), (200, "{}".into()));
    assert_eq!(
        log(&net),
        [
            r#"CreateNetwork generic=[("mtu", "1400")] ipv6=false internal=true pools=["LocalDefault pool=10.99.0.0/24 net=10.99.0.0/24 gw=Some(10.99.0.1) aux=[\"router=10.99.0.254/24\"]"]"#
        ]
    );
    // A plain gateway, as Docker's documentation shows it, is not what dockerd sends:
    // refused with a message naming the expected form.
    let reply = post(
        &s.client,
        "NetworkDriver.CreateNetwork",
        json!({"NetworkID": NID, "Options": {}, "IPv4Data": [{"AddressSpace": "", "Pool": "10.99.0.0/24", "Gateway": "10.99.0.1"}]}),
    )
    .await;
    assert_eq!(reply.status.as_u16(), 400, "{}", reply.text());
    assert_eq!(
        reply.json().unwrap()["Err"],
        "malformed JSON in NetworkDriver.CreateNetwork request: invalid CIDR \"10.99.0.1\": \
         expected an address and a prefix length, such as 10.0.0.2/24 at line 1 column 53"
    );
}

#[tokio::test]
async fn go_nulls_are_accepted_for_every_map_and_list() {
    let (s, net) = server().await;
    let calls = [
        (
            "NetworkDriver.CreateNetwork",
            json!({"NetworkID": NID, "Options": null, "IPv4Data": null, "IPv6Data": null}),
        ),
        (
            "NetworkDriver.CreateNetwork",
            json!({"NetworkID": NID, "Options": {"com.docker.network.generic": null},
                   "IPv4Data": [{"AddressSpace": "x", "Pool": "10.1.0.0/16", "AuxAddresses": null}]}),
        ),
        (
            "NetworkDriver.CreateEndpoint",
            json!({"NetworkID": NID, "EndpointID": EID, "Interface": null, "Options": null}),
        ),
        (
            "NetworkDriver.CreateEndpoint",
            json!({"NetworkID": NID, "EndpointID": EID,
                   "Interface": {"Address": "", "AddressIPv6": "", "MacAddress": ""},
                   "Options": {"com.docker.network.portmap": null, "com.docker.network.endpoint.exposedports": null}}),
        ),
        (
            "NetworkDriver.Join",
            json!({"NetworkID": NID, "EndpointID": EID, "SandboxKey": "/k", "Options": null}),
        ),
        (
            "NetworkDriver.ProgramExternalConnectivity",
            json!({"NetworkID": NID, "EndpointID": EID, "Options": null}),
        ),
        (
            "NetworkDriver.AllocateNetwork",
            json!({"NetworkID": NID, "Options": null, "IPv4Data": null, "IPv6Data": null}),
        ),
        ("NetworkDriver.GwAllocCheck", json!({"Options": null})),
        (
            "IpamDriver.RequestPool",
            json!({"AddressSpace": "local", "Pool": "10.99.0.0/24", "SubPool": "", "Options": null, "V6": false}),
        ),
        (
            "IpamDriver.RequestAddress",
            json!({"PoolID": "local/10.99.0.0/24", "Address": "", "Options": null}),
        ),
    ];
    for (method, body) in calls {
        let reply = post(&s.client, method, body.clone()).await;
        // ProgramExternalConnectivity is not implemented: decoded, then 404.
        let expected = if method.ends_with("ProgramExternalConnectivity") {
            404
        } else {
            200
        };
        assert_eq!(
            reply.status.as_u16(),
            expected,
            "{method} {body}: {}",
            reply.text()
        );
    }
    assert_eq!(
        log(&net),
        [
            "CreateNetwork generic=[] ipv6=false internal=false pools=[]",
            r#"CreateNetwork generic=[] ipv6=false internal=false pools=["x pool=10.1.0.0/16 net=10.1.0.0/16 gw=None aux=[]"]"#,
            "CreateEndpoint EndpointInterface { address: None, address_ipv6: None, mac_address: None } exposed=[] portmap=[] mac=None dns=[]",
            "CreateEndpoint EndpointInterface { address: None, address_ipv6: None, mac_address: None } exposed=[] portmap=[] mac=None dns=[]",
            "Join /k exposed=[]",
        ]
    );
}

#[tokio::test]
async fn endpoint_options_decode_ports_dns_and_the_base64_mac() {
    let (s, net) = server().await;
    // `docker run --network N --mac-address 02:42:0a:63:00:02 --dns 10.99.0.53 -p
    // 127.0.0.1:8080:80` (moby v20.10.24 daemon/container_operations.go: the MAC is a
    // net.HardwareAddr, a []byte Go writes in base64; Proto 6 is TCP).
    let reply = post(
        &s.client,
        "NetworkDriver.CreateEndpoint",
        json!({
            "NetworkID": NID, "EndpointID": EID,
            "Interface": {"Address": "10.99.0.2/24", "AddressIPv6": "", "MacAddress": "02:42:0a:63:00:02"},
            "Options": {
                "com.docker.network.endpoint.dnsservers": ["10.99.0.53"],
                "com.docker.network.endpoint.exposedports": [{"Proto": 6, "Port": 80}],
                "com.docker.network.endpoint.macaddress": "AkIKYwAC",
                "com.docker.network.portmap": [{"Proto": 6, "IP": "", "Port": 80, "HostIP": "127.0.0.1", "HostPort": 8080, "HostPortEnd": 8080}]
            }
        }),
    )
    .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text());
    assert_eq!(
        log(&net),
        [
            "CreateEndpoint EndpointInterface { address: Some(Cidr { addr: 10.99.0.2, prefix_len: 24 }), address_ipv6: None, mac_address: Some(MacAddress([2, 66, 10, 99, 0, 2])) } \
          exposed=[TransportPort { proto: Protocol(6), port: 80 }] \
          portmap=[PortBinding { proto: Protocol(6), ip: None, port: 80, host_ip: Some(127.0.0.1), host_port: 8080, host_port_end: 8080 }] \
          mac=Some(\"02:42:0a:63:00:02\") dns=[10.99.0.53]"
        ]
    );
    // The driver offered all three; dockerd had the IPv4 address and the MAC, so only
    // the IPv6 address goes back (setting the others would fail the endpoint).
    assert_eq!(
        reply.json().unwrap(),
        json!({"Interface": {"Address": "", "AddressIPv6": "fd00:99::200/64", "MacAddress": ""}})
    );
}

#[tokio::test]
async fn create_endpoint_never_echoes_an_interface_dockerd_supplied() {
    let (s, _) = server().await;
    let create = |interface: Value| CreateEndpointRequest {
        network_id: NID.into(),
        endpoint_id: EID.into(),
        interface: serde_json::from_value(interface).unwrap(),
        options: Options::new(),
    };
    // Everything supplied: the reply is `"Interface": null`.
    let full = create(
        json!({"Address": "10.99.0.2/24", "AddressIPv6": "fd00:99::2/64", "MacAddress": "02:42:0a:63:00:02"}),
    );
    let reply = s.client.call::<CreateEndpoint>(&full).await.unwrap();
    assert_eq!(reply.interface(), None);
    let raw = post(
        &s.client,
        "NetworkDriver.CreateEndpoint",
        serde_json::to_value(&full).unwrap(),
    )
    .await;
    assert_eq!(raw.text(), r#"{"Interface":null}"#);
    // Nothing supplied: the driver's own addresses go back.
    let empty = create(json!({"Address": "", "AddressIPv6": "", "MacAddress": ""}));
    let reply = s.client.call::<CreateEndpoint>(&empty).await.unwrap();
    let interface = reply.interface().unwrap();
    assert_eq!(interface.address.unwrap().to_string(), "10.99.0.200/24");
    assert_eq!(
        interface.mac_address.unwrap().to_string(),
        "02:00:00:00:00:c8"
    );
}

#[tokio::test]
async fn join_answers_plain_gateways_typed_routes_and_the_interface_name() {
    let (s, net) = server().await;
    let reply = post(
        &s.client,
        "NetworkDriver.Join",
        json!({"NetworkID": NID, "EndpointID": EID, "SandboxKey": "/var/run/docker/netns/3c1d6e2b7a4f",
               "Options": {"com.docker.network.endpoint.exposedports": [{"Proto": 17, "Port": 53}], "com.docker.network.portmap": []}}),
    )
    .await;
    assert_eq!(
        reply.json().unwrap(),
        json!({
            "InterfaceName": {"SrcName": "veth9f8e7d6", "DstPrefix": "eth"},
            "Gateway": "10.99.0.1",
            "GatewayIPv6": "",
            "StaticRoutes": [
                {"Destination": "10.100.0.0/16", "RouteType": 0, "NextHop": "10.99.0.254"},
                {"Destination": "10.101.0.0/16", "RouteType": 1, "NextHop": ""}
            ],
            "DisableGatewayService": false
        })
    );
    assert_eq!(
        log(&net),
        [
            "Join /var/run/docker/netns/3c1d6e2b7a4f exposed=[TransportPort { proto: Protocol(17), port: 53 }]"
        ]
    );
    let typed = s
        .client
        .call::<Join>(
            &serde_json::from_value(
                json!({"NetworkID": NID, "EndpointID": EID, "SandboxKey": "/k", "Options": {}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(typed.static_routes[0].route_type, RouteType::NextHop);
    assert_eq!(typed.static_routes[1].next_hop, None);
}

#[tokio::test]
async fn defaults_keep_dockerd_working_and_only_external_connectivity_is_404() {
    let (s, _) = server().await;
    let endpoint = json!({"NetworkID": NID, "EndpointID": EID});
    // A 404 from EndpointOperInfo fails `docker run` on dockerd 20.10: `{"Value":{}}`.
    let reply = post(
        &s.client,
        "NetworkDriver.EndpointOperInfo",
        endpoint.clone(),
    )
    .await;
    assert_eq!(
        (reply.status.as_u16(), reply.text()),
        (200, r#"{"Value":{}}"#.into())
    );
    let swarm = [
        (
            "NetworkDriver.AllocateNetwork",
            json!({"NetworkID": NID, "Options": {}, "IPv4Data": [], "IPv6Data": []}),
            r#"{"Options":{}}"#,
        ),
        ("NetworkDriver.FreeNetwork", json!({"NetworkID": NID}), "{}"),
        (
            "NetworkDriver.DiscoverNew",
            json!({"DiscoveryType": 1, "DiscoveryData": {"Address": "192.168.1.10", "BindAddress": "0.0.0.0", "Self": true}}),
            "{}",
        ),
        (
            "NetworkDriver.DiscoverDelete",
            json!({"DiscoveryType": 1, "DiscoveryData": {"Address": "192.168.1.10", "BindAddress": "0.0.0.0", "Self": false}}),
            "{}",
        ),
        (
            "NetworkDriver.GwAllocCheck",
            json!({"Options": {}}),
            r#"{"SkipIPv4":false,"SkipIPv6":false}"#,
        ),
    ];
    for (method, body, expected) in swarm {
        let reply = post(&s.client, method, body).await;
        assert_eq!(
            (reply.status.as_u16(), reply.text()),
            (200, expected.into()),
            "{method}"
        );
    }
    for method in [
        "NetworkDriver.ProgramExternalConnectivity",
        "NetworkDriver.RevokeExternalConnectivity",
    ] {
        let reply = post(&s.client, method, endpoint.clone()).await;
        assert_eq!(reply.status.as_u16(), 404, "{method}: {}", reply.text());
        assert_eq!(
            reply.json().unwrap()["Err"],
            format!("{method} is not implemented by this plugin")
        );
    }
    let err = s
        .client
        .call::<RevokeExternalConnectivity>(&EndpointRequest {
            network_id: NID.into(),
            endpoint_id: EID.into(),
        })
        .await
        .unwrap_err();
    assert!(err.is_not_implemented(), "{err}");
    // IPAM's GetCapabilities is optional too: dockerd then registers it without any.
    let err = s
        .client
        .call::<ipam::GetCapabilities>(&Empty {})
        .await
        .unwrap_err();
    assert!(err.is_not_implemented(), "{err}");
}

#[tokio::test]
async fn capabilities_scope_is_exactly_local_or_global_as_dockerd_reads_it() {
    let (s, _) = server().await;
    let reply = s
        .client
        .call_raw("NetworkDriver.GetCapabilities", "")
        .await
        .unwrap();
    assert_eq!(
        reply.text(),
        r#"{"Scope":"local","ConnectivityScope":"global","GwAllocChecker":false}"#
    );
    // A plugin answering `Local` is not registered by dockerd; the client refuses it.
    let dir = tempfile::tempdir().unwrap();
    let plugin = Scripted::start(&dir.path().join("p.sock"), |_, _| {
        Answer::Reply(200, r#"{"Scope":"Local"}"#.into())
    });
    let err = Client::unix(&plugin.socket)
        .call::<GetCapabilities>(&Empty {})
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown variant `Local`, expected `local` or `global`"),
        "{err}"
    );
}
