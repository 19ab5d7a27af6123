//! `slowsink`: a log driver forwarding each container's lines to a TCP receiver that
//! may be slow or down, to show (and test) that a log driver built on the SDK never
//! blocks a container: the SDK reads dockerd's FIFO into a bounded buffer and, when
//! the receiver does not keep up, drops the oldest or the newest lines, or spills
//! them to disk (`--overflow`), counting what it dropped. `forward.rs` is the driver,
//! `policy.rs` the buffering flags, `receiver.rs` a receiver that can be paused for
//! the tests; this file is the command line, in the crate's own idioms
//! (`#[docker_plugin_sdk::main]`, `ListenArgs`).
//!
//! ```text
//! nc -lk 127.0.0.1 9000 &            # the receiver (stop it with kill -STOP to pause it)
//! cargo docker-plugin package -p slowsink && docker plugin create slowsink target/docker-plugin/slowsink
//! docker plugin set slowsink args="--address 127.0.0.1:9000 --overflow drop-newest"
//! docker plugin enable slowsink
//! docker run --log-driver slowsink:latest busybox sh -c 'yes | head -n 1000000'
//! # dockerd's log: slowsink: logging ended container=… received=1000000 forwarded=… dropped=…
//! ```
//!
//! Each container's counts are logged when its logging ends, and the plugin's totals
//! when it exits. With `--metrics ADDR` the plugin-wide counts are also served, after
//! the call metrics: `docker_plugin_log_entries_dropped_total{policy="newest"}` and its
//! siblings.
//!
//! Log options (`--log-opt`): `address=IP:PORT`, this container's receiver.
//!
//! Options (`--help`):
//!   --address IP:PORT     the receiver (default 127.0.0.1:9000)
//!   --overflow, --buffer, --spill-dir, --spill-max, --flush-timeout: see `policy.rs`
//!   and the listen flags of every plugin (--name slowsink, --socket-dir, --metrics, …).

use std::net::SocketAddr;

use docker_plugin_sdk::Plugin;
use docker_plugin_sdk::args::{ArgsError, Flags};
use docker_plugin_sdk::logging::LogCounters;
use docker_plugin_sdk::transport::ListenArgs;
use slowsink::forward::SlowSink;
use slowsink::policy::PolicyArgs;

/// The listen flags, the receiver's address and the buffering flags.
fn parse_args() -> Result<(ListenArgs, SocketAddr, PolicyArgs), ArgsError> {
    let usage = format!(
        "usage: slowsink [--address IP:PORT] [--overflow POLICY] [--buffer BYTES] \
         [--spill-dir DIR] [--spill-max BYTES] [--flush-timeout SECS] {}\n\n  \
         --address IP:PORT     the receiver (default 127.0.0.1:9000)\n{}{}",
        ListenArgs::USAGE,
        PolicyArgs::HELP,
        ListenArgs::HELP
    );
    let mut listen = ListenArgs::new("slowsink");
    let mut address: SocketAddr = ([127, 0, 0, 1], 9000).into();
    let mut policy = PolicyArgs::default();
    let mut flags = Flags::from_env(usage);
    while let Some(flag) = flags.next_flag()? {
        match flag.as_str() {
            "--address" => address = flags.parse("an address such as 127.0.0.1:9000")?,
            other => {
                if !policy.parse_flag(other, &mut flags)? {
                    listen.parse_flag(&mut flags)?;
                }
            }
        }
    }
    listen.check()?;
    Ok((listen, address, policy))
}

#[docker_plugin_sdk::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (listen, address, policy) = parse_args().unwrap_or_else(|err| err.exit("slowsink"));
    tracing::info!(%address, ?policy, "forwarding container logs");
    let counters = LogCounters::new();
    let plugin = Plugin::new().logging_with(SlowSink::new(address), policy.options(&counters));
    // Serves until SIGTERM or SIGINT, then removes its socket and spec file.
    let served = listen.serve(plugin).await;
    let totals = counters.snapshot();
    tracing::info!(
        received = totals.received,
        delivered = totals.delivered,
        dropped_oldest = totals.dropped_oldest,
        dropped_newest = totals.dropped_newest,
        spilled = totals.spilled,
        "slowsink: every container's counts"
    );
    served?;
    Ok(())
}
