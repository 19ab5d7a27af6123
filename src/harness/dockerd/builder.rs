//! A private dockerd with extra daemon flags, given one by one: the builder form of
//! [`Dockerd::start_with`], for callers that gather flags as they go (the recorder
//! adds `--authorization-plugin` for each authz recorder it starts, and TLS flags).

use super::{Dockerd, DockerdError};

/// How a private dockerd is started: [`Dockerd::builder`], then
/// [`start`](Self::start). Without options it is [`Dockerd::start`].
///
/// ```no_run
/// use docker_plugin_sdk::harness::dockerd::Dockerd;
///
/// # fn run() -> Result<(), docker_plugin_sdk::harness::dockerd::DockerdError> {
/// // The policy plugin listens on /run/docker/plugins/mypolicy.sock first:
/// // dockerd does not start when an authorization plugin is missing.
/// let d = Dockerd::builder()
///     .daemon_arg("--authorization-plugin=mypolicy")
///     .start()?;
/// let err = d.docker_err(&["volume", "create", "forbidden"])?;
/// assert!(err.contains("authorization denied by plugin mypolicy"), "{err}");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct DockerdBuilder {
    daemon_args: Vec<String>,
}

impl DockerdBuilder {
    /// Adds a flag to dockerd's command line, after the harness's own (data and exec
    /// roots, API socket, no bridge, no iptables, vfs): `--authorization-plugin=NAME`
    /// (repeat it for a chain), `--tlsverify`, `--host=tcp://127.0.0.1:PORT` (an API
    /// address besides the private socket the CLI uses), ….
    pub fn daemon_arg(mut self, arg: impl Into<String>) -> Self {
        self.daemon_args.push(arg.into());
        self
    }

    /// Adds several flags, in order: see [`daemon_arg`](Self::daemon_arg).
    pub fn daemon_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.daemon_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The flags given so far, in order.
    pub fn flags(&self) -> &[String] {
        &self.daemon_args
    }

    /// Starts the daemon with the flags: [`Dockerd::start_with`].
    pub fn start(self) -> Result<Dockerd, DockerdError> {
        let args: Vec<&str> = self.daemon_args.iter().map(String::as_str).collect();
        Dockerd::start_with(&args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_kept_in_the_order_given() {
        let builder = Dockerd::builder()
            .daemon_arg("--authorization-plugin=a")
            .daemon_args(["--authorization-plugin=b", "--tlsverify"]);
        assert_eq!(
            builder.flags(),
            [
                "--authorization-plugin=a",
                "--authorization-plugin=b",
                "--tlsverify"
            ]
        );
    }
}
