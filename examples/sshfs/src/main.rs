//! `sshfs`: the reference sshfs volume plugin, the plugin Docker's docs install
//! (vieux/sshfs) rebuilt with the SDK: volumes are remote directories mounted over
//! SSH by a supervised sshfs. The driver is the library (`driver.rs` and the modules
//! it uses); this file is the command line, in the crate's own idioms
//! (`#[docker_plugin_sdk::main]`, `ListenArgs`). It needs CAP_SYS_ADMIN and /dev/fuse.
//!
//! ```text
//! cargo docker-plugin package -p sshfs
//! docker plugin create sshfs target/docker-plugin/sshfs
//! docker plugin set sshfs sshkey.source=/root/sshfs-keys
//! docker plugin enable sshfs
//! docker volume create -d sshfs -o sshcmd=alice@files.example:/srv/data \
//!     -o IdentityFile=/root/.ssh/id_ed25519 data
//! docker run --rm -v data:/data busybox ls /data
//! ```
//!
//! Options (`--help`):
//!   --root DIR        where volumes are mounted (default /mnt/volumes)
//!   --state DIR       the state files (default /mnt/state)
//!   --keys DIR        the sshkey mount: password files (default /root/.ssh)
//!   --sshfs PATH      the sshfs program (default /usr/bin/sshfs)
//!   --fusermount PATH the fusermount program (default /usr/bin/fusermount)
//!   and the listen flags of every plugin (--name sshfs, --socket-dir, …).
//!
//! `DEBUG=1` (vieux/sshfs's setting, `docker plugin set sshfs DEBUG=1`) turns on
//! debug logs (each call, sshfs's command line, what sshfs and ssh print); `RUST_LOG`,
//! when set, wins.

use std::path::PathBuf;
use std::process::ExitCode;

use docker_plugin_sdk::args::{ArgsError, Flags};
use docker_plugin_sdk::transport::ListenArgs;
use sshfs::sshfs::Tools;

/// The listen flags, the directories and the programs.
struct Args {
    listen: ListenArgs,
    root: PathBuf,
    state: PathBuf,
    tools: Tools,
}

fn parse_args() -> Result<Args, ArgsError> {
    let usage = format!(
        "usage: sshfs [--root DIR] [--state DIR] [--keys DIR] [--sshfs PATH] [--fusermount PATH] {}\n\n  \
         --root DIR            where volumes are mounted (default /mnt/volumes)\n  \
         --state DIR           the state files (default /mnt/state)\n  \
         --keys DIR            the sshkey mount: password files (default /root/.ssh)\n  \
         --sshfs PATH          the sshfs program (default /usr/bin/sshfs)\n  \
         --fusermount PATH     the fusermount program (default /usr/bin/fusermount)\n{}",
        ListenArgs::USAGE,
        ListenArgs::HELP
    );
    let mut args = Args {
        listen: ListenArgs::new("sshfs"),
        root: PathBuf::from("/mnt/volumes"),
        state: PathBuf::from("/mnt/state"),
        tools: Tools::default(),
    };
    let mut flags = Flags::from_env(usage);
    while let Some(flag) = flags.next_flag()? {
        match flag.as_str() {
            "--root" => args.root = flags.value()?.into(),
            "--state" => args.state = flags.value()?.into(),
            "--keys" => args.tools.keys = flags.value()?.into(),
            "--sshfs" => args.tools.sshfs = flags.value()?.into(),
            "--fusermount" => args.tools.fusermount = flags.value()?.into(),
            _ => args.listen.parse_flag(&mut flags)?,
        }
    }
    args.listen.check()?;
    Ok(args)
}

/// `DEBUG` as vieux/sshfs reads it (Go's `strconv.ParseBool`).
fn debug() -> bool {
    std::env::var("DEBUG")
        .is_ok_and(|v| matches!(v.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"))
}

fn main() -> ExitCode {
    if debug() && std::env::var_os("RUST_LOG").is_none() {
        // SAFETY: no other thread runs yet (the runtime starts in `serve::main`).
        unsafe { std::env::set_var("RUST_LOG", "debug") };
    }
    serve::main()
}

mod serve {
    use docker_plugin_sdk::Plugin;
    use sshfs::driver::SshfsDriver;

    #[docker_plugin_sdk::main]
    pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
        // A bad flag: the message and exit code 2 (`--help`: the usage and 0).
        let args = super::parse_args().unwrap_or_else(|err| err.exit("sshfs"));
        // Bind first: dockerd gives a managed plugin 12.5 s to answer.
        let (listener, spec) = args.listen.bind()?;
        // Mounts again what containers held when the previous instance stopped.
        let driver = SshfsDriver::start(&args.root, &args.state, args.tools)
            .await
            .map_err(|err| format!("cannot start: {}", err.message()))?;
        let mut server = Plugin::new().volume(driver.clone()).server(listener);
        if let Some(spec) = spec {
            server = server.spec_file(spec);
        }
        // Serves until SIGTERM or SIGINT, then removes its socket and spec file.
        let served = server.run().await;
        driver.shutdown().await;
        served?;
        Ok(())
    }
}
