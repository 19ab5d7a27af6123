//! IPAM plugins (`IpamDriver`): the trait an address manager implements, its wire
//! types and its declared methods.
//!
//! dockerd asks an IPAM driver (`docker network create --ipam-driver NAME`) for each
//! network's pools and gateway, and for each endpoint's address. Implement [`Driver`]
//! and register it with [`Plugin::ipam`](crate::Plugin::ipam), alone or beside a
//! network driver in the same process.
//!
//! ```no_run
//! use docker_plugin_sdk::ipam::{self, *};
//! use docker_plugin_sdk::{async_trait, Error, Plugin, Result};
//!
//! /// Hands out 10.99.0.2 .. 10.99.0.254 of one pool (no state kept: a sketch).
//! struct OnePool;
//!
//! #[async_trait]
//! impl ipam::Driver for OnePool {
//!     async fn get_default_address_spaces(&self) -> Result<AddressSpacesResponse> {
//!         Ok(AddressSpacesResponse {
//!             local_default_address_space: "local".into(),
//!             global_default_address_space: "global".into(),
//!         })
//!     }
//!     async fn request_pool(&self, req: RequestPoolRequest) -> Result<RequestPoolResponse> {
//!         let pool = req.pool.unwrap_or("10.99.0.0/24".parse()?);
//!         Ok(RequestPoolResponse::new(pool.network().to_string(), pool.network()))
//!     }
//!     async fn release_pool(&self, _req: ReleasePoolRequest) -> Result<()> { Ok(()) }
//!     async fn request_address(&self, req: RequestAddressRequest) -> Result<RequestAddressResponse> {
//!         let pool: Cidr = req.pool_id.parse()?;
//!         let addr = match (req.address, req.is_gateway()) {
//!             (Some(asked), _) => asked,
//!             (None, true) => "10.99.0.1".parse()?,
//!             (None, false) => return Err(Error::new("a sketch: give --ip")),
//!         };
//!         Ok(RequestAddressResponse::new(pool.with_addr(addr)?))
//!     }
//!     async fn release_address(&self, _req: ReleaseAddressRequest) -> Result<()> { Ok(()) }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     Plugin::new().ipam(OnePool).serve_unix("onepool").await?;
//!     Ok(())
//! }
//! ```
//!
//! How dockerd drives an IPAM driver (moby v20.10.24 libnetwork, `shared/protocol.md`
//! section 5): GetCapabilities (optional) and GetDefaultAddressSpaces (mandatory: an
//! error leaves the driver unregistered) when the plugin appears; `docker network
//! create` calls RequestPool, then RequestAddress for the gateway (unless the pool's
//! `Data` named one); each endpoint calls RequestAddress (with `--ip` as `Address`)
//! before CreateEndpoint and ReleaseAddress after DeleteEndpoint; `docker network rm`
//! releases the gateway, then the pool.
//!
//! **Errors travel in `Error`.** dockerd's IPAM proxy reads a 200 reply's `Error`
//! key, and takes a 200 with `{"Err": "..."}` for success (`ipams/remote/api`'s
//! `Response`; Docker's documentation says "as the network driver", moby disagrees and
//! wins). Its `pkg/plugins` client reads a non-200 reply's `Err` key, and shows the
//! whole body when there is none. So a failed IPAM call is answered with the error's
//! status and `{"Err": m, "Error": m}`: every reader finds the message.

mod wire;

use std::sync::Arc;

use async_trait::async_trait;

pub use crate::network::Cidr;
pub use wire::*;

use crate::dispatch::Subsystem;
use crate::error::{Error, Result};
use crate::protocol::{
    DEFAULT_BODY_LIMIT, Empty, ErrorKey, Method, RequestBody, SubsystemSpec, declare_method,
    method_list,
};

// The methods, each declared once. Like network drivers, IPAM drivers are called
// through `pkg/plugins`' `Client.Call` without a deadline of dockerd's own (moby
// v20.10.24 `ipams/remote/remote.go`); the error key is `Error`.

/// The value of `Implements` for IPAM drivers.
pub const IMPLEMENTS: &str = "IpamDriver";

/// The IPAM subsystem as dockerd knows it.
pub const SUBSYSTEM: SubsystemSpec = SubsystemSpec {
    implements: IMPLEMENTS,
    body_limit: DEFAULT_BODY_LIMIT,
    call_timeout: None,
    methods: METHODS,
};

/// Declares a method of `IpamDriver`: its error in `Error`.
macro_rules! ipam_method {
    ($(#[$doc:meta])* $name:ident, $request:ty, $response:ty $(, $($item:item)*)?) => {
        declare_method!(
            "IpamDriver",
            $(#[$doc])* $name,
            $request,
            $response,
            const ERROR_KEY: ErrorKey = ErrorKey::Error;
            $($($item)*)?
        );
    };
}

ipam_method!(
    /// `/IpamDriver.GetCapabilities`, optional: on any error (a 404 included) dockerd
    /// registers the driver without capabilities.
    GetCapabilities,
    Empty,
    CapabilitiesResponse,
    const OPTIONAL: bool = true;
    const REQUEST_BODY: RequestBody = RequestBody::Empty;
);
ipam_method!(
    /// `/IpamDriver.GetDefaultAddressSpaces`, mandatory: on an error dockerd does not
    /// register the driver.
    GetDefaultAddressSpaces,
    Empty,
    AddressSpacesResponse,
    const REQUEST_BODY: RequestBody = RequestBody::Empty;
);
ipam_method!(
    /// `/IpamDriver.RequestPool`.
    RequestPool,
    RequestPoolRequest,
    RequestPoolResponse
);
ipam_method!(
    /// `/IpamDriver.ReleasePool`: reply `{}`.
    ReleasePool,
    ReleasePoolRequest,
    Empty
);
ipam_method!(
    /// `/IpamDriver.RequestAddress`.
    RequestAddress,
    RequestAddressRequest,
    RequestAddressResponse
);
ipam_method!(
    /// `/IpamDriver.ReleaseAddress`: reply `{}`.
    ReleaseAddress,
    ReleaseAddressRequest,
    Empty
);

method_list!(
    GetCapabilities,
    GetDefaultAddressSpaces,
    RequestPool,
    ReleasePool,
    RequestAddress,
    ReleaseAddress,
);

/// An IPAM driver. Every method but [`get_capabilities`](Driver::get_capabilities) is
/// required; an error reaches dockerd in `Error` (see the [module](self) docs) and the
/// user as `remote: <message>`.
///
/// dockerd calls it concurrently (two containers starting on one network) and again
/// after a failure, and, unless the capabilities ask for a replay, a daemon restart
/// does not tell it what is still allocated: keep allocations in a store that
/// survives restarts ([`state::Store`](crate::state::Store)), never hand out an
/// address twice, and treat a release of what is not allocated as done.
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// What dockerd must send: MAC addresses with RequestAddress, a replay of every
    /// request at each daemon start. Optional: by default a 404, which dockerd reads
    /// as neither.
    async fn get_capabilities(&self) -> Result<CapabilitiesResponse> {
        Err(Error::not_implemented(GetCapabilities::NAME))
    }

    /// The address spaces dockerd asks pools from by default.
    async fn get_default_address_spaces(&self) -> Result<AddressSpacesResponse>;

    /// A pool for a network: `req.pool` when the user gave `--subnet`, else one the
    /// driver picks.
    async fn request_pool(&self, req: RequestPoolRequest) -> Result<RequestPoolResponse>;

    /// The network is gone (its addresses were released first).
    async fn release_pool(&self, req: ReleasePoolRequest) -> Result<()>;

    /// An address of a pool: `req.address` when asked for (`--ip`, `--gateway`),
    /// else a free one; [`RequestAddressRequest::is_gateway`] for the gateway.
    async fn request_address(&self, req: RequestAddressRequest) -> Result<RequestAddressResponse>;

    /// An address is free again.
    async fn release_address(&self, req: ReleaseAddressRequest) -> Result<()>;
}

/// The routes of an IPAM driver: one per declared method.
pub(crate) fn subsystem<D: Driver>(driver: D) -> Subsystem {
    let driver = Arc::new(driver);
    let done = |()| Empty {};
    Subsystem::new(&SUBSYSTEM)
        .route(GetCapabilities, &driver, |d, _| async move {
            d.get_capabilities().await
        })
        .route(GetDefaultAddressSpaces, &driver, |d, _| async move {
            d.get_default_address_spaces().await
        })
        .route(RequestPool, &driver, |d, r| async move {
            d.request_pool(r).await
        })
        .route(ReleasePool, &driver, move |d, r| async move {
            d.release_pool(r).await.map(done)
        })
        .route(RequestAddress, &driver, |d, r| async move {
            d.request_address(r).await
        })
        .route(ReleaseAddress, &driver, move |d, r| async move {
            d.release_address(r).await.map(done)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;

    #[async_trait]
    impl Driver for Nothing {
        async fn get_default_address_spaces(&self) -> Result<AddressSpacesResponse> {
            Ok(AddressSpacesResponse::default())
        }
        async fn request_pool(&self, _: RequestPoolRequest) -> Result<RequestPoolResponse> {
            Err(Error::new("none"))
        }
        async fn release_pool(&self, _: ReleasePoolRequest) -> Result<()> {
            Ok(())
        }
        async fn request_address(
            &self,
            _: RequestAddressRequest,
        ) -> Result<RequestAddressResponse> {
            Err(Error::new("none"))
        }
        async fn release_address(&self, _: ReleaseAddressRequest) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_server_routes_exactly_the_declared_methods_each_erring_in_error() {
        let served = subsystem(Nothing).method_names();
        let declared: Vec<&str> = METHODS.iter().map(|m| m.name).collect();
        assert_eq!(served, declared);
        assert!(METHODS.iter().all(|m| m.error_key == ErrorKey::Error));
        let optional: Vec<&str> = METHODS
            .iter()
            .filter(|m| m.optional)
            .map(|m| m.name)
            .collect();
        assert_eq!(optional, ["IpamDriver.GetCapabilities"]);
    }
}
