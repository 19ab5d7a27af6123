//! The IPAM driver: each dockerd call is one change of the allocations, made inside
//! the SDK's [`Store`], so it is saved (crash-safe) before dockerd gets its answer.
//! A restarted plugin opens the same file and knows every address it gave: it never
//! hands one out twice, and it does not need dockerd to replay its requests
//! (`RequiresRequestReplay` is false).

use docker_plugin_sdk::ipam::{
    self, AddressSpacesResponse, CapabilitiesResponse, ReleaseAddressRequest, ReleasePoolRequest,
    RequestAddressRequest, RequestAddressResponse, RequestPoolRequest, RequestPoolResponse,
};
use docker_plugin_sdk::state::Store;
use docker_plugin_sdk::{Result, async_trait};

use crate::allocator::{Allocations, Config, Purpose};

/// Addresses from configured pools, persisted in a state file.
pub struct PoolIpam {
    config: Config,
    allocations: Store<Allocations>,
}

impl PoolIpam {
    /// The driver allocating as `config` says, its allocations in `allocations`.
    pub fn new(config: Config, allocations: Store<Allocations>) -> Self {
        Self {
            config,
            allocations,
        }
    }
}

#[async_trait]
impl ipam::Driver for PoolIpam {
    async fn get_capabilities(&self) -> Result<CapabilitiesResponse> {
        Ok(CapabilitiesResponse {
            requires_mac_address: false,
            // The allocations are on disk: no replay at dockerd's start.
            requires_request_replay: false,
        })
    }

    async fn get_default_address_spaces(&self) -> Result<AddressSpacesResponse> {
        Ok(AddressSpacesResponse {
            local_default_address_space: "local".into(),
            global_default_address_space: "global".into(),
        })
    }

    async fn request_pool(&self, req: RequestPoolRequest) -> Result<RequestPoolResponse> {
        let config = &self.config;
        let (id, pool) = self
            .allocations
            .update(|a| a.request_pool(config, req.pool, req.sub_pool, req.v6))
            .await??;
        Ok(RequestPoolResponse::new(id, pool))
    }

    async fn release_pool(&self, req: ReleasePoolRequest) -> Result<()> {
        self.allocations
            .update(|a| a.release_pool(&req.pool_id))
            .await?;
        Ok(())
    }

    async fn request_address(&self, req: RequestAddressRequest) -> Result<RequestAddressResponse> {
        // The gateway (`RequestAddressType`): `--gateway` as `req.address`, else the
        // pool's lowest free address, outside the `--ip-range` if need be.
        let purpose = if req.is_gateway() {
            Purpose::Gateway
        } else {
            Purpose::Endpoint
        };
        let address = self
            .allocations
            .update(|a| a.request_address(&req.pool_id, req.address, purpose))
            .await??;
        Ok(RequestAddressResponse::new(address))
    }

    async fn release_address(&self, req: ReleaseAddressRequest) -> Result<()> {
        self.allocations
            .update(|a| a.release_address(&req.pool_id, req.address))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use docker_plugin_sdk::ipam::{Driver, GATEWAY, REQUEST_ADDRESS_TYPE};

    use super::*;

    fn config() -> Config {
        Config {
            pools: vec!["10.210.0.0/16".parse().unwrap()],
            size: 24,
        }
    }

    async fn open(dir: &std::path::Path) -> PoolIpam {
        let store = Store::open(dir.join("allocations.json")).await.unwrap();
        PoolIpam::new(config(), store)
    }

    /// The pool of `--subnet pool [--ip-range range]`.
    async fn subnet(driver: &PoolIpam, pool: &str, range: Option<&str>) -> RequestPoolResponse {
        let req = RequestPoolRequest {
            address_space: "local".into(),
            pool: Some(pool.parse().unwrap()),
            sub_pool: range.map(|r| r.parse().unwrap()),
            options: HashMap::new(),
            v6: false,
        };
        driver.request_pool(req).await.unwrap()
    }

    fn address(pool_id: &str, gateway: bool) -> RequestAddressRequest {
        let mut options = HashMap::new();
        if gateway {
            options.insert(REQUEST_ADDRESS_TYPE.to_owned(), GATEWAY.to_owned());
        }
        RequestAddressRequest {
            pool_id: pool_id.to_owned(),
            address: None,
            options,
        }
    }

    #[tokio::test]
    async fn the_gateway_request_gets_the_pool_s_first_address_outside_the_ip_range() {
        let dir = tempfile::tempdir().unwrap();
        let driver = open(dir.path()).await;
        let pool = subnet(&driver, "10.99.0.0/24", Some("10.99.0.128/25")).await;
        let gateway = driver.request_address(address(&pool.pool_id, true)).await;
        assert_eq!(gateway.unwrap().address.to_string(), "10.99.0.1/24");
        let endpoint = driver.request_address(address(&pool.pool_id, false)).await;
        assert_eq!(endpoint.unwrap().address.to_string(), "10.99.0.128/24");
    }

    #[tokio::test]
    async fn a_restarted_driver_keeps_its_allocations_and_gives_no_address_twice() {
        let dir = tempfile::tempdir().unwrap();
        let driver = open(dir.path()).await;
        let pool = subnet(&driver, "10.99.0.0/24", None).await;
        let gateway = driver.request_address(address(&pool.pool_id, true)).await;
        assert_eq!(gateway.unwrap().address.to_string(), "10.99.0.1/24");
        let first = driver.request_address(address(&pool.pool_id, false)).await;
        assert_eq!(first.unwrap().address.to_string(), "10.99.0.2/24");
        drop(driver); // the plugin stops: its store's lock goes with it

        let driver = open(dir.path()).await;
        let next = driver.request_address(address(&pool.pool_id, false)).await;
        assert_eq!(next.unwrap().address.to_string(), "10.99.0.3/24");
        let again = driver
            .request_address(RequestAddressRequest {
                address: Some("10.99.0.2".parse().unwrap()),
                ..address(&pool.pool_id, false)
            })
            .await;
        assert_eq!(
            again.unwrap_err().message(),
            "address 10.99.0.2 of pool 10.99.0.0/24 is already allocated: choose another --ip, or remove the container that has it"
        );
        driver
            .release_address(ReleaseAddressRequest {
                pool_id: pool.pool_id.clone(),
                address: "10.99.0.2".parse().unwrap(),
            })
            .await
            .unwrap();
        driver
            .release_pool(ReleasePoolRequest {
                pool_id: pool.pool_id.clone(),
            })
            .await
            .unwrap();
        drop(driver);

        let driver = open(dir.path()).await;
        let gone = driver.request_address(address(&pool.pool_id, false)).await;
        assert_eq!(
            gone.unwrap_err().message(),
            "pool 10.99.0.0/24 is not allocated by poolipam (was its network removed?)"
        );
    }
}
