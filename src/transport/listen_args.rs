//! The listen flags every plugin binary takes, parsed once here instead of in each
//! `main`: `--name`, `--socket-dir`, `--socket-mode`, `--socket-group` (a unix socket),
//! `--tcp` with `--spec-dir` (TCP, found by dockerd through a `.spec` file), and
//! `--systemd` (socket activation), and `--metrics` (the plugin's own call metrics, on
//! an address of their own). A binary adds its own flags around them with
//! [`Flags`](crate::args::Flags) (or, when it takes just one setting such as `--dir
//! DIR`, reads it with [`ListenArgs::parse_with`] and a [`ValueFlag`](super::ValueFlag)),
//! and serves with [`ListenArgs::serve`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::{Listener, UnixSocket};
use crate::Plugin;
use crate::args::{ArgsError, Flags};
use crate::error::ServeError;
use crate::spec::SpecFile;
use crate::telemetry::CallMetrics;

/// Where a plugin listens, from its command line; see [`ListenArgs::USAGE`].
///
/// ```
/// use docker_plugin_sdk::args::{ArgsError, Flags};
/// use docker_plugin_sdk::transport::ListenArgs;
///
/// fn parse(args: &[&str]) -> Result<(ListenArgs, String), ArgsError> {
///     let mut listen = ListenArgs::new("myplugin");
///     let mut root = "/var/lib/myplugin".to_owned();
///     let usage = format!("usage: myplugin [--root DIR] {}", ListenArgs::USAGE);
///     let mut flags = Flags::new(args, usage);
///     while let Some(flag) = flags.next_flag()? {
///         match flag.as_str() {
///             "--root" => root = flags.value()?,
///             _ => listen.parse_flag(&mut flags)?, // or "unknown flag"
///         }
///     }
///     listen.check()?;
///     Ok((listen, root))
/// }
///
/// let (listen, root) = parse(&["--socket-dir", "/tmp/p", "--root=/srv", "--socket-mode", "660"]).unwrap();
/// assert_eq!(listen.unix_socket().path(), std::path::Path::new("/tmp/p/myplugin.sock"));
/// assert_eq!((root.as_str(), listen.socket_mode), ("/srv", Some(0o660)));
/// assert_eq!(
///     parse(&["--tcp", "127.0.0.1:0"]).unwrap_err().to_string(),
///     "--tcp needs --spec-dir: dockerd finds TCP plugins through a .spec file"
/// );
/// ```
///
/// Then, in an async `main`:
///
/// ```no_run
/// # use docker_plugin_sdk::{Plugin, ServeError};
/// # use docker_plugin_sdk::transport::ListenArgs;
/// # async fn serve(listen: ListenArgs, plugin: Plugin) -> Result<(), ServeError> {
/// let (listener, spec) = listen.bind()?;
/// let mut server = plugin.server(listener);
/// if let Some(spec) = spec {
///     server = server.spec_file(spec); // written once listening, removed at shutdown
/// }
/// server.run().await
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenArgs {
    /// `--name NAME`: the plugin's name, its socket `NAME.sock` (and spec `NAME.spec`).
    pub name: String,
    /// `--socket-dir DIR` (default `/run/docker/plugins`).
    pub socket_dir: Option<PathBuf>,
    /// `--socket-mode OCTAL`: the socket's permissions (default 0660).
    pub socket_mode: Option<u32>,
    /// `--socket-group GROUP`: the socket's group, a name or a gid (default root's
    /// when the plugin runs as root).
    pub socket_group: Option<String>,
    /// `--tcp ADDR`: listen on TCP instead (needs `--spec-dir`).
    pub tcp: Option<String>,
    /// `--spec-dir DIR`: write `NAME.spec` with the plugin's address there.
    pub spec_dir: Option<PathBuf>,
    /// `--systemd`: serve the socket passed by systemd socket activation.
    pub systemd: bool,
    /// `--metrics ADDR`: keep the plugin's call metrics and serve them (Prometheus
    /// text, `GET /metrics`) there.
    pub metrics: Option<MetricsAddr>,
}

/// Where `--metrics` serves the plugin's call metrics: never on the plugin's own socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsAddr {
    /// A unix socket (a path ending in `.sock`).
    Unix(PathBuf),
    /// A TCP port on loopback (`127.0.0.1:9464`, `[::1]:9464`).
    Tcp(SocketAddr),
}

impl MetricsAddr {
    /// Reads `--metrics`' value: a path ending in `.sock`, or a loopback `IP:PORT`.
    fn parse(value: &str) -> Option<Self> {
        if value.contains('/') {
            let path = Path::new(value);
            let is_socket = path.extension().is_some_and(|ext| ext == "sock");
            return (is_socket && path.file_stem().is_some()).then(|| Self::Unix(path.into()));
        }
        let addr: SocketAddr = value.parse().ok()?;
        addr.ip().is_loopback().then_some(Self::Tcp(addr))
    }

    /// Binds it.
    pub fn bind(&self) -> Result<Listener, ServeError> {
        match self {
            Self::Tcp(addr) => Listener::tcp(*addr),
            Self::Unix(path) => {
                let name = path
                    .file_stem()
                    .map(|stem| stem.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let mut socket = UnixSocket::new(name);
                if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                    socket = socket.dir(dir);
                }
                socket.bind()
            }
        }
    }
}

impl ListenArgs {
    /// The flags, for a usage line.
    pub const USAGE: &'static str = "[--name NAME] [--socket-dir DIR] [--socket-mode OCTAL] \
                                     [--socket-group GROUP] [--tcp ADDR --spec-dir DIR] \
                                     [--systemd] [--metrics ADDR]";

    /// What each flag does, one indented line each, for a `--help` text.
    pub const HELP: &'static str = "  \
  --name NAME           plugin name: socket NAME.sock
  --socket-dir DIR      socket directory (default /run/docker/plugins)
  --socket-mode OCTAL   socket permissions (default 660)
  --socket-group GROUP  socket group (name or gid, e.g. docker; default root)
  --tcp ADDR            listen on TCP instead (needs --spec-dir so dockerd finds it)
  --spec-dir DIR        write NAME.spec pointing at the socket there
  --systemd             serve the socket passed by systemd socket activation
  --metrics ADDR        serve call metrics (Prometheus, GET /metrics) on a unix socket
                        path ending in .sock or a loopback IP:PORT";

    /// The defaults: plugin `name` on `/run/docker/plugins/NAME.sock`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            socket_dir: None,
            socket_mode: None,
            socket_group: None,
            tcp: None,
            spec_dir: None,
            systemd: false,
            metrics: None,
        }
    }

    /// Takes the current flag of `flags` (and its value) if it is one of the listen
    /// flags; any other flag is [`ArgsError::Unknown`].
    pub fn parse_flag(&mut self, flags: &mut Flags) -> Result<(), ArgsError> {
        match flags.flag() {
            "--name" => self.name = flags.value()?,
            "--socket-dir" => self.socket_dir = Some(flags.value()?.into()),
            "--socket-mode" => {
                let mode = flags.parse_with("octal permissions such as 660", |v| {
                    u32::from_str_radix(v, 8)
                        .ok()
                        .filter(|mode| *mode <= 0o7777)
                })?;
                self.socket_mode = Some(mode);
            }
            "--socket-group" => self.socket_group = Some(flags.value()?),
            "--tcp" => self.tcp = Some(flags.value()?),
            "--spec-dir" => self.spec_dir = Some(flags.value()?.into()),
            "--systemd" => self.systemd = true,
            "--metrics" => {
                self.metrics = Some(flags.parse_with(
                    "a unix socket path ending in .sock, or a loopback IP:PORT such as \
                     127.0.0.1:9464",
                    MetricsAddr::parse,
                )?);
            }
            _ => return Err(flags.unknown()),
        }
        Ok(())
    }

    /// The rules between the flags, once all are read: `--tcp` needs `--spec-dir`,
    /// and `--tcp` and `--systemd` exclude each other.
    pub fn check(&self) -> Result<(), ArgsError> {
        if self.tcp.is_some() && self.systemd {
            return Err(ArgsError::Conflict {
                flag: "--tcp".into(),
                other: "--systemd".into(),
                why: "under socket activation systemd binds the socket; choose one".into(),
            });
        }
        if self.tcp.is_some() && self.spec_dir.is_none() {
            return Err(ArgsError::Requires {
                flag: "--tcp".into(),
                needs: "--spec-dir".into(),
                why: "dockerd finds TCP plugins through a .spec file".into(),
            });
        }
        Ok(())
    }

    /// The unix socket of `--name`, `--socket-dir`, `--socket-mode`, `--socket-group`.
    pub fn unix_socket(&self) -> UnixSocket {
        let mut socket = UnixSocket::new(&self.name);
        if let Some(dir) = &self.socket_dir {
            socket = socket.dir(dir);
        }
        if let Some(mode) = self.socket_mode {
            socket = socket.mode(mode);
        }
        if let Some(group) = &self.socket_group {
            socket = socket.group(group);
        }
        socket
    }

    /// Binds the listener (systemd's socket, TCP, or the unix socket) and, with
    /// `--spec-dir`, the spec file pointing at it, for
    /// [`Server::spec_file`](crate::Server::spec_file).
    pub fn bind(&self) -> Result<(Listener, Option<SpecFile>), ServeError> {
        let listener = if self.systemd {
            Listener::from_systemd()?
        } else if let Some(addr) = &self.tcp {
            Listener::tcp(addr.as_str())?
        } else {
            self.unix_socket().bind()?
        };
        let spec = self
            .spec_dir
            .as_ref()
            .map(|dir| SpecFile::url(&self.name, listener.url()).dir(dir));
        Ok((listener, spec))
    }

    /// Serves `plugin` as the flags say until SIGTERM or SIGINT: binds its listener,
    /// writes the spec file with `--spec-dir` (removed at shutdown) and, with
    /// `--metrics`, keeps its call metrics and serves them there.
    ///
    /// ```no_run
    /// # use docker_plugin_sdk::{Plugin, ServeError, transport::ListenArgs};
    /// # async fn run(listen: ListenArgs, driver: impl docker_plugin_sdk::volume::Driver) -> Result<(), ServeError> {
    /// listen.serve(Plugin::new().volume(driver)).await
    /// # }
    /// ```
    pub async fn serve(&self, plugin: Plugin) -> Result<(), ServeError> {
        let (listener, spec) = self.bind()?;
        let mut server = match &self.metrics {
            Some(addr) => {
                let endpoint = addr.bind()?;
                let metrics = CallMetrics::new();
                plugin
                    .call_metrics(&metrics)
                    .server(listener)
                    .metrics(endpoint, &metrics)
            }
            None => plugin.server(listener),
        };
        if let Some(spec) = spec {
            server = server.spec_file(spec);
        }
        server.run().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ListenArgs, ArgsError> {
        let mut listen = ListenArgs::new("p");
        let mut flags = Flags::new(args, "usage");
        while flags.next_flag()?.is_some() {
            listen.parse_flag(&mut flags)?;
        }
        listen.check()?;
        Ok(listen)
    }

    #[test]
    fn every_flag_is_read() {
        let listen = parse(&[
            "--name=q",
            "--socket-dir",
            "/d",
            "--socket-mode",
            "0660",
            "--socket-group",
            "docker",
            "--tcp",
            "127.0.0.1:0",
            "--spec-dir",
            "/s",
            "--metrics",
            "/run/q/metrics.sock",
        ])
        .unwrap();
        assert_eq!(
            listen,
            ListenArgs {
                name: "q".into(),
                socket_dir: Some("/d".into()),
                socket_mode: Some(0o660),
                socket_group: Some("docker".into()),
                tcp: Some("127.0.0.1:0".into()),
                spec_dir: Some("/s".into()),
                systemd: false,
                metrics: Some(MetricsAddr::Unix("/run/q/metrics.sock".into())),
            }
        );
        assert!(parse(&["--systemd"]).unwrap().systemd);
        for (value, addr) in [("127.0.0.1:9464", "127.0.0.1:9464"), ("[::1]:0", "[::1]:0")] {
            assert_eq!(
                parse(&["--metrics", value]).unwrap().metrics,
                Some(MetricsAddr::Tcp(addr.parse().unwrap()))
            );
        }
        assert_eq!(
            parse(&["--metrics", "./m.sock"]).unwrap().metrics,
            Some(MetricsAddr::Unix("./m.sock".into()))
        );
    }

    #[test]
    fn mistakes_name_the_flag_and_the_fix() {
        let error = |args: &[&str]| parse(args).unwrap_err().to_string();
        assert_eq!(
            error(&["--socket-mode", "rw"]),
            "--socket-mode rw: expected octal permissions such as 660"
        );
        assert_eq!(
            error(&["--socket-mode", "17777"]),
            "--socket-mode 17777: expected octal permissions such as 660"
        );
        assert_eq!(
            error(&["--tcp", "127.0.0.1:0"]),
            "--tcp needs --spec-dir: dockerd finds TCP plugins through a .spec file"
        );
        assert_eq!(
            error(&["--tcp", "127.0.0.1:0", "--spec-dir", "/s", "--systemd"]),
            "--tcp and --systemd cannot be used together: under socket activation systemd \
             binds the socket; choose one"
        );
        assert_eq!(error(&["--root", "/x"]), "unknown flag --root (see --help)");
        for off in [
            "0.0.0.0:9464",
            "10.0.0.1:80",
            "localhost:9464",
            "/run/m",
            "9464",
        ] {
            assert_eq!(
                error(&["--metrics", off]),
                format!(
                    "--metrics {off}: expected a unix socket path ending in .sock, or a \
                     loopback IP:PORT such as 127.0.0.1:9464"
                )
            );
        }
        assert_eq!(
            error(&["--systemd=1"]),
            "--systemd takes no value, got `1`: write just --systemd"
        );
    }

    #[tokio::test]
    async fn tcp_with_a_spec_dir_gives_a_spec_file_naming_the_bound_port() {
        let listen = parse(&["--tcp", "127.0.0.1:0", "--spec-dir", "/s"]).unwrap();
        let (listener, spec) = listen.bind().unwrap();
        let port = listener.tcp_addr().unwrap().port();
        assert_ne!(port, 0);
        assert_eq!(spec.unwrap().path(), std::path::Path::new("/s/p.spec"));
    }
}
