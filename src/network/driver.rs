//! The network driver trait, with defaults that keep dockerd working, and its routes:
//! one per declared method.

use std::sync::Arc;

use async_trait::async_trait;

use super::*;
use crate::dispatch::Subsystem;
use crate::error::{Error, Result};
use crate::protocol::{Empty, Method};

/// A network driver.
///
/// Required: what every network needs (capabilities, networks, endpoints, joins).
/// Provided, with defaults that keep dockerd working:
///
/// - [`endpoint_oper_info`](Driver::endpoint_oper_info) answers an empty `Value`:
///   dockerd 20.10 fails `docker run` on any error there, a 404 included;
/// - [`program_external_connectivity`](Driver::program_external_connectivity) and
///   [`revoke_external_connectivity`](Driver::revoke_external_connectivity) answer
///   404, the only "not implemented" dockerd accepts from a network driver;
/// - the swarm-only methods (AllocateNetwork, FreeNetwork, DiscoverNew,
///   DiscoverDelete), which dockerd sends only in swarm mode for a `global` driver,
///   accept and do nothing; [`gw_alloc_check`](Driver::gw_alloc_check), sent only
///   when advertised, lets dockerd reserve both gateways.
///
/// An error becomes the `Err` dockerd reports as `remote: <message>`. Methods are
/// called concurrently (two containers starting) and again after a failure: make them
/// idempotent, and do not block the runtime's threads (netlink calls through an async
/// crate or `tokio::task::spawn_blocking`).
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// The driver's scope, its connectivity scope, and whether it wants
    /// [`gw_alloc_check`](Driver::gw_alloc_check) calls. Called once, when dockerd
    /// finds the plugin: an error leaves the driver unregistered.
    async fn get_capabilities(&self) -> Result<CapabilitiesResponse>;

    /// May dockerd 28+ skip reserving gateway addresses for a network with these
    /// options? Called only when [`CapabilitiesResponse::gw_alloc_checker`] is set; by
    /// default, no.
    async fn gw_alloc_check(&self, req: GwAllocCheckRequest) -> Result<GwAllocCheckResponse> {
        let _ = req;
        Ok(GwAllocCheckResponse::default())
    }

    /// Creates a network (its pools in `req.ipv4_data`, its `-o` options in
    /// `req.options.generic()`). On an error dockerd releases the pools.
    async fn create_network(&self, req: CreateNetworkRequest) -> Result<()>;

    /// Swarm managers only (a `global` driver): allocate cluster-wide resources for a
    /// network; the reply's options reach every node's CreateNetwork. By default,
    /// nothing to allocate.
    async fn allocate_network(
        &self,
        req: AllocateNetworkRequest,
    ) -> Result<AllocateNetworkResponse> {
        let _ = req;
        Ok(AllocateNetworkResponse::default())
    }

    /// Deletes a network (dockerd has deleted its endpoints first). dockerd only logs
    /// an error: leave nothing behind.
    async fn delete_network(&self, req: NetworkRequest) -> Result<()>;

    /// Swarm managers only: free what [`allocate_network`](Driver::allocate_network)
    /// allocated. By default, nothing.
    async fn free_network(&self, req: NetworkRequest) -> Result<()> {
        let _ = req;
        Ok(())
    }

    /// Creates an endpoint. Answer [`CreateEndpointResponse::unchanged`], or build the
    /// reply with `req.interface.fill()` to supply what dockerd left empty.
    async fn create_endpoint(&self, req: CreateEndpointRequest) -> Result<CreateEndpointResponse>;

    /// Details about an endpoint, called after every Join; by default none
    /// (`{"Value":{}}`). Never fail it for want of details: dockerd 20.10 then fails
    /// the container's start.
    async fn endpoint_oper_info(&self, req: EndpointRequest) -> Result<EndpointOperInfoResponse> {
        let _ = req;
        Ok(EndpointOperInfoResponse::default())
    }

    /// Deletes an endpoint (after Leave).
    async fn delete_endpoint(&self, req: EndpointRequest) -> Result<()>;

    /// Joins an endpoint to a container's sandbox: the interface dockerd moves in,
    /// the gateways, the routes.
    async fn join(&self, req: JoinRequest) -> Result<JoinResponse>;

    /// The container left the endpoint.
    async fn leave(&self, req: EndpointRequest) -> Result<()>;

    /// Swarm only: a node joined. By default ignored (dockerd ignores errors here).
    async fn discover_new(&self, req: DiscoveryNotification) -> Result<()> {
        let _ = req;
        Ok(())
    }

    /// Swarm only: a node left. By default ignored.
    async fn discover_delete(&self, req: DiscoveryNotification) -> Result<()> {
        let _ = req;
        Ok(())
    }

    /// Publishes the endpoint's ports (`req.options.port_map()`). Optional: by default
    /// a 404, which dockerd takes as nothing to do.
    async fn program_external_connectivity(
        &self,
        req: ProgramExternalConnectivityRequest,
    ) -> Result<()> {
        let _ = req;
        Err(Error::not_implemented(ProgramExternalConnectivity::NAME))
    }

    /// Undoes [`program_external_connectivity`](Driver::program_external_connectivity).
    /// Optional: by default a 404.
    async fn revoke_external_connectivity(&self, req: EndpointRequest) -> Result<()> {
        let _ = req;
        Err(Error::not_implemented(RevokeExternalConnectivity::NAME))
    }
}

/// The routes of a network driver: one per declared method.
pub(crate) fn subsystem<D: Driver>(driver: D) -> Subsystem {
    let driver = Arc::new(driver);
    let done = |()| Empty {};
    Subsystem::new(&SUBSYSTEM)
        .route(GetCapabilities, &driver, |d, _| async move {
            d.get_capabilities().await
        })
        .route(GwAllocCheck, &driver, |d, r| async move {
            d.gw_alloc_check(r).await
        })
        .route(CreateNetwork, &driver, move |d, r| async move {
            d.create_network(r).await.map(done)
        })
        .route(AllocateNetwork, &driver, |d, r| async move {
            d.allocate_network(r).await
        })
        .route(DeleteNetwork, &driver, move |d, r| async move {
            d.delete_network(r).await.map(done)
        })
        .route(FreeNetwork, &driver, move |d, r| async move {
            d.free_network(r).await.map(done)
        })
        .route(CreateEndpoint, &driver, |d, r| async move {
            d.create_endpoint(r).await
        })
        .route(EndpointOperInfo, &driver, |d, r| async move {
            d.endpoint_oper_info(r).await
        })
        .route(DeleteEndpoint, &driver, move |d, r| async move {
            d.delete_endpoint(r).await.map(done)
        })
        .route(Join, &driver, |d, r| async move { d.join(r).await })
        .route(Leave, &driver, move |d, r| async move {
            d.leave(r).await.map(done)
        })
        .route(DiscoverNew, &driver, move |d, r| async move {
            d.discover_new(r).await.map(done)
        })
        .route(DiscoverDelete, &driver, move |d, r| async move {
            d.discover_delete(r).await.map(done)
        })
        .route(
            ProgramExternalConnectivity,
            &driver,
            move |d, r| async move { d.program_external_connectivity(r).await.map(done) },
        )
        .route(
            RevokeExternalConnectivity,
            &driver,
            move |d, r| async move { d.revoke_external_connectivity(r).await.map(done) },
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;

    #[async_trait]
    impl Driver for Nothing {
        async fn get_capabilities(&self) -> Result<CapabilitiesResponse> {
            Ok(CapabilitiesResponse::default())
        }
        async fn create_network(&self, _: CreateNetworkRequest) -> Result<()> {
            Ok(())
        }
        async fn delete_network(&self, _: NetworkRequest) -> Result<()> {
            Ok(())
        }
        async fn create_endpoint(
            &self,
            _: CreateEndpointRequest,
        ) -> Result<CreateEndpointResponse> {
            Ok(CreateEndpointResponse::unchanged())
        }
        async fn delete_endpoint(&self, _: EndpointRequest) -> Result<()> {
            Ok(())
        }
        async fn join(&self, _: JoinRequest) -> Result<JoinResponse> {
            Ok(JoinResponse::default())
        }
        async fn leave(&self, _: EndpointRequest) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_server_routes_exactly_the_declared_methods() {
        let served = subsystem(Nothing).method_names();
        let declared: Vec<&str> = METHODS.iter().map(|m| m.name).collect();
        assert_eq!(served, declared);
    }

    #[test]
    fn only_the_external_connectivity_methods_may_answer_404() {
        let optional: Vec<&str> = METHODS
            .iter()
            .filter(|m| m.optional)
            .map(|m| m.short_name())
            .collect();
        assert_eq!(
            optional,
            ["ProgramExternalConnectivity", "RevokeExternalConnectivity"]
        );
    }
}
