//! The `IpamDriver` types. Go's are moby v20.10.24
//! `vendor/github.com/docker/libnetwork/ipams/remote/api/api.go`.

use docker_plugin_sdk::ipam::{
    AddressSpacesResponse, CapabilitiesResponse, ReleaseAddressRequest, ReleasePoolRequest,
    RequestAddressRequest, RequestAddressResponse, RequestPoolRequest, RequestPoolResponse,
};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::Wire;
use super::strategies::{cidr, go_string_map, ip, name, object, or_empty, string_map, text};

impl Wire for CapabilitiesResponse {
    fn strategy() -> BoxedStrategy<Self> {
        any::<(bool, bool)>()
            .prop_map(
                |(requires_mac_address, requires_request_replay)| CapabilitiesResponse {
                    requires_mac_address,
                    requires_request_replay,
                },
            )
            .boxed()
    }
    fn go(&self) -> Value {
        json!({
            "RequiresMACAddress": self.requires_mac_address,
            "RequiresRequestReplay": self.requires_request_replay,
        })
    }
}

impl Wire for AddressSpacesResponse {
    fn strategy() -> BoxedStrategy<Self> {
        (text(), text())
            .prop_map(|(local, global)| AddressSpacesResponse {
                local_default_address_space: local,
                global_default_address_space: global,
            })
            .boxed()
    }
    fn go(&self) -> Value {
        json!({
            "LocalDefaultAddressSpace": self.local_default_address_space,
            "GlobalDefaultAddressSpace": self.global_default_address_space,
        })
    }
}

impl Wire for RequestPoolRequest {
    fn strategy() -> BoxedStrategy<Self> {
        (
            text(),
            prop::option::of(cidr()),
            prop::option::of(cidr()),
            string_map(),
            any::<bool>(),
        )
            .prop_map(
                |(address_space, pool, sub_pool, options, v6)| RequestPoolRequest {
                    address_space,
                    pool,
                    sub_pool,
                    options,
                    v6,
                },
            )
            .boxed()
    }
    fn go(&self) -> Value {
        json!({
            "AddressSpace": self.address_space,
            "Pool": or_empty(self.pool),
            "SubPool": or_empty(self.sub_pool),
            // dockerd always makes this map (`ipamapi` options), so `{}`.
            "Options": object(&self.options),
            "V6": self.v6,
        })
    }
}

/// A reply's `Data`, left out when empty.
fn with_data(mut go: Value, data: &std::collections::HashMap<String, String>) -> Value {
    if !data.is_empty() {
        go["Data"] = object(data);
    }
    go
}

impl Wire for RequestPoolResponse {
    fn strategy() -> BoxedStrategy<Self> {
        (name(), cidr(), string_map())
            .prop_map(|(pool_id, pool, data)| RequestPoolResponse {
                pool_id,
                pool,
                data,
            })
            .boxed()
    }
    fn go(&self) -> Value {
        with_data(
            json!({"PoolID": self.pool_id, "Pool": self.pool.to_string()}),
            &self.data,
        )
    }
}

impl Wire for ReleasePoolRequest {
    fn strategy() -> BoxedStrategy<Self> {
        name()
            .prop_map(|pool_id| ReleasePoolRequest { pool_id })
            .boxed()
    }
    fn go(&self) -> Value {
        json!({"PoolID": self.pool_id})
    }
}

impl Wire for RequestAddressRequest {
    fn strategy() -> BoxedStrategy<Self> {
        (name(), prop::option::of(ip()), string_map())
            .prop_map(|(pool_id, address, options)| RequestAddressRequest {
                pool_id,
                address,
                options,
            })
            .boxed()
    }
    fn go(&self) -> Value {
        json!({
            "PoolID": self.pool_id,
            "Address": or_empty(self.address),
            "Options": go_string_map(&self.options),
        })
    }
}

impl Wire for RequestAddressResponse {
    fn strategy() -> BoxedStrategy<Self> {
        (cidr(), string_map())
            .prop_map(|(address, data)| RequestAddressResponse { address, data })
            .boxed()
    }
    fn go(&self) -> Value {
        with_data(json!({"Address": self.address.to_string()}), &self.data)
    }
}

impl Wire for ReleaseAddressRequest {
    fn strategy() -> BoxedStrategy<Self> {
        (name(), ip())
            .prop_map(|(pool_id, address)| ReleaseAddressRequest { pool_id, address })
            .boxed()
    }
    fn go(&self) -> Value {
        json!({"PoolID": self.pool_id, "Address": self.address.to_string()})
    }
}
