//! The logging actions: `docker run --log-driver` on a legacy log driver (the
//! recorder's `--logging`) and `docker logs` of a stopped and of a running container.

use super::*;

/// What the logging actions' first container prints: two lines, then one of 20000
/// bytes (over dockerd's 16 KiB copier buffer), each ending with a newline.
pub(crate) const LONG_LINE_SCRIPT: &str =
    "echo line-one; echo line-two; head -c 20000 /dev/zero | tr '\\0' x; echo";

/// What the logging actions' second container prints: a line, a pause, a line.
pub(crate) const SLOW_SCRIPT: &str = "echo one; sleep 3; echo two";

pub(super) const ACTIONS: &[Action] = &[
    Action {
        name: "logging_run",
        description: "docker run --log-driver on a legacy log driver (ReadLogs capable): two \
                      lines and a line of 20000 bytes; then docker logs of the stopped \
                      container, with --tail 2 and with --since",
        plugins: &[log_plugin("rec-log")],
        bundles: &[],
        image: true,
        setup: &[],
        commands: &[
            &[
                "run",
                "--name",
                "c1",
                "--log-driver",
                "rec-log",
                IMAGE,
                "sh",
                "-c",
                LONG_LINE_SCRIPT,
            ],
            &["logs", "c1"],
            &["logs", "--tail", "2", "c1"],
            &["logs", "--since", "2000-01-01T00:00:00Z", "c1"],
            &["rm", "c1"],
        ],
        failing: &[],
        tls: false,
    },
    Action {
        name: "logging_running",
        description: "docker logs of a running container (one ReadLogs), then docker logs -f \
                      until the container exits (StopLogging ends the follow stream)",
        plugins: &[log_plugin("rec-log")],
        bundles: &[],
        image: true,
        setup: &[],
        commands: &[
            &[
                "run",
                "-d",
                "--name",
                "c2",
                "--log-driver",
                "rec-log",
                IMAGE,
                "sh",
                "-c",
                SLOW_SCRIPT,
            ],
            &["logs", "c2"],
            &["logs", "-f", "c2"],
            &["rm", "c2"],
        ],
        failing: &[],
        tls: false,
    },
];
