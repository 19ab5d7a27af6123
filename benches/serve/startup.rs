//! Exec → first answer: the time from starting a server process to its first answered
//! `Plugin.Activate` (what dockerd waits for), polled every 0.2 ms as a client retrying
//! as fast as it can; the bare server answers the same request with its fixed body.

use std::path::Path;
use std::time::{Duration, Instant};

use docker_plugin_sdk::load::{Call, Load, Options, Target};

use crate::servers::{Server, Setup};

/// One start of `exe NAME SOCKET SETUP`: the time to its first answered Activate.
fn once(exe: &Path, name: &str, setup: Setup, socket: &Path) -> Result<Duration, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let call = Call::new("Plugin.Activate", None).map_err(|e| e.to_string())?;
    let target = Target::Unix(socket.to_path_buf());
    let started = Instant::now();
    let mut command = std::process::Command::new(exe);
    let child = crate::priority::at_server_priority(&mut command)
        .arg(name)
        .arg(socket)
        .arg(setup.name())
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the {name} server: {e}"))?;
    let mut server = Server(child);
    loop {
        let attempt = runtime.block_on(Load::connect(
            target.clone(),
            call.clone(),
            Options::default(),
        ));
        if attempt.is_ok() {
            return Ok(started.elapsed());
        }
        if let Ok(Some(status)) = server.0.try_wait() {
            return Err(format!("the {name} server exited: {status}"));
        }
        if started.elapsed() > Duration::from_secs(10) {
            return Err(format!("the {name} server did not answer within 10 s"));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// The median exec → first answer of the bare server and the SDK (in `setup`) over
/// `starts` starts each, alternating.
pub fn measure(exe: &Path, setup: Setup, starts: usize) -> Result<(f64, f64, f64), String> {
    let dir = crate::socket_dir()?;
    let mut bare = Vec::with_capacity(starts);
    let mut sdk = Vec::with_capacity(starts);
    let mut ratios = Vec::with_capacity(starts);
    for i in 0..starts {
        let b = dir.path().join(format!("bare{i}.sock"));
        let s = dir.path().join(format!("sdk{i}.sock"));
        let (tb, ts) = if i % 2 == 0 {
            let tb = once(exe, "bare", setup, &b)?;
            (tb, once(exe, crate::sdk_server(), setup, &s)?)
        } else {
            let ts = once(exe, crate::sdk_server(), setup, &s)?;
            (once(exe, "bare", setup, &b)?, ts)
        };
        bare.push(tb.as_secs_f64() * 1e3);
        sdk.push(ts.as_secs_f64() * 1e3);
        ratios.push(ts.as_secs_f64() / tb.as_secs_f64());
    }
    Ok((
        crate::paired::median(bare),
        crate::paired::median(sdk),
        crate::paired::median(ratios),
    ))
}
