//! `filelog`: a log driver writing each container's lines to JSON-lines files with
//! size-based rotation, and serving them back to `docker logs` (`--tail`, `--since`,
//! `--until`, `-f`). `options.rs` holds its `--log-opt`s, `record.rs` a stored line,
//! `store.rs` the rotated files, `read.rs` reading them back, `driver.rs` the driver
//! (the library, `lib.rs`); this file is the command line, in the crate's own idioms
//! (`#[docker_plugin_sdk::main]`, `ListenArgs`).
//!
//! ```text
//! cargo docker-plugin package -p filelog && docker plugin create filelog target/docker-plugin/filelog
//! mkdir -p /var/lib/filelog && docker plugin enable filelog
//! docker run --log-driver filelog:latest --log-opt max-size=10m --log-opt max-file=3 busybox echo hi
//! docker logs --tail 2 CONTAINER
//! ls /var/lib/filelog/CONTAINER-ID/   # container.log, container.log.1, …
//! ```
//!
//! Log options (`--log-opt`), refused at `docker run` when wrong:
//!   max-size=SIZE   rotate past SIZE bytes (k, m, g: 1000s; default 20m)
//!   max-file=N      keep N files, the current one included (default 5)
//!
//! Options (`--help`):
//!   --dir DIR   where the files go, one directory per container (default /logs)
//!   and the listen flags of every plugin (--name filelog, --socket-dir, …).

use std::path::PathBuf;

use docker_plugin_sdk::Plugin;
use docker_plugin_sdk::transport::{ListenArgs, ValueFlag};
use filelog::driver::FileLog;

/// The directory flag, beside the listen flags.
const DIR: ValueFlag = ValueFlag {
    flag: "--dir",
    value: "DIR",
    help: "where the files go, one directory per container",
    default: "/logs",
};

#[docker_plugin_sdk::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (listen, dir) =
        ListenArgs::from_env_with("filelog", &DIR).unwrap_or_else(|err| err.exit("filelog"));
    let dir = PathBuf::from(dir);
    tracing::info!(dir = %dir.display(), "writing container logs");
    // Serves until SIGTERM or SIGINT, then removes its socket and spec file.
    listen
        .serve(Plugin::new().logging(FileLog::new(dir)))
        .await?;
    Ok(())
}
