//! The load generator's scheduling: ahead of the servers'.
//!
//! On a 2-core machine the load generator shares the cores with the server's threads
//! (two workers and the accepting thread in `multi` and `main`). When the scheduler
//! takes the generator off a core for a slice (about 4 ms on this VM's kernel, 6.18
//! with EEVDF), every call it has in flight waits that long for its reply to be read,
//! whichever server answered it. At 64 keep-alive connections, with the generator at the
//! servers' priority, 0.6% to 1.6% of the calls were so delayed per 1 s turn, for either
//! server alike, so a turn's p99 fell in one of two modes a slice apart (about 1.8 or
//! 4.1 ms) and a p99 ratio was often 0.5 or 2: the generator's own scheduling, not the
//! servers'. The benchmark process and the generator processes it starts therefore run
//! under `SCHED_FIFO` (else, without the privilege, at nice −10), and every server under
//! the normal policy at nice 0: a generator with replies to read takes a core at once.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// The generator's real-time priority (`SCHED_FIFO`, 1 to 99).
const GENERATOR_FIFO_PRIORITY: libc::c_int = 10;
/// The generator's nice value where `SCHED_FIFO` is refused.
const GENERATOR_NICE: libc::c_int = -10;

/// Puts this process ahead of the servers: `SCHED_FIFO`, else nice −10; says which.
/// Call it before any thread is started: on Linux the policy and the nice value are a
/// thread's, and new threads (and child processes) inherit their creator's. `Err` when
/// neither is allowed (not root, no `CAP_SYS_NICE`): the run goes on at the servers'
/// priority, and says so.
pub fn favour_generator() -> Result<String, String> {
    let param = libc::sched_param {
        sched_priority: GENERATOR_FIFO_PRIORITY,
    };
    // SAFETY: sched_setscheduler(2) on this thread (pid 0) with a valid sched_param.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } == 0 {
        return Ok(format!(
            "load generator under SCHED_FIFO {GENERATOR_FIFO_PRIORITY}, servers under SCHED_OTHER at nice 0"
        ));
    }
    let fifo = std::io::Error::last_os_error();
    // SAFETY: setpriority(2) on this thread (who 0), no pointers.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, GENERATOR_NICE) } == 0 {
        return Ok(format!(
            "load generator at nice {GENERATOR_NICE} (SCHED_FIFO refused: {fifo}), servers at 0"
        ));
    }
    Err(format!(
        "load generator at the servers' priority (SCHED_FIFO refused: {fifo}; nice {GENERATOR_NICE} refused: {})",
        std::io::Error::last_os_error()
    ))
}

/// Makes `command`'s process run under the normal policy at nice 0, whatever this
/// process's.
pub fn at_server_priority(command: &mut Command) -> &mut Command {
    // SAFETY: between fork and exec the hook makes only sched_setscheduler(2) and
    // setpriority(2), which are async-signal-safe, and reads errno.
    unsafe {
        command.pre_exec(|| {
            let normal = libc::sched_param { sched_priority: 0 };
            if libc::sched_setscheduler(0, libc::SCHED_OTHER, &normal) != 0
                || libc::setpriority(libc::PRIO_PROCESS, 0, 0) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}
