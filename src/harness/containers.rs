//! Containers, as far as plugins can tell: a container references volumes when it is
//! created, mounts them when it starts and unmounts them when it stops, through the
//! volume service (moby v20.10.24 `daemon/volumes.go`, `daemon/start.go`,
//! `daemon/archive.go` for `docker cp`), and joins networks when it starts and leaves
//! them when it stops, through the network service (`daemon/container_operations.go`).
//! The container itself is played by a closure the test passes: nothing is
//! bind-mounted, the closure gets the host paths; a container on a network gets a
//! real network namespace (as root), its [`Container::sandbox_key`], where the
//! driver's interface is moved in as dockerd moves it.

use std::path::{Path, PathBuf};

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::error::HarnessError;
use super::ids::random_id;
use super::metrics::Metrics;
use super::network::{ContainerEndpoint, NetworkUse, Networks, Sandbox};
use super::volume::{VolumeUse, Volumes};

/// One volume mounted into a [`Container`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerMount {
    /// The volume name.
    pub volume: String,
    /// The driver.
    pub driver: String,
    /// The ID sent with Mount and Unmount (one per mount point, kept for the
    /// container's life).
    pub mount_id: String,
    /// What the last Mount answered (empty before the first start).
    pub mountpoint: PathBuf,
}

/// A "container" referencing volumes: made by [`Containers::create`].
#[derive(Debug, Clone)]
pub struct Container {
    /// A 64-hex container ID.
    pub id: String,
    /// Its volume mount points, in the order asked.
    pub mounts: Vec<ContainerMount>,
    /// Whether it is started (its volumes mounted).
    pub running: bool,
    /// The networks it joins when it starts (`--network`, `--ip`, `--mac-address`).
    pub networks: Vec<NetworkUse>,
    /// Its endpoints while it runs, one per network, in order.
    pub endpoints: Vec<ContainerEndpoint>,
    /// Its network namespace while it runs on a network.
    sandbox: Arc<Mutex<Option<Sandbox>>>,
}

impl PartialEq for Container {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Container {}

impl Container {
    /// The mountpoint of `volume` in this container.
    pub fn mountpoint(&self, volume: &str) -> Option<&Path> {
        self.mounts
            .iter()
            .find(|m| m.volume == volume)
            .map(|m| m.mountpoint.as_path())
    }

    /// The name its endpoints are created under (dockerd: the container's name; here
    /// the first 12 digits of its ID).
    pub fn name(&self) -> &str {
        &self.id[..12]
    }

    /// Where its network namespace is mounted while it runs on a network (a Join's
    /// `SandboxKey`): enter it with `nsenter --net=KEY`.
    pub fn sandbox_key(&self) -> Option<PathBuf> {
        self.sandbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|sb| sb.key().to_path_buf())
    }

    /// Its endpoint on `network`, while it runs.
    pub fn endpoint(&self, network: &str) -> Option<&ContainerEndpoint> {
        self.endpoints.iter().find(|e| e.network == network)
    }
}

/// `docker create / start / stop / cp / rm / run`, as far as they reach plugins. Cheap
/// to clone.
///
/// ```no_run
/// use docker_plugin_sdk::harness::{Discovery, Engine, VolumeUse};
/// # async fn run() -> Result<(), docker_plugin_sdk::harness::HarnessError> {
/// let engine = Engine::new(Discovery::rooted("/tmp/test-root"));
/// // `docker run --rm -v v1:/data …`: Mount, the closure plays the container, Unmount.
/// let written = engine
///     .containers()
///     .run(&[VolumeUse::with_driver("v1", "myplugin")], |c| {
///         std::fs::write(c.mountpoint("v1").unwrap().join("hello"), "hi")
///     })
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Containers {
    volumes: Volumes,
    networks: Networks,
    metrics: Metrics,
}

impl Containers {
    pub(crate) fn new(volumes: Volumes, networks: Networks, metrics: Metrics) -> Self {
        Self {
            volumes,
            networks,
            metrics,
        }
    }

    /// `docker create -v … --network …`: [`create`](Self::create), and the networks it
    /// joins when it starts.
    pub async fn create_on(
        &self,
        volumes: &[VolumeUse],
        networks: &[NetworkUse],
    ) -> Result<Container, HarnessError> {
        for use_ in networks {
            self.networks.inspect(&use_.network)?;
        }
        let mut container = self.create(volumes).await?;
        container.networks = networks.to_vec();
        Ok(container)
    }

    /// Joins the container's networks, in order (`allocateNetwork`); on a failure the
    /// networks joined are left again and the sandbox removed.
    async fn connect(&self, container: &mut Container) -> Result<(), HarnessError> {
        let mut sandbox = None;
        for use_ in container.networks.clone() {
            let joined = self
                .networks
                .connect(&container.id, container.name(), &use_, &mut sandbox)
                .await;
            match joined {
                Ok(endpoint) => container.endpoints.push(endpoint),
                Err(err) => {
                    *container.sandbox.lock().unwrap_or_else(|p| p.into_inner()) = sandbox;
                    let _ = self.disconnect(container).await;
                    return Err(err);
                }
            }
        }
        *container.sandbox.lock().unwrap_or_else(|p| p.into_inner()) = sandbox;
        Ok(())
    }

    /// Leaves every network, last joined first, and removes the sandbox
    /// (`releaseNetwork`). Every step is tried; the first error is returned.
    async fn disconnect(&self, container: &mut Container) -> Result<(), HarnessError> {
        let sandbox = container
            .sandbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let mut first = None;
        for endpoint in container.endpoints.drain(..).rev() {
            if let Err(err) = self
                .networks
                .disconnect(&container.id, &endpoint, sandbox.as_ref())
                .await
            {
                first.get_or_insert(err);
            }
        }
        if let Some(sandbox) = sandbox {
            let removed = tokio::task::spawn_blocking(move || sandbox.destroy())
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            if let Err(e) = removed {
                first.get_or_insert(HarnessError::io("removing the network namespace", e));
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// `docker create -v NAME:/path …`: a container referencing `volumes` (created
    /// through their driver when they name one and do not exist). Nothing is mounted.
    pub async fn create(&self, volumes: &[VolumeUse]) -> Result<Container, HarnessError> {
        let began = Instant::now();
        let mut container = Container {
            id: random_id(),
            mounts: Vec::new(),
            running: false,
            networks: Vec::new(),
            endpoints: Vec::new(),
            sandbox: Arc::default(),
        };
        for volume in volumes {
            let driver = self.volumes.driver_for(volume).await?;
            container.mounts.push(ContainerMount {
                volume: volume.name.clone(),
                driver,
                mount_id: random_id(),
                mountpoint: PathBuf::new(),
            });
        }
        self.volumes.hold(
            container.mounts.iter().map(|m| m.volume.as_str()),
            &container.id,
        );
        // dockerd observes a successful action's time (moby v20.10.24 `daemon/create.go`).
        self.metrics.observe("create", began.elapsed());
        Ok(container)
    }

    async fn mount(&self, mount: &mut ContainerMount) -> Result<(), HarnessError> {
        mount.mountpoint = self
            .volumes
            .mount(&mount.driver, &mount.volume, &mount.mount_id)
            .await?;
        Ok(())
    }

    async fn unmount(&self, mount: &ContainerMount) -> Result<(), HarnessError> {
        self.volumes
            .unmount(&mount.driver, &mount.volume, &mount.mount_id)
            .await
    }

    /// `docker start`: mounts every volume (`Get`, `Mount`), then joins its networks.
    /// If one fails, what was done is undone.
    pub async fn start(&self, container: &mut Container) -> Result<(), HarnessError> {
        let began = Instant::now();
        for i in 0..container.mounts.len() {
            if let Err(err) = self.mount(&mut container.mounts[i]).await {
                for done in container.mounts[..i].iter().rev() {
                    let _ = self.unmount(done).await;
                }
                // dockerd names the mount's host path, still empty before it mounted.
                return Err(HarnessError::MountFailed {
                    source_path: String::new(),
                    source: Box::new(err),
                });
            }
        }
        if let Err(err) = self.connect(container).await {
            for done in container.mounts.iter().rev() {
                let _ = self.unmount(done).await;
            }
            return Err(err);
        }
        container.running = true;
        self.metrics.observe("start", began.elapsed());
        Ok(())
    }

    /// `docker stop`: leaves its networks, then unmounts every volume (`Get`,
    /// `Unmount`), in reverse order. Every step is tried; the first error is returned.
    pub async fn stop(&self, container: &mut Container) -> Result<(), HarnessError> {
        if !container.running {
            return Ok(());
        }
        container.running = false;
        let mut first_error = self.disconnect(container).await.err();
        for mount in container.mounts.iter().rev() {
            if let Err(err) = self.unmount(mount).await {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// `docker cp` to or from a running container: each volume is mounted again with
    /// the same ID and unmounted.
    pub async fn cp(&self, container: &Container) -> Result<(), HarnessError> {
        let mut mounts = container.mounts.clone();
        for mount in &mut mounts {
            self.mount(mount).await?;
            self.unmount(mount).await?;
        }
        Ok(())
    }

    /// `docker rm`: stops the container if running and drops its volume references.
    pub async fn rm(&self, mut container: Container) -> Result<(), HarnessError> {
        let stopped = self.stop(&mut container).await;
        for mount in &container.mounts {
            self.volumes.release(&mount.volume, &container.id);
        }
        stopped
    }

    /// `docker run --rm -v …`: create, start, run `body` with the container (write into
    /// its mountpoints to play the container), stop, remove.
    pub async fn run<R>(
        &self,
        volumes: &[VolumeUse],
        body: impl FnOnce(&Container) -> R,
    ) -> Result<R, HarnessError> {
        let mut container = self.create(volumes).await?;
        if let Err(err) = self.start(&mut container).await {
            let _ = self.rm(container).await;
            return Err(err);
        }
        let result = body(&container);
        self.rm(container).await?;
        Ok(result)
    }
}
